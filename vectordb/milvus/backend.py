"""``MilvusBackend``: vectordb's collections stored in Milvus (a Milvus Lite file, a server, a cluster).

Layout: one catalog collection (:mod:`vectordb.milvus.catalog`) and one Milvus
collection per vectordb collection, made at its first write (when the dimension is
known): ``id``, ``seq`` (insertion order), ``vec`` (searched exactly: a FLAT index), the
document and the metadata (keys encoded: :mod:`vectordb.milvus.expressions`), stored as
the server allows (:mod:`vectordb.milvus.layout`; what the server allows is found once
per client: :mod:`vectordb.milvus.features`).

Semantics are the local store's, by reuse rather than imitation: writes are planned by
the local engine's own rules (:func:`vectordb.engine.writes.plan`: add leaves existing
ids alone, upsert/update merge metadata key by key); filters are narrowed by Milvus and
decided by vectordb's interpreters (:mod:`vectordb.milvus.matching`); ``get`` orders by
``seq``; distances are converted to the local store's (l2 squared, 1 − cosine, 1 − dot).
Reads are at Milvus's Session level: a client sees its own acknowledged writes, and a
read that follows no write of its own does not wait (:mod:`vectordb.milvus.calls` has
the exact promise, and its errors). Milvus has no multi-row transactions: a write is sent
in batches of :data:`vectordb.milvus.records.WRITE_BATCH` rows, and concurrent writers of
the same ids from different processes are last-writer-wins.

Record-level writes and gets are in :mod:`vectordb.milvus.records`, queries in
:mod:`vectordb.milvus.search`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import replace
from typing import Any, Dict, List, Optional

from vectordb.backend import Backend, CollectionInfo
from vectordb.engine.local import INDEX_SETTINGS
from vectordb.errors import (
    BackendError,
    CollectionExistsError,
    InvalidArgumentError,
    MissingDependencyError,
    VectorDBError,
    collection_deleted,
    collection_not_found,
)
from vectordb.index import settings
from vectordb.milvus.calls import Requests, read_level
from vectordb.milvus.catalog import CATALOG, Catalog, MissingData, data_name, is_data_name
from vectordb.milvus.features import Features, detect
from vectordb.milvus.layout import Layout, create_data_collection, layout_of
from vectordb.milvus.records import Records
from vectordb.milvus.search import Search
from vectordb.types import CheckReport, CompactResult, Problem
from vectordb.version import __version__

log = logging.getLogger("vectordb")

MAX_BATCH_SIZE = 10_000
"""The batch size ``get_max_batch_size`` advises (a write is sent to Milvus in smaller pieces anyway)."""


class MilvusBackend(Requests, Records, Search, Backend):
    """The collections of one Milvus database.

    Args:
        uri: a Milvus Lite file (``"./milvus.db"``) or a server (``"http://host:19530"``).
        token: Milvus's token (``"user:password"`` or an API key), if the server wants one.
        db_name: the Milvus database to use (the server's default when None).
        timeout: seconds to wait for the connection and for each request, retries included
            (None: pymilvus's defaults).
        consistency: ``"session"`` (read-your-writes, no waiting otherwise) or ``"strong"``
            (every read waits for the server's next time tick): :mod:`vectordb.milvus.calls`.

    Raises:
        MissingDependencyError: pymilvus is not installed (``pip install "vectordb[milvus]"``).
        ServerUnreachableError: the server cannot be reached.
        InvalidArgumentError: an unknown ``consistency``.
    """

    def __init__(self, uri: str, token: Optional[str] = None, db_name: Optional[str] = None,
                 timeout: Optional[float] = None, consistency: str = "session") -> None:
        if not isinstance(uri, str) or not uri:
            raise InvalidArgumentError(f"uri: expected a Milvus Lite file or http://host:port, got {uri!r}")
        self.read_level = read_level(consistency)
        try:
            import pymilvus
        except ImportError:
            raise MissingDependencyError("pymilvus", "milvus", "vectordb.MilvusClient") from None
        self.uri = uri
        self._exceptions = pymilvus.exceptions
        self._closed = False
        self._lock = threading.Lock()
        self._last_seq = 0
        self._loaded: set = set()
        self._write_locks: Dict[str, threading.Lock] = {}
        self._known: Dict[str, CollectionInfo] = {}  # collections whose dimension is fixed (it never changes)
        self._layouts: Dict[str, Layout] = {}  # data collection -> its layout (read from its schema once)
        kwargs: Dict[str, Any] = {"uri": uri, "token": token or ""}
        if db_name:
            kwargs["db_name"] = db_name
        if timeout is not None:
            kwargs["timeout"] = timeout
        self.timeout = timeout
        self.client = self.call(lambda: pymilvus.MilvusClient(**kwargs))
        self.templates = False  # until found: expressions rendered as literals work everywhere
        self._catalog = Catalog(self)
        self._loaded.add(CATALOG)
        self.features: Features = detect(self, CATALOG)
        self.templates = self.features.templates

    def __repr__(self) -> str:
        return f"MilvusBackend({self.uri!r})"

    def write_lock(self, collection_id: str) -> threading.Lock:
        """The lock that runs this process's writes of one collection one at a time (each reads, then writes)."""
        with self._lock:
            return self._write_locks.setdefault(collection_id, threading.Lock())

    def next_seq(self, n: int) -> int:
        """The first of ``n`` new insertion-order numbers (nanoseconds, increasing in this process)."""
        with self._lock:
            first = max(time.time_ns(), self._last_seq + 1)
            self._last_seq = first + n
            return first

    # -- the store ----------------------------------------------------------

    def heartbeat(self) -> int:
        self.call(self.client.has_collection, CATALOG)
        return time.time_ns()

    def version(self) -> str:
        return __version__

    def max_batch_size(self) -> int:
        return MAX_BATCH_SIZE

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.client.close()
        except Exception:  # closing a connection that is already gone
            pass

    def reset(self) -> None:
        for info in self._catalog.rows():
            self._drop(info)

    def compact(self, collection_id: Optional[str] = None, name: str = "") -> CompactResult:
        """Milvus compaction of the data collections (one, or all); bytes are a Milvus Lite folder's, else 0."""
        before = self._disk_usage()
        if collection_id is None:
            targets = [info.id for info in self._catalog.rows() if info.dimension is not None]
        else:
            targets = [collection_id] if self.collection(collection_id, name).dimension is not None else []
        for target in targets:
            try:
                self.data_call(data_name(target), self.client.compact)
            except MissingData:
                if collection_id is not None:
                    raise self.missing(collection_id, name) from None
        return CompactResult(before, self._disk_usage(), len(targets))

    def _disk_usage(self) -> int:
        if not os.path.exists(self.uri):
            return 0
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.uri) for f in files)

    def check(self, repair: bool = False) -> CheckReport:
        """The catalog against the data collections: a collection whose records are gone, a data
        collection no catalog row names (``repair`` drops it)."""
        rows = self._catalog.rows()
        names = set(self.call(self.client.list_collections))
        report = CheckReport(collections_checked=len(rows))
        named = set()
        for info in rows:
            named.add(data_name(info.id))
            if info.dimension is not None and data_name(info.id) not in names:
                report.problems.append(Problem(info.name, f"its Milvus collection {data_name(info.id)} is missing "
                                                          "(dropped outside vectordb?): its records are lost"))
        for orphan in sorted(n for n in names if is_data_name(n) and n not in named):
            if repair:
                self.call(self.client.drop_collection, orphan)
            report.problems.append(Problem(None, f"Milvus collection {orphan} belongs to no collection", repair))
        return report

    # -- collections --------------------------------------------------------

    def create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]], ef_name: Optional[str], ef_config: Optional[Dict[str, Any]],
        metric: Optional[str] = None,
    ) -> CollectionInfo:
        if self._catalog.by_name(name) is not None:
            raise CollectionExistsError(f"collection {name!r} already exists")
        info = CollectionInfo(str(uuid.uuid4()), name, metadata, None, ef_name, ef_config,
                              settings.metric_of(metadata, metric))
        self._catalog.put(info, created=time.time_ns())
        return info

    def get_collection(self, name: str) -> CollectionInfo:
        info = self._catalog.by_name(name)
        if info is None:
            raise collection_not_found(name)
        return info

    def collection(self, collection_id: str, name: str) -> CollectionInfo:
        info = self._catalog.by_id(collection_id)
        if info is None:
            raise collection_deleted(name)
        return info

    def collection_by_id(self, collection_id: str) -> CollectionInfo:
        info = self._catalog.by_id(collection_id)
        if info is None:
            raise collection_not_found(collection_id)
        return info

    def list_collections(self) -> List[CollectionInfo]:
        return self._catalog.rows()

    def count_collections(self) -> int:
        return len(self._catalog.rows())

    def delete_collection(self, name: str) -> None:
        self._drop(self.get_collection(name))

    def _drop(self, info: CollectionInfo) -> None:
        """Remove the catalog row first (the collection is gone for every client), then its records."""
        self._catalog.remove(info.id)
        self._known.pop(info.id, None)
        target = data_name(info.id)
        self._loaded.discard(target)
        self._layouts.pop(target, None)
        try:
            self.call(self.client.drop_collection, target)
        except MissingData:
            pass  # never written to

    def modify_collection(
        self, collection_id: str, name: str, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        info = self.collection(collection_id, name)
        metadata = info.metadata
        if new_metadata is not None:
            old = info.metadata or {}
            fixed = {**INDEX_SETTINGS, **old, settings.SPACE_KEY: settings.metric_of(old, info.metric)}
            for key in INDEX_SETTINGS:
                if key in new_metadata and new_metadata[key] != fixed[key]:
                    raise InvalidArgumentError(
                        f"metadata[{key!r}]: cannot change from {fixed[key]!r} once the collection exists"
                    )
            metadata = dict(new_metadata)
            for key in INDEX_SETTINGS:  # the settings the collection was made with stay
                if key in old:
                    metadata.setdefault(key, old[key])
            metadata = metadata or None
        if new_name is not None and new_name != info.name and self._catalog.by_name(new_name) is not None:
            raise CollectionExistsError(f"collection {new_name!r} already exists")
        updated = replace(info, name=info.name if new_name is None else new_name, metadata=metadata)
        self._catalog.put(updated)
        if info.id in self._known:
            self._known[info.id] = updated
        return updated

    # -- what records.py and search.py need -----------------------------------

    def resolve(self, collection_id: str, name: str) -> CollectionInfo:
        """The collection's description, from the cache once its dimension is fixed."""
        info = self._known.get(collection_id)
        if info is None:
            info = self.collection(collection_id, name)
            if info.dimension is not None:
                self._known[collection_id] = info
        return info

    def fix_dimension(self, info: CollectionInfo, dimension: int) -> CollectionInfo:
        """Record the dimension of a collection's first write, and make its data collection."""
        target = data_name(info.id)
        self._layouts[target] = create_data_collection(
            self, target, dimension, settings.metric_of(info.metadata, info.metric), self.features.nullable)
        current = self.collection(info.id, info.name)  # a rename meanwhile is kept
        updated = replace(current, dimension=dimension)
        self._catalog.put(updated)
        self._known[info.id] = updated
        return updated

    def layout(self, name: str) -> Layout:
        """How data collection ``name`` stores documents and metadata (read from its schema once).

        Raises:
            MissingData: there is no such Milvus collection.
        """
        found = self._layouts.get(name)
        if found is None:
            found = self._layouts[name] = layout_of(self.call(self.client.describe_collection, name)["fields"])
        return found

    def missing(self, collection_id: str, name: str) -> VectorDBError:
        """The error for a data collection Milvus does not have: deleted, or dropped behind vectordb's back."""
        self._known.pop(collection_id, None)
        self._loaded.discard(data_name(collection_id))
        self._layouts.pop(data_name(collection_id), None)
        info = self._catalog.by_id(collection_id)
        if info is None:
            return collection_deleted(name)
        return BackendError(
            f"collection {info.name!r}: its records' Milvus collection {data_name(collection_id)} is missing on "
            f"Milvus at {self.uri} (dropped outside vectordb?); client.check() reports it"
        )
