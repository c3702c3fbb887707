"""What every hosted-API embedding function shares: keys, batches and retries.

Each provider module wraps its real SDK (with the SDK's own retries turned off) and
hands :func:`call_with_retries` a ``classify`` function that reads an SDK exception
into a :class:`Failure`. Retries follow one policy for every provider: 429 and 5xx
(and connection errors) are retried with exponential backoff and full jitter,
honouring ``Retry-After``, bounded both in attempts and in total time.

A hosted function's stored config (its ``CONFIG_OPTIONS``, built on
:data:`ENDPOINT_OPTIONS`) holds plain JSON settings only: the model, ``api_base``, the
*name* of the key's environment variable, ``timeout`` and provider fields such as
OpenAI's ``api_type``/``api_version``/``deployment_id``/``dimensions``. None of the
constructors takes an SDK object (``http_client``, a client class) or headers, so no
config can reach them; a config holding any other key (``api_key``, ``default_headers``,
``http_client``, ...) is refused. A config does choose where requests go (``api_base``)
and which environment variable supplies the key: a hostile config can send that key to
a host of its choosing. That is not code execution, and it is what a proxy needs, so it
is allowed; pass the function yourself when the store or server is not yours.
"""

from __future__ import annotations

import email.utils
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, TypeVar

from vectordb.embedding_functions.options import Spec, is_int, is_number, is_str, optional
from vectordb.errors import EmbeddingError, InvalidArgumentError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard a hosted function tries before it gives up."""

    max_attempts: int = 6
    initial_delay: float = 0.5
    max_delay: float = 20.0
    max_elapsed: float = 60.0


@dataclass(frozen=True)
class Failure:
    """A provider error as the retry loop needs to see it."""

    status: Optional[int]
    message: str
    retry_after: Optional[float] = None

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def call_with_retries(
    call: Callable[[], T],
    *,
    provider: str,
    classify: Callable[[BaseException], Optional[Failure]],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``, retrying retryable failures; raise :class:`EmbeddingError` at the end.

    ``classify`` returns None for exceptions that are not provider failures; those
    propagate unchanged.
    """
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            delay = min(policy.max_delay, policy.initial_delay * 2 ** (attempt - 1)) * random.random()
            if failure.retry_after is not None:
                delay = max(delay, failure.retry_after)
            out_of_time = time.monotonic() - started + delay > policy.max_elapsed
            if not failure.retryable or attempt >= policy.max_attempts or out_of_time:
                status = f"HTTP {failure.status}" if failure.status is not None else "no response"
                tries = f" after {attempt} attempt{'s' if attempt > 1 else ''}"
                raise EmbeddingError(
                    f"{provider} embedding request failed ({status}){tries}: {failure.message}",
                    provider=provider,
                    status=failure.status,
                ) from exc
            sleep(delay)


def embed_in_batches(
    texts: Sequence[str],
    size: int,
    embed_batch: Callable[[List[str]], List[List[float]]],
    *,
    provider: str,
    classify: Callable[[BaseException], Optional[Failure]],
    policy: RetryPolicy,
) -> List[List[float]]:
    """Embed ``texts`` ``size`` at a time, each batch under :func:`call_with_retries`, in order.

    Raises :class:`EmbeddingError` when a batch comes back with a different number of vectors.
    """
    vectors: List[List[float]] = []
    for batch in batched(texts, size):
        got = call_with_retries(
            lambda batch=batch: embed_batch(batch), provider=provider, classify=classify, policy=policy
        )
        if len(got) != len(batch):
            raise EmbeddingError(
                f"{provider} returned {len(got)} embeddings for {len(batch)} texts", provider=provider
            )
        vectors.extend(got)
    return vectors


def transport_failure(exc: BaseException) -> Failure:
    """A :class:`Failure` with no response, for a connection or transport error."""
    return Failure(None, f"{type(exc).__name__}: {exc}")


def batched(items: Sequence[T], size: int) -> Iterator[List[T]]:
    """Consecutive slices of at most ``size`` items, in order."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def resolve_api_key(
    api_key: Optional[str], api_key_env_var: Optional[str], default_env_vars: Sequence[str], provider: str
) -> Optional[str]:
    """The key from the argument, else the named variable, else the provider's usual ones."""
    if api_key:
        return api_key
    names = [api_key_env_var] if api_key_env_var else list(default_env_vars)
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def find_api_key(
    api_key: Optional[str], api_key_env_var: Optional[str], default_env_vars: Sequence[str], provider: str
) -> str:
    """:func:`resolve_api_key`, raising through :func:`require_api_key` when no key is found."""
    env_names = [api_key_env_var] if api_key_env_var else list(default_env_vars)
    return require_api_key(resolve_api_key(api_key, api_key_env_var, default_env_vars, provider), provider, env_names)


def require_api_key(key: Optional[str], provider: str, env_names: Sequence[str]) -> str:
    """Raise a clear error naming where a key is looked for when none was found."""
    if not key:
        raise InvalidArgumentError(
            f"{provider}: no API key: pass api_key=... or set {' or '.join(env_names)}"
        )
    return key


def check_model_name(model_name: Any, provider: str) -> str:
    """``model_name`` if it is a non-empty string; otherwise an :class:`InvalidArgumentError`."""
    if not isinstance(model_name, str) or not model_name:
        raise InvalidArgumentError(f"{provider}: model_name must be a non-empty string, got {model_name!r}")
    return model_name


RETRY_POLICY_OPTIONS: Spec = {
    "max_attempts": is_int,
    "initial_delay": is_number,
    "max_delay": is_number,
    "max_elapsed": is_number,
}
"""The :class:`RetryPolicy` fields a stored config may hold."""

ENDPOINT_OPTIONS: Spec = {
    "model_name": is_str,
    "api_base": optional(is_str),
    "api_key_env_var": optional(is_str),
    "timeout": is_number,
}
"""What :func:`endpoint_config` stores: the allow-list every hosted function starts from."""


def endpoint_config(fn: Any) -> Dict[str, Any]:
    """The persisted settings shared by the key-and-endpoint functions (never the key)."""
    return {
        "model_name": fn.model_name,
        "api_base": fn.api_base,
        "api_key_env_var": fn.api_key_env_var,
        "timeout": fn.timeout,
    }


def endpoint_settings(config: Dict[str, Any], default_model: str) -> Dict[str, Any]:
    """Constructor arguments rebuilt from :func:`endpoint_config`'s keys, with their defaults."""
    return {
        "model_name": config.get("model_name", default_model),
        "api_base": config.get("api_base"),
        "api_key_env_var": config.get("api_key_env_var"),
        "timeout": config.get("timeout", 60.0),
    }
