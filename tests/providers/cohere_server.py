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

import uuid
from typing import Any, Dict, List, Optional

from providers._loopback import LoopbackServer, Recorded, Response, ScriptedFailure, fake_vector

__all__ = ["CohereServer", "Recorded", "ScriptedFailure", "fake_vector", "MAX_TEXTS"]

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


class CohereServer(LoopbackServer):
    """Cohere's embed endpoints on 127.0.0.1 at a free port; use as a context manager.

    ``url`` is the root URL (no ``/v1``), as ``api_base`` takes it.
    """

    def __init__(self, api_key: str = "test-cohere-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: List[Recorded] = []

    def fail_next(self, count: int, status: int, message: str = "", retry_after: Optional[str] = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After`` if given)."""
        self._script(count, status, {"message": message or f"scripted failure {status}"}, retry_after)

    def embed_requests(self) -> List[Recorded]:
        """The recorded requests to an embed endpoint, in arrival order."""
        return [r for r in self.requests if r.path.endswith("/embed")]

    def handle(self, method: str, raw_path: str, headers: Dict[str, str], raw: bytes) -> Response:
        """Serve one request: returns (status, extra headers, JSON body)."""
        request, failure = self._record_raw(method, raw_path, headers, raw)
        if failure is not None:
            return failure.status, failure.headers, failure.body
        if method != "POST" or request.path not in ("/v1/embed", "/v2/embed"):
            return 404, {}, {"message": f"no route for {method} {request.path}"}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {}, {"message": "invalid api token"}
        return self._embed(request.path.startswith("/v2"), request.body)

    def _embed(self, v2: bool, body: Any) -> Response:
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

