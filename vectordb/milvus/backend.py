"""``MilvusBackend``: vectordb's collections stored in Milvus (a Milvus Lite file, a server, a cluster).

Layout: one catalog collection (:mod:`vectordb.milvus.catalog`) and one Milvus
collection per vectordb collection, made at its first write (when the dimension is
known): ``id``, ``seq`` (insertion order), ``vec`` (searched exactly: a FLAT index), the
document and the metadata (keys encoded: :mod:`vectordb.milvus.expressions`), stored as
the server allows (:mod:`vectordb.milvus.layout`; what the server allows is found once
per client: :mod:`vectordb.milvus.features`).

Semantics are the local store's, by reuse rather than imitation: writes are planned by
the rules every backend applies (:func:`vectordb.planner.plan`: add leaves existing
ids alone, upsert/update merge metadata key by key); filters are narrowed by Milvus and
decided by vectordb's interpreters (:mod:`vectordb.milvus.matching`); ``get`` orders by
``seq``; distances are converted to the local store's (l2 squared, 1 − cosine, 1 − dot);
results are built by :mod:`vectordb.results`; a modify keeps the settings a collection was
built with by :func:`vectordb.configuration.replaced_metadata`. Text and hybrid searches are
refused (Milvus keeps no BM25 index). Reads are at Milvus's Session level: a client sees its
own acknowledged writes, and a read that follows no write of its own does not wait
(:mod:`vectordb.milvus.calls` has the exact promise, and its errors). Milvus has no
multi-row transactions: a write is sent in batches of
:data:`vectordb.milvus.records.WRITE_BATCH` rows, and concurrent writers of the same ids
from different processes are last-writer-wins.

This module owns the store and its collections; the backend is composed of plain objects,
each made here with what it needs: :class:`~vectordb.milvus.calls.Calls` (every pymilvus
request), :class:`~vectordb.milvus.catalog.Catalog`, :class:`~vectordb.milvus.registry.Registry`
(each collection's cached description and layout), :class:`~vectordb.milvus.records.Records`
(writes, deletes, counts, gets) and :class:`~vectordb.milvus.search.Searcher` (searches).
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import replace
from typing import Any, Dict, List, Optional

from vectordb.backend import Backend, CollectionInfo, Embed
from vectordb.configuration import FIXED_SETTINGS, replaced_metadata
from vectordb.errors import CollectionExistsError, InvalidArgumentError, MissingDependencyError, collection_not_found
from vectordb.index import settings
from vectordb.milvus.calls import Calls, read_level
from vectordb.milvus.catalog import CATALOG, Catalog, MissingData, data_name, is_data_name
from vectordb.milvus.features import Features, detect
from vectordb.milvus.layout import Layout
from vectordb.milvus.records import Records
from vectordb.milvus.registry import Registry
from vectordb.milvus.search import Searcher
from vectordb.requests import CollectionRef, Delete, Get, Search, Write
from vectordb.types import CheckReport, CompactResult, GetResult, Problem, QueryResult
from vectordb.version import __version__

MAX_BATCH_SIZE = 10_000
"""The batch size ``get_max_batch_size`` advises (a write is sent to Milvus in smaller pieces anyway)."""


class MilvusBackend(Backend):
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
        level = read_level(consistency)
        try:
            import pymilvus
        except ImportError:
            raise MissingDependencyError("pymilvus", "milvus", "vectordb.MilvusClient") from None
        self.uri = uri
        kwargs: Dict[str, Any] = {"uri": uri, "token": token or ""}
        if db_name:
            kwargs["db_name"] = db_name
        if timeout is not None:
            kwargs["timeout"] = timeout
        self.calls = Calls(uri, lambda: pymilvus.MilvusClient(**kwargs), pymilvus.exceptions, timeout, level)
        self._catalog = Catalog(self.calls)
        self._registry = Registry(self.calls, self._catalog, detect(self.calls, CATALOG))
        self.calls.templates = self._registry.features.templates
        self._records = Records(self.calls, self._registry)
        self._searcher = Searcher(self.calls, self._registry, self._records)

    def __repr__(self) -> str:
        return f"MilvusBackend({self.uri!r})"

    @property
    def client(self) -> Any:
        """The pymilvus client."""
        return self.calls.client

    @property
    def read_level(self) -> str:
        """The Milvus consistency level of reads (``"Session"`` or ``"Strong"``)."""
        return self.calls.read_level

    @property
    def features(self) -> Features:
        """What the server offers (found when the client connected)."""
        return self._registry.features

    @features.setter
    def features(self, features: Features) -> None:  # tests stand in for an older server
        self._registry.features = features
        self.calls.templates = features.templates

    def layout(self, name: str) -> Layout:
        """How data collection ``name`` stores documents and metadata (MissingData if there is none)."""
        return self._registry.layout(name)

    # -- the store ----------------------------------------------------------

    def heartbeat(self) -> int:
        self.calls.call(self.calls.client.has_collection, CATALOG)
        return time.time_ns()

    def version(self) -> str:
        return __version__

    def max_batch_size(self) -> int:
        return MAX_BATCH_SIZE

    def close(self) -> None:
        self.calls.close()

    def reset(self) -> None:
        for info in self._catalog.rows():
            self._drop(info)

    def compact(self, collection: Optional[CollectionRef] = None) -> CompactResult:
        """Milvus compaction of the data collections (one, or all); bytes are a Milvus Lite folder's, else 0."""
        before = self._disk_usage()
        if collection is None:
            targets = [info.id for info in self._catalog.rows() if info.dimension is not None]
        else:
            targets = [collection.id] if self.collection(collection).dimension is not None else []
        for target in targets:
            try:
                self.calls.data_call(data_name(target), self.calls.client.compact)
            except MissingData:
                if collection is not None:
                    raise self._registry.missing(collection) from None
        return CompactResult(before, self._disk_usage(), len(targets))

    def _disk_usage(self) -> int:
        if not os.path.exists(self.uri):
            return 0
        return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(self.uri) for f in files)

    def check(self, repair: bool = False) -> CheckReport:
        """The catalog against the data collections: a collection whose records are gone, a data
        collection no catalog row names (``repair`` drops it)."""
        rows = self._catalog.rows()
        names = set(self.calls.call(self.calls.client.list_collections))
        report = CheckReport(collections_checked=len(rows))
        named = set()
        for info in rows:
            named.add(data_name(info.id))
            if info.dimension is not None and data_name(info.id) not in names:
                report.problems.append(Problem(info.name, f"its Milvus collection {data_name(info.id)} is missing "
                                                          "(dropped outside vectordb?): its records are lost"))
        for orphan in sorted(n for n in names if is_data_name(n) and n not in named):
            if repair:
                self.calls.call(self.calls.client.drop_collection, orphan)
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

    def collection(self, collection: CollectionRef) -> CollectionInfo:
        return self._registry.describe(collection)

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
        self._registry.forget(info.id)
        try:
            self.calls.call(self.calls.client.drop_collection, data_name(info.id))
        except MissingData:
            pass  # never written to

    def modify_collection(
        self, collection: CollectionRef, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        info = self.collection(collection)
        metadata = info.metadata
        if new_metadata is not None:
            old = info.metadata or {}
            built_with = {**FIXED_SETTINGS, **old, settings.SPACE_KEY: settings.metric_of(old, info.metric)}
            metadata = replaced_metadata(info.metadata, new_metadata, built_with)
        if new_name is not None and new_name != info.name and self._catalog.by_name(new_name) is not None:
            raise CollectionExistsError(f"collection {new_name!r} already exists")
        updated = replace(info, name=info.name if new_name is None else new_name, metadata=metadata)
        self._catalog.put(updated)
        self._registry.updated(updated)
        return updated

    # -- records: Records and Searcher ----------------------------------------

    def write(self, collection: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        return self._records.write(collection, write, embed)

    def delete(self, collection: CollectionRef, delete: Delete) -> int:
        return self._records.delete(collection, delete)

    def count(self, collection: CollectionRef) -> int:
        return self._records.count(collection)

    def get(self, collection: CollectionRef, get: Get) -> GetResult:
        return self._records.get(collection, get)

    def search(self, collection: CollectionRef, search: Search) -> QueryResult:
        return self._searcher.search(collection, search)
