"""A local stand-in for Cohere's embed API, for testing the real ``cohere`` SDK over loopback.

It speaks the wire protocol of ``POST /v1/embed`` and ``POST /v2/embed`` as Cohere
documents it: ``Authorization: Bearer <key>``, a JSON body of ``texts``, ``model``,
``input_type``, ``embedding_types`` and ``truncate``, at most 96 texts a request, and
``input_type`` required by v3 and newer models. Errors are Cohere's ``{"message": ...}``
bodies. Vectors are seeded by a hash of the text, so the same text always gets the same
vector and tests can check order. Every request is recorded, and the next requests can
be scripted to fail (429 with ``Retry-After``, 5xx, 401...).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np

MAX_TEXTS = 96
DIMENSIONS = {
    "embed-english-v3.0": 1024,
    "embed-multilingual-v3.0": 1024,
    "embed-english-light-v3.0": 384,
    "embed-multilingual-light-v3.0": 384,
    "embed-v4.0": 1536,
    "embed-english-v2.0": 4096,
    "embed-english-light-v2.0": 1024,
    "embed-multilingual-v2.0": 768,
}
OLD_MODELS = {"embed-english-v2.0", "embed-english-light-v2.0", "embed-multilingual-v2.0"}
INPUT_TYPES = {"search_document", "search_query", "classification", "clustering", "image"}


def fake_vector(text: str, dim: int) -> List[float]:
    """The unit vector this server returns for ``text``: seeded by a hash of the text only."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(dim)
    return (vec / np.linalg.norm(vec)).tolist()


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
    message: str
    headers: Dict[str, str] = field(default_factory=dict)


class CohereServer:
    """Cohere's embed endpoints on 127.0.0.1 at a free port; use as a context manager."""

    def __init__(self, api_key: str = "test-cohere-key") -> None:
        self.api_key = api_key
        self.requests: List[Recorded] = []
        self._failures: List[ScriptedFailure] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The root URL (no ``/v1``), as ``api_base`` takes it."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "CohereServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, count: int, status: int, message: str = "", retry_after: Optional[str] = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After`` if given)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        text = message or f"scripted failure {status}"
        with self._lock:
            self._failures.extend(ScriptedFailure(status, text, headers) for _ in range(count))

    def embed_requests(self) -> List[Recorded]:
        """The recorded requests to an embed endpoint, in arrival order."""
        return [r for r in self.requests if r.path.endswith("/embed")]

    def handle(
        self, method: str, raw_path: str, headers: Dict[str, str], raw: bytes
    ) -> Tuple[int, Dict[str, str], Any]:
        """Serve one request: returns (status, extra headers, JSON body)."""
        parts = urlsplit(raw_path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(Recorded(method, parts.path, headers, parse_qs(parts.query), body))
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return failure.status, failure.headers, {"message": failure.message}
        if method != "POST" or parts.path not in ("/v1/embed", "/v2/embed"):
            return 404, {}, {"message": f"no route for {method} {parts.path}"}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, {"message": "invalid api token"}
        return self._embed(parts.path.startswith("/v2"), body)

    def _embed(self, v2: bool, body: Any) -> Tuple[int, Dict[str, str], Any]:
        if not isinstance(body, dict):
            return 400, {}, {"message": "invalid request: body must be a JSON object"}
        texts, model = body.get("texts"), body.get("model")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return 400, {}, {"message": "invalid request: texts must be a list of strings"}
        if len(texts) > MAX_TEXTS:
            return 400, {}, {
                "message": f"invalid request: total number of texts must be at most {MAX_TEXTS} - received {len(texts)}"
            }
        if model is None and v2:
            return 400, {}, {"message": "invalid request: model must be specified"}
        model = model or "embed-english-v2.0"
        if model not in DIMENSIONS:
            return 404, {}, {"message": f"model '{model}' not found, make sure the correct model ID was used"}
        input_type = body.get("input_type")
        if input_type is None and (v2 or model not in OLD_MODELS):
            return 400, {}, {"message": "invalid request: valid input_type must be provided with the provided model"}
        if input_type is not None and input_type not in INPUT_TYPES:
            return 400, {}, {"message": f"invalid request: input_type '{input_type}' is not valid"}
        vectors = [fake_vector(t, DIMENSIONS[model]) for t in texts]
        types = body.get("embedding_types")
        meta = {"api_version": {"version": "2" if v2 else "1"}, "billed_units": {"input_tokens": len(texts)}}
        reply: Dict[str, Any] = {"id": str(uuid.uuid4()), "texts": texts, "meta": meta}
        if types or v2:
            reply.update(response_type="embeddings_by_type", embeddings={t: vectors for t in (types or ["float"])})
        else:
            reply.update(response_type="embeddings_floats", embeddings=vectors)
        return 200, {}, reply


def _handler_for(server: CohereServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self._serve("POST")

        def do_GET(self) -> None:
            self._serve("GET")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = server.handle(method, self.path, headers, raw)
            data = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
