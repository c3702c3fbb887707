"""The local engine's read path: which records a get, a search or a delete touches, and their fields.

A request's candidates come from the derived structures: by id from the record cache, by
``where`` from the in-memory metadata index, and from the store's SQL for what only the
store can answer (a ``where_document``). A search ranks them with the vector index, the
text index, or both fused (:mod:`vectordb.text.fusion`), then reads the chosen records'
fields: from the record cache, or from the store when embeddings are wanted. Results are
built by :mod:`vectordb.results`. The caller (:class:`vectordb.engine.local.LocalBackend`)
holds the collection's read lock, so a concurrent write is wholly before or after a read.
"""

from __future__ import annotations

from typing import ContextManager, List, Optional, Tuple

import numpy as np

from vectordb import validation as v
from vectordb.engine.derived import DerivedStructures
from vectordb.engine.indexes import VectorIndexes, Searcher
from vectordb.engine.textindexes import TextIndexes, text_enabled
from vectordb.errors import TextSearchUnavailableError
from vectordb.filters import Filter, to_sql
from vectordb.persistence.store import CollectionRow, Store
from vectordb.requests import HYBRID, TEXT, VECTOR, Get, Search
from vectordb.results import Record, get_result, query_result
from vectordb.text import fusion
from vectordb.types import GetResult, QueryResult


class Reads:
    """Answers gets and searches of one store from its derived structures and indexes."""

    def __init__(self, store: Store, derived: DerivedStructures, indexes: VectorIndexes, text: TextIndexes) -> None:
        self.store = store
        self.derived = derived
        self.indexes = indexes
        self.text = text

    def get(self, row: CollectionRow, get: Get) -> GetResult:
        """The records ``get`` asks for: by id in the order asked, else by filter in insertion order."""
        if get.ids is None:
            labels = self.select(row, None, get.filter, get.limit, get.offset)
        else:
            labels = self.select(row, get.ids, get.filter)[get.offset or 0:]
            if get.limit is not None:
                labels = labels[:get.limit]
        return get_result(self.read(row, labels, "embeddings" in get.include), get.include)

    def search(self, row: CollectionRow, search: Search, loading: ContextManager[object]) -> QueryResult:
        """Rank in the search's mode, then read the chosen records' fields. A collection without a
        text index refuses a text or hybrid search before any work; ``loading`` is held while an
        index is loaded (once per collection: a catch-up after a crash goes on in the background)."""
        if search.vectors is not None and row.dimension is not None and search.vectors.shape[1] != row.dimension:
            raise v.dimension_error("query_embeddings", search.vectors.shape[1], row.dimension)
        if search.ranks_text and not text_enabled(row):
            raise TextSearchUnavailableError(
                f"collection {row.name!r} has no text index (it was created with metadata "
                f"{{{v.TEXT_INDEX_KEY!r}: False}}): query it with mode='vector'"
            )
        cache = self.derived.records(row)  # first: DuckDB's scan runs faster before the index takes its memory
        with loading:
            vector_index = self.indexes.searcher(row) if search.mode != TEXT else None
            text_index = self.text.get(row) if search.mode != VECTOR else None
        allowed = self.allowed(row, search.ids, search.filter)
        metadatas = "metadatas" in search.include
        embeddings = "embeddings" in search.include
        if search.mode == VECTOR:
            labels, distances = _nearest(vector_index, search.vectors, search.n_results, allowed)
            rows = [self.read(row, query_labels, embeddings, metadatas) for query_labels in labels]
            return query_result(rows, search.include, distances=distances)
        assert search.texts is not None and text_index is not None
        if search.mode == HYBRID:
            depth = fusion.depth(search.n_results)
            labels, distances = _nearest(vector_index, search.vectors, depth, allowed)
            ranked = [fusion.fuse_labels((labels[q], distances[q]), text_index.search(text, depth, allowed, cache),
                                         search.n_results, cache) for q, text in enumerate(search.texts)]
        else:
            ranked = [text_index.search(text, search.n_results, allowed, cache) for text in search.texts]
        rows = [self.read(row, chosen, embeddings, metadatas) for chosen, _ in ranked]
        return query_result(rows, search.include, scores=[scores for _, scores in ranked])

    def read(self, row: CollectionRow, labels: np.ndarray, embeddings: bool, metadatas: bool = True) -> List[Record]:
        """The records of ``labels``, in order: from the record cache unless embeddings are wanted;
        metadata is decoded only when ``metadatas`` (None otherwise, for a result without it)."""
        if embeddings:
            found = self.store.fetch(row.id, np.unique(labels), True)
            return [found[int(label)] for label in labels]
        return [(*r, None) for r in self.derived.records(row).rows(labels, metadatas)]

    def allowed(self, row: CollectionRow, ids: Optional[List[str]], filter: Optional[Filter]) -> Optional[np.ndarray]:
        """The labels a search may return, ascending (None: every label)."""
        if ids is not None:
            return np.sort(self.select(row, ids, filter))
        return None if filter is None else self.matching(row, filter)

    def select(
        self, row: CollectionRow, ids: Optional[List[str]], filter: Optional[Filter], limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> np.ndarray:
        """Labels of the records matching every given condition (by ids: in the order of ``ids``)."""
        if ids is None:
            if filter is None:
                return self.derived.records(row).labels(limit, offset)
            labels = self.matching(row, filter)[offset or 0:]
            return labels if limit is None else labels[:limit]
        by_id = self.derived.records(row).labels_of(ids)
        labels = np.asarray(list(dict.fromkeys(by_id[i] for i in ids if i in by_id)), dtype=np.int64)
        if filter is None or len(labels) == 0:
            return labels
        return labels[np.isin(labels, self.matching(row, filter))]

    def matching(self, row: CollectionRow, filter: Filter) -> np.ndarray:
        """Labels matching the filter, ascending: from the in-memory metadata index when it
        can answer (``where`` alone), else from the store's SQL."""
        if filter.document is None:
            labels = self.derived.metadata(row).evaluate(filter.where)
            if labels is not None:
                return labels
        return self.store.select_labels(row.id, to_sql(filter, row.id))


def _nearest(index: Optional[Searcher], queries: np.ndarray, k: int,
             allowed: Optional[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """``(labels, distances)`` of each query's k nearest allowed records; none when the
    collection has no vector index yet (no record has an embedding)."""
    if index is None:
        return np.empty((len(queries), 0), dtype=np.int64), np.empty((len(queries), 0), dtype=np.float32)
    return index.search(queries, k, allowed)
