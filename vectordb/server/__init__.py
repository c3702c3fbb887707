"""``vectordb serve``: a FastAPI app over one persistent store (needs ``pip install "vectordb[server]"``)."""

from __future__ import annotations

import sys
from typing import Optional

from vectordb.errors import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(exc.name or "fastapi", "server", "vectordb serve") from None

from vectordb.server.app import DEFAULT_MAX_BODY_MB, create_app


def serve(
    path: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    auth_token: Optional[str] = None,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    log_level: str = "warning",
) -> None:
    """Serve the store at ``path`` until interrupted; the store is saved and closed on exit."""
    from vectordb.client import PersistentClient

    client = PersistentClient(path)
    app = create_app(client, auth_token=auth_token, max_body_mb=max_body_mb, close_client=True)
    auth = "on" if auth_token else "off"
    print(
        f"vectordb: serving {client.path} at http://{host}:{port} (API docs: /docs, auth {auth}); Ctrl+C stops",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["DEFAULT_MAX_BODY_MB", "create_app", "serve"]
