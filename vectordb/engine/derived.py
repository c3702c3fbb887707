"""The in-memory structures derived from each collection's records, kept in step with the store.

Two structures answer reads without a DuckDB round trip: the :class:`RecordCache`
(ids, documents, metadata by label, for assembling results) and the
:class:`MetadataIndex` (typed metadata columns, for ``where`` filters). Both follow
one life cycle, owned here: loaded from the store on first use, brought up to date by
every committed write and delete of this engine (the store's only writer), dropped
with their collection or when a repair rewrites the rows they mirror. Dropping one
loses nothing: it is loaded again.

Threads: several reads of one collection run at once, so a structure is loaded under a
mutex of its collection (two first reads load it once; other collections load theirs
meanwhile). Changes come only from a write or delete, which the engine runs alone on
its collection.
"""

from __future__ import annotations

import threading
from typing import Callable, Dict, TypeVar

import numpy as np

from vectordb.engine.cache import RecordCache
from vectordb.index.metadata import MetadataIndex
from vectordb.persistence.store import CollectionRow, RecordBatch, Store

_T = TypeVar("_T")


class DerivedStructures:
    """The record cache and metadata index of every collection of one store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records: Dict[str, RecordCache] = {}
        self._metadata: Dict[str, MetadataIndex] = {}
        self._loading: Dict[str, threading.Lock] = {}

    def records(self, row: CollectionRow) -> RecordCache:
        """The collection's ids, documents and metadata by label."""
        cache = self._records.get(row.id)
        if cache is None:
            cache = self._load(self._records, row.id,
                               lambda: RecordCache.load(self._store.cached_columns(row.id), row.next_label))
        return cache

    def metadata(self, row: CollectionRow) -> MetadataIndex:
        """The collection's typed metadata columns, for ``where`` filters."""
        index = self._metadata.get(row.id)
        if index is None:
            index = self._load(self._metadata, row.id,
                               lambda: MetadataIndex.load(self._store.metadata_columns(row.id), row.next_label))
        return index

    def _load(self, table: Dict[str, _T], collection_id: str, load: Callable[[], _T]) -> _T:
        """``table[collection_id]``, loaded once even when several reads ask at the same moment."""
        with self._loading.setdefault(collection_id, threading.Lock()):
            found = table.get(collection_id)
            if found is None:
                found = table[collection_id] = load()
            return found

    def written(self, collection_id: str, batch: RecordBatch) -> None:
        """Apply a committed write to the structures that are loaded."""
        cache = self._records.get(collection_id)
        if cache is not None:
            cache.put(batch.labels, batch.ids, batch.documents, batch.metadata_json)
        index = self._metadata.get(collection_id)
        if index is not None:
            index.put(batch.labels, batch.metadatas)

    def deleted(self, collection_id: str, labels: np.ndarray) -> None:
        """Apply a committed delete to the structures that are loaded."""
        cache = self._records.get(collection_id)
        if cache is not None:
            cache.drop(labels)
        index = self._metadata.get(collection_id)
        if index is not None:
            index.drop(labels)

    def drop(self, collection_id: str) -> None:
        """Forget a collection's structures (deleted, or its rows rewritten)."""
        self._records.pop(collection_id, None)
        self._metadata.pop(collection_id, None)
        self._loading.pop(collection_id, None)

    def clear(self) -> None:
        """Forget every structure (after a repair)."""
        self._records.clear()
        self._metadata.clear()
