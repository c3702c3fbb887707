"""``HttpClient``: the same :class:`vectordb.Client` over :class:`HttpBackend`, a ``vectordb serve`` server.

Embedding happens here, on the client side, with the collection's function: query
texts are embedded and sent as vectors; for writes, the server answers which documents
need a vector (:class:`vectordb.wire.EmbeddingsNeeded`) and the write is sent again
with them, so an unchanged document is not embedded again (as locally). An error
raised by the server is raised here as the same class (``DuplicateIDError`` stays
``DuplicateIDError``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote

import numpy as np

from vectordb.backend import Backend, CollectionInfo, Embed
from vectordb.requests import CollectionRef, Delete, Get, Search, Write
from vectordb.client import Client
from vectordb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings, check_settings, check_tenant_database
from vectordb.embedding_functions.base import missing_function_error
from vectordb.errors import (
    ERRORS_BY_CODE,
    InvalidArgumentError,
    MissingDependencyError,
    OutcomeUnknownError,
    ServerUnreachableError,
    UnauthorizedError,
    VectorDBError,
    collection_not_found,
)
from vectordb.filters import to_dicts
from vectordb.types import CheckReport, CompactResult, GetResult, QueryResult
from vectordb import wire


def _name_path(name: Any) -> str:
    """``/collections/<name>``; a name that cannot be in a URL path cannot name a collection either."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"name: expected str, got {type(name).__name__}")
    if not name or "/" in name or name in (".", ".."):
        raise collection_not_found(name)
    return "/collections/" + quote(name, safe="")


class HttpBackend(Backend):
    """The backend of a ``vectordb serve`` server at ``url``.

    Args:
        url: the server's base URL (``http://host:port``).
        headers: sent with every request, e.g. ``{"Authorization": "Bearer <token>"}``.
        timeout: seconds to wait for each answer.

    Raises:
        MissingDependencyError: httpx is not installed (``pip install "vectordb[server]"``).
    """

    def __init__(self, url: str, headers: Optional[Mapping[str, str]] = None, timeout: float = 60.0) -> None:
        try:
            import httpx
        except ImportError:
            raise MissingDependencyError("httpx", "server", "vectordb.HttpClient") from None
        self.url = url.rstrip("/")
        self._httpx = httpx
        self._http = httpx.Client(base_url=self.url + wire.API_PREFIX, headers=dict(headers or {}), timeout=timeout)

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r})"

    def _request(self, method: str, path: str, body: Any = None, params: Optional[Dict[str, str]] = None) -> Any:
        content = None if body is None else wire.to_json(body)
        headers = None if body is None else {"content-type": "application/json"}
        httpx = self._httpx
        try:
            response = self._http.request(method, path, content=content, params=params, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol) as exc:
            raise ServerUnreachableError(
                f"cannot reach the vectordb server at {self.url}: {type(exc).__name__}: {exc or 'no answer'} "
                "(the request was not sent)"
            ) from None
        except httpx.TransportError as exc:
            raise OutcomeUnknownError(
                f"{method} {path} was sent to the vectordb server at {self.url}, but no answer came back "
                f"({type(exc).__name__}: {exc or 'no answer'}): it may have been applied; "
                "vectordb's writes are safe to send again"
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
        if code == wire.EmbeddingsNeeded.code:
            return wire.EmbeddingsNeeded(list(payload.get("texts") or []))
        cls = ERRORS_BY_CODE.get(code, VectorDBError)
        if cls in (VectorDBError, UnauthorizedError):
            message = f"{message} (HTTP {response.status_code} from {self.url})"
        return cls(message)

    def _records(self, collection_id: str) -> str:
        return f"/collections/{quote(collection_id, safe='')}"

    # -- the store ----------------------------------------------------------

    def heartbeat(self) -> int:
        return int(self._request("GET", "/heartbeat")["nanosecond heartbeat"])

    def version(self) -> str:
        return str(self._request("GET", "/version")["version"])

    def max_batch_size(self) -> int:
        return int(self._request("GET", "/pre-flight-checks")["max_batch_size"])

    def reset(self) -> None:
        self._request("POST", "/reset", {})

    def close(self) -> None:
        self._http.close()

    def compact(self, collection: Optional[CollectionRef] = None) -> CompactResult:
        path = "/compact" if collection is None else self._records(collection.id) + "/compact"
        return wire.compact_result(self._request("POST", path, {}))

    def check(self, repair: bool = False) -> CheckReport:
        return wire.check_report(self._request("POST", "/check", {"repair": repair}))

    # -- collections --------------------------------------------------------

    def create_collection(
        self, name: str, metadata: Optional[Dict[str, Any]], ef_name: Optional[str], ef_config: Optional[Dict[str, Any]],
        metric: Optional[str] = None,
    ) -> CollectionInfo:
        # ``metric`` is not sent: the server's client derives the same default space from the function's
        # registered name (a custom function's default_space() is not known there: give hnsw:space)
        spec = None if ef_name is None else {"name": ef_name, "config": ef_config}
        body = {"name": name, "metadata": metadata, "embedding_function": spec, "get_or_create": False}
        return wire.collection_info(self._request("POST", "/collections", body))

    def get_collection(self, name: str) -> CollectionInfo:
        return wire.collection_info(self._request("GET", _name_path(name)))

    def collection(self, collection: CollectionRef) -> CollectionInfo:
        return wire.collection_info(self._request("GET", self._records(collection.id) + "/info"))

    def collection_by_id(self, collection_id: str) -> CollectionInfo:
        return self.collection(CollectionRef(collection_id, collection_id))

    def list_collections(self) -> List[CollectionInfo]:
        return [wire.collection_info(model) for model in self._request("GET", "/collections")]

    def count_collections(self) -> int:
        return int(self._request("GET", "/count_collections"))

    def delete_collection(self, name: str) -> None:
        self._request("DELETE", _name_path(name))

    def modify_collection(
        self, collection: CollectionRef, new_name: Optional[str], new_metadata: Optional[Dict[str, Any]]
    ) -> CollectionInfo:
        body = {"new_name": new_name, "new_metadata": new_metadata}
        return wire.collection_info(self._request("PUT", self._records(collection.id), body))

    # -- records ------------------------------------------------------------

    def write(self, collection: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        body: Dict[str, Any] = {"ids": write.ids, "embeddings": write.embeddings, "metadatas": write.metadatas,
                                "documents": write.documents}
        provided: Dict[str, Any] = {}
        path = self._records(collection.id) + "/" + write.mode
        while True:
            try:
                return wire.collection_info(self._request("POST", path, body))
            except wire.EmbeddingsNeeded as needed:
                missing = [t for t in needed.texts if t not in provided]
                if not missing:
                    raise VectorDBError(f"the server at {self.url} asked again for embeddings it was sent") from None
                if embed is None:
                    raise missing_function_error(collection.name) from None
                provided.update(zip(missing, np.asarray(embed(missing)).tolist()))
                body["document_embeddings"] = provided

    def delete(self, collection: CollectionRef, delete: Delete) -> int:
        where, where_document = to_dicts(delete.filter)
        body = {"ids": delete.ids, "where": where, "where_document": where_document, "limit": delete.limit}
        return int(self._request("POST", self._records(collection.id) + "/delete", body)["deleted"])

    def count(self, collection: CollectionRef) -> int:
        return int(self._request("GET", self._records(collection.id) + "/count"))

    def get(self, collection: CollectionRef, get: Get) -> GetResult:
        where, where_document = to_dicts(get.filter)
        body = {"ids": get.ids, "where": where, "limit": get.limit, "offset": get.offset,
                "where_document": where_document, "include": list(get.include)}
        return self._request("POST", self._records(collection.id) + "/get", body)

    def search(self, collection: CollectionRef, search: Search) -> QueryResult:
        """One ``POST .../query`` in the search's mode: the server ranks (and fuses) and reads only the
        chosen records' fields."""
        where, where_document = to_dicts(search.filter)
        body: Dict[str, Any] = {"n_results": search.n_results, "where": where, "where_document": where_document,
                                "include": list(search.include), "ids": search.ids, "mode": search.mode}
        if search.vectors is not None:
            body["query_embeddings"] = search.vectors
        if search.texts is not None:
            body["query_texts"] = search.texts
        return self._request("POST", self._records(collection.id) + "/query", body)


class HttpClient(Client):
    """A client of a ``vectordb serve`` server, with the API of :class:`vectordb.Client`.

    Args:
        host: the server's host name or address, or a full base URL (``http://host:port``).
        port: the server's port.
        headers: sent with every request, e.g. ``{"Authorization": "Bearer <token>"}``.
        ssl: use https.
        timeout: seconds to wait for each answer.
        settings, tenant, database: as for :class:`vectordb.Client` (``settings.allow_reset``
            lets this client ask for ``reset()``; the server must allow it too).

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
        *,
        settings: Optional[Settings] = None,
        tenant: str = DEFAULT_TENANT,
        database: str = DEFAULT_DATABASE,
    ) -> None:
        check_settings(settings)
        check_tenant_database(tenant, database)
        if host.startswith(("http://", "https://")):
            url = host.rstrip("/")
        else:
            url = f"{'https' if ssl else 'http'}://{host}:{port}"
        super().__init__(settings, tenant, database, backend=HttpBackend(url, headers, timeout))

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self._backend.url  # type: ignore[attr-defined]
