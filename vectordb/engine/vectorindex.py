"""One collection's vector index kept in step with its records: open, catch up, apply, save.

A :class:`VectorIndexState` is the :class:`~vectordb.engine.structure.DerivedStructure` of
one collection's vectors: its index (None until loaded, or once dropped), the ``seq`` its
saved files cover, the changes since, and its background work (at most one write's
insertion, :class:`~vectordb.engine.indexjob.IndexJob`, or one catch-up,
:class:`~vectordb.engine.catchup.CatchUp`).

It is opened at the position of its saved files (:mod:`vectordb.engine.indexopen`), and the
records written since (the *tail*) are inserted on a worker thread while queries search them
exactly; saves follow the engine's :class:`~vectordb.engine.structure.SavePolicy`, happen when
a catch-up ends (if due, or if there was no usable saved index), and on close (a catch-up
still running is then stopped, and the graph saved as covering the records it holds).

The workers hold neither the state, the registry nor the store (only the index, its files
and the save gate): a client dropped without ``close()`` is collected and frees the store.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import replace
from typing import Callable, Optional, Union

import numpy as np

from vectordb.engine.catchup import CatchUp
from vectordb.engine.indexjob import IndexJob
from vectordb.engine.indexopen import (
    IMPLEMENTATION, IndexEnv, index_params, matrix_source, new_catch_up, open_at_position, replay,
)
from vectordb.engine.structure import DerivedStructure
from vectordb.errors import StorageError
from vectordb.index.base import VectorIndex
from vectordb.index.tail import Tail
from vectordb.persistence.store import CollectionRow, RecordBatch
from vectordb.persistence.turns import generation_of

log = logging.getLogger("vectordb")

BACKGROUND_MIN = 64
"""Writes of fewer vectors are inserted on the calling thread: a thread would cost more than it saves
(read at run time)."""
APPLY_CHUNK = 32
"""Another process's vectors go into the graph this many at a time: a reader's query waits at most for
one such chunk (a crash's tail goes in bigger chunks: nobody is querying yet, mostly)."""

Searcher = Union[VectorIndex, CatchUp]
"""What answers a collection's queries: its index, or the index and its pending tail."""


class VectorIndexState(DerivedStructure):
    """One collection's vector index, its save position, unsaved changes and background work.

    The engine's locks keep the requests on one collection apart, so a state is touched by
    one thread at a time (besides its workers, which take turns by themselves).
    """

    def __init__(self, env: IndexEnv, collection_id: str) -> None:
        self.env = env
        self.collection_id = collection_id
        self.index: Optional[VectorIndex] = None
        self.saved_seq = -1
        """The ``seq`` the saved files cover (-1: not saved by this engine, nor usable when loaded)."""
        self.position = -1
        self.unsaved = 0
        self.job: Optional[IndexJob] = None
        """The background insertion of a write (its outcome not yet taken in)."""
        self.catchup: Optional[CatchUp] = None
        """The catch-up of an index opened with a tail (until taken in)."""

    @property
    def size(self) -> int:
        return 0 if self.index is None else self.index.count

    @property
    def pending(self) -> int:
        """How many of the collection's vectors are not in its graph yet (its catch-up's tail)."""
        return 0 if self.catchup is None else self.catchup.pending

    # -- background work ----------------------------------------------------------

    def join_job(self) -> None:
        """Let the background insertion of a write (if one runs) finish, and take in its outcome."""
        job = self.job
        if job is None:
            return
        job.join()
        with self.env.jobs_lock:
            if self.job is not job:
                return  # another thread took it in
            self.job = None
        self._take_in(job)  # outside the mutex: it may write to the store (dropping tombstones)

    def _take_in(self, job: IndexJob) -> None:
        """Apply the outcome of a finished job: drop the index if the insertion failed, note a save."""
        if job.error is not None:
            log.error("index update of %r failed (%s); it will be rebuilt from the records", job.row.name, job.error)
            self.forget_index(job.index)
            return
        if job.save_error is not None:
            log.warning("saving the index of %r failed (%s); it stays in memory and is saved later",
                        job.row.name, job.save_error)
        if job.saved:
            self._saved(job.row.seq)

    def end_catch_up(self, finish: bool) -> None:
        """Take in the outcome of the catch-up once it has ended (with ``finish``: after waiting
        for the whole tail to go in)."""
        catchup = self.catchup
        if catchup is None or not (finish or catchup.done):
            return
        catchup.finish()
        self.catchup = None
        if catchup.error is not None:
            log.error("catching up the index failed (%s); it will be rebuilt from the records", catchup.error)
            self.forget_index(catchup.graph)
            return
        if catchup.pending:  # stopped before the end: the graph lacks records; loaded again on next use
            self.forget_index(catchup.graph)
            return
        self.unsaved = catchup.unsaved
        if catchup.save_error is not None:
            log.warning("saving the caught-up index failed (%s); it stays in memory and is saved later",
                        catchup.save_error)
        if catchup.saved_seq is not None:
            self._saved(catchup.saved_seq)

    def stop_catch_up(self) -> Optional[CatchUp]:
        """Stop the catch-up (its graph then lacks the pending tail); the stopped catch-up."""
        catchup, self.catchup = self.catchup, None
        if catchup is not None:
            catchup.stop()
        return catchup

    def settle(self) -> None:
        """Stop all background work (the state is being forgotten)."""
        self.join_job()
        self.stop_catch_up()

    def abandon(self) -> None:
        """Stop the background work of a registry that is gone (its engine dropped without close()):
        a write's insertion stops after its chunk in progress and saves nothing; a catch-up is stopped."""
        job = self.job
        if job is not None:
            job.cancel()
        catchup = self.catchup
        if catchup is not None:
            catchup.stop()

    def loaded(self) -> Optional[VectorIndex]:
        """The index if it is in memory, after any background insertion of a write (it may still be catching up)."""
        self.join_job()
        self.end_catch_up(finish=False)
        return self.index

    # -- open, create, rebuild --------------------------------------------------------

    def _attach(self, index: VectorIndex) -> None:
        """Make ``index`` the collection's, able to fill its exact-search matrix from the store."""
        index.matrix_source = matrix_source(self.env.store, self.collection_id)
        index.search_policy = self.env.search_policy
        self.index = index

    def open(self, row: CollectionRow) -> VectorIndex:
        """Load the saved index, drop what was deleted since, and start catching up with the tail.

        Without a usable saved index, an empty one is caught up with every record.
        """
        index, seq, tail, removed = open_at_position(self.env, row)
        self._attach(index)
        self.saved_seq = seq
        self.position = row.seq
        self.unsaved = removed + tail.count
        if tail.count >= BACKGROUND_MIN:
            log.info("index of %s: %d records to catch up with (in the background), %d deletions applied",
                     row.name, tail.count, removed)
            self.start_catch_up(row, index, tail, removed, fresh=seq < 0)
            return index
        while True:  # a few records: inserted here
            head = tail.head(BACKGROUND_MIN)
            if head is None:
                break
            index.add(*head)
            tail.taken(head[0])
        if self.unsaved:
            log.info("index of %s caught up with %d changes", row.name, self.unsaved)
        if seq < 0 or self.env.policy.due(self.unsaved, index.count):
            self.save(row)
        return index

    def start_catch_up(self, row: CollectionRow, index: VectorIndex, tail: Tail, unsaved: int, fresh: bool,
                       chunk: Optional[int] = None) -> None:
        """Hand ``tail`` to a worker that inserts it into ``index`` (started by the first use), ``chunk``
        vectors at a time (see :func:`~vectordb.engine.indexopen.new_catch_up`)."""
        self.catchup = new_catch_up(self.env, row, index, tail, unsaved, fresh, chunk)

    def rebuild(self, row: CollectionRow) -> VectorIndex:
        """Replace the index by one built from the records (sized to them), and save it."""
        self.join_job()
        self.stop_catch_up()
        count = self.env.store.count(row.id)
        index = IMPLEMENTATION(index_params(row), row.dimension, capacity=max(count, 16))
        replay(self.env.store, index, row.id, -1)
        self._attach(index)
        self.saved_seq = -1
        self.position = row.seq
        self.unsaved = count
        self.save(row)
        return index

    def create(self, row: CollectionRow) -> VectorIndex:
        """A new empty index, once the collection's dimension is known."""
        index = IMPLEMENTATION(index_params(row), row.dimension)
        self._attach(index)
        self.unsaved = 0
        self.saved_seq = -1
        self.position = row.seq
        return index

    def forget_index(self, index: VectorIndex) -> None:
        """Drop ``index`` from memory (if it is still the collection's): it is loaded again on next use."""
        if self.index is index:
            self.index = None

    # -- committed changes -----------------------------------------------------------

    def after_commit(self, new_row: CollectionRow, index: Optional[VectorIndex], labels: np.ndarray,
                     vectors: np.ndarray) -> CollectionRow:
        """Hand a committed write's vectors to ``index`` (the one before the commit), on a worker
        thread for many vectors; a save follows if one is due. Returns ``new_row``."""
        self.join_job()
        self.position = new_row.seq
        catchup = self.catchup
        if catchup is not None:
            if catchup.append(new_row.seq, labels, vectors):
                return new_row  # the catch-up's worker inserts them after what it has pending
            self.end_catch_up(finish=True)  # past inserting: let it end, then go on as usual
        if not len(labels) or index is None or self.index is not index:
            return new_row  # no index to update: it is rebuilt from the records on next use
        env = self.env
        self.unsaved += len(labels)
        due = env.policy.due(self.unsaved, index.count + len(labels))
        folder = env.folder_of(new_row.id)
        job = IndexJob(new_row, index, labels, vectors, folder if due and not env.read_only else None,
                       functools.partial(env.saving, generation_of(env.turns)), env.insertion.write_chunk)
        with env.jobs_lock:
            self.job = job
        job.start(background=len(labels) >= BACKGROUND_MIN)
        return new_row

    def apply_write(self, row: CollectionRow, batch: RecordBatch) -> bool:
        return self.apply_vectors(row, batch.labels, batch.embeddings)

    def apply_vectors(self, row: CollectionRow, labels: np.ndarray, vectors: np.ndarray) -> bool:
        """Apply another process's committed write (``row``: the collection after it), if the index
        is loaded (else it is loaded from the records on next use); False if the index failed and
        was dropped."""
        self.join_job()
        self.position = row.seq
        catchup = self.catchup
        if catchup is not None:
            if catchup.append(row.seq, labels, vectors):
                return True
            self.end_catch_up(finish=True)
        index = self.index
        if index is None or not len(labels) or row.dimension is None:
            return True
        if len(labels) < BACKGROUND_MIN:
            return self._change(row, lambda: index.add(labels, vectors), len(labels))
        # Many vectors: they go into the graph on a worker thread, searched exactly meanwhile
        # (as a tail after a crash is), so that the reader's query does not wait for hnswlib.
        tail = Tail(row.dimension)
        tail.extend(labels, np.full(len(labels), row.seq, dtype=np.int64), vectors)
        self.start_catch_up(row, index, tail, self.unsaved, fresh=False, chunk=APPLY_CHUNK)
        assert self.catchup is not None
        self.catchup.start()
        return True

    def apply_delete(self, row: CollectionRow, labels: np.ndarray) -> bool:
        """Apply a committed delete to the index (if it is loaded); False if the index failed and was dropped."""
        self.join_job()
        self.position = row.seq
        catchup = self.catchup
        if catchup is not None:
            if catchup.remove(row.seq, labels):
                return True
            self.end_catch_up(finish=True)
        index = self.loaded()
        return index is None or self._change(row, lambda: index.remove(labels), len(labels))

    def _change(self, row: CollectionRow, change: Callable[[], None], n: int) -> bool:
        """Run ``change`` on the index, count ``n`` unsaved changes, and save once that is due."""
        try:
            change()
        except Exception:
            log.exception("index update of %r failed; it will be rebuilt from the records", row.name)
            self.index = None  # the state stays: what its saved files cover is still known
            return False
        self.unsaved += n
        if self.save_due(self.env.policy):
            self.save(row)
        return True

    # -- saving ----------------------------------------------------------------------

    def save(self, row: CollectionRow) -> None:
        """Save the index as covering ``row.seq``; a failure (a full disk) is logged: the index is a
        cache, saved again later.

        Until a save succeeds, the next open catches the last saved index up from the
        records (or rebuilds it), so nothing acknowledged depends on this save.
        """
        env = self.env
        folder = env.folder_of(row.id)
        index = self.index
        if folder is None or env.read_only or index is None:
            return
        with env.saving() as allowed:
            if not allowed:
                return  # another process's turn, or catching up: saved later, inside a turn
            try:
                index.save(folder, row.seq, row.id)
            except (OSError, RuntimeError) as exc:  # hnswlib reports a failed write as RuntimeError
                log.warning("saving the index of %r failed (%s); it stays in memory and is saved later",
                            row.name, exc)
                return
            self._saved(row.seq)

    def _saved(self, seq: int) -> None:
        """The index was saved as of ``seq``: older tombstones are no longer needed."""
        self.saved_seq = seq
        self.unsaved = 0
        with self.env.saving() as allowed:
            if not allowed:
                return  # kept tombstones only cost space; a later save drops them
            try:
                self.env.store.forget_tombstones(self.collection_id, seq)
            except StorageError as exc:
                log.warning("dropping the tombstones that a saved index covers failed: %s", exc)

    def flush_catch_up(self, row: Optional[CollectionRow]) -> None:
        """On close (``row``: the collection now, None if gone): take in a catch-up that has ended,
        or stop one still running after its chunk in progress and save its graph (if it gained
        enough, see :meth:`CatchUp.worth_saving`) as covering the records written before the
        oldest one still pending (those after are caught up with on the next open); the graph
        is then dropped from memory."""
        catchup = self.catchup
        if catchup is None:
            return
        if catchup.done and not catchup.pending:
            self.end_catch_up(finish=True)
            return
        self.stop_catch_up()
        self.forget_index(catchup.graph)
        policy = self.env.policy
        worth = catchup.worth_saving(self.saved_seq, policy.min_changes, policy.fraction)
        if row is None or catchup.error is not None or not worth:
            return
        covered = catchup.covered_seq()
        self.index = catchup.graph
        try:
            self.save(replace(row, seq=covered))
        finally:
            self.forget_index(catchup.graph)

    def flush(self, row: Optional[CollectionRow]) -> None:
        """Save the index if it has unsaved changes (on close, after :meth:`flush_catch_up`)."""
        if self.unsaved and row is not None and self.index is not None:
            self.save(row)
