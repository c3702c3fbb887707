"""LangChain integration: a vectordb collection as a LangChain ``VectorStore``.

    from langchain_core.documents import Document
    from vectordb.integrations.langchain import VectorDBStore

    store = VectorDBStore("notes", embedding=my_embeddings, persist_directory="./db")
    store.add_documents([Document(page_content="the cat sat", metadata={"topic": "pets"})])
    store.similarity_search("kitten", k=1, filter={"topic": "pets"})

LangChain's ``Embeddings`` object embeds (``embed_documents`` for writes, ``embed_query``
for searches); the collection is created without an embedding function of its own and
every vector is passed explicitly, so the same store works on ``vectordb.Client()``,
``PersistentClient`` and ``HttpClient``. Only vectordb's public API is used.

Records: a document's ``id`` (or ``ids=``) becomes the record id (a UUID4 when missing);
writing an existing id replaces its text, vector and metadata. Metadata values must be
what vectordb stores (str, int, float, bool): None values are dropped, anything else (a
list, a nested dict) raises vectordb's ``InvalidArgumentError`` naming the key, before
anything is written. ``filter=`` is a vectordb (Chroma) ``where`` dict and
``where_document=`` a document filter. Async methods run the sync ones in LangChain's
executor (a vectordb client may be shared by threads).
"""

from __future__ import annotations

import math
import uuid
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from vectordb.client import Client
from vectordb.collection import Collection
from vectordb.errors import DuplicateIDError, InvalidArgumentError, MissingDependencyError
from vectordb.integrations.records import clean_metadata, open_collection, space_of, write_records

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError:  # pragma: no cover - exercised in a child process by the tests
    raise MissingDependencyError("langchain-core", "langchain", "vectordb.integrations.langchain") from None

__all__ = ["VectorDBStore"]

DEFAULT_COLLECTION_NAME = "langchain"
_QUERY_FIELDS = ["documents", "metadatas", "distances"]


class VectorDBStore(VectorStore):
    """A LangChain vector store over one vectordb collection.

    Args:
        collection_name: the collection to use, created if missing (default ``"langchain"``).
        embedding: the LangChain ``Embeddings`` that embeds texts and queries.
        client: a vectordb client (memory, disk or HTTP); default: a new in-memory client,
            or ``PersistentClient(persist_directory)`` when that is given.
        persist_directory: a store folder to open when no client is given.
        collection_metadata: the metadata of a new collection, e.g. ``{"hnsw:space": "cosine"}``
            (ignored when the collection exists).
        collection: an open vectordb ``Collection`` to use instead of the four arguments above.
        relevance_score_fn: maps a distance to a relevance score in [0, 1], instead of the
            collection's metric's default.
        embedding_function: the same as ``embedding`` (the name ``langchain_chroma`` uses).

    Raises:
        InvalidArgumentError: no embeddings object, or conflicting arguments.

    An existing collection opened by name is used without its own embedding function
    (vectors are passed explicitly), whatever it was created with.
    """

    def __init__(
        self,
        collection_name: Optional[str] = None,
        embedding: Optional[Embeddings] = None,
        client: Optional[Client] = None,
        persist_directory: Optional[str] = None,
        collection_metadata: Optional[Dict[str, Any]] = None,
        *,
        collection: Optional[Collection] = None,
        relevance_score_fn: Optional[Callable[[float], float]] = None,
        embedding_function: Optional[Embeddings] = None,
    ) -> None:
        if embedding is not None and embedding_function is not None and embedding is not embedding_function:
            raise InvalidArgumentError("embedding, embedding_function: give one of them, not both")
        embedding = embedding if embedding is not None else embedding_function
        if embedding is None:
            raise InvalidArgumentError("embedding: a LangChain Embeddings object is required (vectordb stores its vectors)")
        self._embedding = embedding
        self._client, self._collection = open_collection(
            collection, client, collection_name, persist_directory, collection_metadata, DEFAULT_COLLECTION_NAME
        )
        self._relevance_score_fn = relevance_score_fn

    @property
    def embeddings(self) -> Embeddings:
        """The LangChain embeddings object."""
        return self._embedding

    @property
    def collection(self) -> Collection:
        """The vectordb collection the store reads and writes."""
        return self._collection

    # -- writes ---------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[List[Dict[str, Any]]] = None,
        *,
        ids: Optional[List[Optional[str]]] = None,
        **kwargs: Any,
    ) -> List[str]:
        """Embed ``texts`` and store them; returns their ids (a UUID4 for each id not given).

        A text whose id is already stored replaces that record (text, vector, metadata).

        Raises:
            InvalidArgumentError: ``metadatas`` or ``ids`` of another length than ``texts``, a
                metadata value vectordb cannot store. DuplicateIDError: an id repeated (before
                anything is embedded). Nothing is written then.
        """
        texts = list(texts)
        n = len(texts)
        if metadatas is not None and len(metadatas) != n:
            raise InvalidArgumentError(f"metadatas: expected {n} items (one per text), got {len(metadatas)}")
        if ids is not None and len(ids) != n:
            raise InvalidArgumentError(f"ids: expected {n} items (one per text), got {len(ids)}")
        id_list = [str(uuid.uuid4()) if not i else i for i in (ids or [None] * n)]
        repeated = sorted({i for i in id_list if id_list.count(i) > 1}) if len(set(id_list)) < n else []
        if repeated:  # checked before embedding, so a bad call costs no embedding
            raise DuplicateIDError(f"ids: repeated in one call: {', '.join(map(repr, repeated[:10]))}")
        metas = [clean_metadata(m, f"metadatas[{k}]") for k, m in enumerate(metadatas or [None] * n)]
        if not texts:
            return []
        embeddings = self._embedding.embed_documents(texts)
        write_records(self._collection, id_list, embeddings, metas, texts)
        return id_list

    def delete(
        self, ids: Optional[List[str]] = None, *, where: Optional[Dict[str, Any]] = None,
        where_document: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> bool:
        """Delete the records with these ids (and/or matching the filters); missing ids are ignored.

        Raises InvalidArgumentError when nothing is given: vectordb refuses to delete
        everything (use :meth:`delete_collection`).
        """
        if ids is not None and len(ids) == 0 and where is None and where_document is None:
            return True
        self._collection.delete(ids=None if ids is None else list(ids), where=where, where_document=where_document)
        return True

    @property
    def client(self) -> Optional[Client]:
        """The vectordb client (None when the store was given only a ``collection``)."""
        return self._client

    def delete_collection(self) -> None:
        """Remove the whole collection from its client; the store is unusable afterwards.

        Raises InvalidArgumentError when the store was given only a ``collection`` (no client).
        """
        if self._client is None:
            raise InvalidArgumentError("delete_collection: this store was given a collection, not a client")
        self._client.delete_collection(self._collection.name)

    # -- reads ----------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> List[Document]:
        """The stored documents with these ids, in the order asked; missing ids are left out."""
        if not ids:
            return []
        got = self._collection.get(ids=list(ids), include=["documents", "metadatas"])
        return [_document(i, d, m) for i, d, m in zip(got["ids"], got["documents"], got["metadatas"])]

    def get(
        self,
        ids: Optional[Sequence[str]] = None,
        where: Optional[Dict[str, Any]] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Optional[Dict[str, Any]] = None,
        include: Optional[List[str]] = None,
    ) -> Dict[str, Any]:
        """``Collection.get`` of the underlying collection (as ``langchain_chroma.Chroma.get``)."""
        return dict(self._collection.get(
            ids=None if ids is None else list(ids), where=where, limit=limit, offset=offset,
            where_document=where_document, include=["documents", "metadatas"] if include is None else include,
        ))

    def similarity_search(
        self, query: str, k: int = 4, filter: Optional[Dict[str, Any]] = None, **kwargs: Any
    ) -> List[Document]:
        """The ``k`` documents nearest to ``query``, nearest first (``filter``: a ``where`` dict)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter=filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Optional[Dict[str, Any]] = None,
        where_document: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> List[Tuple[Document, float]]:
        """The ``k`` nearest documents with their distance in the collection's metric (smaller is nearer)."""
        vector = self._embedding.embed_query(query)
        return self.similarity_search_by_vector_with_score(vector, k, filter=filter, where_document=where_document)

    def similarity_search_by_vector(
        self, embedding: List[float], k: int = 4, filter: Optional[Dict[str, Any]] = None,
        where_document: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> List[Document]:
        """The ``k`` documents nearest to ``embedding``, nearest first."""
        pairs = self.similarity_search_by_vector_with_score(embedding, k, filter=filter, where_document=where_document)
        return [doc for doc, _ in pairs]

    def similarity_search_by_vector_with_score(
        self, embedding: List[float], k: int = 4, filter: Optional[Dict[str, Any]] = None,
        where_document: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> List[Tuple[Document, float]]:
        """The ``k`` documents nearest to ``embedding`` with their distances, nearest first."""
        found = self._query(embedding, k, filter, where_document, _QUERY_FIELDS)
        return [
            (_document(i, d, m), float(dist))
            for i, d, m, dist in zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0])
        ]

    def _query(
        self, embedding: Any, k: int, where: Optional[Dict[str, Any]], where_document: Optional[Dict[str, Any]],
        include: List[str],
    ) -> Dict[str, Any]:
        return dict(self._collection.query(
            query_embeddings=[list(map(float, embedding))], n_results=k,
            where=where or None, where_document=where_document or None, include=include,
        ))

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Distance → relevance in [0, 1] by the collection's ``hnsw:space``.

        ``l2`` distances are squared, so their square root goes to LangChain's euclidean
        relevance; ``cosine`` (1 − cosine) uses LangChain's cosine relevance, giving the
        cosine similarity. ``ip`` distances are 1 − dot, so the relevance is the inner
        product itself, ``1 − distance`` (LangChain's ``_max_inner_product_relevance_score_fn``
        expects negated inner products, and would not be monotonic on these).
        """
        if self._relevance_score_fn is not None:
            return self._relevance_score_fn
        space = space_of(self._collection)
        if space in ("cosine", "ip"):
            return self._cosine_relevance_score_fn
        return lambda distance: self._euclidean_relevance_score_fn(math.sqrt(max(distance, 0.0)))

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Optional[Dict[str, Any]] = None, where_document: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> List[Document]:
        """``k`` documents among the ``fetch_k`` nearest, chosen for relevance and diversity (MMR)."""
        vector = self._embedding.embed_query(query)
        return self.max_marginal_relevance_search_by_vector(
            vector, k, fetch_k, lambda_mult, filter=filter, where_document=where_document
        )

    def max_marginal_relevance_search_by_vector(
        self, embedding: List[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Optional[Dict[str, Any]] = None, where_document: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> List[Document]:
        """MMR from a query vector: ``lambda_mult`` 1 is pure relevance, 0 pure diversity."""
        found = self._query(embedding, max(fetch_k, k), filter, where_document, ["documents", "metadatas", "embeddings"])
        if not found["ids"][0]:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), found["embeddings"][0], k=k, lambda_mult=lambda_mult
        )
        return [_document(found["ids"][0][i], found["documents"][0][i], found["metadatas"][0][i]) for i in chosen]

    # -- constructors ---------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: List[str],
        embedding: Embeddings,
        metadatas: Optional[List[Dict[str, Any]]] = None,
        *,
        ids: Optional[List[str]] = None,
        collection_name: Optional[str] = None,
        client: Optional[Client] = None,
        persist_directory: Optional[str] = None,
        collection_metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> "VectorDBStore":
        """A store over ``collection_name`` (created if missing) holding ``texts``."""
        store = cls(collection_name, embedding, client, persist_directory, collection_metadata, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store


def _document(record_id: str, text: Optional[str], metadata: Optional[Dict[str, Any]]) -> Document:
    return Document(id=record_id, page_content=text or "", metadata=dict(metadata or {}))
