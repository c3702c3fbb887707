"""Which embedding function a collection has: comparing, rebuilding and defaulting it.

Every client (``Client``, ``PersistentClient``, ``HttpClient``), the server and the
command line use these, so that a collection's function is treated the same everywhere:

* :func:`same_function` decides whether a function passed to ``get_collection`` is the
  one the collection was created with (settings that do not change the vectors, and
  options a stored config never carries, are left out of the comparison);
  :func:`conflict_message` says why not.
* :func:`rebuild_function` rebuilds the function from the ``(name, config)`` stored in
  the catalog or received from a server. A config is not trusted: one holding an option
  that may load or run code is refused (see :mod:`vectordb.embedding_functions.options`),
  and the collection gets an :class:`UnavailableEmbeddingFunction` that raises
  :class:`~vectordb.errors.RefusedConfigError` when asked to embed.
* :func:`default_function` is the function a collection gets when none is named.

What is persisted for a function, ``describe(fn)``, stays in
:mod:`vectordb.embedding_functions.base`, beside the error messages that name it.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from vectordb.embedding_functions.base import UnavailableEmbeddingFunction, build_from_config, registered_class
from vectordb.embedding_functions.options import comparable, refusal_message
from vectordb.errors import RefusedConfigError

IDENTITY_IGNORED_KEYS = frozenset({"timeout", "retry_policy", "device", "api_key_env_var", "max_retries"})
"""Config keys that change how a function runs, not which vectors it makes."""


def default_function() -> Any:
    """A new :class:`DefaultEmbeddingFunction` (all-MiniLM-L6-v2); loads nothing until first used."""
    from vectordb.embedding_functions.default import DefaultEmbeddingFunction

    return DefaultEmbeddingFunction()


def same_function(name_a: Optional[str], config_a: Any, name_b: Optional[str], config_b: Any) -> bool:
    """Whether two persisted ``(name, config)`` pairs describe the same function.

    Keys in :data:`IDENTITY_IGNORED_KEYS` are ignored, and so are options the function's
    ``CONFIG_OPTIONS`` refuses: a caller who passes ``trust_remote_code=True`` itself
    matches a collection whose stored config lacks it (or, from an old store, holds it).
    A missing config (a custom function) matches any config of the same name.
    """
    if name_a != name_b:
        return False
    spec = getattr(registered_class(name_a), "CONFIG_OPTIONS", None)
    config_a, config_b = comparable(config_a, spec), comparable(config_b, spec)
    if not isinstance(config_a, dict) or not isinstance(config_b, dict):
        return config_a == config_b or config_a is None or config_b is None
    strip = lambda c: {k: x for k, x in c.items() if k not in IDENTITY_IGNORED_KEYS}  # noqa: E731
    return strip(config_a) == strip(config_b)


def conflict_message(
    collection: str, stored_name: Optional[str], stored_config: Any, passed_name: Optional[str], passed_config: Any
) -> str:
    """The message of the ``EmbeddingFunctionConflictError`` raised when :func:`same_function` is False."""
    return (
        f"collection {collection!r} was created with embedding function {stored_name or 'None'!r}"
        f"{_config_text(stored_config)}, but {passed_name or 'None'!r}{_config_text(passed_config)} was passed; "
        "omit embedding_function to use the collection's own"
    )


def rebuild_function(collection: str, ef_name: Optional[str], ef_config: Any) -> Any:
    """The function stored for ``collection`` as ``(ef_name, ef_config)``, rebuilt; never raises.

    Returns None for a collection without a function, the rebuilt function when it can
    be rebuilt, and otherwise an :class:`UnavailableEmbeddingFunction` that keeps the
    name and config (for conflict checks) and, when asked to embed, raises an error
    saying why and what to pass instead: :class:`~vectordb.errors.RefusedConfigError`
    for a config holding an option that may load or run code, else
    :class:`~vectordb.errors.InvalidArgumentError`.
    """
    if ef_name is None:
        return None
    if not isinstance(ef_name, str):
        reason = f"collection {collection!r}: its stored embedding function name {ef_name!r} is not a string"
        return UnavailableEmbeddingFunction(repr(ef_name), None, reason)
    if ef_config is None:
        custom = ef_name[len("custom:"):] if ef_name.startswith("custom:") else ef_name
        reason = (
            f"collection {collection!r} was created with the custom embedding function {custom!r}, "
            f"which has no config to rebuild it from: pass it again with "
            f"get_collection({collection!r}, embedding_function=...)"
        )
        return UnavailableEmbeddingFunction(ef_name, None, reason)
    try:
        return build_from_config(ef_name, ef_config)
    except RefusedConfigError as exc:
        cls = registered_class(ef_name)
        reason = f"collection {collection!r}: {exc}" if cls is None else refusal_message(cls, exc.options, collection)
        error = functools.partial(RefusedConfigError, function=ef_name, options=exc.options)
        return UnavailableEmbeddingFunction(ef_name, ef_config, reason, error)
    except Exception as exc:  # a user's build_from_config may raise anything
        reason = f"collection {collection!r} uses embedding function {ef_name!r}, which cannot be rebuilt here: {exc}"
        return UnavailableEmbeddingFunction(ef_name, ef_config, reason)


def _config_text(config: Any) -> str:
    return f" {config}" if config else ""
