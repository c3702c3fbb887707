"""A collection's ``configuration`` (Chroma 1.x's spelling of the index settings), and where it is kept.

Chroma 1.x configures a collection's index with ``configuration={"hnsw": {...}}``;
vectordb stores the same settings as ``hnsw:*`` keys of the collection's stored metadata
(what every backend persists and the index is built from), whose names, defaults and
build-time rules are :mod:`vectordb.index.settings`'. This module maps one onto the other:

====================  ==========================
``configuration``     stored metadata
====================  ==========================
``hnsw.space``        ``hnsw:space``
``hnsw.ef_construction``  ``hnsw:construction_ef``
``hnsw.ef_search``    ``hnsw:search_ef``
``hnsw.max_neighbors``  ``hnsw:M``
====================  ==========================

Settings given as ``configuration`` are index settings only: as in Chroma they are not
part of the collection's metadata. They are stored beside it, listed under
:data:`CONFIGURED_KEY` (``"hnsw:configured": ["hnsw:space", ...]``), and
``Collection.metadata`` leaves them and that list out (:func:`split_metadata`). Settings
given as ``hnsw:*`` metadata stay in the metadata, as in Chroma, and configure the index
too. ``Collection.modify(metadata=...)`` replaces the metadata, as in Chroma, and the
index settings stay in force (those the old metadata held move out of it:
:func:`modified_metadata`). Collections stored before ``hnsw:configured`` existed have no
such list: their metadata is shown as stored.

Giving one setting both ways with different values is an
:class:`~vectordb.errors.InvalidArgumentError`. ``configuration["embedding_function"]``
is another way to pass ``embedding_function=`` (see :func:`function_in`). Chroma's tuning knobs of its own
implementation (``num_threads``, ``resize_factor``, ``sync_threshold``, ``batch_size``)
are accepted and have no effect; any other key is refused. ``configuration={"spann": {...}}``
(Chroma's distributed index) is taken as Chroma's single-node server takes it: its
``space`` is the collection's, its other settings have no effect; ``hnsw`` and ``spann``
together are refused, as in Chroma.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Tuple

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
CONFIGURED_KEY = v.HNSW_CONFIGURED_KEY
"""The stored-metadata key listing the ``hnsw:*`` keys that are settings only, not the user's metadata."""
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


def split_metadata(stored: Optional[Mapping[str, Any]]) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
    """A collection's stored metadata as ``(its metadata as users see it, the index settings kept out of it)``.

    Metadata without :data:`CONFIGURED_KEY` (every collection stored before it existed, and
    those given no ``configuration``) is the user's as it is.
    """
    if not stored or CONFIGURED_KEY not in stored:
        return (None if stored is None else dict(stored)), {}
    names = stored[CONFIGURED_KEY]
    hidden = {key: stored[key] for key in names if key in stored}
    user = {key: value for key, value in stored.items() if key != CONFIGURED_KEY and key not in hidden}
    return user or None, hidden


def user_metadata(stored: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """What ``Collection.metadata`` shows of a collection's stored metadata: the index settings given
    as ``configuration`` left out; None when nothing is left."""
    return split_metadata(stored)[0]


def join_metadata(user: Optional[Dict[str, Any]], hidden: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    """The stored metadata for ``user`` metadata plus the index settings ``hidden`` (kept out of it);
    a setting the user's metadata gives is the user's."""
    kept = {key: hidden[key] for key in settings.KEYS if key in hidden and key not in (user or {})}
    if not kept:
        return dict(user) if user else None
    return {**(user or {}), **kept, CONFIGURED_KEY: list(kept)}


def _conflict(key: str, value: Any, given: Any) -> InvalidArgumentError:
    name = next(k for k, m in HNSW_KEYS.items() if m == key)
    return InvalidArgumentError(
        f"configuration['hnsw'][{name!r}] = {value!r} conflicts with metadata[{key!r}] = {given!r}: "
        "give the setting once"
    )


def with_configuration(metadata: Optional[Dict[str, Any]], configuration: Any) -> Optional[Dict[str, Any]]:
    """The stored metadata of a new collection: ``metadata`` (checked already) plus the settings of
    ``configuration``, kept out of the user's metadata (listed under :data:`CONFIGURED_KEY`).

    Raises InvalidArgumentError for a malformed configuration, and when metadata and
    configuration give one setting different values.
    """
    user, hidden = split_metadata(metadata)
    configured = _hnsw_section(configuration, HNSW_KEYS, "it here")
    given = {**hidden, **(user or {})}
    for key, value in configured.items():
        if key in given and given[key] != value:
            raise _conflict(key, value, given[key])
    return join_metadata(user, {**hidden, **configured})


def modified_metadata(
    stored: Optional[Mapping[str, Any]], metadata: Optional[Dict[str, Any]], configuration: Any
) -> Optional[Dict[str, Any]]:
    """The stored metadata after ``Collection.modify(metadata=..., configuration=...)``: None when it
    changes nothing, ``{}`` when it is cleared.

    New ``metadata`` (checked already) replaces the user's metadata, as in Chroma; the index
    settings stay in force (those the old metadata held and the new one does not give are kept
    out of it). Only ``ef_search`` can change through ``configuration`` once the collection exists;
    with new metadata giving ``hnsw:search_ef`` too, the two must agree.
    """
    changed = _hnsw_section(configuration, CHANGEABLE_KEYS, "it once the collection exists")
    if metadata is None and not changed:
        return None
    old_user, old_hidden = split_metadata(stored)
    if metadata is None:
        user, hidden = old_user, dict(old_hidden)
    else:
        user, given_hidden = split_metadata(metadata)
        old = {**old_hidden, **(old_user or {})}
        hidden = {**{key: old[key] for key in settings.KEYS if key in old}, **given_hidden}
    for key, value in changed.items():
        if user and key in user:
            if metadata is not None and user[key] != value:
                raise _conflict(key, value, user[key])
            user = {**user, key: value}  # a setting the metadata shows changes where it is shown
        else:
            hidden[key] = value
    return join_metadata(user, hidden) or {}  # {}: the metadata is cleared


def configuration_of(metadata: Optional[Mapping[str, Any]], embedding_function: Any) -> Dict[str, Any]:
    """A collection's configuration shaped as Chroma 1.x's: ``{"hnsw": {...}, "spann": None, "embedding_function": fn}``.

    ``metadata`` is the stored metadata (the settings kept out of the user's included); the
    hnsw values are the collection's own settings, vectordb's defaults for those not set.
    """
    meta = metadata or {}
    hnsw = {name: settings.setting(meta, key) for name, key in HNSW_KEYS.items()}
    return {"hnsw": hnsw, "spann": None, "embedding_function": embedding_function}


FIXED_SETTINGS: Dict[str, Any] = {key: settings.DEFAULTS[key] for key in settings.BUILD_KEYS}
FIXED_SETTINGS.update({v.TEXT_INDEX_KEY: True, v.TEXT_ANALYZER_KEY: v.DEFAULT_TEXT_ANALYZER})
"""The stored-metadata settings fixed once a collection exists (its index and text index are built
with them), with the defaults of a new collection."""


def replaced_metadata(
    old: Optional[Mapping[str, Any]], new: Mapping[str, Any], built_with: Mapping[str, Any]
) -> Optional[Dict[str, Any]]:
    """The stored metadata that replaces ``old`` when a collection's metadata is set to ``new``.

    ``built_with`` holds the values of :data:`FIXED_SETTINGS` the collection was built with (each
    backend knows them its own way: the catalog's metric and text analyzer, say). ``new`` may repeat
    a fixed setting, never change it (InvalidArgumentError naming the key); the fixed settings the old
    metadata held stay in the new one. Every backend applies this one rule.
    """
    for key in FIXED_SETTINGS:
        if key in new and new[key] != built_with[key]:
            raise InvalidArgumentError(
                f"metadata[{key!r}]: cannot change from {built_with[key]!r} once the collection exists"
            )
    out = dict(new)
    for key in FIXED_SETTINGS:
        if old and key in old:
            out.setdefault(key, old[key])
    return out or None
