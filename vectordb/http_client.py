"""``HttpClient``: the Client/Collection API of vectordb, over HTTP to ``vectordb serve``.

Embedding happens here, on the client side: documents and query texts are embedded
with the collection's function and sent as vectors. The function's name and config go
to the server when a collection is created, so that every client rebuilds the same
function from them (as ``PersistentClient`` does). An error raised by the server is
raised here as the same class (``DuplicateIDError`` stays ``DuplicateIDError``).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote

import numpy as np

from vectordb import validation as v
from vectordb.client import DEFAULT, _default_function, _rebuild_function
from vectordb.collection import DEFAULT_GET_INCLUDE, DEFAULT_QUERY_INCLUDE
from vectordb.embedding_functions.base import describe, embed_texts
from vectordb.errors import (
    ERRORS_BY_CODE,
    CollectionNotFoundError,
    InvalidArgumentError,
    MissingDependencyError,
    ServerUnreachableError,
    UnauthorizedError,
    VectorDBError,
)
from vectordb.index.settings import metric_of
from vectordb.persistence.store import CollectionRow
from vectordb.types import GetResult, QueryResult

API_PREFIX = "/api/v1"


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _name_path(name: Any) -> str:
    """``/collections/<name>``; a name that cannot be in a URL path cannot name a collection either."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
    if not name or "/" in name or name in (".", ".."):
        raise CollectionNotFoundError(f"collection {name!r} does not exist")
    return "/collections/" + quote(name, safe="")


def _to_json(body: Dict[str, Any]) -> bytes:
    try:
        return json.dumps(body, default=_encode).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the arguments cannot be sent as JSON: {exc}") from None


class HttpClient:
    """A client of a ``vectordb serve`` server, with the API of :class:`vectordb.Client`.

    Args:
        host: the server's host name or address, or a full base URL (``http://host:port``).
        port: the server's port.
        headers: sent with every request, e.g. ``{"Authorization": "Bearer <token>"}``.
        ssl: use https.
        timeout: seconds to wait for each answer.

    Raises:
        MissingDependencyError: httpx is not installed (``pip install "vectordb[server]"``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8000,
        headers: Optional[Mapping[str, str]] = None,
        ssl: bool = False,
        timeout: float = 60.0,
    ) -> None:
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("httpx", "server", "vectordb.HttpClient") from None
        if host.startswith(("http://", "https://")):
            self.url = host.rstrip("/")
        else:
            self.url = f"{'https' if ssl else 'http'}://{host}:{port}"
        self._httpx = httpx
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=dict(headers or {}), timeout=timeout)

    def close(self) -> None:
        """Close the connections to the server."""
        self._http.close()

    def __enter__(self) -> "HttpClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpClient({self.url!r})"

    def _request(self, method: str, path: str, body: Any = None, params: Optional[Dict[str, str]] = None) -> Any:
        content = None if body is None else _to_json(body)
        headers = None if body is None else {"content-type": "application/json"}
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
        except self._httpx.TransportError as exc:
            raise ServerUnreachableError(
                f"cannot reach the vectordb server at {self.url}: {type(exc).__name__}: {exc or 'no answer'}"
            ) from None
        if response.status_code >= 400:
            raise self._error(response)
        return response.json()

    def _error(self, response: Any) -> VectorDBError:
        try:
            payload = response.json()
            code, message = payload["error"], payload["message"]
        except (ValueError, KeyError, TypeError):
            return VectorDBError(
                f"the server at {self.url} answered {response.status_code}: {response.text[:200]}"
            )
        cls = ERRORS_BY_CODE.get(code, VectorDBError)
        if cls in (VectorDBError, UnauthorizedError):
            message = f"{message} (HTTP {response.status_code} from {self.url})"
        return cls(message)

    # -- the Client API ------------------------------------------------------

    def heartbeat(self) -> int:
        """The server's clock, in nanoseconds since the epoch."""
        return int(self._request("GET", "/heartbeat")["nanosecond heartbeat"])

    def create_collection(
        self,
        name: str,
        metadata: Optional[Dict[str, Any]] = None,
        embedding_function: Any = DEFAULT,
        get_or_create: bool = False,
    ) -> "HttpCollection":
        """A new collection; an existing name raises CollectionExistsError unless ``get_or_create``."""
        function = _default_function() if embedding_function is DEFAULT else embedding_function
        spec = None
        if function is not None:
            fn_name, config = describe(function)
            spec = {"name": fn_name, "config": config}
        model = self._request(
            "POST", "/collections",
            {"name": name, "metadata": metadata, "embedding_function": spec, "get_or_create": get_or_create},
        )
        return self._collection(model, function)

    def get_collection(self, name: str, embedding_function: Any = None) -> "HttpCollection":
        """An existing collection, with its persisted function rebuilt unless one is passed.

        Raises CollectionNotFoundError; EmbeddingFunctionConflictError when the function
        passed is not the one the collection was created with.
        """
        path = _name_path(name)
        params = None
        if embedding_function is not None:
            fn_name, config = describe(embedding_function)
            params = {"embedding_function": fn_name}
            if config is not None:
                params["embedding_function_config"] = json.dumps(config)
        model = self._request("GET", path, params=params)
        return self._collection(model, DEFAULT if embedding_function is None else embedding_function)

    def get_or_create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]] = None, embedding_function: Any = DEFAULT
    ) -> "HttpCollection":
        """The collection called ``name``, created if missing."""
        return self.create_collection(name, metadata, embedding_function, get_or_create=True)

    def list_collections(self) -> List["HttpCollection"]:
        """Every collection, in creation order."""
        return [self._collection(model, DEFAULT) for model in self._request("GET", "/collections")]

    def count_collections(self) -> int:
        """How many collections the server's store holds."""
        return int(self._request("GET", "/count_collections"))

    def delete_collection(self, name: str) -> None:
        """Remove a collection and its records; missing raises CollectionNotFoundError."""
        self._request("DELETE", _name_path(name))

    def _collection(self, model: Dict[str, Any], function: Any) -> "HttpCollection":
        if function is DEFAULT:
            function = _rebuild_function(_row_of(model))
        return HttpCollection(self, model, function)


def _row_of(model: Dict[str, Any]) -> CollectionRow:
    """The catalog row the server described (enough to rebuild its embedding function)."""
    spec = model.get("embedding_function") or {}
    metadata = model.get("metadata")
    return CollectionRow(
        id=model["id"], name=model["name"], metadata=metadata,
        metric=metric_of(metadata), dimension=model.get("dimension"),
        ef_name=spec.get("name"), ef_config=spec.get("config"), next_label=0, seq=0, position=0,
    )


class HttpCollection:
    """A collection on a server, with the API of :class:`vectordb.Collection`."""

    def __init__(self, client: HttpClient, model: Dict[str, Any], embedding_function: Any) -> None:
        self._client = client
        self._model = model
        self.embedding_function = embedding_function

    @property
    def name(self) -> str:
        return self._model["name"]

    @property
    def id(self) -> str:
        return self._model["id"]

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        return self._model["metadata"]

    def __repr__(self) -> str:
        return f"HttpCollection(name={self.name!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HttpCollection) and other.id == self.id and other._client is self._client

    def __hash__(self) -> int:
        return hash(self.id)

    def _post(self, action: str, body: Dict[str, Any]) -> Any:
        return self._client._request("POST", f"/collections/{self.id}/{action}", body)

    # -- writes -------------------------------------------------------------

    def add(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Insert records; ids already stored are left unchanged. See :meth:`vectordb.Collection.add`."""
        self._write("add", ids, embeddings, metadatas, documents)

    def upsert(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Insert new ids and update existing ones. See :meth:`vectordb.Collection.upsert`."""
        self._write("upsert", ids, embeddings, metadatas, documents)

    def update(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Change existing records. See :meth:`vectordb.Collection.update`."""
        self._write("update", ids, embeddings, metadatas, documents)

    def _write(self, mode: str, ids: Any, embeddings: Any, metadatas: Any, documents: Any) -> None:
        if embeddings is None and documents is not None and self.embedding_function is not None:
            n = len(v.validate_ids(ids))
            embeddings = embed_texts(self.embedding_function, v.validate_documents(documents, n))
        self._post(mode, {"ids": ids, "embeddings": embeddings, "metadatas": metadatas, "documents": documents})

    def delete(self, ids: Any = None, where: Any = None, where_document: Any = None) -> None:
        """Remove the matching records; no condition at all raises InvalidArgumentError."""
        self._post("delete", {"ids": ids, "where": where, "where_document": where_document})

    # -- reads --------------------------------------------------------------

    def count(self) -> int:
        """How many records the collection holds."""
        return int(self._client._request("GET", f"/collections/{self.id}/count"))

    def get(
        self,
        ids: Any = None,
        where: Any = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Any = None,
        include: Any = DEFAULT_GET_INCLUDE,
    ) -> GetResult:
        """Records by id or by filter. See :meth:`vectordb.Collection.get`."""
        body = {"ids": ids, "where": where, "limit": limit, "offset": offset,
                "where_document": where_document, "include": include}
        return self._post("get", body)

    def peek(self, limit: int = 10) -> GetResult:
        """The first ``limit`` records, with embeddings."""
        return self.get(limit=v.validate_positive_int(limit, "limit"), include=["embeddings", "metadatas", "documents"])

    def query(
        self,
        query_embeddings: Any = None,
        query_texts: Any = None,
        n_results: int = 10,
        where: Any = None,
        where_document: Any = None,
        include: Any = DEFAULT_QUERY_INCLUDE,
    ) -> QueryResult:
        """Nearest neighbours; ``query_texts`` are embedded here with the collection's function."""
        if query_embeddings is None and query_texts is not None and self.embedding_function is not None:
            texts = v.as_list(query_texts, "query_texts", (str,))
            if not texts or not all(isinstance(t, str) for t in texts):
                raise InvalidArgumentError("query_texts: expected a string or a non-empty list of strings")
            query_embeddings, query_texts = embed_texts(self.embedding_function, texts, query=True), None
        body = {"query_embeddings": query_embeddings, "query_texts": query_texts, "n_results": n_results,
                "where": where, "where_document": where_document, "include": include}
        return self._post("query", body)

    def modify(self, name: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Rename the collection and/or replace its metadata."""
        self._model = self._client._request(
            "PUT", f"/collections/{self.id}", {"new_name": name, "new_metadata": metadata}
        )
