"""The seam between the public API and the engines that store and search.

One :class:`vectordb.Collection` (and one :class:`vectordb.Client`) serves every
engine: the API layer validates arguments, parses filters once and embeds texts; a
:class:`Backend` stores records and answers searches. The local engine
(:class:`vectordb.engine.LocalBackend`: DuckDB plus derived in-memory structures and
hnswlib) is one backend, :class:`vectordb.http_backend.HttpBackend` (a ``vectordb
serve`` server) another. Backends are plain classes chosen by the client
constructors; nothing here loads a class by name.

What crosses the seam are the typed requests of :mod:`vectordb.requests`, checked
already (ids are unique strings, embeddings a float32 matrix, metadata dicts of valid
values, filters a parsed :class:`vectordb.filters.Filter`, ``include`` known field names),
naming their collection by a :class:`~vectordb.requests.CollectionRef`. Results are built
by :mod:`vectordb.results` and name the fields they hold under ``included``; embeddings
may come as any 2-D array-like (the collection makes them the numpy arrays users get). A backend still raises the typed errors that only it can
detect (a missing collection, a dimension that differs from the stored one, a locked or
read-only store).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from vectordb.requests import CollectionRef, Delete, Get, Search, Write
from vectordb.types import CheckReport, CompactResult, GetResult, QueryResult

__all__ = ["Backend", "CollectionInfo", "CollectionRef", "Delete", "Embed", "Get", "Search", "Write"]

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


class Backend(ABC):
    """What an engine implements (each method documents its own contract).

    Every method is abstract, so a backend that lacks one cannot be built: the local
    and HTTP clients have the same methods by construction.

    A :class:`CollectionRef` names a collection by its id; a collection deleted meanwhile
    raises :class:`vectordb.errors.CollectionNotFoundError` naming the ref's name.
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
    def compact(self, collection: Optional[CollectionRef] = None) -> CompactResult:
        """Give back the space of deleted records (of ``collection``, or of all); a CompactResult."""
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
    def collection(self, collection: CollectionRef) -> CollectionInfo:
        """The current description of a collection."""
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
        self, collection: CollectionRef, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        """Rename and/or replace the metadata (the metric and graph settings cannot change)."""
        raise NotImplementedError

    # -- records ------------------------------------------------------------

    @abstractmethod
    def write(self, collection: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        """Apply an add/upsert/update as one transaction; returns the collection's new description.

        add leaves existing ids unchanged; update skips unknown ids; upsert and update
        merge metadata key by key (None removes a key). Documents given without
        embeddings are embedded with ``embed`` where a record needs a new vector
        (``embed`` is None for a collection without a function: needing one is an error).
        """
        raise NotImplementedError

    @abstractmethod
    def delete(self, collection: CollectionRef, delete: Delete) -> int:
        """Remove the records ``delete`` names; returns how many were removed."""
        raise NotImplementedError

    @abstractmethod
    def count(self, collection: CollectionRef) -> int:
        """How many records the collection holds."""
        raise NotImplementedError

    @abstractmethod
    def get(self, collection: CollectionRef, get: Get) -> GetResult:
        """The records ``get`` asks for (by id in the order asked, or by filter in insertion order)."""
        raise NotImplementedError

    @abstractmethod
    def search(self, collection: CollectionRef, search: Search) -> QueryResult:
        """For each query of ``search``, its ``n_results`` best records in the search's mode.

        Text ranking is BM25 (:mod:`vectordb.text.bm25`), equal scores by ascending id, over
        the records holding a term of the text (so fewer may come back); hybrid fuses the
        vector and BM25 rankings, each cut at :func:`vectordb.text.fusion.depth`, by
        reciprocal rank fusion (:mod:`vectordb.text.fusion`). A backend or collection that
        cannot rank by text raises :class:`vectordb.errors.TextSearchUnavailableError`
        before doing any work.
        """
        raise NotImplementedError
