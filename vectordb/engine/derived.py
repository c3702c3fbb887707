"""The in-memory structures derived from each collection's records, kept in step with the store.

Two structures answer reads without a DuckDB round trip: the :class:`RecordCache`
(ids, documents, metadata by label, for assembling results) and the
:class:`MetadataIndex` (typed metadata columns, for ``where`` filters). Both follow
one life cycle, owned here: loaded from the store on first use, brought up to date by
every committed write and delete of this engine (the store's only writer), dropped
with their collection or when a repair rewrites the rows they mirror. Dropping one
loses nothing: it is loaded again.

Each collection's pair is one :class:`CollectionRecords` (a
:class:`~vectordb.engine.structure.DerivedStructure` kept only in memory: nothing to save or
catch up); :class:`DerivedStructures` is their registry (``drop`` and ``clear`` forget them).

Threads: several reads of one collection run at once, so a structure is loaded under a
mutex of its collection (two first reads load it once; other collections load theirs
meanwhile). Changes come only from a write or delete, which the engine runs alone on
its collection.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np

from vectordb.engine.cache import RecordCache
from vectordb.engine.structure import DerivedStructure, StructureRegistry
from vectordb.filters.metadata_index import MAX_KEYS, MetadataIndex
from vectordb.persistence.store import CollectionRow, RecordBatch, Store


class CollectionRecords(DerivedStructure):
    """One collection's record cache and metadata index, each loaded on first use (None until then).

    Kept only in memory: nothing to save, nothing to catch up (a structure is loaded whole,
    at the position of the collection then, and every later change is applied to it).
    """

    def __init__(self, collection_id: str) -> None:
        self.collection_id = collection_id
        self.cache: Optional[RecordCache] = None
        self.metadata: Optional[MetadataIndex] = None
        self.loading = threading.Lock()
        """Held while one of them loads: two first reads load it once."""

    @property
    def size(self) -> int:
        return 0 if self.cache is None else self.cache.count()

    def load_cache(self, load: Callable[[], RecordCache]) -> RecordCache:
        """The record cache, loaded with ``load()`` once even when several reads ask at the same moment."""
        with self.loading:
            if self.cache is None:
                self.cache = load()
            return self.cache

    def load_metadata(self, load: Callable[[], MetadataIndex]) -> MetadataIndex:
        """The metadata index, loaded with ``load()`` once even when several reads ask at the same moment."""
        with self.loading:
            if self.metadata is None:
                self.metadata = load()
            return self.metadata

    def apply_write(self, row: CollectionRow, batch: RecordBatch) -> bool:
        self.put(batch)
        self.position = row.seq
        return True

    def put(self, batch: RecordBatch) -> None:
        """Apply a committed write to the structures that are loaded."""
        cache = self.cache
        if cache is not None:
            cache.put(batch.labels, batch.ids, batch.documents, batch.metadata_json)
        index = self.metadata
        if index is not None:
            index.put(batch.labels, batch.metadatas)

    def apply_delete(self, row: CollectionRow, labels: np.ndarray) -> bool:
        self.remove(labels)
        self.position = row.seq
        return True

    def remove(self, labels: np.ndarray) -> None:
        """Apply a committed delete to the structures that are loaded."""
        cache = self.cache
        if cache is not None:
            cache.drop(labels)
        index = self.metadata
        if index is not None:
            index.drop(labels)


class DerivedStructures(StructureRegistry[CollectionRecords]):
    """The record cache and metadata index of every collection of one store."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self._store = store

    def _state_for(self, row: CollectionRow) -> CollectionRecords:
        state = self._states.get(row.id)
        if state is None:  # setdefault: two first reads at the same moment share one state (and its lock)
            state = self._states.setdefault(row.id, CollectionRecords(row.id))
        return state

    def records(self, row: CollectionRow) -> RecordCache:
        """The collection's ids, documents and metadata by label."""
        state = self._states.get(row.id)
        cache = None if state is None else state.cache
        if cache is None:
            cache = self._state_for(row).load_cache(
                lambda: RecordCache.load(self._store.cached_columns(row.id), row.next_label))
        return cache

    def metadata(self, row: CollectionRow) -> MetadataIndex:
        """The collection's typed metadata columns, for ``where`` filters."""
        state = self._states.get(row.id)
        index = None if state is None else state.metadata
        if index is None:
            index = self._state_for(row).load_metadata(
                lambda: MetadataIndex.load(self._store.metadata_columns(row.id, MAX_KEYS), row.next_label))
        return index

    def written(self, collection_id: str, batch: RecordBatch) -> None:
        """Apply a committed write to the structures that are loaded."""
        state = self._states.get(collection_id)
        if state is not None:
            state.put(batch)

    def deleted(self, collection_id: str, labels: np.ndarray) -> None:
        """Apply a committed delete to the structures that are loaded."""
        state = self._states.get(collection_id)
        if state is not None:
            state.remove(labels)
