"""What the local provider servers share: a JSON HTTP server on loopback, for tests.

:class:`LoopbackServer` owns the plumbing: a threaded server on 127.0.0.1 at a free
port, start and stop (or a ``with`` block), the list of recorded requests and a queue
of scripted failures (429 or 5xx, with ``Retry-After`` when given). Each provider
module subclasses it and keeps only its own wire protocol: routes, auth, request
checks, error bodies and the shape of its answers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np

Response = Tuple[int, Dict[str, str], Any]
"""Status, extra headers and JSON body of one answer."""


def fake_vector(text: str, dim: int) -> List[float]:
    """The unit vector a server returns for ``text``: seeded by a hash of the text only."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dim)
    return (vec / np.linalg.norm(vec)).tolist()


def json_body(raw: bytes, *, keep_invalid: bool = True) -> Any:
    """The parsed JSON of ``raw`` (None when empty); invalid JSON as text, or None."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace") if keep_invalid else None


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    path: str
    headers: Dict[str, str]
    query: Dict[str, List[str]]
    body: Any


@dataclass
class ScriptedFailure:
    """A response to give instead of serving a request."""

    status: int
    body: Any
    headers: Dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    """A JSON server on 127.0.0.1 at a free port; use as a context manager.

    The handler passes every request to :meth:`_serve`, which by default answers with
    ``self.handle(method, raw_path, headers, raw)``; headers arrive with lower-case names.
    """

    content_type = "application/json"
    methods: Tuple[str, ...] = ("POST", "GET")

    def __init__(self) -> None:
        self.requests: List[Any] = []
        self._failures: List[ScriptedFailure] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Any:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _script(self, count: int, status: int, body: Any, retry_after: Optional[str]) -> None:
        """Queue ``count`` answers of ``status`` and ``body`` (with ``Retry-After`` if given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._failures.extend(ScriptedFailure(status, body, headers) for _ in range(count))

    def _next_failure(self) -> Optional[ScriptedFailure]:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, request: Any) -> None:
        with self._lock:
            self.requests.append(request)

    def _record_raw(
        self, method: str, raw_path: str, headers: Dict[str, str], raw: bytes
    ) -> Tuple[Recorded, Optional[ScriptedFailure]]:
        """Record the request and take the next scripted failure, in one step."""
        parts = urlsplit(raw_path)
        request = Recorded(method, parts.path, headers, parse_qs(parts.query), json_body(raw))
        with self._lock:
            self.requests.append(request)
            return request, (self._failures.pop(0) if self._failures else None)

    def _serve(self, method: str, raw_path: str, headers: Dict[str, str], raw: bytes) -> Response:
        return self.handle(method, raw_path, headers, raw)  # type: ignore[attr-defined]


def _handler_for(server: LoopbackServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _respond(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = server._serve(method, self.path, headers, raw)
            data = json.dumps(body).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", server.content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            return

    for method in server.methods:
        setattr(Handler, f"do_{method}", lambda self, method=method: self._respond(method))
    return Handler
