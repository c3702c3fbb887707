"""What a collection's vector index is to the rest of vectordb: :class:`VectorIndex`.

An index holds vectors under integer labels (the ``label`` column of the records table)
and is a derived cache of the records: it can always be rebuilt from them. The engine
(:mod:`vectordb.engine.indexes`) loads, catches up, saves and rebuilds indexes through
this protocol only; :mod:`vectordb.index.hnsw` is its one implementation. The search
strategy shared by implementations (when to search exactly, when to over-fetch from the
graph) lives in :mod:`vectordb.index.search` and needs :class:`ApproximateIndex` of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol, Tuple

import numpy as np

VectorSource = Callable[[], Iterator[Tuple[np.ndarray, np.ndarray]]]
"""A callable yielding ``(labels, vectors)`` chunks of every live record (the store's copy)."""
SearchResult = Tuple[np.ndarray, np.ndarray]
"""``(labels, distances)``: int64 and float32 arrays of shape (queries, k), nearest first."""


@dataclass(frozen=True)
class IndexParams:
    """How the index is built and searched (the ``hnsw:*`` collection metadata, see
    :mod:`vectordb.index.settings`).

    ``search_ef`` 0 means automatic: the index picks the smallest search breadth that meets
    ``recall_target`` (see :mod:`vectordb.index.calibration`); a positive value is used as is.
    """

    space: str = "l2"
    M: int = 16
    construction_ef: int = 100
    search_ef: int = 50
    recall_target: float = 0.95


@dataclass(frozen=True)
class SearchPolicy:
    """When a search is exact and how far a filtered graph search over-fetches."""

    exact_search_max: int = 20_000
    """A filtered query matching at most this many records is answered by exact search."""
    overfetch_max: int = 1_000
    """A filtered graph search over-fetches at most this many neighbours before using the index's filter."""
    exact_collection_max: int = 2_000
    """A collection of at most this many records is always searched exactly (as cheap as the graph)."""


DEFAULT_SEARCH_POLICY = SearchPolicy()


class VectorIndex(Protocol):
    """A collection's vector index, as the engine uses it.

    An implementation is made empty as ``Cls(params, dim, capacity=n)`` (room for about
    n vectors; it grows as needed) or read back with :meth:`load`.

    ``params`` may be replaced while the index is loaded (only ``search_ef`` changes
    then). ``matrix_source`` and ``search_policy`` are set by the engine (exact search can read
    the vectors from the store instead of from the index; the engine's thresholds of exact search).
    """

    params: IndexParams
    dim: int
    matrix_source: Optional[VectorSource]
    search_policy: SearchPolicy

    @property
    def count(self) -> int:
        """How many live vectors the index holds."""

    @property
    def deleted(self) -> int:
        """How many slots hold deleted vectors (space a rebuild gives back)."""

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert the vectors of new ``labels``, replace those of existing ones."""

    def remove(self, labels: np.ndarray) -> None:
        """Delete ``labels``; labels not in the index are ignored."""

    def live_labels(self) -> np.ndarray:
        """Every live label, ascending (int64)."""

    def holds(self, labels: np.ndarray) -> np.ndarray:
        """Whether each of ``labels`` is live in the index (a boolean array)."""

    def search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> SearchResult:
        """The k nearest live labels of each query row; ``allowed`` (ascending labels)
        restricts the candidates. k' = min(k, candidates) columns."""

    def compare_vectors(self, labels: np.ndarray, embeddings: np.ndarray) -> Optional[str]:
        """None when every copy the index keeps of ``labels``'s vectors equals ``embeddings``
        (the stored records, as given to :meth:`add`); else what differs, as a phrase
        ("holds vectors that differ from the stored embeddings")."""

    def save(self, folder: str, seq: int, collection_id: str) -> None:
        """Write the index to ``folder`` atomically, with the record-log position ``seq``
        it covers and the collection it belongs to."""

    @classmethod
    def load(
        cls, folder: str, params: IndexParams, dim: int, collection_id: str
    ) -> Optional[Tuple["VectorIndex", int]]:
        """The index saved in ``folder`` and its ``seq``; None (with a logged warning)
        when it is missing, damaged, hostile, built with other settings or another
        collection's. Never crashes the process on a bad file."""


class ApproximateIndex(Protocol):
    """What the shared search strategy (:func:`vectordb.index.search.search`) needs of an index."""

    @property
    def count(self) -> int:
        """How many live vectors the index holds."""

    @property
    def label_bound(self) -> int:
        """One more than the largest label the index can hold now (size of a mask by label)."""

    def live_labels(self) -> np.ndarray:
        """Every live label, ascending."""

    def knn(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> Optional[SearchResult]:
        """The approximate k nearest live labels per query, from the index's own structure;
        ``allowed`` is a boolean mask by label (length :attr:`label_bound`) that results
        must satisfy. None when the structure cannot return k results for every query."""
