"""Chroma's HTTP API v2 under ``/api/v2``, beside vectordb's own ``/api/v1``, over the same Client.

An app keeps its Chroma client (``chromadb.HttpClient``, the npm ``chromadb`` package)
and points it at ``vectordb serve``: same port, same store, same auth token. Served:

- system: ``/heartbeat`` (and ``/api/v2`` itself), ``/version``, ``/healthcheck``,
  ``/pre-flight-checks``, ``/auth/identity``, ``/reset``;
- tenants and databases: ``default_tenant`` / ``default_database`` only (vectordb has one
  of each); another name is a 404 NotFoundError, creating one a 400 that says why;
- collections: list (``limit`` / ``offset``), count, create (``get_or_create``), get by
  name and by id, modify, delete;
- records of a collection: add, upsert, update, get, query, delete, count.

Chroma's clients embed on their side and send embeddings, so the server stores what it
receives: a collection's ``configuration.embedding_function`` (Chroma's
``{"type": "known", "name", "config"}`` or ``{"type": "legacy"}``) is persisted and
answered back, never run, exactly as Chroma's server does. Forks, the Search API,
indexing status and attached functions are answered 501 (Chroma's local server does not
serve them either); vectordb's hybrid and text search stay on ``/api/v1``.

Errors are Chroma's ``{"error": Name, "message": ...}`` (:mod:`vectordb.server.chroma_shapes`).
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Coroutine, Dict, List, Optional

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from vectordb import wire
from vectordb.client import Client
from vectordb.collection import Collection
from vectordb.config import DEFAULT_DATABASE, DEFAULT_TENANT
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidArgumentError,
    ResetDisabledError,
)
from vectordb.server import chroma_shapes as shapes
from vectordb.server.chroma_shapes import NotImplementedByVectordb
from vectordb.version import __version__

PREFIX = "/api/v2"
RECORD_BYTES = 12 * 1024
"""About what one record of 1,536 dimensions takes with its vector in base64 and some metadata:
the advised batch size is the request-body limit over this (5,461 at the default 64 MB, Chroma's own number)."""
DB_PATH = "/tenants/{tenant}/databases/{database}"


class NotServedHere(CollectionNotFoundError):
    """A tenant or database other than vectordb's one of each: Chroma's 404 NotFoundError."""


class CollectionNotFoundById(CollectionNotFoundError):
    """A collection id that names no collection, in the words of Chroma's server."""

    def __init__(self, collection_id: str) -> None:
        super().__init__(f"Collection [{collection_id}] does not exist.")


class ChromaRoute(APIRoute):
    """A route whose every error, request validation included, is answered in Chroma's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:  # noqa: BLE001 - every error becomes Chroma's error answer
                return shapes.error_response(exc, request.method, request.url.path)

        return route


def _json(content: Any, status: int = 200) -> Response:
    return Response(wire.to_json(content), status_code=status, media_type="application/json")


def _scope(tenant: str, database: str) -> None:
    """vectordb serves one tenant and one database: any other is not found, as Chroma says it."""
    if tenant != DEFAULT_TENANT:
        raise NotServedHere(
            f"Tenant [{tenant}] not found (vectordb serve has one tenant, {DEFAULT_TENANT!r})"
        )
    if database != DEFAULT_DATABASE:
        raise NotServedHere(
            f"Database [{database}] not found. Are you sure it exists? "
            f"(vectordb serve has one database, {DEFAULT_DATABASE!r})"
        )


def _database_json() -> Dict[str, str]:
    return {"id": str(uuid.UUID(int=0)), "name": DEFAULT_DATABASE, "tenant": DEFAULT_TENANT}


def chroma_router(
    client: Client,
    max_body_mb: float,
    forget: Callable[[str], None] = lambda collection_id: None,
    forget_all: Callable[[], None] = lambda: None,
) -> APIRouter:
    """The ``/api/v2`` routes over ``client``.

    ``forget(id)`` and ``forget_all()`` are told when a collection is renamed or deleted and
    when the store is reset, so that the caches of ``/api/v1`` never serve a stale handle.
    """
    router = APIRouter(prefix=PREFIX, route_class=ChromaRoute, tags=["Chroma API v2"])
    _system_routes(router, client, max_body_mb, forget_all)
    _tenant_routes(router)
    _collection_routes(router, client, forget)
    _record_routes(router, client)
    _unserved_routes(router)
    return router


def _system_routes(router: APIRouter, client: Client, max_body_mb: float, forget_all: Callable[[], None]) -> None:
    @router.get("", summary="heartbeat (Chroma)", include_in_schema=False)
    @router.get("/heartbeat", summary="heartbeat (Chroma)")
    def heartbeat() -> Response:
        return _json({"nanosecond heartbeat": client.heartbeat()})

    @router.get("/version", summary="version (Chroma): vectordb's version")
    def version() -> Response:
        return _json(__version__)

    @router.get("/healthcheck", summary="healthcheck (Chroma)")
    def healthcheck() -> Response:
        return _json({"is_executor_ready": True, "is_log_client_ready": True})

    @router.get("/pre-flight-checks", summary="pre-flight checks (Chroma)")
    def pre_flight_checks() -> Response:
        """The advised batch size, and base64 float32 embeddings welcome (Chroma's clients then send them so)."""
        batch = max(1, int(max_body_mb * 2**20) // RECORD_BYTES)
        return _json({"max_batch_size": batch, "supports_base64_encoding": True})

    @router.get("/auth/identity", summary="user identity (Chroma)")
    def identity() -> Response:
        return _json({"user_id": "", "tenant": DEFAULT_TENANT, "databases": [DEFAULT_DATABASE]})

    @router.post("/reset", summary="reset (Chroma): needs vectordb serve --allow-reset")
    def reset() -> Response:
        if not client.get_settings().allow_reset:
            raise ResetDisabledError("Reset is disabled by config (start the server with vectordb serve --allow-reset)")
        forget_all()
        return _json(client.reset())


def _tenant_routes(router: APIRouter) -> None:
    def refuse(what: str, name: str, default: str) -> None:
        if name == default:
            raise CollectionExistsError(f"{what} [{name}] already exists")
        raise InvalidArgumentError(
            f"vectordb serve has one tenant ({DEFAULT_TENANT!r}) and one database ({DEFAULT_DATABASE!r}): "
            f"it cannot create the {what.lower()} {name!r}"
        )

    @router.post("/tenants", summary="create tenant (Chroma): refused")
    def create_tenant(body: shapes.NewName) -> Response:
        refuse("Tenant", body.name, DEFAULT_TENANT)
        return _json({})

    @router.get("/tenants/{tenant}", summary="get tenant (Chroma)")
    def get_tenant(tenant: str) -> Response:
        _scope(tenant, DEFAULT_DATABASE)
        return _json({"name": DEFAULT_TENANT, "resource_name": None})

    @router.post("/tenants/{tenant}/databases", summary="create database (Chroma): refused")
    def create_database(tenant: str, body: shapes.NewName) -> Response:
        _scope(tenant, DEFAULT_DATABASE)
        refuse("Database", body.name, DEFAULT_DATABASE)
        return _json({})

    @router.get("/tenants/{tenant}/databases", summary="list databases (Chroma)")
    def list_databases(
        tenant: str, limit: Optional[int] = Query(None, ge=0), offset: int = Query(0, ge=0)
    ) -> Response:
        _scope(tenant, DEFAULT_DATABASE)
        databases = [_database_json()][offset:]
        return _json(databases if limit is None else databases[:limit])

    @router.get(DB_PATH, summary="get database (Chroma)")
    def get_database(tenant: str, database: str) -> Response:
        _scope(tenant, database)
        return _json(_database_json())

    @router.delete(DB_PATH, summary="delete database (Chroma): refused")
    def delete_database(tenant: str, database: str) -> Response:
        _scope(tenant, database)
        raise InvalidArgumentError(f"vectordb serve cannot delete its one database {DEFAULT_DATABASE!r}")


def _not_empty(metadata: Optional[Dict[str, Any]], field: str) -> None:
    """Chroma refuses ``{}`` as a collection's metadata (null is the empty one)."""
    if metadata is not None and not metadata:
        raise InvalidArgumentError(f"Validation error: {field}: Metadata cannot be empty")


def _configuration_in(configuration: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """A create call's configuration for vectordb: all of it but the function (stored by the route).

    Every index setting is kept, those equal to vectordb's defaults too (an explicit
    ``{"space": "l2"}`` must win over a function's default space); as in Chroma none of them
    becomes collection metadata.
    """
    if not configuration:
        return None
    return {k: v for k, v in configuration.items() if k != "embedding_function"} or None


def _collection_routes(router: APIRouter, client: Client, forget: Callable[[str], None]) -> None:
    @router.get(DB_PATH + "/collections", summary="list collections (Chroma)")
    def list_collections(
        tenant: str, database: str, limit: Optional[int] = Query(None, ge=0), offset: Optional[int] = Query(None, ge=0)
    ) -> Response:
        _scope(tenant, database)
        return _json([shapes.collection_json(c) for c in client.list_collections(limit=limit, offset=offset)])

    @router.get(DB_PATH + "/collections_count", summary="count collections (Chroma)")
    def count_collections(tenant: str, database: str) -> Response:
        _scope(tenant, database)
        return _json(client.count_collections())

    @router.post(DB_PATH + "/collections", summary="create collection (Chroma)")
    def create_collection(tenant: str, database: str, body: shapes.CreateCollection) -> Response:
        """The function in ``configuration.embedding_function`` is stored, not run; ``get_or_create`` returns an
        existing collection as it is (no conflict check: Chroma's clients make that check themselves)."""
        _scope(tenant, database)
        _not_empty(body.metadata, "metadata")
        if body.collection_schema is not None:
            raise InvalidArgumentError("schema: vectordb serve does not take Chroma's collection schema; "
                                       "give configuration={'hnsw': {...}} instead")
        if body.get_or_create:
            try:
                return _json(shapes.collection_json(client.get_collection(body.name, embedding_function=None)))
            except CollectionNotFoundError:
                pass
        function = shapes.stand_in((body.configuration or {}).get("embedding_function"))
        try:
            collection = client.create_collection(body.name, body.metadata, function,
                                                  configuration=_configuration_in(body.configuration))
        except CollectionExistsError:
            if not body.get_or_create:
                raise CollectionExistsError(f"Collection [{body.name}] already exists") from None
            collection = client.get_collection(body.name, embedding_function=None)  # created meanwhile
        return _json(shapes.collection_json(collection))

    @router.get(DB_PATH + "/collections/by-id/{collection_id}", summary="get collection by id (Chroma)")
    def get_collection_by_id(tenant: str, database: str, collection_id: str) -> Response:
        return _json(shapes.collection_json(_by_id(client, tenant, database, collection_id)))

    @router.get(DB_PATH + "/collections/{name}", summary="get collection by name (Chroma)")
    def get_collection(tenant: str, database: str, name: str) -> Response:
        _scope(tenant, database)
        return _json(shapes.collection_json(client.get_collection(name, embedding_function=None)))

    @router.put(DB_PATH + "/collections/{collection_id}", summary="modify collection (Chroma)")
    def modify_collection(tenant: str, database: str, collection_id: str, body: shapes.UpdateCollection) -> Response:
        collection = _by_id(client, tenant, database, collection_id)
        _not_empty(body.new_metadata, "new_metadata")
        configuration = body.new_configuration
        if configuration and configuration.get("embedding_function") is not None:
            raise InvalidArgumentError("new_configuration.embedding_function: vectordb cannot change "
                                       "a collection's embedding function")
        if configuration is not None:
            configuration = {k: v for k, v in configuration.items() if k != "embedding_function"}
        try:
            collection.modify(name=body.new_name, metadata=body.new_metadata, configuration=configuration)
        except CollectionExistsError:
            raise CollectionExistsError(f"Collection [{body.new_name}] already exists") from None
        finally:
            forget(collection.id)
        return _json({})

    @router.delete(DB_PATH + "/collections/{name}", summary="delete collection (Chroma)")
    def delete_collection(tenant: str, database: str, name: str) -> Response:
        _scope(tenant, database)
        collection_id = client.get_collection(name, embedding_function=None).id
        client.delete_collection(name)
        forget(collection_id)
        return _json({})


def _by_id(client: Client, tenant: str, database: str, collection_id: str) -> Collection:
    """The collection with this id, as a handle without a function (the records come with their vectors)."""
    _scope(tenant, database)
    try:
        uuid.UUID(collection_id)
    except ValueError:
        raise InvalidArgumentError("Collection ID is not a valid UUIDv4") from None
    try:
        return client.get_collection_by_id(collection_id, embedding_function=None)
    except CollectionNotFoundError:
        raise CollectionNotFoundById(collection_id) from None


def _no_uris(uris: Optional[List[Optional[str]]]) -> None:
    if uris is not None and any(u is not None for u in uris):
        raise InvalidArgumentError("uris: vectordb does not store URIs; keep them in metadata")


def _record_routes(router: APIRouter, client: Client) -> None:
    records = DB_PATH + "/collections/{collection_id}"

    def write(mode: str, tenant: str, database: str, collection_id: str, body: shapes.UpdateRecords) -> None:
        collection = _by_id(client, tenant, database, collection_id)
        _no_uris(body.uris)
        vectors = shapes.decode_embeddings(body.embeddings)
        shapes.check_dimension(vectors, collection.dimension)
        getattr(collection, mode)(body.ids, vectors, body.metadatas, body.documents)

    @router.post(records + "/add", status_code=201, summary="add (Chroma)")
    def add(tenant: str, database: str, collection_id: str, body: shapes.AddRecords) -> Response:
        write("add", tenant, database, collection_id, body)
        return _json({}, 201)

    @router.post(records + "/upsert", summary="upsert (Chroma)")
    def upsert(tenant: str, database: str, collection_id: str, body: shapes.UpdateRecords) -> Response:
        write("upsert", tenant, database, collection_id, body)
        return _json({})

    @router.post(records + "/update", summary="update (Chroma)")
    def update(tenant: str, database: str, collection_id: str, body: shapes.UpdateRecords) -> Response:
        write("update", tenant, database, collection_id, body)
        return _json({})

    @router.get(records + "/count", summary="count (Chroma)")
    def count(tenant: str, database: str, collection_id: str) -> Response:
        return _json(_by_id(client, tenant, database, collection_id).count())

    @router.post(records + "/get", summary="get (Chroma)")
    def get(tenant: str, database: str, collection_id: str, body: shapes.GetRecords) -> Response:
        collection = _by_id(client, tenant, database, collection_id)
        include = [name for name in shapes.vectordb_include(body.include) if name != "distances"]  # ignored, as by Chroma
        result = collection.get(ids=body.ids, where=body.where, limit=body.limit, offset=body.offset,
                                where_document=body.where_document, include=include)
        return _json(shapes.get_json(result, body.include))

    @router.post(records + "/query", summary="query (Chroma): by query_embeddings")
    def query(tenant: str, database: str, collection_id: str, body: shapes.QueryRecords) -> Response:
        collection = _by_id(client, tenant, database, collection_id)
        queries = shapes.decode_embeddings(body.query_embeddings, "query_embeddings")
        if queries is None:  # the model requires them; this tells the type checker
            raise InvalidArgumentError("query_embeddings: required")
        shapes.check_dimension(queries, collection.dimension)
        if body.n_results == 0:  # Chroma answers an empty list per query
            empty: Dict[str, Any] = {f: [[] for _ in range(len(queries))] for f in ("ids", *body.include)}
            return _json(shapes.query_json({"embeddings": None, **empty}, body.include))
        result = collection.query(query_embeddings=queries, n_results=body.n_results, where=body.where,
                                  where_document=body.where_document, ids=body.ids,
                                  include=shapes.vectordb_include(body.include))
        return _json(shapes.query_json(result, body.include))

    @router.post(records + "/delete", summary="delete (Chroma)")
    def delete(tenant: str, database: str, collection_id: str, body: shapes.DeleteRecords) -> Response:
        """With no ids and no filter nothing is deleted (``{"deleted": 0}``), as by Chroma's server."""
        collection = _by_id(client, tenant, database, collection_id)
        if body.ids is None and body.where is None and body.where_document is None:
            return _json({"deleted": 0})
        result = collection.delete(ids=body.ids, where=body.where, where_document=body.where_document,
                                   limit=body.limit)
        return _json({"deleted": int(result["deleted"])})


def _unserved_routes(router: APIRouter) -> None:
    """Chroma routes that vectordb does not serve: a clear 501 rather than a bare 404."""
    records = DB_PATH + "/collections/{collection_id}"
    unserved = {
        ("POST", "/fork"): "collection forking",
        ("GET", "/fork_count"): "collection forking",
        ("GET", "/indexing_status"): "indexing status",
        ("POST", "/search"): "Chroma's Search API (vectordb's hybrid and text search are on /api/v1: query(mode=...))",
        ("POST", "/functions/attach"): "attached functions",
        ("GET", "/functions/{function_name}"): "attached functions",
        ("POST", "/attached_functions/{name}/detach"): "attached functions",
        ("POST", "/attached_functions/{name}/add_input"): "attached functions",
    }
    for (method, tail), what in unserved.items():
        router.add_api_route(records + tail, _refusal(what), methods=[method], include_in_schema=False)

    @router.get("/collections/{crn}", include_in_schema=False)
    def by_crn(crn: str) -> Response:
        raise NotImplementedByVectordb("collection CRNs are Chroma Cloud's; vectordb serve does not serve them")


def _refusal(what: str) -> Callable[[], Response]:
    def refuse() -> Response:
        raise NotImplementedByVectordb(f"{what} is not supported by vectordb serve")

    return refuse
