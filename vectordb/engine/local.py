"""The local engine as a :class:`vectordb.backend.Backend`: one store, in memory or in a folder.

A request flows one way: the catalog row of its collection (kept in memory: this
engine is the store's only writer) → the records it touches, read from the store → a
plan of full rows (:mod:`vectordb.planner`) → one DuckDB transaction → the
derived structures (:mod:`vectordb.engine.derived`) and the vector index
(:mod:`vectordb.engine.indexes`, which inserts in the background). Reads answer from
the derived structures and the index, after any background insertion of its own
collection has finished.

One engine is shared by threads (a server runs each request on a thread of its pool).
Each collection has a readers–writer lock (:mod:`vectordb.engine.locks`): reads of a
collection run beside each other, a change of it runs alone, and requests on different
collections never wait for each other. DuckDB is used through a cursor per thread
(:mod:`vectordb.persistence.database`). A write is planned under the read lock, embeds
with no lock held (the slow part), and commits under the write lock; if its collection
changed meanwhile it is planned again. What must exclude every request (the database
swap of a compaction, ``check``, ``close``) holds every lock.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import time
import uuid
import weakref
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any, Callable, ContextManager, Dict, Iterator, List, Optional, TypeVar

import numpy as np

from vectordb import validation as v
from vectordb.backend import Backend, CollectionInfo, Embed
from vectordb.configuration import FIXED_SETTINGS, replaced_metadata
from vectordb.embedding_functions.base import missing_function_error
from vectordb.engine import maintenance, registry
from vectordb.engine.check import check_store
from vectordb.engine.derived import DerivedStructures
from vectordb.engine.indexes import IndexManager, index_params
from vectordb.engine.locks import CollectionLock, EngineLocks
from vectordb.engine.sharing import Change, Sharing, run_shared
from vectordb.engine.reads import Reads
from vectordb.engine.textindexes import TextIndexes, analyzer_name, new_analyzer_name
from vectordb.planner import Plan, plan, texts_to_embed
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidArgumentError,
    StorageError,
    StoreBusyError,
    VectorDBError,
    collection_deleted,
    collection_not_found,
)
from vectordb.index import settings
from vectordb.persistence.store import CollectionRow, RecordBatch, Store
from vectordb.requests import CollectionRef, Delete, Get, Search, Write
from vectordb.types import CheckReport, CompactResult, GetResult, QueryResult
from vectordb.version import __version__

log = logging.getLogger("vectordb")

LOCK_TIMEOUT_S = 30.0
"""How long a call waits for another process's turn on a shared store before StoreBusyError."""
MAX_BATCH_SIZE = 100_000
"""The batch size ``get_max_batch_size`` advises (no batch is refused: this size stays fast)."""


def _tell_nobody(change: Optional[Change]) -> None:
    """What a store no other process shares does with a committed change."""



_M = TypeVar("_M", bound=Callable[..., Any])


def _shared(write: bool = False) -> Callable[[_M], _M]:
    """Run the method as one call on a store other processes may share (see :func:`run_shared`)."""

    def decorate(method: _M) -> _M:
        @functools.wraps(method)
        def call(self: "LocalBackend", *args: Any, **kwargs: Any) -> Any:
            sharing = self._sharing
            if sharing is None or self._closed:
                return method(self, *args, **kwargs)
            return run_shared(sharing, lambda: method(self, *args, **kwargs), write)

        return call  # type: ignore[return-value]

    return decorate


class LocalBackend(Backend):
    """A store in memory (``path=None``) or in the folder ``path``: ``vectordb.duckdb`` plus ``index/``."""

    def __init__(self, path: Optional[str] = None, read_only: bool = False,
                 lock_timeout: float = LOCK_TIMEOUT_S) -> None:
        """A store in the folder ``path`` is shared with the other processes that open it (see
        :mod:`vectordb.engine.sharing`); a call waits at most ``lock_timeout`` seconds for their turns."""
        if path is not None:
            path = registry.store_folder(path, read_only)
        self.path = path
        self.read_only = read_only
        self._locks = EngineLocks(())
        self._closed = True
        self._sharing: Optional[Sharing] = None
        self._rows: Dict[str, CollectionRow] = {}
        """Every collection's catalog row, kept in memory (current with the store's feed)."""
        self._rows_stale = False
        if path is not None:
            registry.claim(path, self)
        try:
            self._sharing = _share(path, read_only, lock_timeout)
            with self.turn():
                self._open(path, read_only)
        except BaseException:
            if self._sharing is not None:
                self._sharing.close()
            registry.release(path, self)
            raise
        if self._sharing is not None:
            self._sharing.attach(self)
            weakref.finalize(self, self._sharing.close)  # dropped without close(): its turn goes with it
        if path is not None:
            atexit.register(registry.close_at_exit, weakref.ref(self))

    def _open(self, path: Optional[str], read_only: bool) -> None:
        """Open the database and read the catalog (inside the turn of a shared store)."""
        turns = None if self._sharing is None else self._sharing.turns
        self._store = Store(path, read_only=read_only, gate=None if self._sharing is None else self._sharing.gate)
        try:
            self._indexes = IndexManager(self._store, None if path is None else os.path.join(path, "index"),
                                         read_only, turns)
            self._derived = DerivedStructures(self._store)
            self._text = TextIndexes(self._store, None if path is None else os.path.join(path, "text"), read_only,
                                     turns)
            self._reads = Reads(self._store, self._derived, self._indexes, self._text)
            self._rows = {row.id: row for row in self._store.collections()}
            self._locks = EngineLocks(self._rows)
            if path is not None:
                self._indexes.remove_orphans(set(self._rows))
                self._text.remove_orphans(self._rows)
                if not read_only:
                    maintenance.remove_leftovers(path)
        except BaseException:
            try:
                self._store.close()
            except Exception:
                pass  # the error of the open is the one to raise
            raise
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._closed

    def turn(self) -> ContextManager[None]:
        """Hold this process's turn on a shared store for the block (nothing to hold in memory): the
        database may be read directly inside it (tools, tests); calls of this engine take it themselves."""
        return nullcontext() if self._sharing is None else self._sharing.turns.use()

    def __repr__(self) -> str:
        return f"LocalBackend({self.path or ':memory:'})"

    # -- the store ----------------------------------------------------------

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
        sharing = self._sharing
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
        with self._locks.everything():
            if self._closed:
                return
            self._closed = True
            try:
                if flush and not self.read_only:
                    try:
                        self._indexes.flush({row.id: row for row in self._store.collections()})
                    finally:
                        self._text.flush()
            finally:
                try:
                    self._store.close()
                finally:
                    registry.release(self.path, self)

    def _check_open(self) -> None:
        if self._closed:
            raise VectorDBError("this client is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise VectorDBError(f"the store at {self.path} is open read-only")

    def heartbeat(self) -> int:
        return time.time_ns()

    def version(self) -> str:
        return __version__

    def max_batch_size(self) -> int:
        return MAX_BATCH_SIZE

    @_shared(write=True)
    def reset(self) -> None:
        self._check_writable()
        for info in self.list_collections():
            try:
                self.delete_collection(info.name)
            except CollectionNotFoundError:
                pass  # deleted (or renamed) by another thread meanwhile

    @_shared(write=True)
    def check(self, repair: bool = False) -> CheckReport:
        """Check the store while no other request runs (see :mod:`vectordb.engine.check`)."""
        with self._locks.everything():
            if repair:
                self._check_writable()
            self._check_open()
            report = check_store(self._store, self._indexes, repair)
            self._text.check(self._store.collections(), report, repair)
            if report.repairs:  # they may have rewritten what the rows and caches were loaded from
                self._rows_stale = True
                self._derived.clear()
                if self._sharing is not None:
                    self._sharing.invalidate()  # the other processes reload too
            return report

    @_shared(write=True)
    def compact(self, collection: Optional[CollectionRef] = None) -> CompactResult:
        """Rebuild the indexes (of one collection, or all) and shrink the database file."""
        self._check_writable()
        result = self._compact(None if collection is None else [collection])
        assert result is not None  # only an automatic compaction may find nothing to do
        return result

    def _compact(self, targets: Optional[List[CollectionRef]], due_only: bool = False) -> Optional[CompactResult]:
        """Rebuild the indexes of ``targets`` (every collection when None),
        then shrink the database file. The caller holds no lock of this engine.

        Each index is rebuilt holding only its collection's lock, so requests on other
        collections go on; the copy and the swap of the database file hold every lock (no
        request runs while the file is copied, closed and replaced, so no commit is left
        behind in the old file). With ``due_only`` (after a delete), a collection whose
        index no longer needs it (another thread compacted it meanwhile) is left alone,
        and None is returned if none was rebuilt.
        """
        before = maintenance.disk_usage(self.path)
        missing_ok = targets is None  # compact(): a collection deleted meanwhile has nothing to compact
        if targets is None:
            with self._locks.catalog.read:
                self._check_writable()
                targets = [CollectionRef(row.id, row.name) for row in self._store.collections()]
        rebuilt = 0
        for target in targets:
            try:
                with self._lock(target, writable=True).write:
                    self._check_writable()
                    row = self._row(target)
                    if due_only:
                        index = self._indexes.loaded(row.id)
                        if index is None or not maintenance.compaction_due(index):
                            continue
                        log.info("collection %r has %d deleted index slots for %d live vectors; compacting",
                                 row.name, index.deleted, index.count)
                    rebuilt += maintenance.rebuild_index(self._indexes, row) is not None
                    if not due_only:  # the text index has no deleted slots: only compact() rebuilds it
                        self._text.rebuild(row)
            except CollectionNotFoundError:
                if not missing_ok:
                    raise
        if due_only and not rebuilt:
            return None
        if self.path is not None:
            with self._locks.everything():
                self._check_writable()
                maintenance.compact_database(self._store)
        after = maintenance.disk_usage(self.path)
        log.info("compacted the store at %s: %d -> %d bytes", self.path, before, after)
        return CompactResult(before, after, rebuilt)

    def _maybe_compact(self, collection: CollectionRef) -> None:
        """Compact a collection a delete left with many deleted index slots.

        The delete has committed: a failure here (a full disk, say) is logged and never
        fails the delete; ``compact()`` gives the space back later.
        """
        try:
            self._compact([collection], due_only=True)
        except Exception as exc:  # the delete's result stands whatever happens here
            log.warning("automatic compaction of collection %r after a delete failed (the delete stands; "
                        "compact() gives the space back later): %s", collection.name, exc,
                        exc_info=not isinstance(exc, StorageError))

    # -- collections --------------------------------------------------------

    @_shared(write=True)
    def create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]], ef_name: Optional[str], ef_config: Optional[Dict[str, Any]],
        metric: Optional[str] = None,
    ) -> CollectionInfo:
        with self._locks.catalog.read:
            self._check_open()
            with self._locks.names:
                if self._store.collection_by_name(name) is not None:
                    raise CollectionExistsError(f"collection {name!r} already exists")
                self._check_writable()
                row = CollectionRow(
                    id=str(uuid.uuid4()), name=name, metadata=metadata,
                    metric=settings.metric_of(metadata, metric), dimension=None,
                    ef_name=ef_name, ef_config=ef_config, next_label=0, seq=0, position=0,
                    text_analyzer=new_analyzer_name(metadata),
                )
                with self._resync_on_failure(row.id), self._publishing() as publish:
                    row = self._store.insert_collection(row)
                    publish(Change("row", row.id, row))
                self._rows[row.id] = row
                self._locks.add(row.id)
            return _info(row)

    @_shared()
    def get_collection(self, name: str) -> CollectionInfo:
        with self._locks.catalog.read:
            self._check_open()
            row = next((r for r in self._catalog().values() if r.name == name), None)
            if row is None:
                row = self._store.collection_by_name(name)  # not in memory: the store has the last word
            if row is None:
                raise collection_not_found(name)
            return _info(row)

    @_shared()
    def collection(self, collection: CollectionRef) -> CollectionInfo:
        with self._lock(collection).read:
            return _info(self._row(collection))

    @_shared()
    def collection_by_id(self, collection_id: str) -> CollectionInfo:
        with self._locks.catalog.read:
            self._check_open()
            row = self._catalog().get(collection_id) or self._store.collection_by_id(collection_id)
            if row is None:
                raise collection_not_found(collection_id)
            return _info(row)

    @_shared()
    def list_collections(self) -> List[CollectionInfo]:
        with self._locks.catalog.read:
            self._check_open()
            return [_info(row) for row in sorted(self._catalog().values(), key=lambda r: r.position)]

    @_shared()
    def count_collections(self) -> int:
        with self._locks.catalog.read:
            self._check_open()
            return len(self._catalog())

    @_shared(write=True)
    def delete_collection(self, name: str) -> None:
        self._check_writable()
        with self._locks.catalog.read:
            while True:
                self._check_writable()
                row = self._store.collection_by_name(name)
                if row is None:
                    raise collection_not_found(name)
                lock = self._locks.of(row.id)
                if lock is None:
                    continue  # deleted by another thread a moment ago: look again
                with lock.write:
                    try:
                        current = self._row(CollectionRef(row.id, name))
                    except CollectionNotFoundError:
                        continue  # deleted by another thread while this one waited
                    if current.name != name:
                        continue  # renamed while this thread waited: look the name up again
                    with self._resync_on_failure(row.id), self._publishing() as publish:
                        self._store.delete_collection(row.id)
                        publish(Change("drop", row.id))
                    self._forget_deleted(row.id)
                    return

    @_shared(write=True)
    def modify_collection(
        self, collection: CollectionRef, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        with self._lock(collection, writable=True).write:
            self._check_writable()
            row = self._row(collection)
            metadata = row.metadata
            if new_metadata is not None:
                metadata = replaced_metadata(row.metadata, new_metadata, _built_with(row))
            updated = replace(row, name=row.name if new_name is None else new_name, metadata=metadata)
            with self._locks.names:
                if new_name is not None and new_name != row.name and self._store.collection_by_name(new_name):
                    raise CollectionExistsError(f"collection {new_name!r} already exists")
                with self._resync_on_failure(row.id), self._publishing() as publish:
                    self._store.update_collection(updated)
                    publish(Change("row", row.id, updated))
                self._rows[row.id] = updated
            index = self._indexes.loaded(row.id)
            if index is not None and new_metadata is not None:
                index.params = index_params(updated)
            return _info(updated)

    @contextmanager
    def _resync_on_failure(self, collection_id: str) -> Iterator[None]:
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
            self._derived.drop(collection_id)
            self._indexes.forget(collection_id)
            self._text.forget(collection_id)
            self._read_back(collection_id)
            raise

    def _read_back(self, collection_id: str) -> None:
        """Take the collection's catalog row from the store (see :meth:`_resync_on_failure`)."""
        try:
            row = self._store.collection_by_id(collection_id)
        except StorageError:
            self._rows_stale = True  # the store cannot be read now: the next call reads the rows (see _catalog)
            return
        if row is None:  # not created, or deleted after all
            self._forget_deleted(collection_id)
        else:
            self._rows[collection_id] = row
            if self._locks.of(collection_id) is None:
                self._locks.add(collection_id)

    def _forget_deleted(self, collection_id: str, files: bool = True) -> None:
        """Drop everything this engine keeps of a collection the store no longer holds, and its
        index files (``files=False``: another process deleted it, and its files with it); the
        caller holds its lock, and the catalog's shared."""
        if files:
            self._indexes.drop(collection_id)
            self._text.drop(collection_id)
        else:
            self._indexes.forget(collection_id)
            self._text.forget(collection_id)
        self._rows.pop(collection_id, None)
        self._derived.drop(collection_id)
        self._locks.remove(collection_id)

    def _catalog(self) -> Dict[str, CollectionRow]:
        """Every collection's catalog row, read again from the store when a failure left them unsure."""
        if self._rows_stale:
            rows = {row.id: row for row in self._store.collections()}
            self._rows.clear()
            self._rows.update(rows)
            self._rows_stale = False
        return self._rows

    # -- other processes (see vectordb.engine.sharing) ---------------------------

    def _publishing(self) -> ContextManager[Callable[[Optional[Change]], None]]:
        """Around a commit: tell the other processes of a shared store what it changed."""
        return nullcontext(_tell_nobody) if self._sharing is None else self._sharing.publishing()

    def apply(self, changes: List[Change]) -> None:
        """Apply changes other processes published to what this one keeps in memory."""
        with self._locks.everything():
            if self._closed:
                return
            for change in changes:
                cid, row = change.collection_id, change.row
                if change.kind == "drop" or row is None:
                    self._forget_deleted(cid, files=False)
                    continue
                self._rows[cid] = row
                if self._locks.of(cid) is None:
                    self._locks.add(cid)
                if change.kind == "write" and change.batch is not None and change.changed is not None:
                    self._after_write(row, change.batch)
                    self._indexes.applied(row, change.batch.labels[change.changed],
                                          change.batch.embeddings[change.changed])
                elif change.kind == "delete" and change.labels is not None:
                    self._after_delete(row, change.labels)
                elif change.kind == "row":
                    index = self._indexes.loaded(cid)
                    if index is not None:
                        index.params = index_params(row)

    def reload(self) -> None:
        """Forget what this process keeps in memory and read the catalog again (inside the turn)."""
        with self._locks.everything():
            if self._closed:
                return
            for cid in list(self._rows):
                self._indexes.forget(cid)
                self._text.forget(cid)
                self._derived.drop(cid)
            self._rows_stale = True
            self._locks.keep_only(self._catalog())

    def park(self) -> None:
        """Close the database connection: another process takes the turn."""
        self._store.db.park()

    def _lock(self, collection: CollectionRef, writable: bool = False) -> CollectionLock:
        """The collection's lock (not yet taken); CollectionNotFoundError once the collection is deleted."""
        if writable:
            self._check_writable()
        else:
            self._check_open()
        lock = self._locks.of(collection.id)
        if lock is None:
            raise collection_deleted(collection.name)
        return lock

    def _row(self, collection: CollectionRef) -> CollectionRow:
        """The collection's catalog row (the caller holds the collection's lock)."""
        self._check_open()
        row = self._catalog().get(collection.id)
        if row is None:
            row = self._store.collection_by_id(collection.id)
            if row is None:
                raise collection_deleted(collection.name)
            self._rows[collection.id] = row
        return row

    # -- writes -------------------------------------------------------------

    @_shared()
    def write(self, collection: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        """Plan, embed (holding no lock, nor the turn of a shared store: other processes go on),
        then commit inside the turn; planned again if the collection changed meanwhile."""
        embedded: Dict[str, np.ndarray] = {}
        lock = self._lock(collection, writable=True)
        while True:
            with lock.read:  # planning only reads: other reads of the collection go on
                self._check_writable()
                row = self._row(collection)
                existing = self._derived.records(row).labels_of(write.ids)
                stored = {} if write.mode == "add" or not existing else self._store.fetch(
                    row.id, np.fromiter(existing.values(), dtype=np.int64), embeddings=True
                )
                texts = texts_to_embed(write, existing, stored)
            missing = list(dict.fromkeys(t for t in texts if t not in embedded))  # in order, once each
            if missing:
                if embed is None:
                    raise missing_function_error(collection.name)
                embedded.update(zip(missing, embed(missing)))
            with self.turn(), lock.write:  # the turn first: taking it catches up with other processes
                self._check_writable()
                current = self._row(collection)
                if current.seq != row.seq:
                    continue  # another thread or process wrote meanwhile: plan again with what it wrote
                row = current  # the same records; a rename meanwhile is kept
                planned = plan(row.next_label, write, existing, stored, embedded)
                if planned.skipped:
                    what = "already exist and were left unchanged" if write.mode == "add" else "do not exist and were skipped"
                    log.warning("%s %r: %d ids %s: %s", write.mode, row.name, len(planned.skipped), what,
                                ", ".join(planned.skipped[:10]))
                if len(planned.batch.labels) == 0:
                    return _info(row)
                return _info(self._commit(row, planned))

    def _commit(self, row: CollectionRow, planned: Plan) -> CollectionRow:
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
            with self._publishing() as publish:
                written = self._store.write(row, batch, planned.replaced, dimension)
                publish(Change("write", row.id, written, batch=batch, changed=changed))
                return written

        with self._resync_on_failure(row.id):
            new_row = self._indexes.add_after_commit(
                row, dimension, batch.labels[changed], batch.embeddings[changed], commit
            )
        self._after_write(new_row, batch)
        return new_row

    def _after_write(self, row: CollectionRow, batch: RecordBatch) -> None:
        """A committed write, in the catalog row and derived structures (the index is the caller's)."""
        self._rows[row.id] = row
        self._derived.written(row.id, batch)
        self._text.written(row, batch.labels, batch.documents)

    def _after_delete(self, row: CollectionRow, labels: np.ndarray) -> None:
        """A committed delete, in the catalog row, derived structures and index."""
        self._rows[row.id] = row
        self._derived.deleted(row.id, labels)
        self._text.deleted(row, labels)
        self._indexes.remove(row, labels)

    @_shared(write=True)
    def delete(self, collection: CollectionRef, delete: Delete) -> int:
        with self._lock(collection, writable=True).write:
            self._check_writable()
            row = self._row(collection)
            labels = self._reads.select(row, delete.ids, delete.filter)[:delete.limit]
            if len(labels) == 0:
                return 0
            with self._resync_on_failure(row.id), self._publishing() as publish:
                new_row = self._store.delete(row, labels)
                publish(Change("delete", row.id, new_row, labels=labels))
            self._after_delete(new_row, labels)
            due = maintenance.compaction_due(self._indexes.loaded(row.id))
        if due:  # once the collection's lock is let go: the compaction takes the locks it needs
            self._maybe_compact(collection)
        return len(labels)

    # -- reads (vectordb.engine.reads) --------------------------------------

    @_shared()
    def count(self, collection: CollectionRef) -> int:
        with self._lock(collection).read:
            return self._derived.records(self._row(collection)).count()

    @_shared()
    def get(self, collection: CollectionRef, get: Get) -> GetResult:
        with self._lock(collection).read:
            return self._reads.get(self._row(collection), get)

    @_shared()
    def search(self, collection: CollectionRef, search: Search) -> QueryResult:
        lock = self._lock(collection)
        with lock.read:
            return self._reads.search(self._row(collection), search, lock.load)


def _info(row: CollectionRow) -> CollectionInfo:
    return CollectionInfo(row.id, row.name, row.metadata, row.dimension, row.ef_name, row.ef_config, row.metric)


def _built_with(row: CollectionRow) -> Dict[str, Any]:
    """The values of :data:`~vectordb.configuration.FIXED_SETTINGS` the collection was built with:
    its metadata's or the defaults, its metric and the text analyzer the catalog holds for it
    (which may not be today's default)."""
    old = row.metadata or {}
    fixed = {key: old.get(key, default) for key, default in FIXED_SETTINGS.items()}
    fixed[settings.SPACE_KEY] = row.metric or fixed[settings.SPACE_KEY]  # the catalog's (an embedding function's
    # default space is not in the metadata)
    fixed[v.TEXT_ANALYZER_KEY] = analyzer_name(row)
    return fixed


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
