"""The ``hnsw:*`` collection settings: their names, defaults, which are fixed at build time,
and how a collection's metadata turns into :class:`~vectordb.index.base.IndexParams`.

Every module reads these settings through here, so a default or a new setting is defined
once. The names and allowed values come from :mod:`vectordb.validation`, which checks
user input and may not import the index package (the import graph runs one way).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from vectordb.index.base import IndexParams
from vectordb.validation import HNSW_INT_KEYS, HNSW_SPACE_KEY, METRICS

SPACE_KEY = HNSW_SPACE_KEY
"""The distance space (one of ``METRICS``)."""
INT_KEYS = HNSW_INT_KEYS
"""The settings that take a positive integer."""
M_KEY, CONSTRUCTION_EF_KEY, SEARCH_EF_KEY = INT_KEYS
KEYS = (SPACE_KEY,) + INT_KEYS
"""Every known ``hnsw:*`` setting."""
BUILD_KEYS = (SPACE_KEY, M_KEY, CONSTRUCTION_EF_KEY)
"""The settings the graph is built with: they cannot change once the collection exists."""
DEFAULTS: Dict[str, Any] = {
    SPACE_KEY: IndexParams.space,
    M_KEY: IndexParams.M,
    CONSTRUCTION_EF_KEY: IndexParams.construction_ef,
    SEARCH_EF_KEY: IndexParams.search_ef,
}


def setting(metadata: Optional[Mapping[str, Any]], key: str) -> Any:
    """The value of ``key`` in a collection's metadata, or its default."""
    return (metadata or {}).get(key, DEFAULTS[key])


def metric_of(metadata: Optional[Mapping[str, Any]], default: Optional[str] = None) -> str:
    """The distance space a collection's metadata asks for; when unset, ``default`` (an
    embedding function's default space, say), else ``l2``."""
    if default is not None and SPACE_KEY not in (metadata or {}):
        return default
    return str(setting(metadata, SPACE_KEY))


def index_params(metadata: Optional[Mapping[str, Any]], metric: Optional[str] = None) -> IndexParams:
    """The index settings of a collection: its metadata's ``hnsw:*`` values, defaults for the rest.

    ``metric`` is the collection's stored metric (the catalog's own column), which wins
    over the metadata's ``hnsw:space`` when given.
    """
    return IndexParams(
        space=metric if metric is not None else metric_of(metadata),
        M=int(setting(metadata, M_KEY)),
        construction_ef=int(setting(metadata, CONSTRUCTION_EF_KEY)),
        search_ef=int(setting(metadata, SEARCH_EF_KEY)),
    )
