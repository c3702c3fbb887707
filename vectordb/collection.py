"""A collection: records (id, embedding, document, metadata) and their nearest-neighbour search.

The same class serves every backend. Data flows one way: arguments are checked
(:mod:`vectordb.validation`) and filters parsed once (:mod:`vectordb.filters`), texts
are embedded with the collection's function, and the checked request goes to the
backend (:mod:`vectordb.backend`), which stores and searches. Nothing is sent until
every argument has been checked, so a call that raises on bad input changes nothing.
Results come back in Chroma 1.x's shape, made here for every backend: embeddings as
float64 numpy arrays, the fields asked for under ``included``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from vectordb import validation as v
from vectordb.backend import Backend, CollectionInfo
from vectordb.config import DEFAULT_DATABASE, DEFAULT_TENANT
from vectordb.configuration import configuration_of, modified_metadata, user_metadata
from vectordb.embedding_functions.base import embed_texts, missing_function_error
from vectordb.errors import InvalidArgumentError, TextSearchUnavailableError
from vectordb.filters import parse_filter
from vectordb.requests import HYBRID, TEXT, VECTOR, CollectionRef, Delete, Get, Search, Write
from vectordb.results import for_user
from vectordb.text import fusion
from vectordb.types import CollectionModel, CompactResult, DeleteResult, GetResult, QueryResult

DEFAULT_GET_INCLUDE = ["metadatas", "documents"]
DEFAULT_QUERY_INCLUDE = ["metadatas", "documents", "distances"]
DEFAULT_TEXT_QUERY_INCLUDE = ["metadatas", "documents", "scores"]
"""What ``query(mode="text" | "hybrid")`` includes unless told: ``scores`` instead of ``distances``."""


class Collection:
    """A named set of records with one embedding function and one distance metric."""

    def __init__(self, backend: Backend, info: CollectionInfo, embedding_function: Any) -> None:
        self._backend = backend
        self._info = info
        self.embedding_function = embedding_function

    # -- attributes ---------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection's name (changed by :meth:`modify`)."""
        return self._info.name

    @property
    def id(self) -> str:
        """A UUID, fixed at creation."""
        return self._info.id

    @property
    def info(self) -> CollectionInfo:
        """The collection as its backend last described it (what a server sends its clients)."""
        return self._info

    def refresh(self) -> CollectionInfo:
        """Read the collection's description from its backend again (a rename or a first add by
        another client shows), and return it."""
        self._info = self._backend.collection(self._ref)
        return self._info

    def using(self, embedding_function: Any) -> "Collection":
        """This collection, embedding with ``embedding_function`` instead (a server embeds a write's
        documents with the vectors its client sent)."""
        return Collection(self._backend, self._info, embedding_function)

    @property
    def backend(self) -> Backend:
        """The :class:`~vectordb.backend.Backend` this collection runs on (as :attr:`Client.backend`)."""
        return self._backend

    @property
    def ref(self) -> CollectionRef:
        """The collection as the backend's requests name it (id, and name for errors)."""
        return CollectionRef(self._info.id, self._info.name)

    @property
    def _ref(self) -> CollectionRef:
        return CollectionRef(self._info.id, self._info.name)

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        """The collection's metadata, ``hnsw:*`` settings given as metadata included; the settings given
        as ``configuration`` are not in it (as in Chroma: see :attr:`configuration`)."""
        return user_metadata(self._info.metadata)

    @property
    def configuration(self) -> Dict[str, Any]:
        """The index settings and the embedding function, shaped as Chroma 1.x's ``Collection.configuration``:
        ``{"hnsw": {"space", "ef_construction", "ef_search", "max_neighbors"}, "spann": None,
        "embedding_function": <the function or None>}`` (the ``hnsw:*`` metadata, defaults filled in;
        the space is the one the index was built with, which may be the function's default space)."""
        configuration = configuration_of(self._info.metadata, self.embedding_function)
        if self._info.metric is not None:
            configuration["hnsw"]["space"] = self._info.metric
        return configuration

    @property
    def dimension(self) -> Optional[int]:
        """The embeddings' dimension, fixed by the first add (None before)."""
        if self._info.dimension is None:
            self.refresh()
        return self._info.dimension

    def get_model(self) -> CollectionModel:
        """The collection as Chroma's ``Collection.get_model()`` describes it (a dict whose keys also
        read as attributes): ``id``,
        ``name``, ``metadata``, ``dimension``, ``configuration_json`` (:attr:`configuration`
        without the function object), ``tenant``, ``database``, and ``version`` and
        ``log_position``, 0 (Chroma's counters of its compaction log, which vectordb has not)."""
        configuration = {key: value for key, value in self.configuration.items() if key != "embedding_function"}
        return CollectionModel(id=self.id, name=self.name, metadata=self.metadata, dimension=self.dimension,
                               configuration_json=configuration, tenant=DEFAULT_TENANT, database=DEFAULT_DATABASE,
                               version=0, log_position=0)

    def __repr__(self) -> str:
        return f"Collection(name={self.name!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collection) and other.id == self.id and other._backend is self._backend

    def __hash__(self) -> int:
        return hash(self.id)

    # -- writes -------------------------------------------------------------

    def add(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Insert records. Ids already stored are left unchanged (and logged as a warning).

        Raises:
            DuplicateIDError: an id is repeated in ``ids``.
            InvalidArgumentError, InvalidDimensionError: a malformed argument.
        """
        self._write(self._check("add", ids, embeddings, metadatas, documents))

    def upsert(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Insert new ids and update existing ones (metadata merged key by key, as ``update``)."""
        self._write(self._check("upsert", ids, embeddings, metadatas, documents))

    def update(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Change existing records; unknown ids are logged and skipped.

        Metadata is merged key by key and a key set to None is removed; fields not
        given are left as they are. A changed document is embedded again unless
        ``embeddings`` are given.
        """
        self._write(self._check("update", ids, embeddings, metadatas, documents))

    def _check(self, mode: str, ids: Any, embeddings: Any, metadatas: Any, documents: Any) -> Write:
        id_list = v.validate_ids(ids)
        n = len(id_list)
        vectors = None
        if embeddings is not None:
            vectors = v.validate_embeddings(embeddings)
            if len(vectors) != n:
                raise InvalidArgumentError(f"embeddings: expected {n} items (one per id), got {len(vectors)}")
        metas = None if metadatas is None else v.validate_metadatas(metadatas, n, allow_none_values=mode != "add")
        docs = None if documents is None else v.validate_documents(documents, n)
        if mode == "add" and vectors is None and docs is None:
            raise InvalidArgumentError("add: give embeddings or documents (to embed) for the records")
        if vectors is not None and self._info.dimension is not None and vectors.shape[1] != self._info.dimension:
            raise v.dimension_error("embeddings", vectors.shape[1], self._info.dimension)
        return Write(mode, id_list, vectors, metas, docs)

    def _write(self, write: Write) -> None:
        embed = None if self.embedding_function is None else self._embed_documents
        self._info = self._backend.write(self._ref, write, embed)

    def _embed_documents(self, texts: List[str]) -> np.ndarray:
        return embed_texts(self.embedding_function, texts)

    def _require_function(self) -> Any:
        if self.embedding_function is None:
            raise missing_function_error(self.name)
        return self.embedding_function

    def delete(
        self, ids: Any = None, where: Any = None, where_document: Any = None, limit: Optional[int] = None
    ) -> DeleteResult:
        """Remove the records that match ``ids`` and the filters (all given conditions must hold).

        ``limit`` (with ``where`` or ``where_document``, as in Chroma) removes at most that
        many of the matching records, the first in insertion order (by ``ids``: in the order
        given). Returns ``{"deleted": n}``, the number of records removed (ids not stored
        are not counted).

        Raises InvalidArgumentError when no condition is given: that would delete everything.
        """
        no_filter = where in (None, {}) and where_document in (None, {})  # {} filters nothing
        if ids is None and no_filter:
            raise InvalidArgumentError("delete: give ids, where or where_document (deleting everything is refused)")
        limit = v.validate_optional_count(limit, "limit")
        if limit is not None and no_filter:
            raise InvalidArgumentError("delete: limit can only be specified when where or where_document is given")
        id_list = None if ids is None else v.validate_ids(ids)
        parsed = parse_filter(where, where_document)
        return DeleteResult(deleted=self._backend.delete(self._ref, Delete(id_list, parsed, limit)))

    def compact(self) -> CompactResult:
        """Give back the space of deleted records: rebuild the index and shrink the database file.

        Runs by itself after a delete once deleted index slots exceed half the live
        vectors (and 1000). Returns the store's bytes on disk before and after.
        """
        return self._backend.compact(self._ref)

    # -- reads --------------------------------------------------------------

    def count(self) -> int:
        """How many records the collection holds."""
        return self._backend.count(self._ref)

    def get(
        self,
        ids: Any = None,
        where: Any = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Any = None,
        include: Any = DEFAULT_GET_INCLUDE,
    ) -> GetResult:
        """Records by id (in the order asked, missing ids left out) or by filter (in insertion order)."""
        fields = v.validate_include(include, v.GET_INCLUDE)
        limit = v.validate_optional_count(limit, "limit")
        offset = v.validate_optional_count(offset, "offset")
        id_list = None if ids is None else v.validate_ids(ids, unique=False)
        parsed = parse_filter(where, where_document)
        result = self._backend.get(self._ref, Get(id_list, parsed, limit, offset, tuple(fields)))
        return for_user(result, search=False)

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
        ids: Any = None,
        mode: str = "vector",
    ) -> QueryResult:
        """The ``n_results`` nearest records to each query, nearest first, one list per query.

        Give exactly one of ``query_embeddings`` and ``query_texts`` (embedded with the
        collection's function). Filters restrict the candidates, and so do ``ids`` (only
        those records are searched; an id not stored raises InvalidArgumentError and
        ``ids=[]`` matches none, both as in Chroma); when few records match,
        they are searched exactly, so filtered queries keep their recall.

        ``mode="text"`` ranks the documents by BM25 against ``query_texts`` instead;
        ``mode="hybrid"`` fuses the vector and the BM25 rankings by reciprocal rank fusion
        (the vectors: ``query_embeddings`` if given, else ``query_texts`` embedded). Both
        return only documents holding a query term on the text side, with ``scores``
        (higher is better) instead of ``distances``; see README "Hybrid search".
        """
        mode = v.validate_mode(mode)
        if mode == VECTOR:
            fields = v.validate_include(include, v.QUERY_INCLUDE)
        else:
            if include is DEFAULT_QUERY_INCLUDE:
                include = DEFAULT_TEXT_QUERY_INCLUDE
            if isinstance(include, (list, tuple)) and "distances" in include:
                raise InvalidArgumentError(
                    f"include: 'distances' come with mode='vector'; mode={mode!r} results carry 'scores'")
            fields = v.validate_include(include, v.TEXT_QUERY_INCLUDE)
        n_results = v.validate_positive_int(n_results, "n_results")
        texts = self._query_texts(mode, query_embeddings, query_texts, n_results)
        id_list = None if ids is None else v.validate_ids(ids, unique=False, allow_empty=True)
        parsed = parse_filter(where, where_document)
        self._check_stored(id_list)
        vectors = None
        if mode != TEXT:
            if query_embeddings is not None:
                vectors, arg = v.validate_embeddings(query_embeddings, "query_embeddings"), "query_embeddings"
                if mode == HYBRID and len(vectors) != len(texts or ()):
                    raise InvalidArgumentError(f"query(mode='hybrid'): {len(vectors)} query_embeddings for "
                                               f"{len(texts or ())} query_texts (one each)")
            else:
                vectors, arg = embed_texts(self._require_function(), texts, query=True), "query_texts (embedded)"
            if self._info.dimension is not None and vectors.shape[1] != self._info.dimension:
                raise v.dimension_error(arg, vectors.shape[1], self._info.dimension)
        search = Search(mode, n_results, tuple(fields), vectors, None if mode == VECTOR else texts, parsed, id_list)
        return for_user(self._backend.search(self._ref, search), search=True, ranked_by_text=mode != VECTOR)

    def _query_texts(self, mode: str, query_embeddings: Any, query_texts: Any, n_results: int) -> Optional[List[str]]:
        """The query's texts, checked against its mode (None for a vector query by embeddings)."""
        if mode == VECTOR:
            if (query_embeddings is None) == (query_texts is None):
                raise InvalidArgumentError("query: give exactly one of query_embeddings and query_texts")
        else:
            if mode == HYBRID and n_results > fusion.MAX_DEPTH:
                raise InvalidArgumentError(
                    f"n_results: at most {fusion.MAX_DEPTH:,} for mode='hybrid', got {n_results:,}")
            if query_texts is None:
                beside = " beside query_embeddings (they rank the vector side only)" if query_embeddings is not None else ""
                raise InvalidArgumentError(f"query(mode={mode!r}): give query_texts (the text to rank by BM25){beside}")
            if mode == TEXT and query_embeddings is not None:
                raise InvalidArgumentError("query(mode='text'): query_embeddings are not used; give query_texts only")
        if query_texts is None:
            return None
        texts = v.as_list(query_texts, "query_texts", (str,))
        if not texts or not all(isinstance(t, str) for t in texts):
            raise InvalidArgumentError("query_texts: expected a string or a non-empty list of strings")
        if mode != VECTOR and (self.metadata or {}).get(v.TEXT_INDEX_KEY, True) is False:
            raise TextSearchUnavailableError(
                f"collection {self.name!r} has no text index (created with metadata {{{v.TEXT_INDEX_KEY!r}: False}}): "
                f"mode={mode!r} needs one; query it with mode='vector'"
            )
        return texts

    def _check_stored(self, ids: Optional[List[str]]) -> None:
        """``query(ids=...)`` searches among stored records: an id that is not stored raises
        InvalidArgumentError, as Chroma raises ("Error finding id")."""
        if not ids:
            return
        found = set(self._backend.get(self._ref, Get(ids))["ids"])
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise InvalidArgumentError(
                f"ids: Error finding id {missing[0]!r}{more}: collection {self.name!r} holds no record with it "
                "(query(ids=...) searches among stored records; as in Chroma, an id not stored is an error)"
            )

    # -- the collection itself ------------------------------------------------

    def modify(
        self, name: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None, configuration: Any = None
    ) -> None:
        """Rename the collection and/or replace its metadata, as Chroma does (the index settings stay in
        force, in :attr:`configuration`, whether they were given as configuration or as metadata).

        ``configuration={"hnsw": {"ef_search": n}}`` changes the search breadth (as
        ``hnsw:search_ef`` metadata would); the other settings are fixed at creation. The
        new metadata may repeat the ``hnsw:space`` the metadata holds; any other
        ``hnsw:space`` raises InvalidArgumentError (changing the metric is not supported, as in Chroma).
        """
        if name is not None:
            v.validate_collection_name(name)
        new_meta = (v.validate_collection_metadata(metadata) or {}) if metadata is not None else None
        if new_meta is not None and v.HNSW_SPACE_KEY in (user_metadata(new_meta) or {}):
            self._check_same_space(new_meta[v.HNSW_SPACE_KEY])
        stored = modified_metadata(self._info.metadata, new_meta, configuration)
        self._info = self._backend.modify_collection(self._ref, name, stored)

    def _check_same_space(self, space: str) -> None:
        """A ``hnsw:space`` given to :meth:`modify` must be the one the metadata holds already."""
        if space != (self.metadata or {}).get(v.HNSW_SPACE_KEY):
            raise InvalidArgumentError(
                f"metadata[{v.HNSW_SPACE_KEY!r}]: cannot change the distance metric once the collection exists "
                f"(not supported, as in Chroma; it is {self.configuration['hnsw']['space']!r}): leave "
                f"{v.HNSW_SPACE_KEY!r} out"
            )
