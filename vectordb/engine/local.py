"""The local engine as a :class:`vectordb.backend.Backend`: one client's handle on a store's engine.

A request flows one way: the catalog row of its collection (kept in memory by the
:class:`~vectordb.engine.core.Engine`) → the records it touches, read from the store → a
plan of full rows (:mod:`vectordb.planner`) → one DuckDB transaction → the derived
structures and the vector index (:meth:`Engine.commit <vectordb.engine.core.Engine.commit>`;
the index inserts in the background). Reads answer from the derived structures and the
index (:mod:`vectordb.engine.reads`).

Clients of one folder in one process share its engine (:func:`open_store`; two engines
would each keep an index of their own, which would drift). Each client holds its own
:class:`LocalBackend`: closing one closes that handle only (using it afterwards raises,
as for any closed client) and the engine closes, saving its indexes, when the last
handle lets go. A handle dropped without ``close()`` lets go when it is
garbage-collected; an engine nobody holds is closed at exit.

One engine is shared by threads (a server runs each request on a thread of its pool).
Each collection has a readers–writer lock (:mod:`vectordb.engine.locks`): reads of a
collection run beside each other, a change of it runs alone, and requests on different
collections never wait for each other. A write is planned under the read lock, embeds
with no lock held, and commits under the write lock (planned again if its collection
changed meanwhile). A compaction's file swap, ``check`` and ``close`` hold every lock.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
import weakref
from dataclasses import replace
from typing import Any, Callable, Dict, List, Optional, TypeVar

import numpy as np

from vectordb import validation as v
from vectordb.backend import Backend, CollectionInfo, Embed
from vectordb.configuration import FIXED_SETTINGS, replaced_metadata
from vectordb.embedding_functions.base import missing_function_error
from vectordb.engine import maintenance, registry
from vectordb.engine.check import check_store
from vectordb.engine.core import LOCK_TIMEOUT_S, Engine
from vectordb.engine.indexes import index_params
from vectordb.engine.sharing import Change, run_shared
from vectordb.engine.textindexes import analyzer_name, new_analyzer_name
from vectordb.planner import plan, texts_to_embed
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    StorageError,
    StoreLockedError,
    VectorDBError,
    collection_not_found,
)
from vectordb.index import settings
from vectordb.persistence.store import CollectionRow
from vectordb.requests import CollectionRef, Delete, Get, Search, Write
from vectordb.types import CheckReport, CompactResult, GetResult, QueryResult
from vectordb.version import __version__

log = logging.getLogger("vectordb")

MAX_BATCH_SIZE = 100_000
"""The batch size ``get_max_batch_size`` advises (no batch is refused: this size stays fast)."""

__all__ = ["LOCK_TIMEOUT_S", "MAX_BATCH_SIZE", "LocalBackend", "open_store"]


def open_store(path: Any, read_only: bool = False, lock_timeout: float = LOCK_TIMEOUT_S) -> "LocalBackend":
    """A client's handle on the engine of the store under ``path``, opening the engine if this process
    has none (``lock_timeout``: see :class:`~vectordb.engine.core.Engine`; an engine already open keeps
    its own). A read-only handle of a folder this process has open for writing (or the reverse) raises
    StoreLockedError: one engine has one mode (other processes may open the store either way)."""
    folder = registry.store_folder(path, read_only)
    with registry.LOCK:
        engine = registry.open_engine(folder)
        if engine is None:
            engine = Engine(folder, read_only, lock_timeout)
        elif engine.read_only != read_only:
            mode = "read-only" if engine.read_only else "for writing"
            raise StoreLockedError(
                f"the store at {folder} is already open {mode} in this process; open it the same way "
                f"(read_only={engine.read_only}), or close the other clients of it first"
            )
        return LocalBackend(engine)


_M = TypeVar("_M", bound=Callable[..., Any])


def _shared(write: bool = False) -> Callable[[_M], _M]:
    """Run the method as one call on a store other processes may share (see :func:`run_shared`);
    "this client is closed" once the handle is."""

    def decorate(method: _M) -> _M:
        @functools.wraps(method)
        def call(self: "LocalBackend", *args: Any, **kwargs: Any) -> Any:
            engine = self.engine
            if engine.sharing is None or engine.closed:
                return method(self, *args, **kwargs)
            return run_shared(engine.sharing, lambda: method(self, *args, **kwargs), write)

        return call  # type: ignore[return-value]

    return decorate


class LocalBackend(Backend):
    """One client's handle on an :class:`~vectordb.engine.core.Engine` (a new in-memory one by default)."""

    def __init__(self, engine: Optional[Engine] = None) -> None:
        if engine is None:
            engine = Engine(None)
        engine.hold()
        self._engine: Optional[Engine] = engine
        self.path = engine.path
        self.read_only = engine.read_only
        self._finalizer = weakref.finalize(self, engine.forget_holder)

    def __repr__(self) -> str:
        return f"LocalBackend({self.path or ':memory:'})"

    @property
    def engine(self) -> Engine:
        """The engine, while this handle is open; VectorDBError once closed: its parts and knobs are
        for tools and tests (see :mod:`vectordb.engine.core`)."""
        engine = self._engine
        if engine is None:
            raise VectorDBError("this client is closed")
        return engine

    def close(self) -> None:
        """Close this handle; the engine closes (saving its indexes) when no other handle holds it."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        self._finalizer.detach()
        engine.let_go()

    def heartbeat(self) -> int:
        self.engine.check_open()
        return time.time_ns()

    def version(self) -> str:
        return __version__

    def max_batch_size(self) -> int:
        return MAX_BATCH_SIZE

    @_shared(write=True)
    def reset(self) -> None:
        self.engine.check_writable()
        for info in self.list_collections():
            try:
                self.delete_collection(info.name)
            except CollectionNotFoundError:
                pass  # deleted (or renamed) by another thread meanwhile

    @_shared(write=True)
    def check(self, repair: bool = False) -> CheckReport:
        """Check the store while no other request runs (see :mod:`vectordb.engine.check`)."""
        e = self.engine
        with e.locks.everything():
            if repair:
                e.check_writable()
            e.check_open()
            report = check_store(e.store, e.indexes, repair)
            e.text.check(e.store.collections(), report, repair)
            if report.repairs:  # they may have rewritten what the rows and caches were loaded from
                e.rows_changed()
            return report

    @_shared(write=True)
    def compact(self, collection: Optional[CollectionRef] = None) -> CompactResult:
        """Rebuild the indexes (of one collection, or all) and shrink the database file."""
        self.engine.check_writable()
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
        e = self.engine
        before = maintenance.disk_usage(self.path)
        missing_ok = targets is None  # compact(): a collection deleted meanwhile has nothing to compact
        if targets is None:
            with e.locks.catalog.read:
                e.check_writable()
                targets = [CollectionRef(row.id, row.name) for row in e.store.collections()]
        rebuilt = 0
        for target in targets:
            try:
                with e.lock(target, writable=True).write:
                    e.check_writable()
                    row = e.row(target)
                    if due_only:
                        index = e.indexes.loaded(row.id)
                        if index is None or not maintenance.compaction_due(index):
                            continue
                        log.info("collection %r has %d deleted index slots for %d live vectors; compacting",
                                 row.name, index.deleted, index.count)
                    rebuilt += maintenance.rebuild_index(e.indexes, row) is not None
                    if not due_only:  # the text index has no deleted slots: only compact() rebuilds it
                        e.text.rebuild(row)
            except CollectionNotFoundError:
                if not missing_ok:
                    raise
        if due_only and not rebuilt:
            return None
        if self.path is not None:
            with e.locks.everything():
                e.check_writable()
                maintenance.compact_database(e.store)
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
        e = self.engine
        with e.locks.catalog.read:
            e.check_open()
            with e.locks.names:
                if e.store.collection_by_name(name) is not None:
                    raise CollectionExistsError(f"collection {name!r} already exists")
                e.check_writable()
                row = CollectionRow(
                    id=str(uuid.uuid4()), name=name, metadata=metadata,
                    metric=settings.metric_of(metadata, metric), dimension=None,
                    ef_name=ef_name, ef_config=ef_config, next_label=0, seq=0, position=0,
                    text_analyzer=new_analyzer_name(metadata),
                )
                with e.resync_on_failure(row.id), e.publishing() as publish:
                    row = e.store.insert_collection(row)
                    publish(Change("row", row.id, row))
                e.set_row(row)
            return _info(row)

    @_shared()
    def get_collection(self, name: str) -> CollectionInfo:
        e = self.engine
        with e.locks.catalog.read:
            e.check_open()
            row = next((r for r in e.catalog().values() if r.name == name), None)
            if row is None:
                row = e.store.collection_by_name(name)  # not in memory: the store has the last word
            if row is None:
                raise collection_not_found(name)
            return _info(row)

    @_shared()
    def collection(self, collection: CollectionRef) -> CollectionInfo:
        e = self.engine
        with e.lock(collection).read:
            return _info(e.row(collection))

    @_shared()
    def collection_by_id(self, collection_id: str) -> CollectionInfo:
        e = self.engine
        with e.locks.catalog.read:
            e.check_open()
            row = e.catalog().get(collection_id) or e.store.collection_by_id(collection_id)
            if row is None:
                raise collection_not_found(collection_id)
            return _info(row)

    @_shared()
    def list_collections(self) -> List[CollectionInfo]:
        e = self.engine
        with e.locks.catalog.read:
            e.check_open()
            return [_info(row) for row in sorted(e.catalog().values(), key=lambda r: r.position)]

    @_shared()
    def count_collections(self) -> int:
        e = self.engine
        with e.locks.catalog.read:
            e.check_open()
            return len(e.catalog())

    @_shared(write=True)
    def delete_collection(self, name: str) -> None:
        e = self.engine
        e.check_writable()
        with e.locks.catalog.read:
            while True:
                e.check_writable()
                row = e.store.collection_by_name(name)
                if row is None:
                    raise collection_not_found(name)
                lock = e.locks.of(row.id)
                if lock is None:
                    continue  # deleted by another thread a moment ago: look again
                with lock.write:
                    try:
                        current = e.row(CollectionRef(row.id, name))
                    except CollectionNotFoundError:
                        continue  # deleted by another thread while this one waited
                    if current.name != name:
                        continue  # renamed while this thread waited: look the name up again
                    with e.resync_on_failure(row.id), e.publishing() as publish:
                        e.store.delete_collection(row.id)
                        publish(Change("drop", row.id))
                    e.forget_deleted(row.id)
                    return

    @_shared(write=True)
    def modify_collection(
        self, collection: CollectionRef, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        e = self.engine
        with e.lock(collection, writable=True).write:
            e.check_writable()
            row = e.row(collection)
            metadata = row.metadata
            if new_metadata is not None:
                metadata = replaced_metadata(row.metadata, new_metadata, _built_with(row))
            updated = replace(row, name=row.name if new_name is None else new_name, metadata=metadata)
            with e.locks.names:
                if new_name is not None and new_name != row.name and e.store.collection_by_name(new_name):
                    raise CollectionExistsError(f"collection {new_name!r} already exists")
                with e.resync_on_failure(row.id), e.publishing() as publish:
                    e.store.update_collection(updated)
                    publish(Change("row", row.id, updated))
                e.set_row(updated)
            index = e.indexes.loaded(row.id)
            if index is not None and new_metadata is not None:
                index.params = index_params(updated)
            return _info(updated)

    # -- writes -------------------------------------------------------------

    @_shared()
    def write(self, collection: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        """Plan, embed (holding no lock, nor the turn of a shared store: other processes go on),
        then commit inside the turn; planned again if the collection changed meanwhile."""
        e = self.engine
        embedded: Dict[str, np.ndarray] = {}
        lock = e.lock(collection, writable=True)
        while True:
            with lock.read:  # planning only reads: other reads of the collection go on
                e.check_writable()
                row = e.row(collection)
                existing = e.derived.records(row).labels_of(write.ids)
                stored = {} if write.mode == "add" or not existing else e.store.fetch(
                    row.id, np.fromiter(existing.values(), dtype=np.int64), embeddings=True
                )
                texts = texts_to_embed(write, existing, stored)
            missing = list(dict.fromkeys(t for t in texts if t not in embedded))  # in order, once each
            if missing:
                if embed is None:
                    raise missing_function_error(collection.name)
                embedded.update(zip(missing, embed(missing)))
            with e.turn(), lock.write:  # the turn first: taking it catches up with other processes
                e.check_writable()
                current = e.row(collection)
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
                return _info(e.commit(row, planned))

    @_shared(write=True)
    def delete(self, collection: CollectionRef, delete: Delete) -> int:
        e = self.engine
        with e.lock(collection, writable=True).write:
            e.check_writable()
            row = e.row(collection)
            labels = e.reads.select(row, delete.ids, delete.filter)[:delete.limit]
            if len(labels) == 0:
                return 0
            with e.resync_on_failure(row.id), e.publishing() as publish:
                new_row = e.store.delete(row, labels)
                publish(Change("delete", row.id, new_row, labels=labels))
            e.after_delete(new_row, labels)
            due = maintenance.compaction_due(e.indexes.loaded(row.id))
        if due:  # once the collection's lock is let go: the compaction takes the locks it needs
            self._maybe_compact(collection)
        return len(labels)

    # -- reads (vectordb.engine.reads) --------------------------------------

    @_shared()
    def count(self, collection: CollectionRef) -> int:
        e = self.engine
        with e.lock(collection).read:
            return e.derived.records(e.row(collection)).count()

    @_shared()
    def get(self, collection: CollectionRef, get: Get) -> GetResult:
        e = self.engine
        with e.lock(collection).read:
            return e.reads.get(e.row(collection), get)

    @_shared()
    def search(self, collection: CollectionRef, search: Search) -> QueryResult:
        e = self.engine
        lock = e.lock(collection)
        with lock.read:
            return e.reads.search(e.row(collection), search, lock.load)


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
