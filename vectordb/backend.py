"""The seam between the public API and the engines that store and search.

One :class:`vectordb.Collection` (and one :class:`vectordb.Client`) serves every
engine: the API layer validates arguments, parses filters once and embeds texts; a
:class:`Backend` stores records and answers searches. The local engine
(:class:`vectordb.engine.LocalBackend`: DuckDB plus derived in-memory structures and
hnswlib) is one backend, :class:`vectordb.http_backend.HttpBackend` (a ``vectordb
serve`` server) another. Backends are plain classes chosen by the client
constructors; nothing here loads a class by name.

What crosses the seam is checked already: ids are unique strings, embeddings a float32
matrix, metadata dicts of valid values, filters a parsed :class:`vectordb.filters.Filter`,
``include`` a list of known field names. Results name the fields they hold under
``included``; embeddings may come as any 2-D array-like (the collection makes them the
numpy arrays users get). A backend still raises the typed errors that only it can
detect (a missing collection, a dimension that differs from the stored one, a locked or
read-only store).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from vectordb.text import fusion
from vectordb.types import CheckReport, CompactResult, GetResult, QueryResult

Embed = Callable[[List[str]], np.ndarray]
"""Embeds documents for storage (the collection's function, checked): a backend calls it
for the texts that need a vector, outside any lock it holds."""


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as its backend describes it.

    ``metric`` is the distance metric its index was built with (the catalog's own
    record); None where the backend does not say (then the metadata's ``hnsw:space``, or l2).
    """

    id: str
    name: str
    metadata: Optional[Dict[str, Any]]
    dimension: Optional[int]
    ef_name: Optional[str]
    ef_config: Optional[Dict[str, Any]]
    metric: Optional[str] = None


@dataclass(frozen=True)
class Write:
    """A checked ``add``, ``upsert`` or ``update`` call: one entry per id, aligned."""

    mode: str
    ids: List[str]
    embeddings: Optional[np.ndarray]
    metadatas: Optional[List[Optional[Dict[str, Any]]]]
    documents: Optional[List[Optional[str]]]


class Backend(ABC):
    """What an engine implements (each method documents its own contract).

    Every method is abstract, so a backend that lacks one cannot be built: the local
    and HTTP clients have the same methods by construction.

    ``collection_id`` names a collection by its id; a collection deleted meanwhile raises
    :class:`vectordb.errors.CollectionNotFoundError` naming ``name``.
    """

    # -- the store ----------------------------------------------------------

    @abstractmethod
    def heartbeat(self) -> int:
        """Nanoseconds since the epoch on the engine's side (a liveness check)."""
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None:
        """Release what the backend holds (files, locks, connections); idempotent."""
        raise NotImplementedError

    @abstractmethod
    def compact(self, collection_id: Optional[str] = None, name: str = "") -> CompactResult:
        """Give back the space of deleted records (one collection, or all); a CompactResult."""
        raise NotImplementedError

    @abstractmethod
    def check(self, repair: bool = False) -> CheckReport:
        """Verify (and with ``repair`` fix) the engine's consistency; a CheckReport."""
        raise NotImplementedError

    @abstractmethod
    def version(self) -> str:
        """The version of vectordb that runs the engine (over HTTP: the server's)."""
        raise NotImplementedError

    @abstractmethod
    def max_batch_size(self) -> int:
        """How many records one write should hold at most (see ``Client.get_max_batch_size``)."""
        raise NotImplementedError

    @abstractmethod
    def reset(self) -> None:
        """Delete every collection (the client checked that its settings allow it; a server checks its own)."""
        raise NotImplementedError

    # -- collections --------------------------------------------------------

    @abstractmethod
    def create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]], ef_name: Optional[str], ef_config: Optional[Dict[str, Any]],
        metric: Optional[str] = None,
    ) -> CollectionInfo:
        """A new collection; CollectionExistsError if the name is taken.

        ``metric`` is its distance metric when the metadata sets none (the client passes its
        embedding function's default space); None: the metadata's ``hnsw:space``, or l2.
        """
        raise NotImplementedError

    @abstractmethod
    def get_collection(self, name: str) -> CollectionInfo:
        """The collection called ``name``; CollectionNotFoundError if none."""
        raise NotImplementedError

    @abstractmethod
    def collection(self, collection_id: str, name: str) -> CollectionInfo:
        """The current description of a collection known by id (``name`` is for the error)."""
        raise NotImplementedError

    @abstractmethod
    def collection_by_id(self, collection_id: str) -> CollectionInfo:
        """The collection with this id; CollectionNotFoundError naming the id if none."""
        raise NotImplementedError

    @abstractmethod
    def list_collections(self) -> List[CollectionInfo]:
        """Every collection, in creation order."""
        raise NotImplementedError

    @abstractmethod
    def count_collections(self) -> int:
        """How many collections there are."""
        raise NotImplementedError

    @abstractmethod
    def delete_collection(self, name: str) -> None:
        """Remove a collection and its records; CollectionNotFoundError if none."""
        raise NotImplementedError

    @abstractmethod
    def modify_collection(
        self, collection_id: str, name: str, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        """Rename and/or replace the metadata (the metric and graph settings cannot change)."""
        raise NotImplementedError

    # -- records ------------------------------------------------------------

    @abstractmethod
    def write(self, collection_id: str, name: str, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        """Apply an add/upsert/update as one transaction; returns the collection's new description.

        add leaves existing ids unchanged; update skips unknown ids; upsert and update
        merge metadata key by key (None removes a key). Documents given without
        embeddings are embedded with ``embed`` where a record needs a new vector
        (``embed`` is None for a collection without a function: needing one is an error).
        """
        raise NotImplementedError

    @abstractmethod
    def delete(
        self, collection_id: str, name: str, ids: Optional[List[str]], filter: Any, limit: Optional[int] = None
    ) -> int:
        """Remove the records matching ``ids`` and ``filter`` (at most ``limit``, the first in
        insertion order, or in the order of ``ids``); returns how many were removed."""
        raise NotImplementedError

    @abstractmethod
    def count(self, collection_id: str, name: str) -> int:
        """How many records the collection holds."""
        raise NotImplementedError

    @abstractmethod
    def get(
        self,
        collection_id: str,
        name: str,
        ids: Optional[List[str]],
        filter: Any,
        limit: Optional[int],
        offset: Optional[int],
        include: Sequence[str],
    ) -> GetResult:
        """Records by id (in the order asked) or by filter (in insertion order)."""
        raise NotImplementedError

    @abstractmethod
    def query(
        self,
        collection_id: str,
        name: str,
        queries: np.ndarray,
        n_results: int,
        filter: Any,
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        """The ``n_results`` nearest records to each query row, nearest first, among those
        matching ``filter`` and (when given) having one of ``ids``."""
        raise NotImplementedError

    @abstractmethod
    def text_query(
        self,
        collection_id: str,
        name: str,
        texts: List[str],
        n_results: int,
        filter: Any,
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        """For each text, the ``n_results`` records ranking highest by BM25 (see
        :mod:`vectordb.text.bm25`), best first, equal scores by ascending id, among those that
        hold at least one of the text's terms (so fewer may come back), match ``filter`` and
        (when given) have one of ``ids``; ``scores`` (higher is better) when ``include`` has
        them, ``distances`` None. Hybrid search is built on this and :meth:`query` by the
        collection (:mod:`vectordb.text.fusion`). Raises
        :class:`vectordb.errors.TextSearchUnavailableError` when the collection (or the
        backend) cannot rank by text."""
        raise NotImplementedError

    def hybrid_query(
        self,
        collection_id: str,
        name: str,
        queries: np.ndarray,
        texts: List[str],
        n_results: int,
        filter: Any,
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        """For each pair of query row and text, the ``n_results`` best records of the reciprocal
        rank fusion of the vector ranking and the BM25 ranking, each cut at
        :func:`vectordb.text.fusion.depth` (see :mod:`vectordb.text.fusion`), with ``scores``.

        This default asks :meth:`query` and :meth:`text_query` for their candidates with the
        fields in ``include`` and fuses them; a backend that can rank without reading rows
        (the local engine) overrides it to read only the fused records' fields."""
        depth = fusion.depth(n_results)
        side = [f for f in include if f != "scores"]
        vector = self.query(collection_id, name, queries, depth, filter, side + ["distances"], ids)
        text = self.text_query(collection_id, name, texts, depth, filter, side + ["scores"], ids)
        return fusion.fuse(vector, text, n_results, include)
