"""A local stand-in for Google's Generative Language REST API, for testing the real SDK.

It serves ``POST /v1beta/{model}:batchEmbedContents`` (Gemini embeddings) and
``POST /v1beta/{model}:batchEmbedText`` (the PaLM-era call) as Google documents them:
the key in the ``x-goog-api-key`` header or the ``key`` query parameter, at most 100
requests (or texts) a batch, each request's ``model`` equal to the one in the path, and
``taskType`` given by name or by number (the REST transport sends enums as numbers).
Errors are Google's JSON ``{"error": {"code", "message", "status", "details"}}``; a bad
key is a 400 ``INVALID_ARGUMENT`` as Google answers it. Vectors are seeded by a hash of
the text. Every request is recorded and the next ones can be scripted to fail.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional

from providers._loopback import LoopbackServer, Recorded, Response, ScriptedFailure, fake_vector

__all__ = ["GoogleServer", "Recorded", "ScriptedFailure", "fake_vector", "google_error", "MAX_BATCH", "TASK_TYPES"]

MAX_BATCH = 100
DIMENSIONS = {
    "models/text-embedding-004": 768,
    "models/embedding-001": 768,
    "models/gemini-embedding-001": 3072,
    "models/embedding-gecko-001": 768,
}
CONTENT_MODELS = {"models/text-embedding-004", "models/embedding-001", "models/gemini-embedding-001"}
TEXT_MODELS = {"models/embedding-gecko-001"}
TASK_TYPES = [
    "TASK_TYPE_UNSPECIFIED", "RETRIEVAL_QUERY", "RETRIEVAL_DOCUMENT", "SEMANTIC_SIMILARITY",
    "CLASSIFICATION", "CLUSTERING", "QUESTION_ANSWERING", "FACT_VERIFICATION",
]
STATUS_NAMES = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_ROUTE = re.compile(r"^/v1beta/(models/[^/:]+):(batchEmbedContents|batchEmbedText)$")


def google_error(code: int, message: str, details: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Google's JSON error body."""
    error: Dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


class GoogleServer(LoopbackServer):
    """The embedding endpoints on 127.0.0.1 at a free port; use as a context manager.

    ``url`` is the REST endpoint, as ``api_base`` takes it.
    """

    content_type = "application/json; charset=UTF-8"

    def __init__(self, api_key: str = "test-google-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.requests: List[Recorded] = []

    def fail_next(
        self,
        count: int,
        status: int,
        message: str = "",
        retry_after: Optional[str] = None,
        retry_delay: Optional[str] = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status``.

        ``retry_after`` sets a ``Retry-After`` header; ``retry_delay`` (e.g. ``"0.2s"``)
        adds a ``google.rpc.RetryInfo`` detail, which is how Google itself says when to retry.
        """
        details = (
            [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}]
            if retry_delay is not None
            else None
        )
        body = google_error(status, message or f"scripted failure {status}", details)
        self._script(count, status, body, retry_after)

    def embed_requests(self) -> List[Recorded]:
        """The recorded requests to an embedding endpoint, in arrival order."""
        return [r for r in self.requests if _ROUTE.match(r.path)]

    def handle(self, method: str, raw_path: str, headers: Dict[str, str], raw: bytes) -> Response:
        """Serve one request: returns (status, extra headers, JSON body)."""
        request, failure = self._record_raw(method, raw_path, headers, raw)
        if failure is not None:
            return failure.status, failure.headers, failure.body
        route = _ROUTE.match(request.path)
        if method != "POST" or route is None:
            return 404, {}, google_error(404, f"Method not found: {method} {request.path}")
        body = request.body
        key = headers.get("x-goog-api-key") or (request.query.get("key") or [None])[0]
        if key is None:
            return 403, {}, google_error(403, "Method doesn't allow unregistered callers. Please use API Key.")
        if key != self.api_key:
            reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
            return 400, {}, google_error(400, "API key not valid. Please pass a valid API key.", [reason])
        model, call = route.groups()
        if model not in DIMENSIONS:
            return 404, {}, google_error(404, f"{model} is not found for API version v1beta")
        if not isinstance(body, dict):
            return 400, {}, google_error(400, "Invalid JSON payload received.")
        if call == "batchEmbedText":
            return self._embed_text(model, body)
        return self._embed_contents(model, body)

    def _embed_contents(self, model: str, body: Dict[str, Any]) -> Response:
        if model not in CONTENT_MODELS:
            return 404, {}, google_error(404, f"{model} is not supported for batchEmbedContents")
        requests = body.get("requests")
        if not isinstance(requests, list) or not requests:
            return 400, {}, google_error(400, "* BatchEmbedContentsRequest.requests: contents is not specified")
        if len(requests) > MAX_BATCH:
            return 400, {}, google_error(
                400, f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch"
            )
        vectors = []
        for i, req in enumerate(requests):
            if req.get("model") != model:
                return 400, {}, google_error(
                    400, f"* BatchEmbedContentsRequest.model: requests[{i}].model must be {model}"
                )
            task = req.get("taskType", 0)
            if not (task in TASK_TYPES or (isinstance(task, int) and 0 <= task < len(TASK_TYPES))):
                return 400, {}, google_error(400, f"Invalid value at 'requests[{i}].task_type': {task!r}")
            texts = [p.get("text") for p in (req.get("content") or {}).get("parts", [])]
            if not texts or not all(isinstance(t, str) for t in texts):
                return 400, {}, google_error(400, f"* BatchEmbedContentsRequest.requests[{i}].content: no text")
            vectors.append({"values": fake_vector("".join(texts), DIMENSIONS[model])})
        return 200, {}, {"embeddings": vectors}

    def _embed_text(self, model: str, body: Dict[str, Any]) -> Response:
        if model not in TEXT_MODELS:
            return 404, {}, google_error(404, f"{model} is not supported for batchEmbedText")
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return 400, {}, google_error(400, "* BatchEmbedTextRequest.texts: texts is not specified")
        if len(texts) > MAX_BATCH:
            return 400, {}, google_error(400, f"* BatchEmbedTextRequest.texts: at most {MAX_BATCH} texts per batch")
        return 200, {}, {"embeddings": [{"value": fake_vector(t, DIMENSIONS[model])} for t in texts]}

