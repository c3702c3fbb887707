"""Clients: the entry point that hands out collections, over one backend.

``Client()`` keeps everything in memory; ``PersistentClient(path)`` keeps a DuckDB
file and the index files under ``path``; ``HttpClient(host, port)`` talks to a
``vectordb serve`` server. Each is the same :class:`Client` over another backend
(:mod:`vectordb.backend`): the client checks collection names, metadata and
``configuration`` and owns the collections' embedding functions (persisted by name and
config, rebuilt on open, compared on ``get_collection``); the backend stores.

The constructors take Chroma's ``settings``, ``tenant`` and ``database`` arguments
(:mod:`vectordb.config`). Clients of one folder in one process share one engine
(:func:`vectordb.engine.local.open_store`).
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any, Dict, List, Optional

from vectordb import validation as v
from vectordb.backend import Backend, CollectionInfo
from vectordb.types import CheckReport, CompactResult
from vectordb.collection import Collection
from vectordb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings, check_settings, check_tenant_database
from vectordb.configuration import function_in, with_configuration
from vectordb.embedding_functions.base import describe
from vectordb.embedding_functions.identity import conflict_message, default_function, rebuild_function, same_function
from vectordb.engine.core import Engine
from vectordb.engine.local import LOCK_TIMEOUT_S, LocalBackend, open_store
from vectordb.persistence.database import DB_FILE
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
    ResetDisabledError,
)

log = logging.getLogger("vectordb")


class _Default:
    """Marks an argument the caller did not give."""

    def __repr__(self) -> str:
        return "<default>"


DEFAULT = _Default()
GET_OR_CREATE_TRIES = 20
"""How often ``get_or_create`` looks and creates again when other clients create and delete the name meanwhile."""


class Client:
    """A vector database: in memory, on disk under ``path``, or any ``backend``.

    Prefer ``vectordb.Client()`` / ``vectordb.EphemeralClient()`` for memory,
    ``vectordb.PersistentClient(path)`` for disk and ``vectordb.HttpClient(...)`` for a server.

    Args:
        settings: a :class:`vectordb.config.Settings` (also positional, as ``Client(Settings())``);
            ``Settings(is_persistent=True, persist_directory=p)`` makes a store on disk under ``p``.
        tenant, database: Chroma's names; vectordb has one of each ("default_tenant",
            "default_database"), any other raises InvalidArgumentError.
        path: the store's folder (None: in memory, unless the settings say otherwise).
        read_only: open the store without writing to it.
        lock_timeout: seconds a call may wait while other processes use the store (then StoreBusyError).
        backend: the backend to use instead (HttpClient passes its own).
    """

    def __init__(
        self,
        settings: Optional[Settings] = None,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
        *,
        path: Optional[str] = None,
        read_only: bool = False,
        lock_timeout: float = LOCK_TIMEOUT_S,
        backend: Optional[Backend] = None,
    ) -> None:
        self._settings = check_settings(settings)
        check_tenant_database(tenant, database)
        self.tenant = tenant
        self.database = database
        if backend is None:
            if path is None and self._settings.is_persistent:
                path = self._settings.persist_directory
            backend = LocalBackend(Engine(None, read_only)) if path is None else open_store(path, read_only, lock_timeout)
        self._backend: Backend = backend

    @property
    def backend(self) -> Backend:
        """The :class:`~vectordb.backend.Backend` this client runs on: for tools that move collections
        between stores as they are described, without building their embedding functions (``vectordb copy``)."""
        return self._backend

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

    def get_version(self) -> str:
        """The version of vectordb (over HTTP: the server's)."""
        return self._backend.version()

    def get_max_batch_size(self) -> int:
        """How many records to send in one add/upsert/update call at most (for callers that split big loads).

        Locally no batch is refused; this is a size that stays fast. Over HTTP it is what
        the server's request-body limit holds for records of 1,536 dimensions.
        """
        return self._backend.max_batch_size()

    @classmethod
    def clear_system_cache(cls) -> None:
        """Chroma's reset of its cache of shared systems; vectordb keeps none to clear (clients of
        one folder share an engine only while one of them is open), so this does nothing."""

    def get_settings(self) -> Settings:
        """The settings the client was made with."""
        return self._settings

    def set_tenant(self, tenant: str, database: str = DEFAULT_DATABASE) -> None:
        """Chroma's tenant switch: vectordb has one tenant and one database; any other raises InvalidArgumentError."""
        check_tenant_database(tenant, database)

    def set_database(self, database: str) -> None:
        """Chroma's database switch: vectordb has one database; any other raises InvalidArgumentError."""
        check_tenant_database(self.tenant, database)

    def reset(self) -> bool:
        """Delete every collection, its records and its index files; returns True.

        Refused (ResetDisabledError) unless the client was made with
        ``settings=Settings(allow_reset=True)``; over HTTP the server must also allow it
        (``vectordb serve --allow-reset``).
        """
        if not self._settings.allow_reset:
            raise ResetDisabledError(
                "reset() is disabled: it deletes every collection; make the client with "
                "settings=vectordb.config.Settings(allow_reset=True) to allow it"
            )
        self._backend.reset()
        return True

    # -- collections --------------------------------------------------------

    def create_collection(
        self,
        name: str,
        metadata: Optional[Dict[str, Any]] = None,
        embedding_function: Any = DEFAULT,
        get_or_create: bool = False,
        *,
        configuration: Optional[Dict[str, Any]] = None,
    ) -> Collection:
        """A new collection; an existing name raises CollectionExistsError unless ``get_or_create``.

        ``embedding_function`` defaults to DefaultEmbeddingFunction (all-MiniLM-L6-v2);
        None makes a collection that only takes explicit embeddings. The distance metric is
        the ``hnsw:space`` of the metadata or the configuration, else the function's
        ``default_space()`` as in Chroma 1.x (cosine for the hosted and Sentence Transformers
        functions, l2 for the default one), else l2 (see :func:`default_space`); it is fixed
        at creation and not written into the metadata. ``configuration``
        (Chroma 1.x: ``{"hnsw": {"space", "ef_construction", "ef_search", "max_neighbors"}}``)
        sets the index as the ``hnsw:*`` metadata does, and as in Chroma its settings are not
        part of ``collection.metadata`` (:mod:`vectordb.configuration`); a
        setting given both ways with different values raises InvalidArgumentError. With
        ``get_or_create``, an existing collection is returned as it is (its metadata and
        configuration are not changed). ``embedding_function=None`` for an existing
        collection gives a handle without a function (you pass embeddings), never a conflict.
        """
        v.validate_collection_name(name)
        if isinstance(metadata, dict) and not metadata:
            raise InvalidArgumentError("metadata: expected a non-empty dict or None, got {} (as in Chroma; "
                                       "pass None for a collection without metadata)")
        metadata = with_configuration(v.validate_collection_metadata(metadata), configuration)
        embedding_function = function_in(configuration, embedding_function, DEFAULT)
        function = default_function() if embedding_function is DEFAULT else embedding_function
        ef_name, ef_config = (None, None) if function is None else describe(function)
        space = default_space(function)
        for _ in range(GET_OR_CREATE_TRIES if get_or_create else 1):
            existing = self._existing(name) if get_or_create else None
            if existing is not None:
                return self._collection(existing, embedding_function)
            try:
                info = self._backend.create_collection(name, metadata, ef_name, ef_config, space)
            except CollectionExistsError:
                if not get_or_create:
                    raise
                continue  # created meanwhile by another client (and perhaps deleted again): look again
            return Collection(self._backend, info, function)
        raise CollectionExistsError(
            f"get_or_create_collection({name!r}): the collection was created and deleted concurrently "
            f"{GET_OR_CREATE_TRIES} times while this call ran; try again"
        )

    def _existing(self, name: str) -> Optional[CollectionInfo]:
        try:
            return self._backend.get_collection(name)
        except CollectionNotFoundError:
            return None

    def get_collection(self, name: str, embedding_function: Any = DEFAULT) -> Collection:
        """An existing collection, with its persisted embedding function unless one is passed.

        ``embedding_function=None`` gives a handle without a function (you pass
        embeddings; LangChain does so), whatever the collection was created with.

        Raises CollectionNotFoundError (``Collection [NAME] does not exist``);
        EmbeddingFunctionConflictError when the function passed is not the one the
        collection was created with.
        """
        _check_name(name)
        info = self._backend.get_collection(name)
        return self._collection(info, embedding_function)

    def get_collection_by_id(self, id: Any, embedding_function: Any = DEFAULT) -> Collection:
        """The collection with this id (a UUID, as a string or ``uuid.UUID``), as :meth:`get_collection`."""
        try:
            collection_id = str(id if isinstance(id, uuid.UUID) else uuid.UUID(id))
        except (TypeError, ValueError, AttributeError):
            raise InvalidArgumentError(f"id: expected a collection id (a UUID), got {id!r}") from None
        return self._collection(self._backend.collection_by_id(collection_id), embedding_function)

    def get_or_create_collection(
        self,
        name: str,
        metadata: Optional[Dict[str, Any]] = None,
        embedding_function: Any = DEFAULT,
        *,
        configuration: Optional[Dict[str, Any]] = None,
    ) -> Collection:
        """The collection called ``name``, created if missing (see :meth:`create_collection`)."""
        return self.create_collection(name, metadata, embedding_function, get_or_create=True,
                                      configuration=configuration)

    def list_collections(self, limit: Optional[int] = None, offset: Optional[int] = None) -> List[Collection]:
        """The collections in creation order: all of them, or ``limit`` of them after the first ``offset``."""
        limit = v.validate_optional_count(limit, "limit")
        offset = v.validate_optional_count(offset, "offset") or 0
        infos = self._backend.list_collections()[offset:]
        return [self._collection(info, DEFAULT) for info in (infos if limit is None else infos[:limit])]

    def count_collections(self) -> int:
        """How many collections the store holds."""
        return self._backend.count_collections()

    def delete_collection(self, name: str) -> None:
        """Remove a collection, its records and its index files."""
        _check_name(name)
        self._backend.delete_collection(name)

    def _collection(self, info: CollectionInfo, passed: Any) -> Collection:
        if passed is DEFAULT:
            return Collection(self._backend, info, rebuild_function(info.name, info.ef_name, info.ef_config))
        if passed is None:  # "I pass embeddings myself": a handle without a function, whatever was persisted
            return Collection(self._backend, info, None)
        ef_name, ef_config = describe(passed)
        if not same_function(info.ef_name, info.ef_config, ef_name, ef_config):
            raise EmbeddingFunctionConflictError(
                conflict_message(info.name, info.ef_name, info.ef_config, ef_name, ef_config)
            )
        return Collection(self._backend, info, passed)


def default_space(function: Any) -> str:
    """The distance metric a new collection of ``function`` gets when its metadata and configuration
    name none, as in Chroma 1.x: the function's ``default_space()`` (cosine for the hosted and
    Sentence Transformers functions, l2 for DefaultEmbeddingFunction), l2 for a function
    without one and for no function.

    Raises InvalidArgumentError when ``default_space()`` returns something other than l2, cosine or ip.
    """
    declared = getattr(function, "default_space", None)
    if function is None or not callable(declared):
        return "l2"
    space = declared()
    if space not in v.METRICS:
        raise InvalidArgumentError(
            f"embedding function {describe(function)[0]!r}: default_space() returned {space!r}, "
            f"expected one of {', '.join(v.METRICS)}"
        )
    return str(space)


def _check_name(name: Any) -> None:
    """A name to look up: a str of valid Unicode (any such name may be asked for; a missing one is not found)."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
    v.check_text(name, "name")


class PersistentClient(Client):
    """A store on disk under ``path``: a DuckDB file plus rebuildable index files.

    Any number of processes may open one store at once, read-only or not: they take turns
    on the database, and each call sees every write acknowledged before it began, in any
    process (see :mod:`vectordb.engine.sharing`); a call waits at most ``lock_timeout``
    seconds for the others (then :class:`~vectordb.errors.StoreBusyError`, naming the
    holder). ``read_only=True`` opens an existing store without writing to it.
    Clients of one path in one process share one engine: closing one leaves the others
    working, and the store closes with the last (a read-only client of a path this
    process has open for writing, or the reverse, raises StoreLockedError).
    ``settings``, ``tenant`` and ``database`` are as for :class:`Client` (the path wins
    over ``settings.persist_directory``).

    Without ``path`` the store is ``./chroma``, Chroma's default (see :func:`default_path`).
    """

    def __init__(
        self,
        path: Any = None,
        settings: Optional[Settings] = None,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
        read_only: bool = False,
        lock_timeout: float = LOCK_TIMEOUT_S,
    ) -> None:
        super().__init__(settings, tenant, database, path=default_path() if path is None else path,
                         read_only=read_only, lock_timeout=lock_timeout)


DEFAULT_PATH = "./chroma"
"""Where ``PersistentClient()`` keeps its store when given no path: Chroma's default."""
OLD_DEFAULT_PATH = "./vectordb_data"
"""The default of vectordb before it took Chroma's."""


def default_path() -> str:
    """``./chroma``; but ``./vectordb_data`` (the old default) when it holds a store and ``./chroma``
    does not exist, so that a store made by ``PersistentClient()`` before keeps opening (logged)."""
    if not os.path.exists(DEFAULT_PATH) and os.path.isfile(os.path.join(OLD_DEFAULT_PATH, DB_FILE)):
        log.warning("PersistentClient() without a path: opening the store at %s (the old default); new stores "
                    "go to %s, Chroma's default. Pass path=%r to keep using it.", OLD_DEFAULT_PATH, DEFAULT_PATH,
                    OLD_DEFAULT_PATH)
        return OLD_DEFAULT_PATH
    return DEFAULT_PATH


def EphemeralClient(
    settings: Optional[Settings] = None, tenant: str = DEFAULT_TENANT, database: str = DEFAULT_DATABASE
) -> Client:
    """A client whose data lives in memory and is gone at exit (``settings``, ``tenant``, ``database`` as for :class:`Client`)."""
    if settings is not None and check_settings(settings).is_persistent:
        raise InvalidArgumentError("settings: is_persistent=True asks for a store on disk: use PersistentClient(path)")
    return Client(settings, tenant, database)
