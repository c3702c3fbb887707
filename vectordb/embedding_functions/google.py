"""Google's hosted embedding models, through the ``google-generativeai`` SDK over REST.

:class:`GoogleGenerativeAiEmbeddingFunction` calls ``batchEmbedContents`` (Gemini
embedding models such as ``models/text-embedding-004``) with a task type.
:class:`GooglePalmEmbeddingFunction` keeps the PaLM-era name and calls the PaLM
``batchEmbedText`` method (``models/embedding-gecko-001``): ``google-generativeai``
0.8 no longer has ``generate_embeddings``, so it goes through the ``TextServiceClient``
of ``google-ai-generativelanguage``, the package the SDK itself is built on.

Each instance builds its own client object, so two functions with different keys or
endpoints never share ``genai.configure``'s global state. The SDK's retries are off
(``retry=None``, and google-auth's re-send of a 401 disabled): :func:`call_with_retries`
retries 429 (honouring ``Retry-After`` or Google's ``RetryInfo``) and 5xx. At most 100
texts go in one request.

A stored config may carry only ``model_name``, ``api_base``, ``api_key_env_var``,
``timeout`` and (Gemini) ``task_type`` (each class's ``CONFIG_OPTIONS``); any other key
is refused.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from vectordb.embedding_functions._hosted import (
    ENDPOINT_OPTIONS,
    Failure,
    RetryPolicy,
    check_model_name,
    embed_in_batches,
    endpoint_config,
    endpoint_settings,
    find_api_key,
    parse_retry_after,
    transport_failure,
)
from vectordb.embedding_functions.base import Documents, Embeddings, register_embedding_function
from vectordb.embedding_functions.options import Spec, allowed_config, is_str
from vectordb.errors import InvalidArgumentError, MissingDependencyError

PROVIDER = "google"
MAX_BATCH = 100
DEFAULT_ENV_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")
TASK_TYPES = (
    "RETRIEVAL_QUERY",
    "RETRIEVAL_DOCUMENT",
    "SEMANTIC_SIMILARITY",
    "CLASSIFICATION",
    "CLUSTERING",
    "QUESTION_ANSWERING",
    "FACT_VERIFICATION",
)


class _GoogleEmbeddingBase:
    """Key lookup, client construction and error reading shared by both Google functions."""

    max_batch_size = MAX_BATCH
    """Inputs per request; callers that chunk work use multiples of it."""

    _purpose = "Google embedding functions"

    def __init__(
        self,
        api_key: Optional[str],
        model_name: str,
        api_base: Optional[str],
        api_key_env_var: Optional[str],
        timeout: float,
        retry_policy: Optional[RetryPolicy],
    ) -> None:
        check_model_name(model_name, PROVIDER)
        self.model_name = model_name if model_name.startswith(("models/", "tunedModels/")) else f"models/{model_name}"
        self.api_base = api_base.rstrip("/") if api_base else None
        self.api_key_env_var = api_key_env_var
        self.timeout = float(timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        self._glm, self._exceptions, client_options = _import_google(self._purpose)
        key = find_api_key(api_key, api_key_env_var, DEFAULT_ENV_VARS, PROVIDER)
        options = {"api_key": key}
        if self.api_base:
            options["api_endpoint"] = self.api_base
        self._client_options = client_options.ClientOptions(**options)

    def _in_batches(self, texts: Documents, embed_batch: Callable[[List[str]], List[List[float]]]) -> Embeddings:
        return embed_in_batches(
            list(texts), MAX_BATCH, embed_batch, provider=PROVIDER, classify=self._classify, policy=self.retry_policy
        )

    def _classify(self, exc: BaseException) -> Optional[Failure]:
        """Read a ``google.api_core`` error or a transport error into a :class:`Failure`."""
        if isinstance(exc, self._exceptions.GoogleAPICallError):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None) or {}
            wait = parse_retry_after(headers.get("Retry-After"))
            if wait is None:
                wait = _retry_info_delay(exc.details)
            return Failure(exc.code, _server_message(exc), wait)
        import requests

        if isinstance(exc, requests.exceptions.RequestException):
            return transport_failure(exc)
        return None


@register_embedding_function
class GoogleGenerativeAiEmbeddingFunction(_GoogleEmbeddingBase):
    """Embeds texts with a Gemini embedding model through ``google.generativeai``.

    Args:
        api_key: the key; when None it is read from ``api_key_env_var``, else from
            ``GOOGLE_API_KEY`` or ``GEMINI_API_KEY``. It is never persisted.
        model_name: e.g. ``models/text-embedding-004`` (``models/`` is added if missing).
        task_type: task type for documents, e.g. ``RETRIEVAL_DOCUMENT`` (the default) or
            ``SEMANTIC_SIMILARITY``. ``embed_query`` uses ``RETRIEVAL_QUERY`` when this is
            ``RETRIEVAL_DOCUMENT``, and the same task type otherwise.
        api_base: the REST endpoint (e.g. ``http://127.0.0.1:8080`` or a gateway host).
        api_key_env_var: name of the environment variable holding the key (persisted).
        timeout: seconds to wait for one HTTP request.
        retry_policy: how many attempts and how long to back off (not persisted).

    Raises:
        MissingDependencyError: ``google-generativeai`` is not installed.
        InvalidArgumentError: no API key was found, or the task type is unknown.
    """

    _purpose = "GoogleGenerativeAiEmbeddingFunction"

    CONFIG_OPTIONS: Spec = {**ENDPOINT_OPTIONS, "task_type": is_str}
    """What a stored config may hold; :meth:`build_from_config` refuses anything else."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        model_name: str = "models/text-embedding-004",
        task_type: str = "RETRIEVAL_DOCUMENT",
        api_base: Optional[str] = None,
        api_key_env_var: Optional[str] = None,
        timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        if not isinstance(task_type, str) or task_type.upper() not in TASK_TYPES:
            raise InvalidArgumentError(f"google: task_type must be one of {', '.join(TASK_TYPES)}; got {task_type!r}")
        self.task_type = task_type.upper()
        super().__init__(api_key, model_name, api_base, api_key_env_var, timeout, retry_policy)
        self._genai = _import_genai(self._purpose)
        self._client = _no_auth_refresh(
            self._glm.GenerativeServiceClient(transport="rest", client_options=self._client_options)
        )

    @staticmethod
    def name() -> str:
        """The stable name persisted with a collection."""
        return "google_generative_ai"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets, as in Chroma 1.x: cosine
        (unless the collection's metadata or configuration names another)."""
        return "cosine"

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents with ``task_type``."""
        return self._in_batches(input, lambda batch: self._embed(batch, self.task_type))

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts (``RETRIEVAL_QUERY`` for a retrieval setup)."""
        task = "RETRIEVAL_QUERY" if self.task_type == "RETRIEVAL_DOCUMENT" else self.task_type
        return self._in_batches(input, lambda batch: self._embed(batch, task))

    def get_config(self) -> Dict[str, Any]:
        """JSON-safe settings to rebuild this function; holds the key's variable name, never the key."""
        return {**endpoint_config(self), "task_type": self.task_type}

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "GoogleGenerativeAiEmbeddingFunction":
        """Rebuild from :meth:`get_config`; the key is read from the environment again.

        Raises:
            RefusedConfigError: the config holds a key outside :attr:`CONFIG_OPTIONS`.
        """
        config = allowed_config(cls, config)
        return cls(
            task_type=config.get("task_type", "RETRIEVAL_DOCUMENT"),
            **endpoint_settings(config, "models/text-embedding-004"),
        )

    def _embed(self, batch: List[str], task_type: str) -> List[List[float]]:
        result = self._genai.embed_content(
            model=self.model_name,
            content=batch,
            task_type=task_type,
            client=self._client,
            request_options={"retry": None, "timeout": self.timeout},
        )
        return [list(v) for v in result["embedding"]]


@register_embedding_function
class GooglePalmEmbeddingFunction(_GoogleEmbeddingBase):
    """Embeds texts with a PaLM embedding model (``models/embedding-gecko-001``).

    Same arguments as :class:`GoogleGenerativeAiEmbeddingFunction` less ``task_type``
    (PaLM's ``batchEmbedText`` has none). For Gemini models use that class instead.
    """

    _purpose = "GooglePalmEmbeddingFunction"

    CONFIG_OPTIONS: Spec = ENDPOINT_OPTIONS
    """What a stored config may hold; :meth:`build_from_config` refuses anything else."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        model_name: str = "models/embedding-gecko-001",
        api_base: Optional[str] = None,
        api_key_env_var: Optional[str] = None,
        timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        super().__init__(api_key, model_name, api_base, api_key_env_var, timeout, retry_policy)
        self._client = _no_auth_refresh(
            self._glm.TextServiceClient(transport="rest", client_options=self._client_options)
        )

    @staticmethod
    def name() -> str:
        """The stable name persisted with a collection."""
        return "google_palm"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets, as in Chroma 1.x: cosine
        (unless the collection's metadata or configuration names another)."""
        return "cosine"

    def __call__(self, input: Documents) -> Embeddings:
        """Embed texts with ``batchEmbedText``."""
        return self._in_batches(input, self._embed)

    def get_config(self) -> Dict[str, Any]:
        """JSON-safe settings to rebuild this function; holds the key's variable name, never the key."""
        return endpoint_config(self)

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "GooglePalmEmbeddingFunction":
        """Rebuild from :meth:`get_config`; the key is read from the environment again.

        Raises:
            RefusedConfigError: the config holds a key outside :attr:`CONFIG_OPTIONS`.
        """
        return cls(**endpoint_settings(allowed_config(cls, config), "models/embedding-gecko-001"))

    def _embed(self, batch: List[str]) -> List[List[float]]:
        request = self._glm.BatchEmbedTextRequest(model=self.model_name, texts=batch)
        response = self._client.batch_embed_text(request, retry=None, timeout=self.timeout)
        return [list(e.value) for e in response.embeddings]


def _no_auth_refresh(client: Any) -> Any:
    """Make a 401 final: google-auth re-sends it up to twice to refresh credentials, which
    an API key cannot be, so those re-sends would only hide the error and bypass our retries."""
    session = getattr(client.transport, "_session", None)
    if session is not None and hasattr(session, "_max_refresh_attempts"):
        session._max_refresh_attempts = 0
    return client


def _retry_info_delay(details: Any) -> Optional[float]:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "1.5s"``), if any."""
    for detail in details or ():
        if isinstance(detail, dict) and detail.get("@type", "").endswith("google.rpc.RetryInfo"):
            try:
                return max(0.0, float(str(detail.get("retryDelay", "")).rstrip("s")))
            except ValueError:
                return None
    return None


def _server_message(exc: Any) -> str:
    """The server's own message from Google's error JSON, else the SDK's text."""
    response = getattr(exc, "response", None)
    try:
        message = response.json()["error"]["message"]
    except Exception:  # no response, not JSON, or not Google's error shape
        message = None
    return str(message) if message else str(exc.message)


def _import_google(purpose: str) -> Any:
    try:
        import google.ai.generativelanguage_v1beta as glm
        import google.api_core.client_options as client_options
        import google.api_core.exceptions as exceptions
    except ImportError:
        raise MissingDependencyError("google-generativeai", "google", purpose) from None
    return glm, exceptions, client_options


def _import_genai(purpose: str) -> Any:
    try:
        import google.generativeai as genai
    except ImportError:
        raise MissingDependencyError("google-generativeai", "google", purpose) from None
    return genai
