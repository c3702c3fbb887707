"""OpenAI and Azure OpenAI embeddings through the official ``openai`` SDK.

The SDK is imported when a function is built, never when vectordb is imported. Its
own retries are turned off: :func:`~vectordb.embedding_functions._hosted.call_with_retries`
retries 429, 5xx, timeouts and connection errors under vectordb's one policy.
Inputs go out in batches of at most 2048 (OpenAI's per-request limit) and come back
in input order.

A stored config may carry only the settings :meth:`OpenAIEmbeddingFunction.get_config`
writes (``CONFIG_OPTIONS``): plain strings and numbers, never the key, never SDK objects
(``http_client``, ``default_headers`` and custom client classes are not constructor
arguments at all). Any other key is refused. See :mod:`._hosted` about ``api_base``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Union

from vectordb.embedding_functions._hosted import (
    ENDPOINT_OPTIONS,
    RETRY_POLICY_OPTIONS,
    Failure,
    RetryPolicy,
    batched,
    call_with_retries,
    parse_retry_after,
    find_api_key,
)
from vectordb.embedding_functions.base import Documents, Embeddings, register_embedding_function
from vectordb.embedding_functions.options import Spec, allowed_config, is_int, is_str, one_of, optional
from vectordb.errors import EmbeddingError, InvalidArgumentError, MissingDependencyError

MAX_BATCH = 2048
"""OpenAI rejects requests with more inputs than this."""

PROVIDER = "OpenAI"
_OPENAI_ENV = ("OPENAI_API_KEY",)
_AZURE_ENV = ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY")


@register_embedding_function
class OpenAIEmbeddingFunction:
    """Embeds texts with OpenAI's embeddings API, or with an Azure OpenAI deployment.

    Args:
        api_key: the key; when None it is read from ``api_key_env_var``, else from
            ``OPENAI_API_KEY`` (Azure: ``AZURE_OPENAI_API_KEY``, then ``OPENAI_API_KEY``).
            The key itself is never part of :meth:`get_config`.
        model_name: the embedding model, e.g. ``"text-embedding-3-small"``.
        organization_id: sent as the ``OpenAI-Organization`` header.
        api_base: base URL of OpenAI (``.../v1``), a proxy or a compatible server;
            for Azure the resource endpoint, e.g. ``https://NAME.openai.azure.com``.
        api_type: None (OpenAI) or ``"azure"``.
        api_version: the Azure API version (required with ``api_type="azure"``).
        deployment_id: the Azure deployment; defaults to ``model_name``.
        dimensions: shorten the vectors (text-embedding-3 models); sent only when given.
        api_key_env_var: the environment variable holding the key; persisted instead of it.
        timeout: seconds before one request is abandoned (and retried).
        retry_policy: how often and how long to retry 429, 5xx and network failures.

    Raises:
        MissingDependencyError: the ``openai`` package is not installed.
        InvalidArgumentError: no key was found, or the arguments do not fit together.
    """

    max_batch_size = MAX_BATCH
    """Inputs per request; callers that chunk work use multiples of it."""

    CONFIG_OPTIONS: Spec = {
        **ENDPOINT_OPTIONS,
        "organization_id": optional(is_str),
        "api_type": optional(one_of("openai", "azure")),
        "api_version": optional(is_str),
        "deployment_id": optional(is_str),
        "dimensions": optional(is_int),
        "retry_policy": RETRY_POLICY_OPTIONS,
    }
    """What a stored config may hold; :meth:`build_from_config` refuses anything else."""

    def __init__(
        self,
        api_key: Optional[str] = None,
        model_name: str = "text-embedding-ada-002",
        organization_id: Optional[str] = None,
        api_base: Optional[str] = None,
        api_type: Optional[str] = None,
        api_version: Optional[str] = None,
        deployment_id: Optional[str] = None,
        dimensions: Optional[int] = None,
        api_key_env_var: Optional[str] = None,
        timeout: float = 60.0,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        if api_type not in (None, "openai", "azure"):
            raise InvalidArgumentError(f"OpenAIEmbeddingFunction: api_type must be None or 'azure', got {api_type!r}")
        azure = api_type == "azure"
        if azure and not (api_base and api_version):
            raise InvalidArgumentError(
                "OpenAIEmbeddingFunction: api_type='azure' needs api_base (the resource endpoint) and api_version"
            )
        if dimensions is not None and (isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1):
            raise InvalidArgumentError(f"OpenAIEmbeddingFunction: dimensions must be a positive int, got {dimensions!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise InvalidArgumentError(f"OpenAIEmbeddingFunction: timeout must be a positive number, got {timeout!r}")
        self.model_name = model_name
        self.organization_id = organization_id
        self.api_base = api_base
        self.api_type = api_type
        self.api_version = api_version
        self.deployment_id = deployment_id
        self.dimensions = dimensions
        self.timeout = float(timeout)
        self.retry_policy = retry_policy or RetryPolicy()
        defaults = _AZURE_ENV if azure else _OPENAI_ENV
        self.api_key_env_var = api_key_env_var or defaults[0]
        env_names = list(defaults) if self.api_key_env_var == defaults[0] else [self.api_key_env_var]
        key = find_api_key(api_key, None, env_names, PROVIDER)
        self._openai = _import_openai()
        self._client = self._make_client(key)

    def _make_client(self, key: str) -> Any:
        common: Dict[str, Any] = {
            "api_key": key,
            "organization": self.organization_id,
            "timeout": self.timeout,
            "max_retries": 0,
        }
        if self.api_type == "azure":
            return self._openai.AzureOpenAI(
                azure_endpoint=self.api_base,
                api_version=self.api_version,
                azure_deployment=self.deployment_id,
                **common,
            )
        return self._openai.OpenAI(base_url=self.api_base, **common)

    @staticmethod
    def name() -> str:
        """The stable name persisted with a collection."""
        return "openai"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets, as in Chroma 1.x: cosine
        (unless the collection's metadata or configuration names another)."""
        return "cosine"

    def __call__(self, input: Union[Documents, str]) -> Embeddings:
        """One vector per text, in input order.

        Raises:
            InvalidArgumentError: a text is not a string or is empty (OpenAI rejects those).
            EmbeddingError: the service failed after retries, or answered malformed data.
        """
        texts = _check_texts(input)
        vectors: Embeddings = []
        for batch in batched(texts, MAX_BATCH):
            vectors.extend(self._embed_batch(batch))
        return vectors

    def _embed_batch(self, batch: List[str]) -> Embeddings:
        params: Dict[str, Any] = {"model": self.model_name, "input": batch, "encoding_format": "float"}
        if self.dimensions is not None:
            params["dimensions"] = self.dimensions
        response = call_with_retries(
            lambda: self._client.embeddings.create(**params),
            provider=PROVIDER,
            classify=self._classify,
            policy=self.retry_policy,
        )
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(batch))):
            raise EmbeddingError(
                f"{PROVIDER} returned {len(data)} embeddings for {len(batch)} inputs", provider=PROVIDER
            )
        return [[float(x) for x in item.embedding] for item in data]

    def _classify(self, exc: BaseException) -> Optional[Failure]:
        """Read an SDK exception as a :class:`Failure`; None for anything else."""
        openai = self._openai
        if isinstance(exc, openai.APIStatusError):
            headers = exc.response.headers
            retry_after = parse_retry_after(headers.get("retry-after"))
            retry_ms = headers.get("retry-after-ms")
            if retry_ms:
                try:
                    retry_after = max(0.0, float(retry_ms) / 1000.0)
                except ValueError:
                    pass
            return Failure(exc.status_code, _error_message(exc), retry_after)
        if isinstance(exc, openai.APITimeoutError):
            return Failure(None, f"request timed out after {self.timeout:g} s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            return Failure(None, f"{exc.message}" + (f" ({cause})" if cause else ""))
        return None

    def get_config(self) -> Dict[str, Any]:
        """JSON-safe settings to rebuild this function; holds the key's variable, never the key."""
        return {
            "api_key_env_var": self.api_key_env_var,
            "model_name": self.model_name,
            "organization_id": self.organization_id,
            "api_base": self.api_base,
            "api_type": self.api_type,
            "api_version": self.api_version,
            "deployment_id": self.deployment_id,
            "dimensions": self.dimensions,
            "timeout": self.timeout,
            "retry_policy": dataclasses.asdict(self.retry_policy),
        }

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "OpenAIEmbeddingFunction":
        """Rebuild from :meth:`get_config`; the key is read from ``api_key_env_var``.

        Raises:
            RefusedConfigError: the config holds a key outside :attr:`CONFIG_OPTIONS`.
        """
        settings = allowed_config(cls, config)
        policy = settings.pop("retry_policy", None)
        known = {f.name for f in dataclasses.fields(RetryPolicy)}
        if policy is not None:
            settings["retry_policy"] = RetryPolicy(**{k: v for k, v in policy.items() if k in known})
        return cls(**settings)

    def __repr__(self) -> str:
        where = f", api_base={self.api_base!r}" if self.api_base else ""
        return f"OpenAIEmbeddingFunction(model_name={self.model_name!r}{where})"


def _import_openai() -> Any:
    try:
        import openai
    except ImportError:
        raise MissingDependencyError("openai", "openai", "OpenAIEmbeddingFunction") from None
    return openai


def _check_texts(input: Union[Sequence[str], str]) -> List[str]:
    texts = [input] if isinstance(input, str) else list(input)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidArgumentError(f"OpenAIEmbeddingFunction: input {i} is a {type(text).__name__}, not a str")
        if not text:
            raise InvalidArgumentError(
                f"OpenAIEmbeddingFunction: input {i} is an empty string, which OpenAI rejects"
            )
    return texts


def _error_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(exc.message)
