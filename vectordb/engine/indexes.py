"""Keeps each collection's index in step with the store: load, catch up, rebuild, save.

The index of a collection is loaded on first use. A saved index covers the records
up to its ``seq``; deleted labels since then are removed from it at once (from the
tombstones), and the records written since (the *tail*: after a crash, up to the
changes between two saves) are read from DuckDB into a dense matrix and inserted on a
worker thread (:mod:`vectordb.engine.catchup`); until they are in, queries search them
exactly and merge them with the graph's results, so the first query does not wait for
the replay. A missing, corrupt or inconsistent index is started afresh the same way,
with every record as its tail. Saves are amortised: an index is written once the
changes since its last save reach a share of its size, when a catch-up ends (if that
is due, or if there was no usable saved index), and on close (a catch-up still running
then is stopped, and the graph saved as covering the records it holds).


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
one thread at a time; a mutex of the manager guards only the table of jobs. A catch-up
(:class:`~vectordb.engine.catchup.CatchUp`) takes turns with its worker by itself.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
import weakref
from dataclasses import replace
from typing import Callable, ContextManager, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from vectordb.engine.catchup import CatchUp, covers, read_tail, stop_all
from vectordb.errors import StorageError
from vectordb.index import settings
from vectordb.index.base import IndexParams, VectorIndex
from vectordb.index.hnsw import HnswIndex
from vectordb.index.tail import Tail
from vectordb.persistence.store import CollectionRow, Store
from vectordb.persistence.turns import Turns, generation_of, save_gate

log = logging.getLogger("vectordb")

SAVE_MIN_CHANGES = 50_000
SAVE_FRACTION = 0.5
BACKGROUND_MIN = 64
"""Writes of fewer vectors are inserted on the calling thread: a thread would cost more than it saves."""
APPLY_CHUNK = 32
"""Another process's vectors go into the graph this many at a time: a reader's query waits at most for
one such chunk (a crash's tail goes in bigger chunks: nobody is querying yet, mostly)."""
JOB_CHUNK = 1024
"""A write's insertion goes in chunks of this many vectors, so that a dropped engine's job stops soon."""


IMPLEMENTATION = HnswIndex
"""The :class:`VectorIndex` class new and saved indexes are made with."""

Searcher = Union[VectorIndex, CatchUp]
"""What answers a collection's queries: its index, or the index and its pending tail."""


def index_params(row: CollectionRow) -> IndexParams:
    """The index settings of a collection (see :mod:`vectordb.index.settings`)."""
    return settings.index_params(row.metadata, row.metric)


class IndexManager:
    """The live indexes of one store, and their files under ``<path>/index/<collection id>/``."""

    def __init__(self, store: Store, folder: Optional[str], read_only: bool = False,
                 turns: Optional[Turns] = None) -> None:
        """``turns``: a store shared by processes saves files only inside this process's turn."""
        self.store = store
        self.folder = folder
        self.read_only = read_only
        self._turns = turns
        self._saving = save_gate(turns)
        self._indexes: Dict[str, VectorIndex] = {}
        self._unsaved: Dict[str, int] = {}
        self._saved_seq: Dict[str, int] = {}
        self._jobs: Dict[str, _IndexJob] = {}
        """The background insertion of each collection that has one (its outcome not yet taken in)."""
        self._jobs_lock = threading.Lock()
        self._catchups: Dict[str, CatchUp] = {}
        """The catch-up of each collection whose index was opened with a tail (until taken in)."""
        # A dropped engine's workers stop (at exit, close() does that for the engines still open):
        # they would compete with a client that opens the store again, and save into its folder.
        weakref.finalize(self, _abandon, self._jobs, self._catchups).atexit = False

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
        """Let the collection's background index work (a write's insertion, a catch-up) finish, and take
        in its outcome; without ``collection_id``, every collection's (for a check, or in tests)."""
        self._join_jobs(collection_id)
        for cid in list(self._catchups) if collection_id is None else [collection_id]:
            self._end_catch_up(cid, finish=True)

    def pending(self, collection_id: str) -> int:
        """How many of the collection's vectors are not in its graph yet (its catch-up's tail)."""
        catchup = self._catchups.get(collection_id)
        return 0 if catchup is None else catchup.pending

    def _join_jobs(self, collection_id: Optional[str] = None) -> None:
        """Let the collection's background insertion of a write (if one runs) finish, and take in its outcome.

        Without ``collection_id``, every collection's (for a flush, a close).
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
            self._saved(job.row.id, job.row.seq)

    def loaded(self, collection_id: str) -> Optional[VectorIndex]:
        """The collection's index if it is in memory (after any background insertion of a write),
        without loading it; it may still be catching up (its counts and settings are current)."""
        self._join_jobs(collection_id)
        self._end_catch_up(collection_id, finish=False)
        return self._indexes.get(collection_id)

    def get(self, row: CollectionRow) -> Optional[VectorIndex]:
        """The collection's index, with every record in it; None while it has no vectors."""
        index = self._load(row)
        if row.id in self._catchups:
            self._end_catch_up(row.id, finish=True)
            index = self._indexes.get(row.id)
            if index is None:  # the catch-up failed: build it here, from the records
                index = self.rebuild(row)
        return index

    def searcher(self, row: CollectionRow) -> Optional[Searcher]:
        """What answers the collection's queries now, without waiting for a catch-up; None while it has no vectors."""
        if self._load(row) is None:
            return None
        return self._catchups.get(row.id) or self._indexes.get(row.id)

    def _load(self, row: CollectionRow) -> Optional[VectorIndex]:
        """The collection's index, loaded if needed (its tail possibly still pending)."""
        self._join_jobs(row.id)
        self._end_catch_up(row.id, finish=False)
        index = self._indexes.get(row.id)
        if index is None and row.dimension is not None:
            index = self._open(row)
        return index

    def _attach(self, index: VectorIndex, collection_id: str) -> None:
        """Make ``index`` the collection's, able to fill its exact-search matrix from the store."""
        # Weakly: the index (which a worker thread may hold) must keep neither its manager nor the
        # store alive, so that a client dropped without close() is collected and frees the store lock.
        store = weakref.ref(self.store)

        def source() -> Iterator[Tuple[np.ndarray, np.ndarray]]:
            alive = store()
            return iter(()) if alive is None else alive.vectors_since(collection_id, -1, chunk=8192)

        index.matrix_source = source
        self._indexes[collection_id] = index

    def _open(self, row: CollectionRow) -> VectorIndex:
        """Load the saved index, drop what was deleted since, and start catching up with the tail.

        Without a usable saved index, an empty one is caught up with every record.
        """
        assert row.dimension is not None
        params = index_params(row)
        folder = self._folder_of(row.id)
        loaded = IMPLEMENTATION.load(folder, params, row.dimension, row.id) if folder else None
        labels = self.store.select_labels(row.id)
        opened = None
        if loaded is not None:
            index, seq = loaded
            if seq <= row.seq:
                deleted = self.store.tombstones_since(row.id, seq)
                index.remove(deleted)
                tail = read_tail(self.store, row.id, row.dimension, seq)
                if covers(index.live_labels(), tail.labels(), labels):
                    opened = index, seq, tail, len(deleted)
            if opened is None:
                log.warning("index of collection %r disagrees with its records; rebuilding it", row.name)
        elif folder is not None and len(labels):
            if _never_saved(folder):  # normal after a client that was not closed: nothing is wrong
                log.info("collection %r has no saved index (normal when its client was not closed); "
                         "building it from the records", row.name)
            else:
                log.warning("collection %r has no usable saved index; rebuilding it from the records", row.name)
        if opened is None:
            fresh = IMPLEMENTATION(params, row.dimension, capacity=max(len(labels), 16))
            opened = fresh, -1, read_tail(self.store, row.id, row.dimension, -1), 0
        index, seq, tail, removed = opened
        self._attach(index, row.id)
        self._saved_seq[row.id] = seq
        self._unsaved[row.id] = removed + tail.count
        if tail.count >= BACKGROUND_MIN:
            log.info("index of %s: %d records to catch up with (in the background), %d deletions applied",
                     row.name, tail.count, removed)
            self._start_catch_up(row, index, tail, removed, fresh=seq < 0)
            return index
        while True:  # a few records: inserted here
            head = tail.head(BACKGROUND_MIN)
            if head is None:
                break
            index.add(*head)
            tail.taken(head[0])
        if self._unsaved[row.id]:
            log.info("index of %s caught up with %d changes", row.name, self._unsaved[row.id])
        if seq < 0 or _save_due(self._unsaved[row.id], index.count):
            self._save(row)
        return index

    def _start_catch_up(self, row: CollectionRow, index: VectorIndex, tail: Tail, removed: int, fresh: bool,
                        chunk: Optional[int] = None) -> None:
        """Hand ``tail`` to a worker that inserts it into ``index`` (started by the first use), ``chunk``
        vectors at a time (see :class:`CatchUp`)."""
        folder = None if self.read_only else self._folder_of(row.id)
        collection_id = row.id

        generation = generation_of(self._turns)
        saving = self._saving  # not self: the manager's finalizer holds the catch-ups, which must not hold it

        def save(seq: int) -> bool:
            assert folder is not None
            with saving(generation) as allowed:
                if allowed:
                    index.save(folder, seq, collection_id)
                return allowed

        def due(unsaved: int, count: int) -> bool:
            return fresh or _save_due(unsaved, count)

        self._catchups[row.id] = CatchUp(
            index, tail, row.seq, removed + tail.count, save if folder is not None else None, due,
            backlog_max=max(tail.count, SAVE_MIN_CHANGES), chunk=chunk,
        )

    def _end_catch_up(self, collection_id: str, finish: bool) -> None:
        """Take in the outcome of the collection's catch-up once it has ended (with ``finish``:
        after waiting for the whole tail to go in)."""
        catchup = self._catchups.get(collection_id)
        if catchup is None or not (finish or catchup.done):
            return
        catchup.finish()
        del self._catchups[collection_id]
        if catchup.error is not None:
            log.error("catching up the index failed (%s); it will be rebuilt from the records", catchup.error)
            self._forget(collection_id, catchup.graph)
            return
        if catchup.pending:  # stopped before the end: the graph lacks records; loaded again on next use
            self._forget(collection_id, catchup.graph)
            return
        self._unsaved[collection_id] = catchup.unsaved
        if catchup.save_error is not None:
            log.warning("saving the caught-up index failed (%s); it stays in memory and is saved later",
                        catchup.save_error)
        if catchup.saved_seq is not None:
            self._saved(collection_id, catchup.saved_seq)

    def _stop_catch_up(self, collection_id: str) -> Optional[CatchUp]:
        """Stop the collection's catch-up (its graph then lacks the pending tail); the stopped catch-up."""
        catchup = self._catchups.pop(collection_id, None)
        if catchup is not None:
            catchup.stop()
        return catchup

    def _forget(self, collection_id: str, index: VectorIndex) -> None:
        """Drop ``index`` from memory (if it is still the collection's): it is loaded again on next use."""
        if self._indexes.get(collection_id) is index:
            del self._indexes[collection_id]


    def rebuild(self, row: CollectionRow) -> VectorIndex:
        """Replace the collection's index by one built from its records (sized to them), and save it."""
        self._join_jobs(row.id)
        self._stop_catch_up(row.id)
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
            # Load (and read the tail) before committing, so the new records are not replayed as well.
            index = self.create(replace(row, dimension=dimension)) if row.dimension is None else self._load(row)
        new_row = commit()
        self._join_jobs(row.id)
        catchup = self._catchups.get(row.id)
        if catchup is not None:
            if catchup.append(new_row.seq, labels, vectors):
                return new_row  # the catch-up's worker inserts them after what it has pending
            self._end_catch_up(row.id, finish=True)  # past inserting: let it end, then go on as usual
        if not len(labels) or index is None or self._indexes.get(row.id) is not index:
            return new_row  # no index to update: it is rebuilt from the records on next use
        unsaved = self._unsaved.get(row.id, 0) + len(labels)
        self._unsaved[row.id] = unsaved
        folder = self._folder_of(row.id)
        due = _save_due(unsaved, index.count + len(labels))
        job = _IndexJob(new_row, index, labels, vectors, folder if due and not self.read_only else None,
                        functools.partial(self._saving, generation_of(self._turns)))
        with self._jobs_lock:
            self._jobs[row.id] = job
        job.start(background=len(labels) >= BACKGROUND_MIN)
        return new_row

    def applied(self, row: CollectionRow, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Apply another process's committed write (``row``: the collection after it) to the index,
        if it is loaded (else it is loaded from the records on next use)."""
        self._join_jobs(row.id)
        catchup = self._catchups.get(row.id)
        if catchup is not None:
            if catchup.append(row.seq, labels, vectors):
                return
            self._end_catch_up(row.id, finish=True)
        index = self._indexes.get(row.id)
        if index is None or not len(labels) or row.dimension is None:
            return
        if len(labels) < BACKGROUND_MIN:
            self._apply(row, lambda: index.add(labels, vectors), len(labels))
            return
        # Many vectors: they go into the graph on a worker thread, searched exactly meanwhile
        # (as a tail after a crash is), so that the reader's query does not wait for hnswlib.
        tail = Tail(row.dimension)
        tail.extend(labels, np.full(len(labels), row.seq, dtype=np.int64), vectors)
        self._start_catch_up(row, index, tail, self._unsaved.get(row.id, 0), fresh=False, chunk=APPLY_CHUNK)
        self._catchups[row.id].start()

    def remove(self, row: CollectionRow, labels: np.ndarray) -> None:
        """Apply a committed delete to the index (if it is loaded)."""
        self._join_jobs(row.id)
        catchup = self._catchups.get(row.id)
        if catchup is not None:
            if catchup.remove(row.seq, labels):
                return
            self._end_catch_up(row.id, finish=True)
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
        with self._saving() as allowed:
            if not allowed:
                return  # another process's turn, or catching up: saved later, inside a turn
            try:
                index.save(folder, row.seq, row.id)
            except (OSError, RuntimeError) as exc:  # hnswlib reports a failed write as RuntimeError
                log.warning("saving the index of %r failed (%s); it stays in memory and is saved later",
                            row.name, exc)
                return
            self._saved(row.id, row.seq)

    def _saved(self, collection_id: str, seq: int) -> None:
        """The index was saved as of ``seq``: older tombstones are no longer needed."""
        self._saved_seq[collection_id] = seq
        self._unsaved[collection_id] = 0
        with self._saving() as allowed:
            if not allowed:
                return  # kept tombstones only cost space; a later save drops them
            try:
                self.store.forget_tombstones(collection_id, seq)
            except StorageError as exc:
                log.warning("dropping the tombstones that a saved index covers failed: %s", exc)

    def flush(self, rows: Dict[str, CollectionRow]) -> None:
        """Save every index with unsaved changes (on close).

        A catch-up still running is stopped after its chunk in progress, and its graph (if it
        gained enough, see :meth:`CatchUp.worth_saving`) saved as covering the records written
        before the oldest one still pending (those after are caught up with on the next
        open); the graph is then dropped from memory.
        """
        self._join_jobs()
        for collection_id in list(self._catchups):
            catchup = self._catchups[collection_id]
            if catchup.done and not catchup.pending:
                self._end_catch_up(collection_id, finish=True)
                continue
            self._stop_catch_up(collection_id)
            row = rows.get(collection_id)
            self._forget(collection_id, catchup.graph)
            worth = catchup.worth_saving(self._saved_seq.get(collection_id, -1), SAVE_MIN_CHANGES, SAVE_FRACTION)
            if row is None or catchup.error is not None or not worth:
                continue
            covered = catchup.covered_seq()
            self._indexes[collection_id] = catchup.graph
            try:
                self._save(replace(row, seq=covered))
            finally:
                self._forget(collection_id, catchup.graph)
        for collection_id, unsaved in list(self._unsaved.items()):
            row = rows.get(collection_id)
            if unsaved and row is not None and collection_id in self._indexes:
                self._save(row)

    def forget(self, collection_id: str) -> None:
        """Drop the collection's index from memory, keeping its files: it is loaded and caught
        up from the records on next use (after a failed commit, whose outcome is read back)."""
        self._join_jobs(collection_id)
        self._stop_catch_up(collection_id)
        self._indexes.pop(collection_id, None)
        self._unsaved.pop(collection_id, None)
        self._saved_seq.pop(collection_id, None)

    def drop(self, collection_id: str) -> None:
        """Forget a deleted collection's index and remove its files."""
        self.forget(collection_id)
        folder = self._folder_of(collection_id)
        if folder is not None and os.path.isdir(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _abandon(jobs: Dict[str, "_IndexJob"], catchups: Dict[str, CatchUp]) -> None:
    """Stop the background work of a manager that is gone (its engine was dropped without close())."""
    for job in list(jobs.values()):
        job.cancel()
    stop_all(catchups)


def _never_saved(folder: str) -> bool:
    """Whether the index folder holds no saved file at all (absent, empty, or only the ``.tmp``
    files of a first save cut short before its renames): the index was never saved, which is
    normal, not damage. A saved file that is unusable makes :meth:`VectorIndex.load` warn."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return all(name.endswith(".tmp") for name in names)


def _save_due(unsaved: int, count: int) -> bool:
    """Whether an index of ``count`` vectors with ``unsaved`` changes since its last save should be saved."""
    return unsaved >= max(SAVE_MIN_CHANGES, SAVE_FRACTION * count)


class _IndexJob:
    """One write's vectors going into an index on a worker thread, then a save if one is due.

    The thread touches only the index and its files (never DuckDB); the manager takes in
    the outcome in :meth:`IndexManager.wait`.
    """

    def __init__(
        self, row: CollectionRow, index: VectorIndex, labels: np.ndarray, vectors: np.ndarray, save_to: Optional[str],
        saving: Callable[[], "ContextManager[bool]"],
    ) -> None:
        """``saving()``: whether the save may happen when the insertion is done (see IndexManager)."""
        self.row = row
        self.saving = saving
        self.index = index
        self.labels = labels
        self.vectors = vectors
        self.save_to = save_to
        self.saved = False
        self.error: Optional[BaseException] = None
        self.save_error: Optional[BaseException] = None
        self.cancelled = False
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

    def cancel(self) -> None:
        """Stop after the chunk in progress, and save nothing (the manager is gone: a dropped engine)."""
        self.cancelled = True

    def _run(self) -> None:
        try:
            add = self.index.add  # bound once: the whole write goes in through the same method
            for start in range(0, len(self.labels), JOB_CHUNK):
                if self.cancelled:
                    return
                add(self.labels[start: start + JOB_CHUNK], self.vectors[start: start + JOB_CHUNK])
        except BaseException as exc:  # taken in by the manager's wait(); an interrupt also goes on up
            self.error = exc
            if not isinstance(exc, Exception):
                raise
            return
        if self.save_to is None or self.cancelled:
            return
        try:
            with self.saving() as allowed:
                if allowed:
                    self.index.save(self.save_to, self.row.seq, self.row.id)
                    self.saved = True
        except Exception as exc:
            self.save_error = exc
