"""The requests that cross the backend seam, as typed objects.

A :class:`vectordb.Collection` checks a call's arguments, parses its filters and embeds its
texts, then hands its backend one of these: a :class:`Write` (add, upsert, update), a
:class:`Delete`, a :class:`Get` or a :class:`Search` (vector, text or hybrid), naming the
collection by a :class:`CollectionRef`. Every backend (the local engine, HTTP, Milvus) takes
the same objects, so the local and remote paths cannot drift and a new backend has one shape
to implement, not a list of positional arguments per method (qdrant-client's request models
are the model here). Everything in a request is checked already: ids are unique strings (a
:class:`Get`'s and a search's may repeat), embeddings a float32 matrix, filters a parsed
:class:`vectordb.filters.Filter`, ``include`` known field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from vectordb.filters import Filter

VECTOR, TEXT, HYBRID = "vector", "text", "hybrid"
MODES = (VECTOR, TEXT, HYBRID)
"""How a :class:`Search` ranks: by distance to a vector, by BM25 against a text, or both fused."""


@dataclass(frozen=True)
class CollectionRef:
    """A collection as a request names it: its ``id``, and its ``name`` for the errors (a
    collection deleted meanwhile raises CollectionNotFoundError naming it)."""

    id: str
    name: str


@dataclass(frozen=True)
class Write:
    """A checked ``add``, ``upsert`` or ``update`` call: one entry per id, aligned."""

    mode: str
    ids: List[str]
    embeddings: Optional[np.ndarray]
    metadatas: Optional[List[Optional[Dict[str, Any]]]]
    documents: Optional[List[Optional[str]]]


@dataclass(frozen=True)
class Delete:
    """Remove the records matching ``ids`` and ``filter`` (every condition given must hold);
    at most ``limit`` of them, the first in insertion order (by ``ids``: in their order)."""

    ids: Optional[List[str]] = None
    filter: Optional[Filter] = None
    limit: Optional[int] = None


@dataclass(frozen=True)
class Get:
    """Records by ``ids`` (in the order asked, unknown ids left out) or by ``filter`` (in
    insertion order), from ``offset``, at most ``limit``, with the fields in ``include``."""

    ids: Optional[List[str]] = None
    filter: Optional[Filter] = None
    limit: Optional[int] = None
    offset: Optional[int] = None
    include: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Search:
    """The ``n_results`` best records for each query, among those matching ``filter`` and
    (when given) having one of ``ids``.

    ``mode`` says how they rank: :data:`VECTOR` by distance to each row of ``vectors``
    (nearest first, with ``distances``); :data:`TEXT` by BM25 against each of ``texts`` (best
    first, with ``scores``: only records holding a term of the text); :data:`HYBRID` by the
    reciprocal rank fusion of both (each row of ``vectors`` paired with a text, with
    ``scores``; see :mod:`vectordb.text.fusion`).
    """

    mode: str
    n_results: int
    include: Tuple[str, ...]
    vectors: Optional[np.ndarray] = None
    texts: Optional[List[str]] = None
    filter: Optional[Filter] = None
    ids: Optional[List[str]] = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Search.mode: one of {MODES}, got {self.mode!r}")
        if (self.vectors is None) != (self.mode == TEXT):
            raise ValueError(f"Search(mode={self.mode!r}): vectors are needed exactly when the mode ranks by vector")
        if (self.texts is None) != (self.mode == VECTOR):
            raise ValueError(f"Search(mode={self.mode!r}): texts are needed exactly when the mode ranks by text")

    @property
    def ranks_text(self) -> bool:
        """Whether the search ranks by BM25 (a backend without a text index refuses it at once)."""
        return self.mode != VECTOR
