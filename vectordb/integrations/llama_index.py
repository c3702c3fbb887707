"""LlamaIndex integration: a vectordb collection as a LlamaIndex vector store.

    from llama_index.core import VectorStoreIndex
    from vectordb.integrations.llama_index import VectorDBVectorStore

    store = VectorDBVectorStore(client=vectordb.PersistentClient("./db"), collection_name="docs")
    index = VectorStoreIndex.from_vector_store(store, embed_model=my_embed_model)
    index.as_retriever(similarity_top_k=3).retrieve("what is a vector database?")

Each node is one record: its id, its text (the document), its embedding (LlamaIndex
embeds; the collection has no embedding function, so every backend works) and its
metadata, which holds the node's own metadata plus LlamaIndex's ``_node_content`` (the
rest of the node as JSON), ``_node_type`` and ``ref_doc_id`` / ``doc_id`` /
``document_id``, as LlamaIndex's other stores keep them. Node metadata must be flat (str,
int, float, bool; None values are dropped). Writing a node id again replaces the record.

``MetadataFilters`` become a vectordb ``where`` dict (:func:`to_where`): EQ, NE, GT, GTE,
LT, LTE, IN and NIN, combined with AND / OR and nested; other operators and NOT raise
:class:`InvalidArgumentError`. Only vectordb's public API is used.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vectordb.client import Client
from vectordb.collection import Collection
from vectordb.errors import InvalidArgumentError, MissingDependencyError
from vectordb.integrations.records import clean_metadata, open_collection, space_of, write_records

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
    from llama_index.core.schema import BaseNode, MetadataMode, TextNode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
except ImportError:  # pragma: no cover - exercised in a child process by the tests
    raise MissingDependencyError("llama-index-core", "llama-index", "vectordb.integrations.llama_index") from None

__all__ = ["VectorDBVectorStore", "to_where"]

DEFAULT_COLLECTION_NAME = "llama_index"
DEFAULT_MMR_PREFETCH_FACTOR = 4
_OPERATORS = {
    FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte", FilterOperator.IN: "$in", FilterOperator.NIN: "$nin",
}
_RECORD_FIELDS = ["documents", "metadatas", "embeddings"]


def to_where(filters: Optional[MetadataFilters]) -> Optional[Dict[str, Any]]:
    """The vectordb ``where`` dict of LlamaIndex ``filters`` (None when they filter nothing).

    Raises:
        InvalidArgumentError: an operator vectordb has no equivalent for (ANY, ALL, CONTAINS,
            TEXT_MATCH, IS_EMPTY, ...), the NOT condition, or a filter without a value.
    """
    if filters is None:
        return None
    parts = [w for w in (_one_filter(f) for f in filters.filters) if w is not None]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return {"$and": parts}
    if condition == FilterCondition.OR:
        return {"$or": parts}
    raise InvalidArgumentError(f"filters: condition {condition.value!r} is not supported by vectordb (use 'and' or 'or')")


def _one_filter(f: Any) -> Optional[Dict[str, Any]]:
    if isinstance(f, MetadataFilters):
        if f.condition == FilterCondition.NOT:
            raise InvalidArgumentError("filters: condition 'not' is not supported by vectordb (use 'and' or 'or')")
        return to_where(f)
    if not isinstance(f, MetadataFilter):
        raise InvalidArgumentError(f"filters: expected MetadataFilter or MetadataFilters, got {type(f).__name__}")
    op = _OPERATORS.get(f.operator)
    if op is None:
        supported = ", ".join(o.name for o in _OPERATORS)
        raise InvalidArgumentError(
            f"filters: operator {f.operator.name} ({f.operator.value!r}) on key {f.key!r} is not supported by "
            f"vectordb; supported: {supported}"
        )
    if f.value is None:
        raise InvalidArgumentError(f"filters: {f.operator.name} on key {f.key!r} needs a value, got None")
    return {f.key: {op: f.value}}


class VectorDBVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over one vectordb collection (it stores the nodes' text).

    Args:
        collection: an open vectordb ``Collection``; or instead:
        client: a vectordb client (memory, disk or HTTP); default: a new in-memory client, or
            ``PersistentClient(persist_directory)`` when that is given.
        collection_name: the collection to use, created if missing (default ``"llama_index"``).
        persist_directory: a store folder to open when no client is given.
        collection_metadata: the metadata of a new collection, e.g. ``{"hnsw:space": "cosine"}``.

    Raises:
        InvalidArgumentError: conflicting arguments.

    An existing collection opened by name is used without its own embedding function
    (vectors are passed explicitly), whatever it was created with.
    """

    stores_text: bool = True
    flat_metadata: bool = True
    collection_name: Optional[str] = None

    _collection: Collection = PrivateAttr()
    _vectordb_client: Optional[Client] = PrivateAttr(default=None)

    def __init__(
        self,
        collection: Optional[Collection] = None,
        *,
        client: Optional[Client] = None,
        collection_name: Optional[str] = None,
        persist_directory: Optional[str] = None,
        collection_metadata: Optional[Dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        opened_client, opened = open_collection(
            collection, client, collection_name, persist_directory, collection_metadata, DEFAULT_COLLECTION_NAME
        )
        super().__init__(collection_name=opened.name, **kwargs)
        self._collection = opened
        self._vectordb_client = opened_client

    @classmethod
    def class_name(cls) -> str:
        return "VectorDBVectorStore"

    @property
    def client(self) -> Collection:
        """The vectordb collection (LlamaIndex's name for the store's underlying handle)."""
        return self._collection

    @property
    def collection(self) -> Collection:
        """The vectordb collection the store reads and writes."""
        return self._collection

    @property
    def vectordb_client(self) -> Optional[Client]:
        """The vectordb client (None when the store was given only a ``collection``)."""
        return self._vectordb_client

    # -- writes ---------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        """Store ``nodes`` (each needs an embedding); a node id already stored is replaced.

        Raises:
            InvalidArgumentError: a node without an embedding, or metadata vectordb cannot
                store (nested or list values). Nothing is written then.
        """
        if not nodes:
            return []
        ids, embeddings, metadatas, texts = [], [], [], []
        for position, node in enumerate(nodes):
            if node.embedding is None:
                raise InvalidArgumentError(f"nodes[{position}] ({node.node_id!r}): has no embedding; embed it first")
            try:
                meta = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            except ValueError as exc:
                raise InvalidArgumentError(f"nodes[{position}] ({node.node_id!r}).metadata: {exc}") from None
            ids.append(node.node_id)
            embeddings.append(node.embedding)
            metadatas.append(clean_metadata(meta, f"nodes[{position}].metadata"))
            texts.append(node.get_content(metadata_mode=MetadataMode.NONE))
        write_records(self._collection, ids, embeddings, metadatas, texts)
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id``."""
        if not isinstance(ref_doc_id, str) or not ref_doc_id:
            raise InvalidArgumentError(f"ref_doc_id: expected a non-empty string, got {ref_doc_id!r}")
        self._collection.delete(where={"ref_doc_id": ref_doc_id})

    def delete_nodes(
        self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None, **delete_kwargs: Any
    ) -> None:
        """Delete the nodes with these ids and/or matching ``filters`` (both must hold when both are given).

        Raises InvalidArgumentError when neither is given (use :meth:`clear`).
        """
        where = to_where(filters)
        if node_ids is not None and len(node_ids) == 0:
            return
        self._collection.delete(ids=node_ids, where=where)

    def clear(self) -> None:
        """Delete every node of the collection (the collection itself stays)."""
        ids = self._collection.get(include=[])["ids"]
        if ids:
            self._collection.delete(ids=ids)

    # -- reads ----------------------------------------------------------------

    def get_nodes(
        self, node_ids: Optional[List[str]] = None, filters: Optional[MetadataFilters] = None
    ) -> List[BaseNode]:
        """The nodes with these ids (in that order, missing ones left out) and/or matching ``filters``;
        every node when neither is given."""
        where = to_where(filters)
        if node_ids is not None and len(node_ids) == 0:
            return []
        got = self._collection.get(ids=node_ids, where=where, include=_RECORD_FIELDS)
        return [
            _node(i, d, m, e) for i, d, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])
        ]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nodes nearest to ``query.query_embedding``, nearest first.

        ``filters``, ``doc_ids`` (source documents) and ``node_ids`` (when not empty) restrict
        the candidates.
        Modes: default, and MMR (``mmr_threshold`` from the query or ``vector_store_kwargs``:
        1 is pure relevance, 0 pure diversity; ``mmr_prefetch_k`` or ``mmr_prefetch_factor``
        candidates, default 4 × top k). Similarities: 1 − distance for ``cosine`` and ``ip``
        collections (the cosine similarity / dot product), 1 / (1 + distance) for ``l2``.

        Raises:
            InvalidArgumentError: no query embedding, another query mode, an unsupported filter.
        """
        if query.query_embedding is None:
            raise InvalidArgumentError("query.query_embedding: required (vectordb searches by vector)")
        mode = VectorStoreQueryMode(query.mode)
        if mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise InvalidArgumentError(f"query.mode: {mode.value!r} is not supported by vectordb (use 'default' or 'mmr')")
        where = _and(to_where(query.filters), {"ref_doc_id": {"$in": list(query.doc_ids)}} if query.doc_ids else None)
        top_k = query.similarity_top_k
        fetch_k = top_k
        if mode == VectorStoreQueryMode.MMR:
            fetch_k = int(kwargs.get("mmr_prefetch_k") or top_k * kwargs.get("mmr_prefetch_factor", DEFAULT_MMR_PREFETCH_FACTOR))
            fetch_k = max(fetch_k, top_k)
        # an empty node_ids restricts nothing: VectorStoreIndex.as_retriever passes its (empty) index struct's ids
        restrict = list(query.node_ids) if query.node_ids else None
        ids, texts, metas, embeddings, distances = self._nearest(query.query_embedding, fetch_k, where, restrict)
        if mode == VectorStoreQueryMode.MMR and ids:
            threshold = query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold")
            _, chosen = get_top_k_mmr_embeddings(
                list(query.query_embedding), [list(map(float, e)) for e in embeddings], similarity_top_k=top_k,
                embedding_ids=list(range(len(ids))), mmr_threshold=threshold,
            )
        else:
            chosen = list(range(len(ids)))[:top_k]
        similarity = _similarity(space_of(self._collection))
        return VectorStoreQueryResult(
            nodes=[_node(ids[i], texts[i], metas[i], embeddings[i]) for i in chosen],
            similarities=[similarity(distances[i]) for i in chosen],
            ids=[ids[i] for i in chosen],
        )

    def _nearest(
        self, vector: List[float], k: int, where: Optional[Dict[str, Any]], node_ids: Optional[List[str]]
    ) -> Tuple[List[str], List[Any], List[Any], List[Any], List[float]]:
        """``(ids, documents, metadatas, embeddings, distances)`` of the ``k`` nearest records."""
        if node_ids is None:
            found = self._collection.query(
                query_embeddings=[list(vector)], n_results=k, where=where, include=_RECORD_FIELDS + ["distances"]
            )
            return (found["ids"][0], found["documents"][0], found["metadatas"][0], found["embeddings"][0],
                    found["distances"][0])
        # vectordb filters metadata, not ids: rank the given nodes exactly, here
        got = self._collection.get(ids=list(node_ids), where=where, include=_RECORD_FIELDS)
        if not got["ids"]:
            return [], [], [], [], []
        dist = _distances(space_of(self._collection), np.asarray(vector, dtype=np.float64),
                          np.asarray(got["embeddings"], dtype=np.float64))
        order = [int(i) for i in np.argsort(dist, kind="stable")[:k]]
        return ([got["ids"][i] for i in order], [got["documents"][i] for i in order],
                [got["metadatas"][i] for i in order], [got["embeddings"][i] for i in order],
                [float(dist[i]) for i in order])


def _and(a: Optional[Dict[str, Any]], b: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if a is None or b is None:
        return a if b is None else b
    return {"$and": [a, b]}


def _distances(space: str, q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """vectordb's distances of the rows of ``m`` to ``q``: squared L2, 1 − cosine, or 1 − dot."""
    if space == "cosine":
        norms = np.linalg.norm(m, axis=1) * np.linalg.norm(q)
        return 1.0 - (m @ q) / np.where(norms == 0, 1.0, norms)
    if space == "ip":
        return 1.0 - m @ q
    return ((m - q) ** 2).sum(axis=1)


def _similarity(space: str) -> Callable[[float], float]:
    """Distance → LlamaIndex similarity (higher is nearer) for the collection's metric."""
    if space in ("cosine", "ip"):
        return lambda d: 1.0 - float(d)
    return lambda d: 1.0 / (1.0 + float(d))


def _node(record_id: str, text: Optional[str], metadata: Optional[Dict[str, Any]], embedding: Any) -> BaseNode:
    """The LlamaIndex node of a record; a record not written by LlamaIndex becomes a TextNode."""
    metadata = dict(metadata or {})
    try:
        node = metadata_dict_to_node(metadata, text=text or "")
    except ValueError:  # no _node_content: written by another client
        node = TextNode(id_=record_id, text=text or "", metadata=metadata)
    node.embedding = None if embedding is None else [float(x) for x in embedding]
    return node
