"""Cohere's hosted embedding models, through the official ``cohere`` SDK.

Documents are embedded with ``input_type="search_document"`` and query texts (through
``embed_query``) with ``"search_query"``, as Cohere's v3 and newer models require (with
``embedding_types=["float"]``); the v2-era models get neither, as in their day. Texts go
in batches of 96, Cohere's limit per request, in order. The SDK's own retries are off:
:func:`call_with_retries` retries 429 (honouring ``Retry-After``) and 5xx, and reports
failures as :class:`EmbeddingError`.

A stored config may carry only ``model_name``, ``api_base``, ``api_key_env_var`` and
``timeout`` (``CohereEmbeddingFunction.CONFIG_OPTIONS``); any other key is refused.
"""

from __future__ import annotations

import os

from typing import Any, Dict, List, Optional

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
from vectordb.embedding_functions.options import Spec, allowed_config
from vectordb.errors import EmbeddingError, MissingDependencyError

PROVIDER = "cohere"
MAX_BATCH = 96
DEFAULT_ENV_VARS = ("CO_API_KEY", "COHERE_API_KEY")
MODELS_WITHOUT_INPUT_TYPE = frozenset(
    {
        "embed-english-v2.0",
        "embed-english-light-v2.0",
        "embed-multilingual-v2.0",
        "large",
        "small",
        "multilingual-22-12",
    }
)


@register_embedding_function
class CohereEmbeddingFunction:
    """Embeds texts with a Cohere model, e.g. ``embed-english-v3.0`` or ``embed-multilingual-v3.0``.

    Args:
        api_key: the key; when None it is read from ``api_key_env_var``, else from
            ``CO_API_KEY`` or ``COHERE_API_KEY``. It is never persisted.
        model_name: the Cohere model id.
        api_base: root URL of a proxy or compatible server, without ``/v1``.
        api_key_env_var: name of the environment variable holding the key; this name
            (not the key) is what the collection persists.
        timeout: seconds to wait for one HTTP request.
        retry_policy: how many attempts and how long to back off (not persisted).

    Raises:
        MissingDependencyError: the ``cohere`` package is not installed.
        InvalidArgumentError: no API key was found.
    """

    max_batch_size = MAX_BATCH
    """Inputs per request; callers that chunk work use multiples of it."""

    CONFIG_OPTIONS: Spec = ENDPOINT_OPTIONS
    """What a stored config may hold; :meth:`build_from_config` refuses anything else."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        model_name: str = "embed-english-v3.0",
        api_base: Optional[str] = None,
        api_key_env_var: Optional[str] = None,
        timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        self.model_name = check_model_name(model_name, PROVIDER)
        self.api_base = api_base.rstrip("/") if api_base else None
        self.api_key_env_var = api_key_env_var
        self.timeout = float(timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        cohere = _import_cohere()
        key = find_api_key(api_key, api_key_env_var, DEFAULT_ENV_VARS, PROVIDER)
        options: Dict[str, Any] = {"timeout": self.timeout, "max_retries": 0}
        # The SDK reads $CO_API_URL once, when ``cohere`` is first imported; read it here too, so
        # that it counts whenever it was set (it is never stored in the persisted config).
        base_url = self.api_base or os.environ.get("CO_API_URL")
        if base_url:
            options["base_url"] = base_url
        self._client = cohere.Client(api_key=key, client_name="vectordb", **options)
        self._api_error = cohere.core.ApiError

    @staticmethod
    def name() -> str:
        """The stable name persisted with a collection."""
        return "cohere"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets, as in Chroma 1.x: cosine
        (unless the collection's metadata or configuration names another)."""
        return "cosine"

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents (``input_type="search_document"`` for models that take one)."""
        return self._embed(input, "search_document")

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed query texts (``input_type="search_query"`` for models that take one)."""
        return self._embed(input, "search_query")

    def get_config(self) -> Dict[str, Any]:
        """JSON-safe settings to rebuild this function; holds the key's variable name, never the key."""
        return endpoint_config(self)

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "CohereEmbeddingFunction":
        """Rebuild from :meth:`get_config`; the key is read from the environment again.

        Raises:
            RefusedConfigError: the config holds a key outside :attr:`CONFIG_OPTIONS`.
        """
        return cls(**endpoint_settings(allowed_config(cls, config), "embed-english-v3.0"))

    def _embed(self, texts: Documents, input_type: str) -> Embeddings:
        texts = list(texts)
        kwargs: Dict[str, Any] = {"model": self.model_name, "batching": False}
        if self.model_name not in MODELS_WITHOUT_INPUT_TYPE:
            kwargs.update(input_type=input_type, embedding_types=["float"])
        return embed_in_batches(
            texts,
            MAX_BATCH,
            lambda batch: _float_vectors(self._client.embed(texts=batch, **kwargs)),
            provider=PROVIDER,
            classify=self._classify,
            policy=self.retry_policy,
        )

    def _classify(self, exc: BaseException) -> Optional[Failure]:
        """Read a ``cohere`` ApiError or a transport error into a :class:`Failure`."""
        if isinstance(exc, self._api_error):
            headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
            return Failure(exc.status_code, _body_message(exc.body), parse_retry_after(headers.get("retry-after")))
        import httpx

        if isinstance(exc, httpx.TransportError):
            return transport_failure(exc)
        return None


def _float_vectors(response: Any) -> List[List[float]]:
    """The float vectors of either response shape: a list, or ``{"float": [...]}`` by type."""
    embeddings = response.embeddings
    if isinstance(embeddings, list):
        return [list(v) for v in embeddings]
    floats = getattr(embeddings, "float_", None)
    if floats is None:
        raise EmbeddingError("cohere returned no float embeddings", provider=PROVIDER)
    return [list(v) for v in floats]


def _body_message(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body) if body not in (None, "") else "no message"


def _import_cohere() -> Any:
    try:
        import cohere
        import cohere.core
    except ImportError:
        raise MissingDependencyError("cohere", "cohere", "CohereEmbeddingFunction") from None
    return cohere
