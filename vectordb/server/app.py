"""The FastAPI app of ``vectordb serve``: one persistent store behind a REST API.

Routes live under ``/api/v1``; the API is documented at ``/docs`` (OpenAPI at
``/openapi.json``). Chroma's HTTP API v2 is served beside it under ``/api/v2``
(:mod:`vectordb.server.chroma_v2`), over the same client, so that Chroma's own clients
work too. The server never embeds: clients (``vectordb.HttpClient``) embed
with the collection's function and send vectors, and the function's name and config
are persisted so that every client rebuilds the same one. Errors are answered as
``{"error": code, "message": text}`` with the status of the error class in
:mod:`vectordb.errors`, so that a client can raise the very class the server raised.

Routes are plain functions, which FastAPI runs on the threads of its pool: requests run
at the same time, and nothing here serialises them (the lock of :class:`_Collections`
guards only its dict). What waits for what is the engine's business
(:mod:`vectordb.engine.locks`): requests on different collections never wait for each
other.
"""

from __future__ import annotations

import json
import logging
import threading
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, List, Optional

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from vectordb import wire
from vectordb.version import __version__
from vectordb.client import DEFAULT, Client
from vectordb.collection import Collection
from vectordb.embedding_functions.base import UnavailableEmbeddingFunction, describe
from vectordb.errors import InvalidArgumentError, ResetDisabledError, VectorDBError, collection_not_found
from vectordb.server.chroma_auth import ChromaTokenAuth
from vectordb.server.chroma_v2 import chroma_router
from vectordb.server.middleware import BodyLimit
from vectordb.validation import TEXT_QUERY_INCLUDE
from vectordb.server.schemas import (
    CheckStore,
    CollectionModel,
    CreateCollection,
    DeleteRecords,
    EmbeddingFunctionSpec,
    GetRecords,
    ModifyCollection,
    QueryRecords,
    WriteRecords,
)

log = logging.getLogger("vectordb.server")

DEFAULT_MAX_BODY_MB = 64.0
SERVER_DOES_NOT_EMBED = (
    "the vectordb server does not embed texts: embed them on the client "
    "(vectordb.HttpClient does) and send embeddings"
)


class _Collections:
    """Server-side collections by id; their functions stand in for the persisted ones and never embed."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._by_id: Dict[str, Collection] = {}
        self._lock = threading.Lock()

    def remember(self, collection: Collection) -> Collection:
        fn = collection.embedding_function
        if fn is not None:
            name, config = describe(fn)
            collection.embedding_function = UnavailableEmbeddingFunction(name, config, SERVER_DOES_NOT_EMBED)
        with self._lock:
            self._by_id[collection.id] = collection
        return collection

    def by_id(self, collection_id: str) -> Collection:
        with self._lock:
            found = self._by_id.get(collection_id)
        if found is None:
            for collection in self.client.list_collections():
                self.remember(collection)
            with self._lock:
                found = self._by_id.get(collection_id)
        if found is None:
            raise collection_not_found(collection_id)
        return found

    def forget(self, collection_id: str) -> None:
        with self._lock:
            self._by_id.pop(collection_id, None)

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()


def _stand_in(spec: Optional[EmbeddingFunctionSpec]) -> Any:
    """An object that describes the client's function to the core (for persisting and conflict checks)."""
    return None if spec is None else UnavailableEmbeddingFunction(spec.name, spec.config, SERVER_DOES_NOT_EMBED)


MAX_CONFIG_DEPTH = 32
"""The most levels of nesting an ``embedding_function_config`` parameter may have."""


def _config_param(text: str) -> Dict[str, Any]:
    """The JSON object of an ``embedding_function_config`` query parameter.

    Nesting is counted before parsing (outside strings), so a deeply nested value is a
    400 naming the limit, never a RecursionError in the JSON parser.
    """
    depth, deepest, in_string, escaped = 0, 0, False, False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_CONFIG_DEPTH:
                raise InvalidArgumentError(
                    f"embedding_function_config: nested too deep (the limit is {MAX_CONFIG_DEPTH} levels)"
                )
        elif ch in "]}":
            depth -= 1
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"embedding_function_config: not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InvalidArgumentError(f"embedding_function_config: expected a JSON object, got {type(config).__name__}")
    return config


def _model(collection: Collection) -> Dict[str, Any]:
    return wire.collection_json(collection.info)


class _Provided:
    """The embedding function of a write on the server: the vectors the client sent for its documents.

    A document that needs a vector and came without one is answered with
    :class:`vectordb.wire.EmbeddingsNeeded`, before anything is written.
    """

    def __init__(self, vectors: Optional[Dict[str, List[float]]]) -> None:
        self.vectors = vectors or {}

    def __call__(self, input: List[str]) -> List[List[float]]:
        missing = [t for t in input if t not in self.vectors]
        if missing:
            raise wire.EmbeddingsNeeded(missing)
        return [self.vectors[t] for t in input]


def _writer(collection: Collection, body: WriteRecords) -> Collection:
    """The collection, embedding the write's documents with the vectors its client sent."""
    if collection.embedding_function is None:
        return collection
    return collection.using(_Provided(body.document_embeddings))


def _json(content: Any, status: int = 200) -> Response:
    """A JSON response made with json.dumps (fast for large nested lists of floats; numpy arrays as lists)."""
    return Response(wire.to_json(content), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": code, "message": message}, status)


def _validation_message(exc: RequestValidationError) -> str:
    parts: List[str] = []
    for err in exc.errors()[:3]:
        if err.get("type") == "json_invalid":
            detail = (err.get("ctx") or {}).get("error", "")
            return f"malformed JSON in the request body: {detail}".rstrip(": ")
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if not loc and err.get("type") in ("model_attributes_type", "dict_type", "missing"):
            return "the request body must be a JSON object, sent with Content-Type: application/json"
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(VectorDBError)
    async def vectordb_error(request: Request, exc: VectorDBError) -> Response:
        if isinstance(exc, wire.EmbeddingsNeeded):
            return _json({"error": exc.code, "message": str(exc), "texts": exc.texts}, exc.http_status)
        return _error(exc.http_status, exc.code, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _error(400, InvalidArgumentError.code, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # the body could not be parsed (e.g. JSON nested deeper than Python's parser goes)
            return _error(400, InvalidArgumentError.code,
                          f"the request body cannot be parsed as JSON ({exc.detail}): {request.method} {request.url.path}")
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, f"{exc.detail}: {request.method} {request.url.path}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", f"internal server error: {type(exc).__name__}: {exc}")


def _collection_routes(router: APIRouter, client: Client, collections: _Collections) -> None:
    @router.get("/collections", response_model=List[CollectionModel], summary="list_collections")
    def list_collections() -> Response:
        return _json([_model(collections.remember(c)) for c in client.list_collections()])

    @router.get("/count_collections", response_model=int, summary="count_collections")
    def count_collections() -> Response:
        return _json(client.count_collections())

    @router.post("/collections", response_model=CollectionModel, summary="create_collection / get_or_create_collection")
    def create_collection(body: CreateCollection) -> Response:
        collection = client.create_collection(
            body.name, body.metadata, _stand_in(body.embedding_function), get_or_create=body.get_or_create
        )
        return _json(_model(collections.remember(collection)))

    @router.get("/collections/{name}", response_model=CollectionModel, summary="get_collection")
    def get_collection(
        name: str, embedding_function: Optional[str] = None, embedding_function_config: Optional[str] = None
    ) -> Response:
        """With ``embedding_function`` (a name) and ``embedding_function_config`` (JSON), conflicts are checked."""
        passed: Any = DEFAULT  # none named: the persisted function, no conflict check
        if embedding_function is not None:
            config = None if embedding_function_config is None else _config_param(embedding_function_config)
            passed = _stand_in(EmbeddingFunctionSpec(name=embedding_function, config=config))
        return _json(_model(collections.remember(client.get_collection(name, embedding_function=passed))))

    @router.delete("/collections/{name}", summary="delete_collection")
    def delete_collection(name: str) -> Response:
        collection = client.get_collection(name)
        client.delete_collection(name)
        collections.forget(collection.id)
        return _json(None)

    @router.put("/collections/{collection_id}", response_model=CollectionModel, summary="Collection.modify")
    def modify_collection(collection_id: str, body: ModifyCollection) -> Response:
        collection = collections.by_id(collection_id)
        collection.modify(name=body.new_name, metadata=body.new_metadata)
        return _json(_model(collection))


def _record_routes(router: APIRouter, collections: _Collections) -> None:
    @router.get("/collections/{collection_id}/info", response_model=CollectionModel, summary="a collection by id")
    def info(collection_id: str) -> Response:
        collection = collections.by_id(collection_id)
        collection.refresh()
        return _json(_model(collection))

    @router.get("/collections/{collection_id}/count", response_model=int, summary="Collection.count")
    def count(collection_id: str) -> Response:
        return _json(collections.by_id(collection_id).count())

    def write(mode: str, collection_id: str, body: WriteRecords) -> Response:
        collection = _writer(collections.by_id(collection_id), body)
        getattr(collection, mode)(body.ids, body.embeddings, body.metadatas, body.documents)
        return _json(_model(collection))

    @router.post("/collections/{collection_id}/add", response_model=CollectionModel, summary="Collection.add")
    def add(collection_id: str, body: WriteRecords) -> Response:
        return write("add", collection_id, body)

    @router.post("/collections/{collection_id}/upsert", response_model=CollectionModel, summary="Collection.upsert")
    def upsert(collection_id: str, body: WriteRecords) -> Response:
        return write("upsert", collection_id, body)

    @router.post("/collections/{collection_id}/update", response_model=CollectionModel, summary="Collection.update")
    def update(collection_id: str, body: WriteRecords) -> Response:
        return write("update", collection_id, body)

    @router.post("/collections/{collection_id}/delete", summary="Collection.delete")
    def delete(collection_id: str, body: DeleteRecords) -> Response:
        return _json(collections.by_id(collection_id).delete(**body.model_dump()))

    @router.post("/collections/{collection_id}/get", summary="Collection.get")
    def get(collection_id: str, body: GetRecords) -> Response:
        return _json(collections.by_id(collection_id).get(**body.model_dump()))

    @router.post("/collections/{collection_id}/query", summary="Collection.query")
    def query(collection_id: str, body: QueryRecords) -> Response:
        args = body.model_dump()
        if args["mode"] != "vector" and "include" not in body.model_fields_set:
            args["include"] = list(TEXT_QUERY_INCLUDE)  # scores, not distances, unless asked otherwise
        return _json(collections.by_id(collection_id).query(**args))

    @router.post("/collections/{collection_id}/compact", summary="Collection.compact")
    def compact(collection_id: str) -> Response:
        return _json(wire.compact_json(collections.by_id(collection_id).compact()))


def create_app(
    client: Client,
    auth_token: Optional[str] = None,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    close_client: bool = False,
) -> FastAPI:
    """The REST app over ``client``.

    Args:
        client: the store to serve (usually a PersistentClient).
        auth_token: when set, every request needs ``Authorization: Bearer <auth_token>``
            (on Chroma's ``/api/v2`` routes ``X-Chroma-Token: <auth_token>`` does too).
        max_body_mb: larger request bodies are refused with 413.
        close_client: close ``client`` when the app shuts down.
    """
    if max_body_mb <= 0:
        raise InvalidArgumentError(f"max_body_mb: expected a positive number, got {max_body_mb}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if close_client:
            client.close()

    app = FastAPI(
        title="vectordb",
        version=__version__,
        description="The REST API of `vectordb serve`. Errors are `{\"error\": code, \"message\": text}`.",
        lifespan=lifespan,
    )
    collections = _Collections(client)
    router = APIRouter(prefix="/api/v1")

    @router.get("/heartbeat", summary="heartbeat")
    def heartbeat() -> Dict[str, int]:
        """Nanoseconds since the epoch."""
        return {"nanosecond heartbeat": client.heartbeat()}

    @router.get("/version", summary="version")
    def version() -> Dict[str, str]:
        return {"version": __version__}

    @router.get("/pre-flight-checks", summary="get_max_batch_size")
    def pre_flight_checks() -> Dict[str, int]:
        """The advised batch size: the request-body limit over the JSON size of a 1,536-dimension record."""
        return {"max_batch_size": max(1, int(max_body_mb * 2**20) // wire.RECORD_BYTES)}

    @router.post("/reset", summary="Client.reset")
    def reset() -> Response:
        """Delete every collection; refused (403) unless the server was started with --allow-reset."""
        if not client.get_settings().allow_reset:
            raise ResetDisabledError("this server refuses reset(): start it with vectordb serve --allow-reset")
        collections.clear()
        return _json(client.reset())

    @router.post("/compact", summary="Client.compact")
    def compact() -> Response:
        return _json(wire.compact_json(client.compact()))

    @router.post("/check", summary="Client.check")
    def check(body: CheckStore) -> Response:
        return _json(wire.check_json(client.check(repair=body.repair)))

    _collection_routes(router, client, collections)
    _record_routes(router, collections)
    app.include_router(router)
    app.include_router(chroma_router(client, max_body_mb, forget=collections.forget, forget_all=collections.clear))
    _install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=int(max_body_mb * 2**20))
    if auth_token:
        app.add_middleware(ChromaTokenAuth, token=auth_token)
    return app
