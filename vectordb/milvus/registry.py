"""What the Milvus backend knows of each collection between requests, and the errors for one that is gone.

:class:`Registry` owns the per-collection state of one backend: a collection's description
read from the catalog (:mod:`vectordb.milvus.catalog`), cached once its dimension is fixed
(a dimension never changes; a rename or new metadata updates the cache), the layout of each
data collection (read from its schema once: :mod:`vectordb.milvus.layout`), the making of a
collection's data collection at its first write, and the error for a data collection Milvus
no longer has. The record and search objects ask it; nothing else holds such state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Dict, TypeVar

from vectordb.backend import CollectionInfo
from vectordb.errors import BackendError, VectorDBError, collection_deleted
from vectordb.index import settings
from vectordb.milvus.calls import Calls
from vectordb.milvus.catalog import Catalog, MissingData, data_name
from vectordb.milvus.features import Features
from vectordb.milvus.layout import Layout, create_data_collection, layout_of
from vectordb.requests import CollectionRef

T = TypeVar("T")


class Registry:
    """The collections of one backend as its requests need them.

    Args:
        calls: how requests reach Milvus.
        catalog: the catalog collection.
        features: what the server offers (``nullable`` decides a new data collection's layout;
            ``infix_like`` how a document filter narrows). Replaceable: tests force an older server's.
    """

    def __init__(self, calls: Calls, catalog: Catalog, features: Features) -> None:
        self.features = features
        self._calls = calls
        self._catalog = catalog
        self._known: Dict[str, CollectionInfo] = {}  # collections whose dimension is fixed (it never changes)
        self._layouts: Dict[str, Layout] = {}  # data collection -> its layout (read from its schema once)

    def describe(self, ref: CollectionRef) -> CollectionInfo:
        """The collection's current description, from the catalog; CollectionNotFoundError naming
        ``ref.name`` if it was deleted."""
        info = self._catalog.by_id(ref.id)
        if info is None:
            raise collection_deleted(ref.name)
        return info

    def resolve(self, ref: CollectionRef) -> CollectionInfo:
        """The collection's description, from the cache once its dimension is fixed."""
        info = self._known.get(ref.id)
        if info is None:
            info = self.describe(ref)
            if info.dimension is not None:
                self._known[ref.id] = info
        return info

    def updated(self, info: CollectionInfo) -> None:
        """A collection's description changed (renamed, new metadata): the cache follows."""
        if info.id in self._known:
            self._known[info.id] = info

    def fix_dimension(self, info: CollectionInfo, dimension: int) -> CollectionInfo:
        """Record the dimension of a collection's first write, and make its data collection."""
        target = data_name(info.id)
        self._layouts[target] = create_data_collection(
            self._calls, target, dimension, settings.metric_of(info.metadata, info.metric), self.features.nullable)
        current = self.describe(CollectionRef(info.id, info.name))  # a rename meanwhile is kept
        fixed = replace(current, dimension=dimension)
        self._catalog.put(fixed)
        self._known[info.id] = fixed
        return fixed

    def layout(self, name: str) -> Layout:
        """How data collection ``name`` stores documents and metadata (read from its schema once).

        Raises:
            MissingData: there is no such Milvus collection.
        """
        found = self._layouts.get(name)
        if found is None:
            found = self._layouts[name] = layout_of(self._calls.call(self._calls.client.describe_collection, name)["fields"])
        return found

    def with_data(self, ref: CollectionRef, action: Callable[[CollectionInfo], T], empty: T) -> T:
        """``action(info)`` on a collection that has records; ``empty`` for one never written to.
        A data collection Milvus does not have is the error of :meth:`missing`."""
        info = self.resolve(ref)
        if info.dimension is None:
            return empty
        try:
            return action(info)
        except MissingData:
            raise self.missing(ref) from None

    def missing(self, ref: CollectionRef) -> VectorDBError:
        """The error for a data collection Milvus does not have: deleted, or dropped behind vectordb's back."""
        self.forget(ref.id)
        info = self._catalog.by_id(ref.id)
        if info is None:
            return collection_deleted(ref.name)
        return BackendError(
            f"collection {info.name!r}: its records' Milvus collection {data_name(ref.id)} is missing on "
            f"Milvus at {self._calls.uri} (dropped outside vectordb?); client.check() reports it"
        )

    def forget(self, collection_id: str) -> None:
        """Drop what is cached of a collection (deleted, or its data collection gone)."""
        target = data_name(collection_id)
        self._known.pop(collection_id, None)
        self._layouts.pop(target, None)
        self._calls.loaded.discard(target)
