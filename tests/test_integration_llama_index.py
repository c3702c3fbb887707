"""The LlamaIndex integration end to end, on memory, disk and HTTP clients.

Documents go through LlamaIndex's own ``IngestionPipeline`` (a ``SentenceSplitter`` and a
small deterministic ``BaseEmbedding`` defined here) into :class:`VectorDBVectorStore`; a
``VectorStoreIndex.from_vector_store`` then answers retrieval queries, with metadata
filters and in MMR mode, and documents are deleted by their ref doc id. The filter
translation is checked operator by operator, and unsupported ones raise.
"""

from __future__ import annotations

import re
import uuid
import zlib
from typing import Iterator, List

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from conftest import BACKENDS  # noqa: E402
from llama_index.core import Document, VectorStoreIndex  # noqa: E402
from llama_index.core.embeddings import BaseEmbedding  # noqa: E402
from llama_index.core.ingestion import IngestionPipeline  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from vectordb.errors import InvalidArgumentError  # noqa: E402
from vectordb.integrations.llama_index import VectorDBVectorStore, to_where  # noqa: E402

DIM = 64


class WordHashEmbedding(BaseEmbedding):
    """Bag of words hashed into 64 dimensions, unit length: texts sharing words are near."""

    def _vector(self, text: str) -> List[float]:
        v = np.zeros(DIM)
        for word in re.findall(r"[a-z]+", text.lower()):
            v[zlib.crc32(word.encode()) % DIM] += 1.0
        n = np.linalg.norm(v)
        return (v / n if n else v).tolist()

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._vector(text)

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._vector(query)


CATS = "Cats purr when they are content. A cat sleeps most of the day and chases mice at night."
DOCS = [
    Document(id_="cats-a", text=CATS, metadata={"topic": "pets", "year": 2020}),
    Document(id_="cats-b", text=CATS, metadata={"topic": "pets", "year": 2021}),
    Document(id_="stocks", text="Stock prices fell sharply. Investors sold shares and bond yields rose.",
             metadata={"topic": "finance", "year": 2022}),
    Document(id_="rain", text="Heavy rain and strong wind are forecast. Storms bring thunder over the coast.",
             metadata={"topic": "weather", "year": 2023}),
]


@pytest.fixture(params=BACKENDS)
def store(request, clients) -> Iterator[VectorDBVectorStore]:
    """An empty store over a fresh collection of each backend's client, removed afterwards."""
    client = clients(request.param)
    name = f"llama-{uuid.uuid4().hex[:12]}"
    yield VectorDBVectorStore(client=client, collection_name=name)
    client.delete_collection(name)


def _ingest(store: VectorDBVectorStore, embed: BaseEmbedding) -> List[TextNode]:
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=60, chunk_overlap=0, tokenizer=str.split), embed],
        vector_store=store,
    )
    return pipeline.run(documents=DOCS)


def test_ingest_retrieve_filter_mmr_and_delete(store):
    embed = WordHashEmbedding()
    nodes = _ingest(store, embed)
    assert store.collection.count() == len(nodes) >= len(DOCS)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed)

    (hit,) = index.as_retriever(similarity_top_k=1).retrieve("stock prices and shares")
    assert hit.node.ref_doc_id == "stocks" and "Investors" in hit.node.get_content()
    assert hit.node.metadata == {"topic": "finance", "year": 2022} and 0 < hit.score <= 1

    two = index.as_retriever(similarity_top_k=2).retrieve("does a cat purr")
    assert {n.node.ref_doc_id for n in two} == {"cats-a", "cats-b"}  # the two identical texts
    # MMR: the second identical text adds nothing, so another document comes second
    mmr = index.as_retriever(similarity_top_k=2, vector_store_query_mode="mmr",
                             vector_store_kwargs={"mmr_threshold": 0.2}).retrieve("does a cat purr")
    assert mmr[0].node.ref_doc_id in ("cats-a", "cats-b") and mmr[1].node.ref_doc_id in ("stocks", "rain")

    newer = MetadataFilters(filters=[MetadataFilter(key="year", value=2021, operator=FilterOperator.GTE)])
    hits = index.as_retriever(similarity_top_k=5, filters=newer).retrieve("does a cat purr")
    assert {n.node.ref_doc_id for n in hits} == {"cats-b", "stocks", "rain"}
    either = MetadataFilters(filters=[MetadataFilter(key="topic", value="weather"),
                                      MetadataFilter(key="year", value=[2020, 2022], operator=FilterOperator.IN)],
                             condition=FilterCondition.OR)
    hits = index.as_retriever(similarity_top_k=5, filters=either).retrieve("thunder storms")
    assert hits[0].node.ref_doc_id == "rain" and {n.node.ref_doc_id for n in hits} == {"rain", "cats-a", "stocks"}
    hits = index.as_retriever(similarity_top_k=5, doc_ids=["stocks", "rain"]).retrieve("does a cat purr")
    assert {n.node.ref_doc_id for n in hits} == {"stocks", "rain"}

    index.delete_ref_doc("cats-a")
    left = index.as_retriever(similarity_top_k=10).retrieve("does a cat purr")
    assert "cats-a" not in {n.node.ref_doc_id for n in left} and left[0].node.ref_doc_id == "cats-b"
    assert store.collection.count() == len([n for n in nodes if n.ref_doc_id != "cats-a"])


def test_get_delete_nodes_and_clear(store):
    embed = WordHashEmbedding()
    nodes = _ingest(store, embed)
    first, second = nodes[0].node_id, nodes[-1].node_id
    got = store.get_nodes(node_ids=[second, "missing", first])
    assert [n.node_id for n in got] == [second, first] and got[1].get_content() == nodes[0].get_content()
    assert got[1].embedding == pytest.approx(nodes[0].embedding, abs=1e-6)
    finance = MetadataFilters(filters=[MetadataFilter(key="topic", value="finance")])
    assert {n.ref_doc_id for n in store.get_nodes(filters=finance)} == {"stocks"}
    assert store.get_nodes(node_ids=[first], filters=finance) == []  # first node is a cat's: both must hold
    # node_ids restrict a query: ranked exactly among those nodes
    q = VectorStoreQuery(query_embedding=embed.get_query_embedding("stock prices"), similarity_top_k=5,
                         node_ids=[first, second])
    result = store.query(q)
    assert result.ids == [second, first] and result.similarities[0] > result.similarities[1]

    store.delete_nodes(node_ids=[first])
    assert store.get_nodes(node_ids=[first]) == []
    store.delete_nodes(filters=finance)
    assert store.get_nodes(filters=finance) == [] and store.collection.count() == len(nodes) - 1 - \
        len([n for n in nodes if n.ref_doc_id == "stocks"])
    store.delete_nodes(node_ids=[])  # nothing: a no-op
    store.clear()
    assert store.collection.count() == 0 and store.get_nodes() == []


def test_writing_a_node_again_replaces_it_and_bad_nodes_change_nothing(store):
    node = TextNode(id_="n1", text="first", metadata={"a": 1, "b": "x"}, embedding=[1.0, 0.0])
    store.add([node])
    store.add([TextNode(id_="n1", text="second", metadata={"b": "y", "c": None}, embedding=[0.0, 1.0])])
    (back,) = store.get_nodes(node_ids=["n1"])
    assert back.get_content() == "second" and back.metadata == {"b": "y", "c": None}  # the node as LlamaIndex gave it
    assert "a" not in store.collection.get(ids=["n1"])["metadatas"][0]  # the old key is gone from the record
    with pytest.raises(InvalidArgumentError, match=r"nodes\[1\].*no embedding"):
        store.add([TextNode(id_="n2", text="x", embedding=[1.0, 1.0]), TextNode(id_="n3", text="y")])
    with pytest.raises(InvalidArgumentError, match=r"nodes\[0\].*metadata"):
        store.add([TextNode(id_="n4", text="x", metadata={"tags": ["a", "b"]}, embedding=[1.0, 1.0])])
    assert store.collection.count() == 1
    with pytest.raises(InvalidArgumentError, match="mode"):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], mode=VectorStoreQueryMode.HYBRID))
    with pytest.raises(InvalidArgumentError, match="query_embedding"):
        store.query(VectorStoreQuery(query_str="text only"))


def test_metadata_filters_translate_to_where():
    f = MetadataFilter
    ops = {FilterOperator.EQ: "$eq", FilterOperator.NE: "$ne", FilterOperator.GT: "$gt",
           FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte"}
    for op, word in ops.items():
        assert to_where(MetadataFilters(filters=[f(key="k", value=3, operator=op)])) == {"k": {word: 3}}
    assert to_where(MetadataFilters(filters=[f(key="k", value=["a"], operator=FilterOperator.IN),
                                             f(key="j", value=[1, 2], operator=FilterOperator.NIN)])) == \
        {"$and": [{"k": {"$in": ["a"]}}, {"j": {"$nin": [1, 2]}}]}
    nested = MetadataFilters(filters=[
        f(key="a", value="x"),
        MetadataFilters(filters=[f(key="b", value=1), f(key="c", value=2.5, operator=FilterOperator.LT)],
                        condition=FilterCondition.OR)])
    assert to_where(nested) == {"$and": [{"a": {"$eq": "x"}}, {"$or": [{"b": {"$eq": 1}}, {"c": {"$lt": 2.5}}]}]}
    assert to_where(None) is None and to_where(MetadataFilters(filters=[])) is None
    for bad in (FilterOperator.CONTAINS, FilterOperator.TEXT_MATCH, FilterOperator.ANY, FilterOperator.IS_EMPTY):
        with pytest.raises(InvalidArgumentError, match=f"operator {bad.name}.*not supported"):
            to_where(MetadataFilters(filters=[f(key="k", value="v", operator=bad)]))
    with pytest.raises(InvalidArgumentError, match="'not' is not supported"):
        to_where(MetadataFilters(filters=[f(key="a", value=1), f(key="b", value=2)], condition=FilterCondition.NOT))
    with pytest.raises(InvalidArgumentError, match="needs a value"):
        to_where(MetadataFilters(filters=[f(key="a", value=None)]))


def test_a_store_on_disk_answers_after_reopening(tmp_path):
    embed = WordHashEmbedding()
    store = VectorDBVectorStore(persist_directory=str(tmp_path / "db"), collection_metadata={"hnsw:space": "cosine"})
    _ingest(store, embed)
    store.vectordb_client.close()
    reopened = VectorDBVectorStore(persist_directory=str(tmp_path / "db"))
    index = VectorStoreIndex.from_vector_store(reopened, embed_model=embed)
    (hit,) = index.as_retriever(similarity_top_k=1).retrieve("thunder and storms")
    assert hit.node.ref_doc_id == "rain" and hit.score == pytest.approx(
        float(np.dot(embed.get_query_embedding("thunder and storms"), hit.node.embedding)), abs=1e-5)
    reopened.vectordb_client.close()
