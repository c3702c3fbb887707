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
    allow_reset: bool = False,
) -> None:
    """Serve the store at ``path`` until interrupted; the store is saved and closed on exit.

    ``allow_reset`` lets clients call ``reset()`` (which deletes every collection).
    """
    from vectordb.client import PersistentClient
    from vectordb.config import Settings

    client = PersistentClient(path, settings=Settings(allow_reset=allow_reset))
    app = create_app(client, auth_token=auth_token, max_body_mb=max_body_mb, close_client=True)
    auth = "on" if auth_token else "off"
    print(
        f"vectordb: serving {client.path} at http://{host}:{port} (API docs: /docs, auth {auth}); Ctrl+C stops",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)


__all__ = ["DEFAULT_MAX_BODY_MB", "create_app", "serve"]
