"""Keeps each collection's index in step with the store: load, catch up, rebuild, save.

The index of a collection is loaded on first use. A saved index covers the records
up to its ``seq``; anything written after that is replayed from DuckDB (deleted
labels from the tombstones, added or changed vectors from the records). A missing,
corrupt or inconsistent index is rebuilt from the records. Saves are amortised: an
index is written once the changes since its last save reach a share of its size,
and on close.

Inserting a write's vectors into the graph is the costliest step of a write, so it
runs in the background: a write returns once its records are committed to DuckDB
(durable), while its vectors go into the index on a worker thread. The next write's
validation and commit overlap with that insertion; anything that reads or changes an
index first waits for it (:meth:`IndexManager.wait`), so every read sees every
acknowledged write. At most one such job runs per collection, and a read of one
collection waits only for that collection's job (``wait(collection_id)``).

Threads: the engine's locks (:mod:`vectordb.engine.locks`) keep the requests on one
collection apart (a change excludes everything else on it, and reads load and wait for
its index one at a time), so each collection's index, counters and job are touched by
one thread at a time; a mutex of the manager guards only the table of jobs.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import replace
from typing import Callable, Dict, Optional

import numpy as np

from vectordb.errors import StorageError
from vectordb.index import settings
from vectordb.index.base import IndexParams, VectorIndex
from vectordb.index.hnsw import HnswIndex
from vectordb.persistence.store import CollectionRow, Store

log = logging.getLogger("vectordb")

SAVE_MIN_CHANGES = 50_000
SAVE_FRACTION = 0.5
BACKGROUND_MIN = 64
"""Writes of fewer vectors are inserted on the calling thread: a thread would cost more than it saves."""


IMPLEMENTATION = HnswIndex
"""The :class:`VectorIndex` class new and saved indexes are made with."""


def index_params(row: CollectionRow) -> IndexParams:
    """The index settings of a collection (see :mod:`vectordb.index.settings`)."""
    return settings.index_params(row.metadata, row.metric)


class IndexManager:
    """The live indexes of one store, and their files under ``<path>/index/<collection id>/``."""

    def __init__(self, store: Store, folder: Optional[str], read_only: bool = False) -> None:
        self.store = store
        self.folder = folder
        self.read_only = read_only
        self._indexes: Dict[str, VectorIndex] = {}
        self._unsaved: Dict[str, int] = {}
        self._saved_seq: Dict[str, int] = {}
        self._jobs: Dict[str, _IndexJob] = {}
        """The background insertion of each collection that has one (its outcome not yet taken in)."""
        self._jobs_lock = threading.Lock()

    def _folder_of(self, collection_id: str) -> Optional[str]:
        return None if self.folder is None else os.path.join(self.folder, collection_id)

    def remove_orphans(self, known_ids: set) -> None:
        """Delete index folders of collections no longer in the catalog."""
        if self.folder is None or self.read_only or not os.path.isdir(self.folder):
            return
        for name in os.listdir(self.folder):
            if name not in known_ids:
                shutil.rmtree(os.path.join(self.folder, name), ignore_errors=True)

    def wait(self, collection_id: Optional[str] = None) -> None:
        """Let the collection's background index insertion (if one runs) finish, and take in its outcome.

        Without ``collection_id``, every collection's (for a flush, a check, a close).
        Other collections' insertions go on meanwhile.
        """
        with self._jobs_lock:
            ids = list(self._jobs) if collection_id is None else [collection_id]
        for cid in ids:
            job = self._jobs.get(cid)
            if job is None:
                continue
            job.join()
            with self._jobs_lock:
                if self._jobs.get(cid) is not job:
                    continue  # another thread took it in
                del self._jobs[cid]
            self._take_in(job)  # outside the mutex: it may write to the store (dropping tombstones)

    def _take_in(self, job: "_IndexJob") -> None:
        """Apply the outcome of a finished job: drop the index if the insertion failed, note a save."""
        collection_id = job.row.id
        if job.error is not None:
            log.error("index update of %r failed (%s); it will be rebuilt from the records", job.row.name, job.error)
            if self._indexes.get(collection_id) is job.index:
                del self._indexes[collection_id]
            return
        if job.save_error is not None:
            log.warning("saving the index of %r failed (%s); it stays in memory and is saved later",
                        job.row.name, job.save_error)
        if job.saved:
            self._saved(job.row)

    def loaded(self, collection_id: str) -> Optional[VectorIndex]:
        """The collection's index if it is in memory (after any background insertion), without loading it."""
        self.wait(collection_id)
        return self._indexes.get(collection_id)

    def get(self, row: CollectionRow) -> Optional[VectorIndex]:
        """The collection's index, caught up with the store; None while it has no vectors."""
        self.wait(row.id)
        index = self._indexes.get(row.id)
        if index is not None:
            return index
        if row.dimension is None:
            return None
        index = self._open(row)
        self._attach(index, row.id)
        return index

    def _attach(self, index: VectorIndex, collection_id: str) -> None:
        """Make ``index`` the collection's, able to fill its exact-search matrix from the store."""
        store = self.store  # not self: the index must not keep its manager alive (no reference cycle)
        index.matrix_source = lambda: store.vectors_since(collection_id, -1, chunk=8192)
        self._indexes[collection_id] = index

    def _open(self, row: CollectionRow) -> VectorIndex:
        params = index_params(row)
        folder = self._folder_of(row.id)
        loaded = IMPLEMENTATION.load(folder, params, row.dimension, row.id) if folder else None
        labels = self.store.select_labels(row.id)
        count = len(labels)
        if loaded is not None:
            index, seq = loaded
            if seq <= row.seq:
                replayed = self._catch_up(index, row.id, seq)
                if np.array_equal(index.live_labels(), labels):
                    self._saved_seq[row.id] = seq
                    self._unsaved[row.id] = replayed
                    if replayed:
                        log.info("index of %s caught up with %d changes", row.name, replayed)
                        self._indexes[row.id] = index
                        self._save(row)
                    return index
            log.warning("index of collection %r disagrees with its records; rebuilding it", row.name)
        elif folder is not None and count:
            log.warning("collection %r has no usable saved index; rebuilding it from the records", row.name)
        return self.rebuild(row)

    def rebuild(self, row: CollectionRow) -> VectorIndex:
        """Replace the collection's index by one built from its records (sized to them), and save it."""
        self.wait(row.id)
        count = self.store.count(row.id)
        index = IMPLEMENTATION(index_params(row), row.dimension, capacity=max(count, 16))
        self._catch_up(index, row.id, -1)
        self._attach(index, row.id)
        self._saved_seq[row.id] = -1
        self._unsaved[row.id] = count
        self._save(row)
        return index

    def _catch_up(self, index: VectorIndex, collection_id: str, seq: int) -> int:
        deleted = self.store.tombstones_since(collection_id, seq)
        index.remove(deleted)
        changed = len(deleted)
        for labels, vectors in self.store.vectors_since(collection_id, seq):
            index.add(labels, vectors)
            changed += len(labels)
        return changed

    def create(self, row: CollectionRow) -> VectorIndex:
        """A new empty index, once the collection's dimension is known."""
        index = IMPLEMENTATION(index_params(row), row.dimension)
        self._attach(index, row.id)
        self._unsaved[row.id] = 0
        self._saved_seq[row.id] = -1
        return index

    def add_after_commit(
        self,
        row: CollectionRow,
        dimension: int,
        labels: np.ndarray,
        vectors: np.ndarray,
        commit: Callable[[], CollectionRow],
    ) -> CollectionRow:
        """Run ``commit`` (the store's transaction for a write), then hand its vectors to the index.

        The commit overlaps with the previous write's insertion into the graph; this
        write's insertion starts in the background once that one is done (see the module
        docstring). If the commit raises, nothing reaches the index. Returns ``commit``'s
        result.
        """
        index = self._indexes.get(row.id)
        if index is None and len(labels):
            # Load (and catch up) before committing, so the new records are not replayed as well.
            index = self.create(replace(row, dimension=dimension)) if row.dimension is None else self.get(row)
        new_row = commit()
        self.wait(row.id)
        if not len(labels) or index is None or self._indexes.get(row.id) is not index:
            return new_row  # no index to update: it is rebuilt from the records on next use
        unsaved = self._unsaved.get(row.id, 0) + len(labels)
        self._unsaved[row.id] = unsaved
        folder = self._folder_of(row.id)
        due = _save_due(unsaved, index.count + len(labels))
        job = _IndexJob(new_row, index, labels, vectors, folder if due and not self.read_only else None)
        with self._jobs_lock:
            self._jobs[row.id] = job
        job.start(background=len(labels) >= BACKGROUND_MIN)
        return new_row

    def remove(self, row: CollectionRow, labels: np.ndarray) -> None:
        """Apply a committed delete to the index (if it is loaded)."""
        index = self.loaded(row.id)
        if index is not None:
            self._apply(row, lambda: index.remove(labels), len(labels))

    def _apply(self, row: CollectionRow, change: Callable[[], None], n: int) -> None:
        try:
            change()
        except Exception:
            log.exception("index update of %r failed; it will be rebuilt from the records", row.name)
            self._indexes.pop(row.id, None)
            return
        self._count_change(row, n)

    def _count_change(self, row: CollectionRow, n: int) -> None:
        """Note ``n`` unsaved changes; save once they reach a share of the index's size."""
        self._unsaved[row.id] = self._unsaved.get(row.id, 0) + n
        index = self._indexes[row.id]
        if _save_due(self._unsaved[row.id], index.count):
            self._save(row)

    def _save(self, row: CollectionRow) -> None:
        """Save the index; a failure (a full disk) is logged: the index is a cache, saved again later.

        Until a save succeeds, the next open catches the last saved index up from the
        records (or rebuilds it), so nothing acknowledged depends on this save.
        """
        folder = self._folder_of(row.id)
        index = self._indexes.get(row.id)
        if folder is None or self.read_only or index is None:
            return
        try:
            index.save(folder, row.seq, row.id)
        except (OSError, RuntimeError) as exc:  # hnswlib reports a failed write as RuntimeError
            log.warning("saving the index of %r failed (%s); it stays in memory and is saved later", row.name, exc)
            return
        self._saved(row)

    def _saved(self, row: CollectionRow) -> None:
        """The index was saved as of ``row.seq``: older tombstones are no longer needed."""
        self._saved_seq[row.id] = row.seq
        self._unsaved[row.id] = 0
        try:
            self.store.forget_tombstones(row.id, row.seq)
        except StorageError as exc:  # kept tombstones only cost space; a later save drops them
            log.warning("dropping the tombstones of %r that its saved index covers failed: %s", row.name, exc)

    def flush(self, rows: Dict[str, CollectionRow]) -> None:
        """Save every index with unsaved changes (on close)."""
        self.wait()
        for collection_id, unsaved in list(self._unsaved.items()):
            row = rows.get(collection_id)
            if unsaved and row is not None and collection_id in self._indexes:
                self._save(row)

    def drop(self, collection_id: str) -> None:
        """Forget a deleted collection's index and remove its files."""
        self.wait(collection_id)
        self._indexes.pop(collection_id, None)
        self._unsaved.pop(collection_id, None)
        folder = self._folder_of(collection_id)
        if folder is not None and os.path.isdir(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _save_due(unsaved: int, count: int) -> bool:
    """Whether an index of ``count`` vectors with ``unsaved`` changes since its last save should be saved."""
    return unsaved >= max(SAVE_MIN_CHANGES, SAVE_FRACTION * count)


class _IndexJob:
    """One write's vectors going into an index on a worker thread, then a save if one is due.

    The thread touches only the index and its files (never DuckDB); the manager takes in
    the outcome in :meth:`IndexManager.wait`.
    """

    def __init__(
        self, row: CollectionRow, index: VectorIndex, labels: np.ndarray, vectors: np.ndarray, save_to: Optional[str]
    ) -> None:
        self.row = row
        self.index = index
        self.labels = labels
        self.vectors = vectors
        self.save_to = save_to
        self.saved = False
        self.error: Optional[BaseException] = None
        self.save_error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name="vectordb-index")

    def start(self, background: bool) -> None:
        """Run on the worker thread, or right here (the outcome is taken in the same way)."""
        if background:
            self.thread.start()
        else:
            self._run()

    def join(self) -> None:
        """Wait for the job to end."""
        if self.thread.ident is not None:  # started on the worker thread
            self.thread.join()

    def _run(self) -> None:
        try:
            self.index.add(self.labels, self.vectors)
        except BaseException as exc:  # taken in by the manager's wait(); an interrupt also goes on up
            self.error = exc
            if not isinstance(exc, Exception):
                raise
            return
        if self.save_to is None:
            return
        try:
            self.index.save(self.save_to, self.row.seq, self.row.id)
            self.saved = True
        except Exception as exc:
            self.save_error = exc
