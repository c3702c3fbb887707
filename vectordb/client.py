"""Clients: the entry point that owns one store and hands out its collections.

``Client()`` keeps everything in memory; ``PersistentClient(path)`` keeps a DuckDB
file and the index files under ``path``. Both serialise their work behind one lock,
so one client can be shared by many threads.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import threading
import time
import uuid
import weakref
from dataclasses import replace
from typing import Any, Dict, List, Optional

import numpy as np

from vectordb import validation as v
from vectordb.collection import Collection
from vectordb.embedding_functions.base import UnavailableEmbeddingFunction, build_from_config, describe
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
    StoreLockedError,
    VectorDBError,
)
from vectordb.engine.indexes import IndexManager
from vectordb.index import settings
from vectordb.index.metadata import MetadataIndex
from vectordb.engine import maintenance
from vectordb.engine.cache import RecordCache
from vectordb.engine.check import CheckReport, check_store
from vectordb.engine.maintenance import CompactResult
from vectordb.persistence.store import CollectionRow, RecordBatch, Store

log = logging.getLogger("vectordb")


class _Default:
    """Marks an argument the caller did not give."""

    def __repr__(self) -> str:
        return "<default>"


DEFAULT = _Default()

IDENTITY_IGNORED_KEYS = frozenset({"timeout", "retry_policy", "device", "api_key_env_var", "max_retries"})
"""Config keys that change how a function runs, not which vectors it makes."""


class Client:
    """A vector database in memory (``path=None``) or on disk.

    Prefer ``vectordb.Client()`` / ``vectordb.EphemeralClient()`` for memory and
    ``vectordb.PersistentClient(path)`` for disk.
    """

    def __init__(self, path: Optional[str] = None, read_only: bool = False) -> None:
        if path is not None:
            if not isinstance(path, (str, os.PathLike)):
                raise InvalidArgumentError(f"path: expected a folder path, got {type(path).__name__}")
            path = os.path.abspath(os.fspath(path))
            if os.path.exists(path) and not os.path.isdir(path):
                raise InvalidArgumentError(f"path: {path} exists and is not a folder")
            if not read_only:
                os.makedirs(path, exist_ok=True)
            elif not os.path.isdir(path):
                raise InvalidArgumentError(f"path: no store at {path} to open read-only")
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        self._closed = True
        if path is not None:
            _claim(path, self)
        try:
            self._store = Store(path, read_only=read_only)
        except BaseException:
            _release(path, self)
            raise
        self._indexes = IndexManager(self._store, None if path is None else os.path.join(path, "index"), read_only)
        self._rows: Dict[str, CollectionRow] = {}
        self._records: Dict[str, RecordCache] = {}
        self._filters: Dict[str, MetadataIndex] = {}
        self._closed = False
        if path is not None:
            self._indexes.remove_orphans({row.id for row in self._store.collections()})
            if not read_only:
                maintenance.remove_leftovers(path)
            atexit.register(_close_at_exit, weakref.ref(self))

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Save the indexes and close the store. Using the client afterwards raises an error."""
        with self._lock:
            if self._closed:
                return
            if not self.read_only:
                self._indexes.flush({row.id: row for row in self._store.collections()})
            self._store.close()
            self._closed = True
            _release(self.path, self)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise VectorDBError("this client is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise VectorDBError(f"the store at {self.path} is open read-only")

    def check(self, repair: bool = False) -> CheckReport:
        """Verify that records, metadata rows, indexes and catalog agree; with ``repair``, fix what can be.

        Returns a CheckReport listing each problem (its collection and what is wrong) and
        whether it was repaired. Repairs rebuild indexes, rewrite metadata rows and drop orphans.
        """
        with self._lock:
            if repair:
                self._check_writable()
            self._check_open()
            return check_store(self, repair)

    def compact(self) -> CompactResult:
        """Rebuild every index from its live vectors and shrink the database file."""
        with self._lock:
            self._check_writable()
            return maintenance.compact(self, self._store.collections())

    def heartbeat(self) -> int:
        """Nanoseconds since the epoch (a liveness check)."""
        return time.time_ns()

    # -- collections --------------------------------------------------------

    def create_collection(
        self,
        name: str,
        metadata: Optional[Dict[str, Any]] = None,
        embedding_function: Any = DEFAULT,
        get_or_create: bool = False,
    ) -> Collection:
        """A new collection; an existing name raises CollectionExistsError unless ``get_or_create``.

        ``embedding_function`` defaults to DefaultEmbeddingFunction (all-MiniLM-L6-v2);
        None makes a collection that only takes explicit embeddings.
        """
        v.validate_collection_name(name)
        metadata = v.validate_collection_metadata(metadata)
        with self._lock:
            self._check_open()
            existing = self._store.collection_by_name(name)
            if existing is not None:
                if get_or_create:
                    return self._collection(existing, embedding_function)
                raise CollectionExistsError(f"collection {name!r} already exists")
            self._check_writable()
            function = _default_function() if embedding_function is DEFAULT else embedding_function
            ef_name, ef_config = (None, None) if function is None else describe(function)
            row = CollectionRow(
                id=str(uuid.uuid4()), name=name, metadata=metadata,
                metric=settings.metric_of(metadata), dimension=None,
                ef_name=ef_name, ef_config=ef_config, next_label=0, seq=0, position=0,
            )
            row = self._store.insert_collection(row)
            self._remember(row)
            return Collection(self, row, function)

    def get_collection(self, name: str, embedding_function: Any = None) -> Collection:
        """An existing collection, with its persisted embedding function unless one is passed.

        Raises CollectionNotFoundError; EmbeddingFunctionConflictError when the function
        passed is not the one the collection was created with.
        """
        if not isinstance(name, str):
            raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
        with self._lock:
            self._check_open()
            row = self._store.collection_by_name(name)
            if row is None:
                raise CollectionNotFoundError(f"collection {name!r} does not exist")
            return self._collection(row, DEFAULT if embedding_function is None else embedding_function)

    def get_or_create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]] = None, embedding_function: Any = DEFAULT
    ) -> Collection:
        """The collection called ``name``, created if missing."""
        return self.create_collection(name, metadata, embedding_function, get_or_create=True)

    def list_collections(self) -> List[Collection]:
        """Every collection, in creation order."""
        with self._lock:
            self._check_open()
            return [self._collection(row, DEFAULT) for row in self._store.collections()]

    def count_collections(self) -> int:
        """How many collections the store holds."""
        with self._lock:
            self._check_open()
            return len(self._store.collections())

    def delete_collection(self, name: str) -> None:
        """Remove a collection, its records and its index files."""
        if not isinstance(name, str):
            raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
        with self._lock:
            self._check_writable()
            row = self._store.collection_by_name(name)
            if row is None:
                raise CollectionNotFoundError(f"collection {name!r} does not exist")
            self._store.delete_collection(row.id)
            self._indexes.drop(row.id)
            self._rows.pop(row.id, None)
            self._records.pop(row.id, None)
            self._filters.pop(row.id, None)

    def _row(self, collection_id: str, name: str) -> CollectionRow:
        """The collection's catalog row, kept in memory: this client is the store's only writer."""
        self._check_open()
        row = self._rows.get(collection_id)
        if row is None:
            row = self._store.collection_by_id(collection_id)
            if row is None:
                raise CollectionNotFoundError(f"collection {name!r} no longer exists")
            self._rows[collection_id] = row
        return row

    def _remember(self, row: CollectionRow) -> None:
        """Keep the row a committed change produced."""
        self._rows[row.id] = row

    def _written(self, row: CollectionRow, batch: RecordBatch) -> None:
        """Bring the in-memory copies up to date with a committed write."""
        self._remember(row)
        cache = self._records.get(row.id)
        if cache is not None:
            cache.put(batch.labels, batch.ids, batch.documents, batch.metadata_json)
        filters = self._filters.get(row.id)
        if filters is not None:
            filters.put(batch.labels, batch.metadatas)

    def _deleted(self, row: CollectionRow, labels: np.ndarray) -> None:
        """Bring the in-memory copies up to date with a committed delete."""
        self._remember(row)
        cache = self._records.get(row.id)
        if cache is not None:
            cache.drop(labels)
        filters = self._filters.get(row.id)
        if filters is not None:
            filters.drop(labels)

    def _metadata_index(self, row: CollectionRow) -> MetadataIndex:
        """The collection's in-memory metadata columns for ``where`` filters, loaded on first use."""
        index = self._filters.get(row.id)
        if index is None:
            index = MetadataIndex.load(self._store.metadata_columns(row.id), row.next_label)
            self._filters[row.id] = index
        return index

    def _record_cache(self, row: CollectionRow) -> RecordCache:
        """The collection's in-memory ids, documents and metadata, loaded on first use."""
        cache = self._records.get(row.id)
        if cache is None:
            cache = RecordCache.load(self._store.cached_columns(row.id), row.next_label)
            self._records[row.id] = cache
        return cache

    def _modify(self, collection: Collection, name: Optional[str], metadata: Optional[Dict[str, Any]]) -> None:
        if name is not None:
            v.validate_collection_name(name)
        new_meta = v.validate_collection_metadata(metadata) if metadata is not None else None
        with self._lock:
            self._check_writable()
            row = collection._refresh()
            if new_meta is not None:
                old = row.metadata or {}
                for key in settings.BUILD_KEYS:
                    if key in new_meta and new_meta[key] != settings.setting(old, key):
                        raise InvalidArgumentError(
                            f"metadata[{key!r}]: cannot change from {settings.setting(old, key)!r} once the collection exists"
                        )
            if name is not None and name != row.name and self._store.collection_by_name(name) is not None:
                raise CollectionExistsError(f"collection {name!r} already exists")
            updated = replace(
                row,
                name=row.name if name is None else name,
                metadata=row.metadata if metadata is None else _keep_index_settings(row, new_meta),
            )
            self._store.update_collection(updated)
            collection._row = updated
            self._remember(updated)
            index = self._indexes.loaded(row.id)
            if index is not None and metadata is not None:
                index.params = settings.index_params(updated.metadata, updated.metric)

    def _collection(self, row: CollectionRow, passed: Any) -> Collection:
        if passed is DEFAULT:
            return Collection(self, row, _rebuild_function(row))
        ef_name, ef_config = (None, None) if passed is None else describe(passed)
        if not _same_function(row.ef_name, row.ef_config, ef_name, ef_config):
            raise EmbeddingFunctionConflictError(
                f"collection {row.name!r} was created with embedding function {row.ef_name or 'None'!r}"
                f"{_config_text(row.ef_config)}, but {ef_name or 'None'!r}{_config_text(ef_config)} was passed; "
                "omit embedding_function to use the collection's own"
            )
        return Collection(self, row, passed)


class PersistentClient(Client):
    """A store on disk under ``path``: a DuckDB file plus rebuildable index files.

    ``read_only=True`` opens an existing store without writing to it (refused by
    DuckDB while another process has it open for writing).
    """

    def __init__(self, path: str = "./vectordb_data", read_only: bool = False) -> None:
        super().__init__(path=path, read_only=read_only)


def EphemeralClient() -> Client:
    """A client whose data lives in memory and is gone at exit."""
    return Client()


_OPEN_PATHS: Dict[str, "weakref.ReferenceType[Client]"] = {}
_OPEN_PATHS_LOCK = threading.Lock()


def _claim(path: str, client: Client) -> None:
    """One client per store in a process: a second one would keep an index of its own that drifts."""
    with _OPEN_PATHS_LOCK:
        holder = _OPEN_PATHS.get(path)
        if holder is not None and holder() is not None:
            gc.collect()  # a client the program dropped may only wait for the cycle collector
        other = holder() if holder is not None else None
        if other is not None and not other._closed:
            raise StoreLockedError(
                f"the store at {path} is already open in this process (by another client object); "
                "use that client, or close() it first"
            )
        _OPEN_PATHS[path] = weakref.ref(client)


def _release(path: Optional[str], client: Client) -> None:
    with _OPEN_PATHS_LOCK:
        holder = _OPEN_PATHS.get(path) if path is not None else None
        if holder is not None and holder() is client:
            del _OPEN_PATHS[path]


def _close_at_exit(ref: "weakref.ReferenceType[Client]") -> None:
    client = ref()
    if client is not None:
        try:
            client.close()
        except Exception:  # at exit, a failed save only means a catch-up on next open
            log.exception("closing the vectordb store at exit failed")


def _default_function() -> Any:
    from vectordb.embedding_functions import DefaultEmbeddingFunction

    return DefaultEmbeddingFunction()


def _rebuild_function(row: CollectionRow) -> Any:
    if row.ef_name is None:
        return None
    if row.ef_config is None:
        reason = (
            f"collection {row.name!r} was created with the custom embedding function {row.ef_name[7:]!r}, "
            f"which has no config to rebuild it from: pass it again with "
            f"get_collection({row.name!r}, embedding_function=...)"
        )
        return UnavailableEmbeddingFunction(row.ef_name, None, reason)
    try:
        return build_from_config(row.ef_name, row.ef_config)
    except Exception as exc:
        reason = (
            f"collection {row.name!r} uses embedding function {row.ef_name!r}, which cannot be rebuilt here: {exc}"
        )
        return UnavailableEmbeddingFunction(row.ef_name, row.ef_config, reason)


def _same_function(name_a: Optional[str], config_a: Any, name_b: Optional[str], config_b: Any) -> bool:
    if name_a != name_b:
        return False
    if not isinstance(config_a, dict) or not isinstance(config_b, dict):
        return config_a == config_b or config_a is None or config_b is None
    strip = lambda c: {k: x for k, x in c.items() if k not in IDENTITY_IGNORED_KEYS}  # noqa: E731
    return strip(config_a) == strip(config_b)


def _config_text(config: Any) -> str:
    return f" {config}" if config else ""


def _keep_index_settings(row: CollectionRow, metadata: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """New metadata, keeping the settings the index was built with (they cannot change)."""
    out = dict(metadata or {})
    for key in settings.BUILD_KEYS:
        if row.metadata and key in row.metadata:
            out.setdefault(key, row.metadata[key])
    return out or None
