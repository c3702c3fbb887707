"""The ``hnsw:*`` collection settings: their names, defaults, which are fixed at build time,
and how a collection's metadata turns into :class:`~vectordb.index.base.IndexParams`.

Every module reads these settings through here, so a default or a new setting is defined
once. The names and allowed values come from :mod:`vectordb.validation`, which checks
user input and may not import the index package (the import graph runs one way).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from vectordb.index.base import IndexParams
from vectordb.validation import HNSW_INT_KEYS, HNSW_RECALL_TARGET_KEY, HNSW_SPACE_KEY, METRICS

SPACE_KEY = HNSW_SPACE_KEY
"""The distance space (one of ``METRICS``)."""
INT_KEYS = HNSW_INT_KEYS
"""The settings that take a positive integer."""
M_KEY, CONSTRUCTION_EF_KEY, SEARCH_EF_KEY = INT_KEYS
RECALL_TARGET_KEY = HNSW_RECALL_TARGET_KEY
"""The recall@10 the index aims for when ``hnsw:search_ef`` is not given (see :mod:`vectordb.index.calibration`)."""
KEYS = (SPACE_KEY,) + INT_KEYS + (RECALL_TARGET_KEY,)
"""Every known ``hnsw:*`` setting."""
AUTO_EF = 0
"""The ``search_ef`` of :class:`IndexParams` when ``hnsw:search_ef`` is not given: the index
chooses its own search breadth to meet the recall target."""
BUILD_KEYS = (SPACE_KEY, M_KEY, CONSTRUCTION_EF_KEY)
"""The settings the graph is built with: they cannot change once the collection exists."""
DEFAULTS: Dict[str, Any] = {
    SPACE_KEY: IndexParams.space,
    M_KEY: IndexParams.M,
    CONSTRUCTION_EF_KEY: IndexParams.construction_ef,
    SEARCH_EF_KEY: IndexParams.search_ef,
    RECALL_TARGET_KEY: IndexParams.recall_target,
}
"""The defaults of the settings. ``hnsw:search_ef`` has none in force: without it, the index picks the
search breadth (:data:`AUTO_EF`); 50 is what a collection reports, as before, and Chroma's peers use."""


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
    over the metadata's ``hnsw:space`` when given. Without ``hnsw:search_ef``, ``search_ef`` is
    :data:`AUTO_EF`: the index calibrates it to ``hnsw:recall_target``; given, it always wins.
    """
    meta = metadata or {}
    return IndexParams(
        space=metric if metric is not None else metric_of(metadata),
        M=int(setting(metadata, M_KEY)),
        construction_ef=int(setting(metadata, CONSTRUCTION_EF_KEY)),
        search_ef=int(meta[SEARCH_EF_KEY]) if SEARCH_EF_KEY in meta else AUTO_EF,
        recall_target=float(setting(metadata, RECALL_TARGET_KEY)),
    )
