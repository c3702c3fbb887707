"""``MilvusBackend``: vectordb's collections stored in Milvus (a Milvus Lite file, a server, a cluster).

Layout: one catalog collection (:mod:`vectordb.milvus.catalog`) and one Milvus
collection per vectordb collection, made at its first write (when the dimension is
known), with fields ``id`` (VARCHAR primary key), ``seq`` (INT64: insertion order, kept
by updates), ``vec`` (FLOAT_VECTOR, searched exactly: a FLAT index), ``doc`` (nullable
VARCHAR) and ``metadata`` (nullable JSON, keys encoded: :mod:`vectordb.milvus.expressions`).

Semantics are the local store's, by reuse rather than imitation: writes are planned by
the local engine's own rules (:func:`vectordb.engine.writes.plan`: add leaves existing
ids alone, upsert/update merge metadata key by key); filters are narrowed by Milvus and
decided by vectordb's interpreters (:mod:`vectordb.milvus.matching`); ``get`` orders by
``seq``; distances are converted to the local store's (l2 squared, 1 − cosine, 1 − dot).
Every request uses consistency level "Strong", so a read sees every acknowledged write.
Milvus has no multi-row transactions: a write is sent in batches of
:data:`WRITE_BATCH` rows, and concurrent writers of the same ids from different
processes are last-writer-wins.

Record-level reads and writes are in :mod:`vectordb.milvus.records`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional

from vectordb.backend import Backend, CollectionInfo
from vectordb.engine.local import INDEX_SETTINGS
from vectordb.errors import (
    BackendError,
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidArgumentError,
    MissingDependencyError,
    ServerUnreachableError,
    VectorDBError,
    collection_not_found,
)
from vectordb.milvus import expressions as x
from vectordb.milvus.catalog import CATALOG, Catalog, MissingData, data_name, is_data_name
from vectordb.milvus.records import Records, create_data_collection
from vectordb.types import CheckReport, CompactResult, Problem
from vectordb.version import __version__

log = logging.getLogger("vectordb")

MAX_BATCH_SIZE = 10_000
"""The batch size ``get_max_batch_size`` advises (a write is sent to Milvus in smaller pieces anyway)."""
CONSISTENCY = "Strong"
"""The consistency level of every request: a read sees every write acknowledged before it."""
_NOT_FOUND, _UNAVAILABLE, _NOT_LOADED = 100, 2, 101


class MilvusBackend(Records, Backend):
    """The collections of one Milvus database.

    Args:
        uri: a Milvus Lite file (``"./milvus.db"``) or a server (``"http://host:19530"``).
        token: Milvus's token (``"user:password"`` or an API key), if the server wants one.
        db_name: the Milvus database to use (the server's default when None).
        timeout: seconds to wait for each request (None: pymilvus's default).

    Raises:
        MissingDependencyError: pymilvus is not installed (``pip install "vectordb[milvus]"``).
        ServerUnreachableError: the server cannot be reached.
    """

    def __init__(self, uri: str, token: Optional[str] = None, db_name: Optional[str] = None,
                 timeout: Optional[float] = None) -> None:
        if not isinstance(uri, str) or not uri:
            raise InvalidArgumentError(f"uri: expected a Milvus Lite file or http://host:port, got {uri!r}")
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
        kwargs: Dict[str, Any] = {"uri": uri, "token": token or ""}
        if db_name:
            kwargs["db_name"] = db_name
        if timeout is not None:
            kwargs["timeout"] = timeout
        self.client = self.call(lambda: pymilvus.MilvusClient(**kwargs))
        self.templates = True
        self._catalog = Catalog(self)
        self.templates = self._takes_templates()

    def __repr__(self) -> str:
        return f"MilvusBackend({self.uri!r})"

    # -- calling Milvus -------------------------------------------------------

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with Milvus's errors as vectordb's (MissingData for a missing collection)."""
        if self._closed:
            raise VectorDBError("this client is closed")
        try:
            return fn(*args, **kwargs)
        except self._exceptions.MilvusException as exc:
            code = getattr(exc, "code", None)
            message = getattr(exc, "message", None) or str(exc)
            if code == _NOT_FOUND and "not exist" in message:
                raise MissingData(message) from None
            if code == _NOT_LOADED or "call load()" in message:
                raise
            if code == _UNAVAILABLE or "connect" in message.lower() or "unavailable" in message.lower():
                raise ServerUnreachableError(f"cannot reach Milvus at {self.uri}: {message}") from None
            raise BackendError(f"Milvus at {self.uri} refused the request: {message}") from None
        except VectorDBError:
            raise
        except Exception as exc:  # grpc and socket errors: the server went away mid-request
            raise ServerUnreachableError(
                f"lost the connection to Milvus at {self.uri}: {type(exc).__name__}: {exc}"
            ) from None

    def data_call(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call on a data collection, loading it first if this server has it released."""
        if name not in self._loaded:
            self.call(self.client.load_collection, name)
            self._loaded.add(name)
        try:
            return self.call(fn, name, *args, **kwargs)
        except self._exceptions.MilvusException:  # released behind our back: load and try once more
            self.call(self.client.load_collection, name)
            return self.call(fn, name, *args, **kwargs)

    def filter_args(self, expr: Optional[x.Expr]) -> Dict[str, Any]:
        """``filter`` (and ``filter_params``) for an expression, as this server takes them."""
        if expr is None:
            return {"filter": "seq >= 0"}
        if self.templates:
            return {"filter": expr[0], "filter_params": expr[1]}
        return {"filter": x.render(expr)}

    def query_rows(self, name: str, expr: Optional[x.Expr], fields: List[str]) -> List[Dict[str, Any]]:
        """The rows of collection ``name`` matching ``expr`` (all matches), with ``fields``."""
        args = self.filter_args(expr)
        if name == CATALOG:
            return list(self.call(self.client.query, name, output_fields=fields,
                                  consistency_level=CONSISTENCY, **args))
        return list(self.data_call(name, self.client.query, output_fields=fields,
                                   consistency_level=CONSISTENCY, **args))

    def delete_where(self, name: str, expr: x.Expr) -> None:
        """Delete the rows of collection ``name`` matching ``expr``."""
        self.call(self.client.delete, name, **self.filter_args(expr))

    def _takes_templates(self) -> bool:
        """Whether the server reads expression templates (Milvus 2.5+ does; Milvus Lite 3.x does not)."""
        quiet = logging.getLogger("pymilvus.decorators")  # it logs the refusal at ERROR, with a traceback
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            self.call(self.client.query, CATALOG, filter="id == {p0}", filter_params={"p0": ""},
                      output_fields=["id"], consistency_level=CONSISTENCY)
            return True
        except BackendError:
            return False
        finally:
            quiet.setLevel(level)

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
        self, name: str, metadata: Optional[Dict[str, Any]], ef_name: Optional[str], ef_config: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        if self._catalog.by_name(name) is not None:
            raise CollectionExistsError(f"collection {name!r} already exists")
        info = CollectionInfo(str(uuid.uuid4()), name, metadata, None, ef_name, ef_config)
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
            raise CollectionNotFoundError(f"collection {name!r} no longer exists")
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
            for key, default in INDEX_SETTINGS.items():
                if key in new_metadata and new_metadata[key] != old.get(key, default):
                    raise InvalidArgumentError(
                        f"metadata[{key!r}]: cannot change from {old.get(key, default)!r} once the collection exists"
                    )
            metadata = dict(new_metadata)
            for key in INDEX_SETTINGS:  # the settings the collection was made with stay
                if key in old:
                    metadata.setdefault(key, old[key])
            metadata = metadata or None
        if new_name is not None and new_name != info.name and self._catalog.by_name(new_name) is not None:
            raise CollectionExistsError(f"collection {new_name!r} already exists")
        updated = CollectionInfo(info.id, info.name if new_name is None else new_name, metadata,
                                 info.dimension, info.ef_name, info.ef_config)
        self._catalog.put(updated)
        if info.id in self._known:
            self._known[info.id] = updated
        return updated

    # -- what records.py needs ------------------------------------------------

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
        create_data_collection(self, data_name(info.id), dimension, info.metadata)
        current = self.collection(info.id, info.name)  # a rename meanwhile is kept
        updated = CollectionInfo(current.id, current.name, current.metadata, dimension,
                                 current.ef_name, current.ef_config)
        self._catalog.put(updated)
        self._known[info.id] = updated
        return updated

    def missing(self, collection_id: str, name: str) -> VectorDBError:
        """The error for a data collection Milvus does not have: deleted, or dropped behind vectordb's back."""
        self._known.pop(collection_id, None)
        self._loaded.discard(data_name(collection_id))
        info = self._catalog.by_id(collection_id)
        if info is None:
            return CollectionNotFoundError(f"collection {name!r} no longer exists")
        return BackendError(
            f"collection {info.name!r}: its records' Milvus collection {data_name(collection_id)} is missing on "
            f"Milvus at {self.uri} (dropped outside vectordb?); client.check() reports it"
        )
