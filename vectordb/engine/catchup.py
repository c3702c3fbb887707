"""Catching a loaded index up with its records on a worker thread, while queries answer exactly.

After an unclean end, the saved index of a collection lacks the records written after
its ``seq`` (the *tail*; up to max(50,000, half the collection)). :class:`CatchUp` holds
the loaded graph and that tail (:class:`vectordb.index.tail.Tail`) and inserts the tail
into the graph on a worker thread, a chunk of vectors at a time (``chunk``). Until
it is done:

* a query searches the graph, without the labels whose current vectors are still
  pending (the graph holds an older vector for them), and the pending vectors exactly,
  and merges the two: every acknowledged write is seen;
* a write's vectors join the tail (behind what is pending, so a label's newest vector
  wins), and a delete drops the label from the tail and from the graph;
* anything else (a check, a compaction, close) first waits for it or stops it.

hnswlib does not allow a search during an insertion, so the worker and the callers take
turns: the worker inserts one chunk while no caller waits, and a caller waits at most
for the chunk in progress. When the tail is empty, the graph is saved (if a save is due,
or if there was no usable saved index) while queries go on; the thread never touches
DuckDB, so the engine takes in the outcome (:meth:`CatchUp.done`) on its own thread.

A catch-up that takes in *another process's* writes (a :class:`Pace` given) waits before
inserting while those writes keep coming: every process keeps its own graph, so a reader
that inserted each write at once spent as much CPU on it as the writer on its own insertion
(16 to 21 CPU-seconds per reader in a 20,000-record ingest at 100k x 384), at the moment the
writer needed the cores, and its queries waited for the worker's chunks. The worker inserts once
the writes have paused (:class:`Pace`: for twice their recent interval, between the
:class:`~vectordb.engine.structure.InsertPolicy`'s ``defer_quiet_min_s`` and
``defer_quiet_max_s``), when the tail holds its ``defer_max_bytes`` of vectors (from then
on until it is empty), or when a caller needs the whole graph
(:meth:`CatchUp.finish`); until then queries search the tail exactly, as they do any
tail.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

import numpy as np

from vectordb.engine.structure import DEFAULT_INSERT_POLICY, InsertPolicy
from vectordb.index.base import SearchResult, VectorIndex
from vectordb.index.tail import Tail, merge
from vectordb.persistence.store import Store


INSERTING, SAVING, ENDED = "inserting", "saving", "ended"


class Pace:
    """When a collection's writes come (from other processes, mostly): the last one's time and the
    smoothed interval between them. One per collection and process, kept across its catch-ups;
    ``policy`` bounds the pause it waits for and the tail a deferring catch-up may hold."""

    def __init__(self, policy: InsertPolicy = DEFAULT_INSERT_POLICY) -> None:
        self.policy = policy
        self.last: Optional[float] = None
        self.interval: Optional[float] = None

    def note(self, now: Optional[float] = None) -> None:
        """A write came (now)."""
        now = time.monotonic() if now is None else now
        if self.last is not None:
            gap = now - self.last
            if gap > self.policy.defer_quiet_max_s:
                self.interval = None  # a pause: what comes now is a new burst
            else:
                self.interval = gap if self.interval is None else (self.interval + gap) / 2
        self.last = now

    def quiet_s(self) -> float:
        """How long without a write counts as a pause: twice the recent interval, within bounds."""
        if self.interval is None:
            return self.policy.defer_quiet_min_s
        return min(self.policy.defer_quiet_max_s, max(self.policy.defer_quiet_min_s, 2 * self.interval))

    def wait_s(self, now: Optional[float] = None) -> float:
        """How long until the writes count as paused (0: they are)."""
        if self.last is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, self.last + self.quiet_s() - now)


class CatchUp:
    """A collection's graph and the pending tail a worker thread inserts into it."""

    def __init__(
        self,
        graph: VectorIndex,
        tail: Tail,
        seq: int,
        unsaved: int,
        save: Optional[Callable[[int], bool]],
        save_due: Callable[[int, int], bool],
        backlog_max: int,
        chunk: Optional[int] = None,
        pace: Optional[Pace] = None,
    ) -> None:
        """``seq``: the last write the graph and tail together cover; ``unsaved``: changes the
        saved file lacks; ``save(seq)`` writes the graph as covering ``seq``, False if it may not now (None: it is never
        saved, e.g. read-only); ``save_due(unsaved, count)``: whether to save once the whole
        tail is in; ``backlog_max``: a write waits while more vectors than this are pending;
        ``pace``: given, the worker defers its insertions while writes keep coming (see the module
        docstring), and each :meth:`append` is noted there."""
        self.graph = graph
        self.tail = tail
        self.seq = seq
        self.unsaved = unsaved
        self.inserted = 0
        self.state = INSERTING
        self.saved_seq: Optional[int] = None
        self.error: Optional[BaseException] = None
        self.save_error: Optional[BaseException] = None
        self._save = save
        self._save_due = save_due
        self._backlog_max = backlog_max
        self._chunk = chunk
        """Vectors per turn of the worker (None: :class:`~vectordb.engine.structure.InsertPolicy`'s default)."""
        self._pace = pace
        self._hurry = False
        """Insert without deferring: the tail grew past the bound, or a caller waits for the whole graph."""
        self._stop = False
        self._cond = threading.Condition()
        self._callers = 0  # callers waiting for or holding their turn
        self._inserting = False  # the worker holds its turn
        self._caller_lock = threading.Lock()  # one caller at a time
        self._thread = threading.Thread(target=self._run, name="vectordb-catch-up", daemon=True)
        # daemon: at exit the engine's close() (atexit) stops it; a dropped engine's thread must not hold the exit
        self._stale = np.zeros(0, dtype=bool)  # pending labels the graph holds an older vector of
        self._stale_count = 0
        self._note_stale(tail.labels())

    # -- the state --------------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many vectors are not in the graph yet."""
        return self.tail.count

    @property
    def done(self) -> bool:
        """Whether the worker has ended (tail inserted and saved, stopped, or failed)."""
        return self.state == ENDED

    def covered_seq(self) -> int:
        """The ``seq`` the graph covers on its own: every record written up to it is in the graph."""
        first = self.tail.first_seq()
        return self.seq if first is None else first - 1

    def worth_saving(self, saved_seq: int, min_changes: int, fraction: float) -> bool:
        """Whether the graph of a stopped catch-up is worth saving: there is no saved file
        (``saved_seq`` < 0), or it holds min(``min_changes``, ``fraction`` of its size) records more."""
        if not self.inserted or self.covered_seq() <= saved_seq:
            return False
        return saved_seq < 0 or self.inserted >= min(min_changes, fraction * self.graph.count)

    def start(self) -> None:
        """Start the worker (once; later calls do nothing)."""
        with self._cond:
            if self._thread.ident is None and self.state == INSERTING and not self._stop:
                self._thread.start()

    def finish(self) -> None:
        """Wait until the whole tail is in the graph (and saved, if due)."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
        self.start()
        self._join()

    def stop(self) -> None:
        """Stop the worker after the chunk in progress and wait for it; the tail stays pending."""
        with self._cond:
            self._stop = True
            if self._thread.ident is None:
                self.state = ENDED
            self._cond.notify_all()
        self._join()

    def _join(self) -> None:
        if self._thread.ident is not None and self._thread is not threading.current_thread():
            self._thread.join()

    # -- the callers' side --------------------------------------------------------

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """The caller's turn with the graph and tail: the worker finishes its chunk and waits."""
        with self._caller_lock:
            with self._cond:
                self._callers += 1
                while self._inserting:
                    self._cond.wait()
            try:
                yield
            finally:
                with self._cond:
                    self._callers -= 1
                    self._cond.notify_all()

    def search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> SearchResult:
        """The k nearest live labels per query: the graph's (without stale labels) merged with the tail's."""
        with self._turn():
            if not self.tail.count:
                found = self.graph.search(queries, k, allowed)
            else:
                if allowed is None:
                    in_graph = None if not self._stale_count else self._without_stale(self.graph.live_labels())
                else:
                    in_graph = allowed[~self.tail.pending(allowed)]
                found = merge([self.graph.search(queries, k, in_graph),
                               self.tail.search(self.graph.params.space, queries, k, allowed)], k, len(queries))
        self.start()
        return found

    def append(self, seq: int, labels: np.ndarray, vectors: np.ndarray) -> bool:
        """Take a committed write's vectors into the tail; False when the worker is past inserting
        (the caller waits for it and updates the graph itself)."""
        with self._turn():
            if self.state != INSERTING or self._stop:
                return False
            self._note_stale(labels)
            self.tail.extend(labels, seq, vectors)
            self.seq = seq
            self.unsaved += len(labels)
            if self._pace is not None:
                self._pace.note()
        self.start()
        with self._cond:  # do not let writes outrun the worker without bound
            while self.tail.count > self._backlog_max and self.state == INSERTING and self._thread.is_alive():
                self._cond.wait()
        return True

    def remove(self, seq: int, labels: np.ndarray) -> bool:
        """Apply a committed delete to the tail and the graph; False when the worker is past inserting."""
        with self._turn():
            if self.state != INSERTING or self._stop:
                return False
            self.tail.discard(labels)
            self._clear_stale(labels)
            self.graph.remove(labels)
            self.seq = seq
            self.unsaved += len(labels)
        self.start()
        return True

    def _note_stale(self, labels: np.ndarray) -> None:
        """Labels about to be pending: those the graph holds get stale there."""
        labels = np.asarray(labels, dtype=np.int64)
        held = labels[self.graph.holds(labels)]
        if not len(held):
            return
        top = int(held.max())
        if top >= len(self._stale):
            grown = np.zeros(max(top + 1, 2 * len(self._stale)), dtype=bool)
            grown[: len(self._stale)] = self._stale
            self._stale = grown
        self._stale_count += int((~self._stale[held]).sum())
        self._stale[held] = True

    def _clear_stale(self, labels: np.ndarray) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        labels = labels[labels < len(self._stale)]
        if self._stale_count and len(labels):
            labels = np.unique(labels)
            self._stale_count -= int(self._stale[labels].sum())
            self._stale[labels] = False

    def _without_stale(self, labels: np.ndarray) -> np.ndarray:
        inside = labels < len(self._stale)
        keep = np.ones(len(labels), dtype=bool)
        keep[inside] = ~self._stale[labels[inside]]
        return labels[keep]

    # -- the worker ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while self._insert_next():
                pass
            with self._cond:
                stopped = self._stop
            if not stopped and self._save is not None and self._save_due(self.unsaved, self.graph.count):
                try:
                    if self._save(self.seq) is not False:  # False: not now (another process's turn)
                        self.saved_seq = self.seq
                except Exception as exc:  # a full disk: logged by the engine; the graph stays in memory
                    self.save_error = exc
        except BaseException as exc:  # taken in by the engine; an interrupt also goes on up
            self.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            with self._cond:
                self.state = ENDED
                self._cond.notify_all()

    def _deferred_s(self) -> float:
        """How long the worker waits before its next chunk (0: insert now; the caller holds _cond)."""
        if self._pace is None or self._hurry:
            return 0.0
        too_big = self.tail.count * self.tail.dim * 4 >= self._pace.policy.defer_max_bytes
        if too_big or self.tail.count >= self._backlog_max:
            self._hurry = True  # a tail this big costs queries too much: insert it all, as writes come
            return 0.0
        return self._pace.wait_s()

    def _insert_next(self) -> bool:
        """Insert the next chunk of the tail; False once the tail is empty (or the worker is stopped)."""
        with self._cond:
            while not self._stop:
                if self._callers:
                    self._cond.wait()
                    continue
                deferred = self._deferred_s()
                if deferred <= 0:
                    break
                self._cond.wait(deferred)  # an append, a caller or finish() wakes it early
            if self._stop:
                return False
            head = self.tail.head(self._chunk or DEFAULT_INSERT_POLICY.catch_up_chunk)
            if head is None:
                self.state = SAVING  # from here on the graph no longer changes: queries go on, writes wait
                return False
            self._inserting = True
        labels, vectors = head
        inserted = False
        try:
            self.graph.add(labels, vectors)
            inserted = True
        finally:
            with self._cond:
                self._inserting = False
                if inserted:
                    self.tail.taken(labels)
                    self._clear_stale(labels)
                    self.inserted += len(labels)
                self._cond.notify_all()
        return True


def read_tail(store: Store, collection_id: str, dim: int, seq: int) -> Tail:
    """The vectors of the collection's records written after ``seq``, as a :class:`Tail`."""
    tail = Tail(dim)
    for labels, seqs, vectors in store.records_since(collection_id, seq, chunk=16_384):
        tail.extend(labels, seqs, vectors)
    return tail


def covers(live: np.ndarray, pending: np.ndarray, labels: np.ndarray) -> bool:
    """Whether an index's ``live`` labels and the ``pending`` ones are exactly the records' ``labels``."""
    if not len(labels):
        return not len(live) and not len(pending)
    top = int(labels.max())
    if len(live) and int(live.max()) > top or len(pending) and int(pending.max()) > top:
        return False
    union = np.zeros(top + 1, dtype=bool)
    union[live] = True
    union[pending] = True
    return np.array_equal(np.flatnonzero(union), labels)
