"""What an embedding function is, how one is named and rebuilt, and how its output is checked.

An embedding function is any object with ``__call__(self, input: list[str]) -> vectors``.
It may also have ``embed_query(self, input)``, used for ``query_texts`` when present.

Built-in functions also have ``name()`` (a stable string), ``get_config()`` (a JSON-safe
dict, never holding an API key) and a classmethod ``build_from_config(config)``. The
collection persists ``name`` and ``config`` so that a new process rebuilds the same
function; :func:`register_embedding_function` lets users make their own rebuildable.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Tuple, Type, TypeVar, runtime_checkable

import numpy as np

from vectordb.errors import EmbeddingError, InvalidArgumentError, VectorDBError
from vectordb.types import Documents, Embeddings

D = TypeVar("D", contravariant=True)


@runtime_checkable
class EmbeddingFunction(Protocol[D]):
    """The one-method shape every embedding function has; also a base class to subclass, as in Chroma::

        class MyFunction(EmbeddingFunction[Documents]):   # or EmbeddingFunction
            def __call__(self, input: Documents) -> Embeddings:
                return [[float(len(text)), 1.0] for text in input]

    Any object with such a ``__call__`` is accepted; subclassing is optional. A function
    may also define ``embed_query(input)``, used for ``query_texts`` when present.
    """

    def __call__(self, input: D) -> Embeddings: ...


_REGISTRY: Dict[str, Type[Any]] = {}


def register_embedding_function(cls: Type[Any]) -> Type[Any]:
    """Class decorator: make ``cls`` rebuildable from its persisted ``name()`` and config.

    ``cls`` needs ``name()`` (static or class method), ``get_config()`` and a classmethod
    ``build_from_config(config)``.
    """
    for attr in ("name", "get_config", "build_from_config"):
        if not callable(getattr(cls, attr, None)):
            raise InvalidArgumentError(
                f"register_embedding_function: {cls.__name__} lacks {attr}(); "
                "a registered function needs name(), get_config() and build_from_config()"
            )
    _REGISTRY[cls.name()] = cls
    return cls


def registered_names() -> List[str]:
    """The names of every registered embedding function."""
    return sorted(_REGISTRY)


def registered_class(name: Optional[str]) -> Optional[Type[Any]]:
    """The class registered under ``name``, or None."""
    return _REGISTRY.get(name) if isinstance(name, str) else None


def describe(fn: Any) -> Tuple[str, Optional[Dict[str, Any]]]:
    """The ``(name, config)`` to persist for ``fn``.

    A function with no ``get_config`` is persisted as ``("custom:<Class>", None)``: it
    cannot be rebuilt, so it must be passed again when the collection is reopened.
    """
    if isinstance(fn, UnavailableEmbeddingFunction):
        return fn.name(), fn.get_config()
    name_fn = getattr(fn, "name", None)
    get_config = getattr(fn, "get_config", None)
    if callable(name_fn) and callable(get_config) and type(fn).__name__ != "function":
        try:
            name = name_fn()
        except TypeError:
            name = None
        if isinstance(name, str) and name:
            config = get_config()
            try:
                json.dumps(config)
            except (TypeError, ValueError) as exc:
                raise InvalidArgumentError(
                    f"embedding function {name!r}: get_config() must return JSON-safe data ({exc})"
                ) from None
            return name, config
    return f"custom:{_qualified_name(fn)}", None


def _qualified_name(fn: Any) -> str:
    cls = fn if isinstance(fn, type) else type(fn)
    if cls.__name__ == "function":
        return getattr(fn, "__qualname__", "function")
    return cls.__qualname__


def build_from_config(name: str, config: Optional[Dict[str, Any]]) -> Any:
    """Rebuild a persisted function; raises :class:`InvalidArgumentError` if it cannot be."""
    if config is None or name not in _REGISTRY:
        raise InvalidArgumentError(
            f"embedding function {name!r} cannot be rebuilt from its persisted config"
            + (" (it is not registered in this process)" if config is not None else "")
        )
    return _REGISTRY[name].build_from_config(config)


_progress_enabled: Optional[bool] = None
PROGRESS_MIN_TEXTS = 1000
PROGRESS_CHUNK = 512


def set_progress_bar(enabled: Optional[bool]) -> None:
    """Show (True), hide (False) or auto-detect (None: only on a terminal) the progress bar
    drawn when one call embeds many texts. ``VECTORDB_PROGRESS=0`` also hides it."""
    global _progress_enabled
    _progress_enabled = enabled


def _progress_disabled() -> Optional[bool]:
    if os.environ.get("VECTORDB_PROGRESS", "").strip() in {"0", "false", "no", "off"}:
        return True
    if _progress_enabled is None:
        return None  # tqdm's own choice: shown on a terminal only
    return not _progress_enabled


def embed_texts(fn: Any, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
    """Embed ``texts`` with ``fn`` and check the result; returns a float32 matrix.

    Uses ``fn.embed_query`` for queries when present. Many texts are embedded in chunks
    under a tqdm progress bar. Raises :class:`EmbeddingError` when the function fails
    or returns anything but one finite vector of one dimension per text.
    """
    call: Callable[[List[str]], Any] = fn
    if query and callable(getattr(fn, "embed_query", None)):
        call = fn.embed_query
    texts = list(texts)
    if len(texts) >= PROGRESS_MIN_TEXTS:
        from tqdm.auto import tqdm

        batch = getattr(fn, "max_batch_size", None)
        chunk = batch * max(1, round(PROGRESS_CHUNK / batch)) if isinstance(batch, int) and batch > 0 else PROGRESS_CHUNK
        parts = []
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=_progress_disabled()) as bar:
            for start in range(0, len(texts), chunk):
                part = texts[start : start + chunk]
                parts.append(check_embeddings(_invoke(call, part, fn), len(part), fn))
                bar.update(len(part))
        dims = {p.shape[1] for p in parts}
        if len(dims) > 1:
            raise EmbeddingError(f"{_label(fn)} returned vectors of different dimensions {sorted(dims)}")
        return np.concatenate(parts)
    return check_embeddings(_invoke(call, texts, fn), len(texts), fn)


def _invoke(call: Callable[[List[str]], Any], texts: List[str], fn: Any) -> Any:
    try:
        return call(texts)
    except (VectorDBError, ImportError):  # already typed (EmbeddingError, InvalidArgumentError, ...)
        raise
    except Exception as exc:  # a user's function may raise anything
        raise EmbeddingError(f"{_label(fn)} failed: {type(exc).__name__}: {exc}") from exc


def _label(fn: Any) -> str:
    return f"embedding function {describe(fn)[0]!r}"


def check_embeddings(raw: Any, expected: int, fn: Any = None) -> np.ndarray:
    """Turn a function's output into a float32 (n, d) matrix, or raise :class:`EmbeddingError`."""
    who = _label(fn) if fn is not None else "embedding function"
    try:
        if isinstance(raw, np.ndarray):
            arr = raw
        else:
            rows = [np.asarray(r, dtype=np.float64).ravel() for r in raw]
            dims = {r.shape[0] for r in rows}
            if len(dims) > 1:
                raise EmbeddingError(f"{who} returned vectors of different dimensions {sorted(dims)}")
            arr = np.stack(rows) if rows else np.empty((0, 0))
        arr = np.asarray(arr, dtype=np.float32)
    except EmbeddingError:
        raise
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"{who} returned something that is not a list of vectors ({exc})") from None
    if arr.ndim != 2 or arr.shape[0] != expected:
        got = arr.shape[0] if arr.ndim >= 1 else 0
        raise EmbeddingError(f"{who} returned {got} vectors for {expected} inputs")
    if arr.shape[1] == 0 and expected:
        raise EmbeddingError(f"{who} returned empty vectors")
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0][0])
        raise EmbeddingError(f"{who} returned a non-finite number (NaN or inf) in vector {bad}")
    return arr


class UnavailableEmbeddingFunction:
    """Stands in for a persisted function that cannot be rebuilt in this process.

    It keeps the persisted name and config (so conflict checks still work) and
    raises an error that says why, and what to do, when it is asked to embed:
    ``error(reason)``, an :class:`InvalidArgumentError` unless another is given.
    """

    def __init__(
        self,
        persisted_name: str,
        config: Optional[Dict[str, Any]],
        reason: str,
        error: Callable[[str], Exception] = InvalidArgumentError,
    ) -> None:
        self._name = persisted_name
        self._config = config
        self.reason = reason
        self._error = error

    def name(self) -> str:
        return self._name

    def get_config(self) -> Optional[Dict[str, Any]]:
        return self._config

    def default_space(self) -> str:
        """The default space the registered function of this name declares (a staticmethod
        ``default_space()``, as the built-in functions have), else l2: what a new collection
        of the function gets when the server creates it from its name."""
        cls = registered_class(self._name)
        declared = inspect.getattr_static(cls, "default_space", None) if cls is not None else None
        return str(declared.__func__()) if isinstance(declared, staticmethod) else "l2"

    def __call__(self, input: Documents) -> Embeddings:
        raise self._error(self.reason)

    def __repr__(self) -> str:
        return f"UnavailableEmbeddingFunction({self._name!r})"


def missing_function_error(collection_name: str) -> InvalidArgumentError:
    """The error for texts to embed in a collection that has no embedding function."""
    return InvalidArgumentError(
        f"collection {collection_name!r} has no embedding function: pass embeddings=..., "
        "or create it with an embedding_function"
    )
