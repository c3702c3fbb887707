"""What Chroma's HTTP API v2 looks like on the wire, and how vectordb's values map onto it.

Chroma's clients (``chromadb.HttpClient`` in Python, the npm ``chromadb`` package, and
the others generated from the same OpenAPI document) speak this API; the routes that
serve it are in :mod:`vectordb.server.chroma_v2`. This module holds the parts that are
about shapes, not routes:

- the request bodies, as pydantic models (unknown fields are ignored, as Chroma's
  server does; a wrong type is a 422 ``ChromaError``, as there);
- embeddings in and out: Chroma's clients send base64 strings of little-endian float32
  when the server says ``supports_base64_encoding``, and Chroma answers float32 values
  written in their shortest form (``0.1``, not ``0.10000000149011612``);
- a collection as Chroma describes it (``configuration_json``, ``tenant``, ...), and the
  embedding-function entry of its configuration, which the server stores and never runs;
- errors: vectordb's error classes as Chroma's ``{"error": Name, "message": ...}`` with
  Chroma's status codes, so that Python raises the classes of ``chromadb.errors`` and
  JS the classes its statuses map to.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any, Dict, List, Literal, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from vectordb import wire
from vectordb.config import DEFAULT_DATABASE, DEFAULT_TENANT
from vectordb.embedding_functions.base import UnavailableEmbeddingFunction
from vectordb.errors import (
    AuthorizationError,
    CollectionExistsError,
    CollectionNotFoundError,
    DuplicateIDError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
    ResetDisabledError,
    UnauthorizedError,
    VectorDBError,
)

log = logging.getLogger("vectordb.server")

IncludeName = Literal["distances", "documents", "embeddings", "metadatas", "uris"]
GET_INCLUDE: Tuple[IncludeName, ...] = ("documents", "metadatas")
QUERY_INCLUDE: Tuple[IncludeName, ...] = ("documents", "metadatas", "distances")
"""What Chroma's server includes when a request says nothing."""
Metadata = Dict[str, Any]
Embeddings = List[Union[str, List[float]]]
"""Rows of floats, or base64 strings of little-endian float32 (Chroma's compact form)."""

LEGACY_FUNCTION = "custom:legacy"
"""How vectordb persists Chroma's ``{"type": "legacy"}`` function: one with no config to rebuild it from."""
STORED_NOT_RUN = (
    "vectordb serve does not embed: Chroma's clients embed with their own function and send "
    "embeddings; the server only keeps the function's name and config for them"
)


class _Body(BaseModel):
    """Strict types, unknown fields ignored (Chroma's clients send fields vectordb has no use for)."""

    model_config = ConfigDict(strict=True, extra="ignore", populate_by_name=True)


class CreateCollection(_Body):
    """``POST .../collections``: create_collection / get_or_create_collection."""

    name: str
    metadata: Optional[Metadata] = None
    configuration: Optional[Dict[str, Any]] = None
    collection_schema: Optional[Dict[str, Any]] = Field(None, alias="schema")
    get_or_create: bool = False


class UpdateCollection(_Body):
    """``PUT .../collections/{id}``: Collection.modify."""

    new_name: Optional[str] = None
    new_metadata: Optional[Metadata] = None
    new_configuration: Optional[Dict[str, Any]] = None


class UpdateRecords(_Body):
    """``update`` and ``upsert``: embeddings may be left out (Chroma's clients always send them)."""

    ids: List[str]
    embeddings: Optional[Embeddings] = None
    metadatas: Optional[List[Optional[Metadata]]] = None
    documents: Optional[List[Optional[str]]] = None
    uris: Optional[List[Optional[str]]] = None


class AddRecords(UpdateRecords):
    """``add``: embeddings are required, as by Chroma's server."""

    embeddings: Embeddings


class GetRecords(_Body):
    ids: Optional[List[str]] = None
    where: Optional[Dict[str, Any]] = None
    where_document: Optional[Dict[str, Any]] = None
    limit: Optional[int] = Field(None, ge=0)
    offset: Optional[int] = Field(None, ge=0)
    include: List[IncludeName] = Field(default_factory=lambda: list(GET_INCLUDE))


class QueryRecords(_Body):
    ids: Optional[List[str]] = None
    where: Optional[Dict[str, Any]] = None
    where_document: Optional[Dict[str, Any]] = None
    query_embeddings: Embeddings
    n_results: int = Field(10, ge=0)
    include: List[IncludeName] = Field(default_factory=lambda: list(QUERY_INCLUDE))


class DeleteRecords(_Body):
    ids: Optional[List[str]] = None
    where: Optional[Dict[str, Any]] = None
    where_document: Optional[Dict[str, Any]] = None
    limit: Optional[int] = Field(None, ge=0)


class NewName(_Body):
    """``POST /tenants`` and ``POST /tenants/{t}/databases``."""

    name: str


# -- embeddings ---------------------------------------------------------------------


def decode_embeddings(rows: Optional[Embeddings], field: str = "embeddings") -> Optional[np.ndarray]:
    """The rows as a float32 matrix; a base64 row is little-endian float32 bytes (Chroma's encoding)."""
    if rows is None:
        return None
    decoded: List[np.ndarray] = []
    for i, row in enumerate(rows):
        if isinstance(row, str):
            try:
                raw = base64.b64decode(row, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidArgumentError(f"{field}[{i}]: not a base64 string of float32 values") from None
            if len(raw) % 4:
                raise InvalidArgumentError(f"{field}[{i}]: {len(raw)} bytes is not a whole number of float32 values")
            decoded.append(np.frombuffer(raw, dtype="<f4"))
        else:
            decoded.append(np.asarray(row, dtype=np.float32))
    if len({len(r) for r in decoded}) > 1:
        raise InvalidArgumentError(f"{field}: every embedding must have the same dimension")
    return np.vstack(decoded) if decoded else np.empty((0, 0), dtype=np.float32)


def check_dimension(vectors: Optional[np.ndarray], dimension: Optional[int]) -> None:
    """Chroma's words for a vector of the wrong length (vectordb would say it too, in its own)."""
    if vectors is not None and dimension is not None and vectors.size and vectors.shape[1] != dimension:
        raise InvalidArgumentError(
            f"Collection expecting embedding with dimension of {dimension}, got {vectors.shape[1]}"
        )


def _rounded(values: np.ndarray, exponents: np.ndarray, digits: int) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits: the float64 nearest that decimal."""
    places = digits - 1 - exponents
    scale = 10.0 ** np.abs(places)
    return np.where(places >= 0, np.round(values * scale) / scale, np.round(values / scale) * scale)


def f32_values(values: Any) -> Any:
    """Floats as Chroma writes its float32 values: the shortest decimal that reads back as the same float32.

    So an embedding stored from ``0.1`` comes back as ``0.1``, not ``0.10000000149011612``.
    Vectorised: 9 significant digits always tell float32 values apart; most need 8 or 9,
    and the few that need fewer are found by trying fewer digits on what is left. Values
    beyond 1e±12 (where powers of ten are no longer exact floats) take numpy's own shortest repr.
    """
    flat32 = np.asarray(values, dtype=np.float32)
    shape, flat32 = flat32.shape, flat32.ravel()
    exact = flat32.astype(np.float64)
    out = exact.copy()
    with np.errstate(divide="ignore"):
        exponents = np.floor(np.log10(np.abs(exact)))
    plain = np.isfinite(exponents) & (np.abs(exponents) <= 12)
    odd = np.flatnonzero(~plain & np.isfinite(exact) & (exact != 0))
    if odd.size:
        out[odd] = flat32[odd].astype(str).astype(np.float64)
    idx = np.flatnonzero(plain)
    candidate = _rounded(exact[idx], exponents[idx], 8)
    fits = candidate.astype(np.float32) == flat32[idx]
    nine = idx[~fits]
    out[nine] = _rounded(exact[nine], exponents[nine], 9)
    for digits in range(7, 0, -1):
        out[idx[fits]] = candidate[fits]
        idx = idx[fits]
        if not idx.size:
            break
        candidate = _rounded(exact[idx], exponents[idx], digits)
        fits = candidate.astype(np.float32) == flat32[idx]
    else:
        out[idx[fits]] = candidate[fits]
    return out.reshape(shape).tolist()


# -- collections ----------------------------------------------------------------------


def function_json(name: Optional[str], config: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The ``embedding_function`` entry of ``configuration_json`` for a persisted ``(name, config)``."""
    if name is None:
        return None
    if name.startswith("custom:") and config is None:
        return {"type": "legacy"}
    return {"type": "known", "name": name, "config": config or {}}


class StoredFunction(UnavailableEmbeddingFunction):
    """The function a Chroma client named: persisted by name and config, never run by the server.

    Its default space is l2 whatever the name: Chroma's server never asks the function, and
    a collection whose configuration names no space is l2 there (Chroma's clients send the
    function's own default space in ``configuration.hnsw.space`` when they want it).
    """

    def default_space(self) -> str:
        return "l2"


def stand_in(spec: Any) -> Optional[StoredFunction]:
    """What vectordb persists for the ``embedding_function`` entry a Chroma client sent (never run here)."""
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise InvalidArgumentError(f"configuration.embedding_function: expected an object, got {type(spec).__name__}")
    kind = spec.get("type")
    if kind == "legacy":
        return StoredFunction(LEGACY_FUNCTION, None, STORED_NOT_RUN)
    if kind != "known":
        raise InvalidArgumentError(
            f"configuration.embedding_function: unknown type {kind!r} (expected 'known' or 'legacy')"
        )
    name, config = spec.get("name"), spec.get("config")
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("configuration.embedding_function: a 'known' function needs a name")
    if config is not None and not isinstance(config, dict):
        raise InvalidArgumentError("configuration.embedding_function.config: expected an object")
    return StoredFunction(name, dict(config or {}), STORED_NOT_RUN)


def _index(enabled: bool) -> Dict[str, Any]:
    return {"enabled": enabled, "config": {}}


def schema_json(space: Any, hnsw: Dict[str, Any], function: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The schema Chroma's server gives a new collection: its default indexes, the vector index's settings.

    Chroma's clients read it (the Python client updates it on ``modify(configuration=...)``
    and takes a function from it when the configuration names none); vectordb reports its
    own index settings in it. Unlike Chroma's, it gains no key per metadata field written.
    """
    graph = {k: hnsw[k] for k in ("ef_construction", "max_neighbors", "ef_search") if k in hnsw}
    vector: Dict[str, Any] = {"space": space, **({"embedding_function": function} if function else {}), "hnsw": graph}
    return {
        "defaults": {
            "string": {"fts_index": _index(False), "string_inverted_index": _index(True)},
            "float_list": {"vector_index": {"enabled": False, "config": vector}},
            "sparse_vector": {"sparse_vector_index": {"enabled": False, "config": {
                "embedding_function": {"type": "unknown"}, "bm25": False}}},
            "int": {"int_inverted_index": _index(True)},
            "float": {"float_inverted_index": _index(True)},
            "bool": {"bool_inverted_index": _index(True)},
        },
        "keys": {
            "#embedding": {"float_list": {"vector_index": {"enabled": True, "config": {
                **{k: v for k, v in vector.items() if k != "hnsw"}, "source_key": "#document", "hnsw": graph}}}},
            "#document": {"string": {"fts_index": _index(True), "string_inverted_index": _index(False)}},
        },
    }


def collection_json(collection: Any) -> Dict[str, Any]:
    """A collection as Chroma's server describes it."""
    info = collection.info  # the persisted description (name and config of its function), as app.py reads it
    hnsw = dict((collection.configuration or {}).get("hnsw") or {})
    function = function_json(info.ef_name, info.ef_config)
    return {
        "id": collection.id,
        "name": collection.name,
        "configuration_json": {"hnsw": hnsw, "spann": None, "embedding_function": function},
        "schema": schema_json(hnsw.get("space"), hnsw, function),
        "metadata": collection.metadata,
        "dimension": collection.dimension,
        "tenant": DEFAULT_TENANT,
        "database": DEFAULT_DATABASE,
        "log_position": 0,
        "version": 0,
    }


# -- results --------------------------------------------------------------------------


def vectordb_include(include: Sequence[str]) -> List[str]:
    """The include list for vectordb: ``uris`` is Chroma's only (vectordb stores none)."""
    return [name for name in include if name != "uris"]


def get_json(result: Mapping[str, Any], include: Sequence[str]) -> Dict[str, Any]:
    """A get result as Chroma's server answers it."""
    ids = result["ids"]
    embeddings = result.get("embeddings") if "embeddings" in include else None
    return {
        "ids": ids,
        "embeddings": None if embeddings is None else f32_values(embeddings) if len(ids) else [],
        "documents": result.get("documents") if "documents" in include else None,
        "uris": [None] * len(ids) if "uris" in include else None,
        "metadatas": result.get("metadatas") if "metadatas" in include else None,
        "include": list(include),
    }


def query_json(result: Mapping[str, Any], include: Sequence[str]) -> Dict[str, Any]:
    """A query result (one list per query embedding) as Chroma's server answers it."""
    ids = result["ids"]
    embeddings = result.get("embeddings") if "embeddings" in include else None
    distances = result.get("distances") if "distances" in include else None
    return {
        "ids": ids,
        "embeddings": None if embeddings is None else [f32_values(m) if len(i) else [] for m, i in zip(embeddings, ids)],
        "documents": result.get("documents") if "documents" in include else None,
        "uris": [[None] * len(i) for i in ids] if "uris" in include else None,
        "metadatas": result.get("metadatas") if "metadatas" in include else None,
        "distances": None if distances is None else [f32_values(d) if len(d) else [] for d in distances],
        "include": list(include),
    }


# -- errors ---------------------------------------------------------------------------


class NotImplementedByVectordb(VectorDBError):
    """A Chroma route vectordb does not serve (forks, the Search API, attached functions)."""

    code = "not_implemented"
    http_status = 501


ERRORS: Tuple[Tuple[type, int, str], ...] = (
    (CollectionNotFoundError, 404, "NotFoundError"),
    (CollectionExistsError, 409, "ChromaError"),  # what Chroma's server sends for a duplicate name
    (DuplicateIDError, 400, "DuplicateID"),
    (InvalidArgumentError, 400, "InvalidArgumentError"),
    (EmbeddingFunctionConflictError, 400, "InvalidArgumentError"),
    (UnauthorizedError, 401, "AuthError"),
    (ResetDisabledError, 403, "ChromaError"),  # Chroma: 403 "Reset is disabled by config"
    (AuthorizationError, 403, "AuthorizationError"),
    (NotImplementedByVectordb, 501, "ChromaError"),
)
"""vectordb's error classes (the first that matches wins) and the status and name Chroma uses."""


def chroma_error(status: int, name: str, message: str) -> Response:
    return Response(wire.to_json({"error": name, "message": message}), status_code=status,
                    media_type="application/json")


def error_response(exc: Exception, method: str = "", path: str = "") -> Response:
    """Any exception of a v2 route as Chroma's error answer (unexpected ones are logged, as 500 InternalError)."""
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    for cls, status, name in ERRORS:
        if isinstance(exc, cls):
            return chroma_error(status, name, str(exc))
    if not isinstance(exc, VectorDBError):
        log.exception("unexpected error on %s %s", method, path, exc_info=exc)
        return chroma_error(500, "InternalError", f"internal server error: {type(exc).__name__}: {exc}")
    return chroma_error(500, "InternalError", str(exc))


def _validation_error(exc: RequestValidationError) -> Response:
    """A body Chroma cannot parse is a 400; one of the wrong shape a 422 ChromaError; a bad query string a 400."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        return chroma_error(400, "InvalidArgumentError", f"Failed to parse the request body as JSON: {detail}")
    loc = [str(p) for p in first.get("loc", ())]
    where = ".".join(p for p in loc[1:]) or "body"
    message = f"{where}: {first.get('msg', 'invalid')}"
    if loc and loc[0] in ("query", "path"):
        return chroma_error(400, "InvalidArgumentError", f"Failed to deserialize query string: {message}")
    if loc == ["body"] or first.get("type") == "missing" and len(loc) == 1:
        message = "expected a JSON object"
    return chroma_error(422, "ChromaError", f"Failed to deserialize the JSON body into the target type: {message}")
