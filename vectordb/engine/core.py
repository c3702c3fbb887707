"""The engine of one store: its database, derived structures, catalog rows and locks.

One :class:`Engine` per store, in memory or in a folder (one per folder in a process:
:mod:`vectordb.engine.registry`); every client of the store holds a
:class:`~vectordb.engine.local.LocalBackend` over it, which runs the requests. The engine
keeps what those requests share and how it changes:

- the parts: the store (:class:`~vectordb.persistence.store.Store`, the only source of
  truth), the derived structures (:mod:`vectordb.engine.derived`), the vector index
  (:mod:`vectordb.engine.indexes`) and the text index (:mod:`vectordb.engine.textindexes`),
  and the reads over them (:mod:`vectordb.engine.reads`). They are public attributes, for
  the backend, tools and tests; each part's own methods are its supported knobs;
- every collection's catalog row, kept in memory (this engine is the store's only writer
  in this process), and how it is read back when a commit failed;
- committing a planned write and bringing the derived structures after a commit, here or
  in another process sharing the store (:meth:`apply`, :meth:`reload`, :meth:`park`: what
  :class:`~vectordb.engine.sharing.Sharing` calls);
- the locks (:mod:`vectordb.engine.locks`), the turn on a shared store, and closing.
"""

from __future__ import annotations

import atexit
import logging
import os
import weakref
from contextlib import contextmanager, nullcontext
from typing import Callable, ContextManager, Dict, Iterator, List, Optional

import numpy as np

from vectordb import validation as v
from vectordb.engine import maintenance, registry
from vectordb.engine.derived import DerivedStructures
from vectordb.engine.indexes import VectorIndexes, index_params
from vectordb.engine.locks import CollectionLock, EngineLocks
from vectordb.engine.reads import Reads
from vectordb.engine.sharing import Change, Sharing
from vectordb.engine.textindexes import TextIndexes
from vectordb.errors import InvalidArgumentError, StorageError, StoreBusyError, VectorDBError, collection_deleted
from vectordb.persistence.store import CollectionRow, RecordBatch, Store
from vectordb.planner import Plan
from vectordb.requests import CollectionRef

log = logging.getLogger("vectordb")

LOCK_TIMEOUT_S = 30.0
"""How long a call waits for another process's turn on a shared store before StoreBusyError."""


def _tell_nobody(change: Optional[Change]) -> None:
    """What a store no other process shares does with a committed change."""


class Engine:
    """A store in memory (``path=None``) or in the folder ``path``: ``vectordb.duckdb`` plus ``index/``.

    A store in a folder is shared with the other processes that open it (see
    :mod:`vectordb.engine.sharing`); a call waits at most ``lock_timeout`` seconds for their turns.
    """

    def __init__(self, path: Optional[str] = None, read_only: bool = False,
                 lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        if path is not None:
            path = registry.store_folder(path, read_only)
        self.path = path
        self.read_only = read_only
        self.locks = EngineLocks(())
        self._closed = True
        self._handles = 0  # the clients holding this engine (guarded by registry.LOCK)
        self.sharing: Optional[Sharing] = None
        self._rows: Dict[str, CollectionRow] = {}
        """Every collection's catalog row, kept in memory (current with the store's feed)."""
        self._rows_stale = False
        if path is not None:
            registry.claim(path, self)
        try:
            self.sharing = _share(path, read_only, lock_timeout)
            with self.turn():
                self._open(path, read_only)
        except BaseException:
            if self.sharing is not None:
                self.sharing.close()
            registry.release(path, self)
            raise
        if self.sharing is not None:
            self.sharing.attach(self)
            weakref.finalize(self, self.sharing.close)  # dropped without close(): its turn goes with it
        if path is not None:
            atexit.register(registry.close_at_exit, weakref.ref(self))

    def _open(self, path: Optional[str], read_only: bool) -> None:
        """Open the database and read the catalog (inside the turn of a shared store)."""
        turns = None if self.sharing is None else self.sharing.turns
        self.store = Store(path, read_only=read_only, gate=None if self.sharing is None else self.sharing.gate)
        try:
            self.indexes = VectorIndexes(self.store, None if path is None else os.path.join(path, "index"),
                                        read_only, turns)
            self.derived = DerivedStructures(self.store)
            self.text = TextIndexes(self.store, None if path is None else os.path.join(path, "text"), read_only,
                                    turns)
            self.reads = Reads(self.store, self.derived, self.indexes, self.text)
            self._rows = {row.id: row for row in self.store.collections()}
            self.locks = EngineLocks(self._rows)
            if path is not None:
                self.indexes.remove_orphans(set(self._rows))
                self.text.remove_orphans(self._rows)
                if not read_only:
                    maintenance.remove_leftovers(path)
        except BaseException:
            try:
                self.store.close()
            except Exception:
                pass  # the error of the open is the one to raise
            raise
        self._closed = False

    def __repr__(self) -> str:
        return f"Engine({self.path or ':memory:'})"

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    def turn(self) -> ContextManager[None]:
        """Hold this process's turn on a shared store for the block (nothing to hold in memory): the
        database may be read directly inside it (tools, tests); the backend's calls take it themselves."""
        return nullcontext() if self.sharing is None else self.sharing.turns.use()

    def check_open(self) -> None:
        """VectorDBError once the engine is closed."""
        if self._closed:
            raise VectorDBError("this client is closed")

    def check_writable(self) -> None:
        """VectorDBError once closed, or when the store is open read-only."""
        self.check_open()
        if self.read_only:
            raise VectorDBError(f"the store at {self.path} is open read-only")

    # -- the clients holding it (under registry.LOCK) -------------------------

    @property
    def holders(self) -> int:
        """How many clients hold this engine."""
        return self._handles

    def hold(self) -> None:
        """One more client holds this engine."""
        with registry.LOCK:
            self._handles += 1

    def let_go(self) -> None:
        """A client lets go; the engine closes (saving its indexes) when it was the last."""
        with registry.LOCK:  # closed under the lock, so that no new client takes the engine as it closes
            self._handles -= 1
            if self._handles <= 0:
                self.close()

    def forget_holder(self) -> None:
        """A client dropped without close(): its hold goes; the engine stays open (closed at exit, or
        reused by the next client of its folder)."""
        with registry.LOCK:
            self._handles -= 1

    # -- closing ------------------------------------------------------------

    def close(self) -> None:
        """Save the indexes and close the store.

        The store lock is released even when the final save fails (a full disk); the
        typed StorageError is raised after that. A failed index save is only logged:
        the next open catches the index up from the records. Waits for every request
        under way; later ones raise. On a shared store the indexes are saved inside a
        turn; if none comes within ``lock_timeout``, they are not saved (the next open
        catches them up from the records).
        """
        if self._closed:
            return
        sharing = self.sharing
        try:
            try:
                with self.turn():
                    self._close(flush=True)
            except StoreBusyError as exc:
                log.warning("closing the store at %s without saving its indexes: %s", self.path, exc)
                self._close(flush=False)
        finally:
            if sharing is not None:
                sharing.close()

    def _close(self, flush: bool) -> None:
        with self.locks.everything():
            if self._closed:
                return
            self._closed = True
            try:
                if flush and not self.read_only:
                    try:
                        self.indexes.flush({row.id: row for row in self.store.collections()})
                    finally:
                        self.text.flush()
            finally:
                try:
                    for part in (self.indexes, self.text, self.derived):
                        part.clear()  # a closed client the program still holds keeps no graph or cache
                    self.store.close()
                finally:
                    registry.release(self.path, self)

    # -- the catalog rows -----------------------------------------------------

    def catalog(self) -> Dict[str, CollectionRow]:
        """Every collection's catalog row, read again from the store when a failure left them unsure."""
        if self._rows_stale:
            rows = {row.id: row for row in self.store.collections()}
            self._rows.clear()
            self._rows.update(rows)
            self._rows_stale = False
        return self._rows

    def rows_changed(self) -> None:
        """Something rewrote the catalog behind the rows (a repair): read them again at the next call."""
        self._rows_stale = True
        self.derived.clear()
        if self.sharing is not None:
            self.sharing.invalidate()  # the other processes reload too

    def lock(self, collection: CollectionRef, writable: bool = False) -> CollectionLock:
        """The collection's lock (not yet taken); CollectionNotFoundError once the collection is deleted."""
        if writable:
            self.check_writable()
        else:
            self.check_open()
        lock = self.locks.of(collection.id)
        if lock is None:
            raise collection_deleted(collection.name)
        return lock

    def row(self, collection: CollectionRef) -> CollectionRow:
        """The collection's catalog row (the caller holds the collection's lock)."""
        self.check_open()
        row = self.catalog().get(collection.id)
        if row is None:
            row = self.store.collection_by_id(collection.id)
            if row is None:
                raise collection_deleted(collection.name)
            self._rows[collection.id] = row
        return row

    def set_row(self, row: CollectionRow) -> None:
        """A committed change of the collection's catalog row (the caller holds its lock)."""
        self._rows[row.id] = row
        if self.locks.of(row.id) is None:
            self.locks.add(row.id)

    @contextmanager
    def resync_on_failure(self, collection_id: str) -> Iterator[None]:
        """Around a commit: if it raises a StorageError, forget what this engine keeps of the
        collection and read its catalog row back from the store before the error goes up.

        A commit that raised may be in the database all the same (NotDurableError), so the
        row in memory (its next label, its seq), the derived structures and the indexes may
        be behind it; they are loaded again from the store, so that no label is ever used
        twice. The caller holds the collection's lock (for a new collection, the catalog's).
        """
        try:
            yield
        except StorageError:
            self._rows.pop(collection_id, None)
            self.derived.drop(collection_id)
            self.indexes.forget(collection_id)
            self.text.forget(collection_id)
            self._read_back(collection_id)
            raise

    def _read_back(self, collection_id: str) -> None:
        """Take the collection's catalog row from the store (see :meth:`resync_on_failure`)."""
        try:
            row = self.store.collection_by_id(collection_id)
        except StorageError:
            self._rows_stale = True  # the store cannot be read now: the next call reads the rows (see catalog)
            return
        if row is None:  # not created, or deleted after all
            self.forget_deleted(collection_id)
        else:
            self.set_row(row)

    def forget_deleted(self, collection_id: str, files: bool = True) -> None:
        """Drop everything this engine keeps of a collection the store no longer holds, and its
        index files (``files=False``: another process deleted it, and its files with it); the
        caller holds its lock, and the catalog's shared."""
        if files:
            self.indexes.drop(collection_id)
            self.text.drop(collection_id)
        else:
            self.indexes.forget(collection_id)
            self.text.forget(collection_id)
        self._rows.pop(collection_id, None)
        self.derived.drop(collection_id)
        self.locks.remove(collection_id)

    # -- committing -----------------------------------------------------------

    def publishing(self) -> ContextManager[Callable[[Optional[Change]], None]]:
        """Around a commit: tell the other processes of a shared store what it changed."""
        return nullcontext(_tell_nobody) if self.sharing is None else self.sharing.publishing()

    def commit(self, row: CollectionRow, planned: Plan) -> CollectionRow:
        """Write the plan's rows to the store, then to the derived structures and the index.

        ``row`` is the current catalog row: the dimension is checked against it here, as
        another handle may have fixed it since the arguments were checked.
        """
        batch = planned.batch
        dimension = row.dimension if row.dimension is not None else batch.embeddings.shape[1]
        if batch.embeddings.shape[1] != dimension:
            raise v.dimension_error(planned.source, batch.embeddings.shape[1], dimension)
        changed = planned.changed

        def commit() -> CollectionRow:
            with self.publishing() as publish:
                written = self.store.write(row, batch, planned.replaced, dimension)
                publish(Change("write", row.id, written, batch=batch, changed=changed))
                return written

        with self.resync_on_failure(row.id):
            new_row = self.indexes.add_after_commit(
                row, dimension, batch.labels[changed], batch.embeddings[changed], commit
            )
        self._after_write(new_row, batch)
        return new_row

    def _after_write(self, row: CollectionRow, batch: RecordBatch) -> None:
        """A committed write, in the catalog row and derived structures (the index is the caller's)."""
        self._rows[row.id] = row
        self.derived.written(row.id, batch)
        self.text.written(row, batch.labels, batch.documents)

    def after_delete(self, row: CollectionRow, labels: np.ndarray) -> None:
        """A committed delete, in the catalog row, derived structures and index."""
        self._rows[row.id] = row
        self.derived.deleted(row.id, labels)
        self.text.deleted(row, labels)
        self.indexes.remove(row, labels)

    # -- other processes (see vectordb.engine.sharing) ---------------------------

    def apply(self, changes: List[Change]) -> None:
        """Apply changes other processes published to what this one keeps in memory."""
        with self.locks.everything():
            if self._closed:
                return
            for change in changes:
                cid, row = change.collection_id, change.row
                if change.kind == "drop" or row is None:
                    self.forget_deleted(cid, files=False)
                    continue
                self.set_row(row)
                if change.kind == "write" and change.batch is not None and change.changed is not None:
                    self._after_write(row, change.batch)
                    self.indexes.applied(row, change.batch.labels[change.changed],
                                         change.batch.embeddings[change.changed])
                elif change.kind == "delete" and change.labels is not None:
                    self.after_delete(row, change.labels)
                elif change.kind == "row":
                    index = self.indexes.loaded(cid)
                    if index is not None:
                        index.params = index_params(row)

    def reload(self) -> None:
        """Forget what this process keeps in memory and read the catalog again (inside the turn)."""
        with self.locks.everything():
            if self._closed:
                return
            for cid in list(self._rows):
                self.indexes.forget(cid)
                self.text.forget(cid)
                self.derived.drop(cid)
            self._rows_stale = True
            self.locks.keep_only(self.catalog())

    def park(self) -> None:
        """Close the database connection: another process takes the turn."""
        self.store.db.park()


def _share(path: Optional[str], read_only: bool, lock_timeout: float) -> Optional[Sharing]:
    """The sharing of the store at ``path`` with other processes (None in memory, and for a read-only
    store whose files this process may not write: no one can write it, DuckDB's own lock applies)."""
    if path is None:
        return None
    if not isinstance(lock_timeout, (int, float)) or isinstance(lock_timeout, bool) or lock_timeout < 0:
        raise InvalidArgumentError(f"lock_timeout: expected a number of seconds >= 0, got {lock_timeout!r}")
    try:
        return Sharing(path, float(lock_timeout))
    except StorageError:
        if read_only:
            return None
        raise

