"""A local server that speaks OpenAI's embeddings wire protocol, for tests.

It serves ``POST /v1/embeddings`` (``Authorization: Bearer <key>``, optional
``OpenAI-Organization``) and Azure OpenAI's
``POST /openai/deployments/{deployment}/embeddings?api-version=...`` (``api-key``
header), on 127.0.0.1 at a free port. It answers the way the real services do:
OpenAI's error JSON ``{"error": {"message", "type", "param", "code"}}``, 401 for a
wrong key, 400 for more than 2048 inputs, an empty string or ``dimensions`` on a
model without them, and ``float`` or ``base64`` (little-endian float32) vectors.

Vectors are derived from a hash of the text, so a test can compute the vector a
text must get. Every request is recorded; the next N requests can be scripted to
fail (429 with ``Retry-After``, 500, 503), and responses can be delayed.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import numpy as np

from providers._loopback import LoopbackServer, Response, json_body

MAX_INPUTS = 2048
MODEL_DIMENSIONS = {
    "text-embedding-ada-002": 1536,
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
}
MATRYOSHKA_MODELS = {"text-embedding-3-small", "text-embedding-3-large"}
_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/embeddings$")


def expected_vector(text: str, model: str, dimensions: Optional[int] = None) -> np.ndarray:
    """The unit vector the server returns for ``text`` (shortened like text-embedding-3)."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(MODEL_DIMENSIONS[model])
    if dimensions is not None:
        vec = vec[:dimensions]
    return (vec / np.linalg.norm(vec)).astype(np.float32)


@dataclass
class RecordedRequest:
    """One request as the server saw it."""

    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    body: Any
    status: int = 0
    received_at: float = field(default_factory=time.monotonic)


class OpenAIServer(LoopbackServer):
    """The server; use as a context manager or call :meth:`start` and :meth:`stop`."""

    methods = ("POST",)

    def __init__(
        self,
        api_key: str = "sk-test-key",
        azure_api_key: str = "azure-test-key",
        azure_deployments: Tuple[str, ...] = ("my-embeddings",),
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.azure_api_key = azure_api_key
        self.azure_deployments = set(azure_deployments)
        self.requests: List[RecordedRequest] = []
        self.delay = 0.0
        self.shuffle = False

    def fail_next(
        self, count: int, status: int, *, retry_after: Optional[str] = None, message: Optional[str] = None
    ) -> None:
        """Make the next ``count`` requests fail with ``status`` (and ``Retry-After``)."""
        text = message or _DEFAULT_FAILURE_MESSAGES.get(status, "The server had an error.")
        kind = "requests" if status == 429 else "server_error"
        self._script(count, status, _error(text, kind, None, None), retry_after)

    def _serve(self, method: str, raw_path: str, headers: Dict[str, str], raw: bytes) -> Response:
        parts = urlsplit(raw_path)
        request = RecordedRequest(
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query).items()},
            headers=headers,
            body=json_body(raw, keep_invalid=False),
        )
        self._record(request)
        status, extra, payload = self.handle(request)
        request.status = status
        return status, extra, payload

    def handle(self, request: RecordedRequest) -> Response:
        """Status, extra headers and JSON body for one request."""
        if self.delay:
            time.sleep(self.delay)
        azure = _AZURE_PATH.match(request.path)
        if request.path == "/v1/embeddings":
            denied = self._check_openai_auth(request.headers)
            model = request.body.get("model") if isinstance(request.body, dict) else None
        elif azure:
            if "api-version" not in request.query:
                return 404, {}, {"error": {"code": "404", "message": "Resource not found"}}
            if request.headers.get("api-key") != self.azure_api_key:
                return 401, {}, {"error": {"code": "401", "message": _AZURE_DENIED}}
            if azure.group(1) not in self.azure_deployments:
                return 404, {}, {"error": {"code": "DeploymentNotFound", "message": _azure_missing(azure.group(1))}}
            denied = None
            model = "text-embedding-ada-002"
        else:
            return 404, {}, _error(f"Invalid URL (POST {request.path})", "invalid_request_error", None, None)
        if denied is not None:
            return 401, {}, denied
        failure = self._next_failure()
        if failure is not None:
            return failure.status, failure.headers, failure.body
        return self._embed(request.body, model)

    def _check_openai_auth(self, headers: Dict[str, str]) -> Optional[Dict[str, Any]]:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[len("Bearer "):].strip():
            return _error(_NO_KEY, "invalid_request_error", None, None)
        key = auth[len("Bearer "):].strip()
        if key != self.api_key:
            shown = key[:3] + "*" * 10 + key[-4:]
            return _error(
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                "invalid_api_key",
            )
        return None

    def _embed(self, body: Any, model: Optional[str]) -> Response:
        if not isinstance(body, dict) or "input" not in body:
            return 400, {}, _error("you must provide a model parameter", "invalid_request_error", None, None)
        if model not in MODEL_DIMENSIONS:
            message = f"The model `{model}` does not exist or you do not have access to it."
            return 404, {}, _error(message, "invalid_request_error", None, "model_not_found")
        texts = body["input"]
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
            return 400, {}, _error(_BAD_INPUT, "invalid_request_error", None, None)
        if len(texts) > MAX_INPUTS:
            message = (
                "Invalid 'input': array too long. Expected an array with maximum length "
                f"{MAX_INPUTS}, but got an array with length {len(texts)} instead."
            )
            return 400, {}, _error(message, "invalid_request_error", "input", "array_above_max_length")
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if model not in MATRYOSHKA_MODELS:
                message = "This model does not support specifying dimensions."
                return 400, {}, _error(message, "invalid_request_error", None, None)
            if not isinstance(dimensions, int) or not 1 <= dimensions <= MODEL_DIMENSIONS[model]:
                message = f"Invalid value for 'dimensions' = {dimensions}. Must be between 1 and {MODEL_DIMENSIONS[model]}."
                return 400, {}, _error(message, "invalid_request_error", "dimensions", None)
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            message = f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'."
            return 400, {}, _error(message, "invalid_request_error", "encoding_format", "invalid_value")
        data = []
        for index, text in enumerate(texts):
            vec = expected_vector(text, model, dimensions)
            encoded: Any = (
                base64.b64encode(vec.astype("<f4").tobytes()).decode() if encoding == "base64" else vec.tolist()
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        if self.shuffle:
            random.Random(len(texts)).shuffle(data)
        tokens = sum(len(t.split()) for t in texts)
        return 200, {}, {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _error(message: str, kind: str, param: Optional[str], code: Optional[str]) -> Dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _azure_missing(deployment: str) -> str:
    return (
        f"The API deployment for this resource does not exist. If you created the deployment "
        f"within the last 5 minutes, please wait a moment and try again. ({deployment})"
    )


_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
_AZURE_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
    "valid key for an active subscription and use a correct regional API endpoint for your resource."
)
_BAD_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
_DEFAULT_FAILURE_MESSAGES = {
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}

