"""Clients: the entry point that hands out collections, over one backend.

``Client()`` keeps everything in memory; ``PersistentClient(path)`` keeps a DuckDB
file and the index files under ``path``; ``HttpClient(host, port)`` talks to a
``vectordb serve`` server. Each is the same :class:`Client` over another backend
(:mod:`vectordb.backend`): the client checks collection names and metadata and owns
the collections' embedding functions (persisted by name and config, rebuilt on open,
compared on ``get_collection``); the backend stores.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from vectordb import validation as v
from vectordb.backend import Backend, CollectionInfo
from vectordb.types import CheckReport, CompactResult
from vectordb.collection import Collection
from vectordb.embedding_functions.base import describe
from vectordb.embedding_functions.identity import conflict_message, default_function, rebuild_function, same_function
from vectordb.engine.local import LocalBackend
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
)

log = logging.getLogger("vectordb")


class _Default:
    """Marks an argument the caller did not give."""

    def __repr__(self) -> str:
        return "<default>"


DEFAULT = _Default()


class Client:
    """A vector database: in memory (``path=None``), on disk under ``path``, or any ``backend``.

    Prefer ``vectordb.Client()`` / ``vectordb.EphemeralClient()`` for memory,
    ``vectordb.PersistentClient(path)`` for disk and ``vectordb.HttpClient(...)`` for a server.
    """

    def __init__(self, path: Optional[str] = None, read_only: bool = False, *, backend: Optional[Backend] = None) -> None:
        self._backend: Backend = LocalBackend(path, read_only) if backend is None else backend

    @property
    def path(self) -> Optional[str]:
        """The store's folder (None in memory or over HTTP)."""
        return getattr(self._backend, "path", None)

    @property
    def read_only(self) -> bool:
        """Whether the store was opened read-only."""
        return bool(getattr(self._backend, "read_only", False))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._backend!r})"

    # -- lifecycle ----------------------------------------------------------

    def close(self) -> None:
        """Save the indexes and close the store (or the connections to the server).

        Using the client afterwards raises an error."""
        self._backend.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def check(self, repair: bool = False) -> CheckReport:
        """Verify that records, metadata rows, indexes and catalog agree; with ``repair``, fix what can be.

        Returns a CheckReport listing each problem (its collection and what is wrong) and
        whether it was repaired. Repairs rebuild indexes, rewrite metadata rows and drop orphans.
        """
        return self._backend.check(repair)

    def compact(self) -> CompactResult:
        """Rebuild every index from its live vectors and shrink the database file (a CompactResult)."""
        return self._backend.compact()

    def heartbeat(self) -> int:
        """Nanoseconds since the epoch (a liveness check)."""
        return self._backend.heartbeat()

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
        if get_or_create:
            existing = self._existing(name)
            if existing is not None:
                return self._collection(existing, embedding_function)
        function = default_function() if embedding_function is DEFAULT else embedding_function
        ef_name, ef_config = (None, None) if function is None else describe(function)
        try:
            info = self._backend.create_collection(name, metadata, ef_name, ef_config)
        except CollectionExistsError:
            existing = self._existing(name) if get_or_create else None
            if existing is None:
                raise
            return self._collection(existing, embedding_function)  # created meanwhile by another client
        return Collection(self._backend, info, function)

    def _existing(self, name: str) -> Optional[CollectionInfo]:
        try:
            return self._backend.get_collection(name)
        except CollectionNotFoundError:
            return None

    def get_collection(self, name: str, embedding_function: Any = None) -> Collection:
        """An existing collection, with its persisted embedding function unless one is passed.

        Raises CollectionNotFoundError; EmbeddingFunctionConflictError when the function
        passed is not the one the collection was created with.
        """
        if not isinstance(name, str):
            raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
        info = self._backend.get_collection(name)
        return self._collection(info, DEFAULT if embedding_function is None else embedding_function)

    def get_or_create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]] = None, embedding_function: Any = DEFAULT
    ) -> Collection:
        """The collection called ``name``, created if missing."""
        return self.create_collection(name, metadata, embedding_function, get_or_create=True)

    def list_collections(self) -> List[Collection]:
        """Every collection, in creation order."""
        return [self._collection(info, DEFAULT) for info in self._backend.list_collections()]

    def count_collections(self) -> int:
        """How many collections the store holds."""
        return self._backend.count_collections()

    def delete_collection(self, name: str) -> None:
        """Remove a collection, its records and its index files."""
        if not isinstance(name, str):
            raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
        self._backend.delete_collection(name)

    def _collection(self, info: CollectionInfo, passed: Any) -> Collection:
        if passed is DEFAULT:
            return Collection(self._backend, info, rebuild_function(info.name, info.ef_name, info.ef_config))
        ef_name, ef_config = (None, None) if passed is None else describe(passed)
        if not same_function(info.ef_name, info.ef_config, ef_name, ef_config):
            raise EmbeddingFunctionConflictError(
                conflict_message(info.name, info.ef_name, info.ef_config, ef_name, ef_config)
            )
        return Collection(self._backend, info, passed)


class PersistentClient(Client):
    """A store on disk under ``path``: a DuckDB file plus rebuildable index files.

    ``read_only=True`` opens an existing store without writing to it (refused while
    another process has it open for writing: see :mod:`vectordb.persistence.lock`).
    """

    def __init__(self, path: str = "./vectordb_data", read_only: bool = False) -> None:
        super().__init__(path=path, read_only=read_only)


def EphemeralClient() -> Client:
    """A client whose data lives in memory and is gone at exit."""
    return Client()
