"""A collection's ``configuration`` (Chroma 1.x's spelling of the index settings), and its one home: metadata.

Chroma 1.x configures a collection's index with ``configuration={"hnsw": {...}}``;
vectordb keeps the same settings as ``hnsw:*`` collection metadata, whose names,
defaults and build-time rules are :mod:`vectordb.index.settings`'. This module maps
one onto the other, both ways:

====================  ==========================
``configuration``     collection metadata
====================  ==========================
``hnsw.space``        ``hnsw:space``
``hnsw.ef_construction``  ``hnsw:construction_ef``
``hnsw.ef_search``    ``hnsw:search_ef``
``hnsw.max_neighbors``  ``hnsw:M``
====================  ==========================

Both spellings are accepted; giving one setting both ways with different values is an
:class:`~vectordb.errors.InvalidArgumentError`. ``configuration["embedding_function"]``
is another way to pass ``embedding_function=`` (see :func:`function_in`). Chroma's tuning knobs of its own
implementation (``num_threads``, ``resize_factor``, ``sync_threshold``, ``batch_size``)
are accepted and have no effect; any other key is refused. ``configuration={"spann": {...}}``
(Chroma's distributed index) is taken as Chroma's single-node server takes it: its
``space`` is the collection's, its other settings have no effect; ``hnsw`` and ``spann``
together are refused, as in Chroma.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from vectordb import validation as v
from vectordb.errors import InvalidArgumentError
from vectordb.index import settings

HNSW_KEYS = {
    "space": settings.SPACE_KEY,
    "ef_construction": settings.CONSTRUCTION_EF_KEY,
    "ef_search": settings.SEARCH_EF_KEY,
    "max_neighbors": settings.M_KEY,
}
"""Each ``configuration["hnsw"]`` key and the metadata key that holds it."""
IGNORED_HNSW_KEYS = ("num_threads", "resize_factor", "sync_threshold", "batch_size")
"""Chroma's hnsw keys that tune its own implementation: accepted, no effect."""
SPANN_KEYS = ("space", "search_nprobe", "write_nprobe", "ef_construction", "ef_search", "max_neighbors",
              "reassign_neighbor_count", "split_threshold", "merge_threshold")
"""Chroma's ``configuration["spann"]`` keys (its distributed index): only ``space`` has an effect here."""
CHANGEABLE_KEYS = tuple(name for name, key in HNSW_KEYS.items() if key not in settings.BUILD_KEYS)
"""The settings ``Collection.modify(configuration=...)`` may change (the graph is built with the others)."""


def _hnsw_section(configuration: Any, allowed: Any, what: str) -> Dict[str, Any]:
    """The checked ``hnsw`` section of a configuration, as metadata keys and values."""
    if configuration is None:
        return {}
    if not isinstance(configuration, Mapping):
        raise InvalidArgumentError(f"configuration: expected a dict, got {type(configuration).__name__}")
    unknown = [k for k in configuration if k not in ("hnsw", "spann", "embedding_function")]
    if unknown:
        raise InvalidArgumentError(f"configuration: unknown key {unknown[0]!r} (known: hnsw)")
    hnsw = configuration.get("hnsw")
    if configuration.get("spann") is not None:
        if hnsw is not None:
            raise InvalidArgumentError("configuration: give 'hnsw' or 'spann', not both (as in Chroma)")
        return _spann_section(configuration["spann"], allowed, what)
    if hnsw is None:
        return {}
    if not isinstance(hnsw, Mapping):
        raise InvalidArgumentError(f"configuration['hnsw']: expected a dict, got {type(hnsw).__name__}")
    out: Dict[str, Any] = {}
    for key, value in hnsw.items():
        where = f"configuration['hnsw'][{key!r}]"
        if key in IGNORED_HNSW_KEYS:
            continue
        if key not in allowed:
            if key in HNSW_KEYS:
                raise InvalidArgumentError(f"{where}: cannot change {what} (the index is built with it)")
            known = ", ".join(list(allowed) + list(IGNORED_HNSW_KEYS))
            raise InvalidArgumentError(f"{where}: unknown setting (known: {known})")
        if key == "space":
            if value not in v.METRICS:
                raise InvalidArgumentError(f"{where}: expected one of {', '.join(v.METRICS)}, got {value!r}")
        else:
            v.validate_positive_int(value, where)
        out[HNSW_KEYS[key]] = value
    return out


def _spann_section(spann: Any, allowed: Any, what: str) -> Dict[str, Any]:
    """Chroma's ``spann`` settings, taken as Chroma's single-node server takes them: its index is
    HNSW, so only ``space`` counts (as ``hnsw:space``); Chroma's other SPANN keys have no effect."""
    if not isinstance(spann, Mapping):
        raise InvalidArgumentError(f"configuration['spann']: expected a dict, got {type(spann).__name__}")
    for key in spann:
        if key not in SPANN_KEYS:
            raise InvalidArgumentError(
                f"configuration['spann'][{key!r}]: unknown setting (known: {', '.join(SPANN_KEYS)})"
            )
    if "space" not in spann:
        return {}
    space = spann["space"]
    if "space" not in allowed:
        raise InvalidArgumentError(f"configuration['spann']['space']: cannot change {what} (the index is built with it)")
    if space not in v.METRICS:
        raise InvalidArgumentError(f"configuration['spann']['space']: expected one of {', '.join(v.METRICS)}, got {space!r}")
    return {settings.SPACE_KEY: space}


def function_in(configuration: Any, embedding_function: Any, not_given: Any) -> Any:
    """The embedding function a create call asks for: ``embedding_function``, else the one in
    ``configuration["embedding_function"]`` (``not_given`` marks an argument not passed)."""
    inner = configuration.get("embedding_function") if isinstance(configuration, Mapping) else None
    if inner is None:
        return embedding_function
    if embedding_function is not_given:
        return inner
    if embedding_function is not inner:
        raise InvalidArgumentError(
            "configuration['embedding_function'] and embedding_function= name different functions: give it once"
        )
    return inner


def with_configuration(metadata: Optional[Dict[str, Any]], configuration: Any) -> Optional[Dict[str, Any]]:
    """Collection metadata holding the settings of ``configuration`` as ``hnsw:*`` keys.

    Raises InvalidArgumentError for a malformed configuration, and when metadata and
    configuration give one setting different values.
    """
    settings = _hnsw_section(configuration, HNSW_KEYS, "it here")
    if not settings:
        return metadata
    merged = dict(metadata or {})
    for key, value in settings.items():
        if key in merged and merged[key] != value:
            name = next(k for k, m in HNSW_KEYS.items() if m == key)
            raise InvalidArgumentError(
                f"configuration['hnsw'][{name!r}] = {value!r} conflicts with metadata[{key!r}] = {merged[key]!r}: "
                "give the setting once"
            )
        merged[key] = value
    return merged


def changed_configuration(metadata: Optional[Dict[str, Any]], configuration: Any) -> Optional[Dict[str, Any]]:
    """The metadata after ``Collection.modify(configuration=...)``; None when it changes nothing.

    Only ``ef_search`` can change once the collection exists.
    """
    settings = _hnsw_section(configuration, CHANGEABLE_KEYS, "it once the collection exists")
    if not settings:
        return None
    return {**(metadata or {}), **settings}


def configuration_of(metadata: Optional[Mapping[str, Any]], embedding_function: Any) -> Dict[str, Any]:
    """A collection's configuration shaped as Chroma 1.x's: ``{"hnsw": {...}, "spann": None, "embedding_function": fn}``.

    The hnsw values are the collection's own settings, vectordb's defaults for those not set.
    """
    meta = metadata or {}
    hnsw = {name: settings.setting(meta, key) for name, key in HNSW_KEYS.items()}
    return {"hnsw": hnsw, "spann": None, "embedding_function": embedding_function}
