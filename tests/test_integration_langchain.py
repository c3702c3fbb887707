"""The LangChain integration: LangChain's own standard vector-store suite, and what it leaves out.

``TestVectorDBStoreStandard`` is ``langchain_tests``' ``VectorStoreIntegrationTests`` (sync
and async) run unchanged on memory, disk and HTTP clients. The other tests check what the
suite does not: filters, relevance scores per metric, MMR, replacing records, metadata
vectordb cannot store, constructors, reopening a store on disk, the retriever.
"""

from __future__ import annotations

import math
import uuid
from typing import Dict, Iterator, List

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langchain_tests")

from conftest import BACKENDS  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.embeddings import Embeddings  # noqa: E402
from langchain_core.vectorstores import VectorStore  # noqa: E402
from langchain_tests.integration_tests import VectorStoreIntegrationTests  # noqa: E402

import vectordb  # noqa: E402
from vectordb.errors import CollectionNotFoundError, DuplicateIDError, InvalidArgumentError  # noqa: E402
from vectordb.integrations.langchain import VectorDBStore  # noqa: E402


@pytest.fixture(params=BACKENDS)
def lc_client(request, clients) -> Iterator[vectordb.Client]:
    """The module's client of each backend; collections made in a test are removed after it."""
    client = clients(request.param)
    before = {c.name for c in client.list_collections()}
    yield client
    for col in client.list_collections():
        if col.name not in before:
            client.delete_collection(col.name)


class TestVectorDBStoreStandard(VectorStoreIntegrationTests):
    """LangChain's standard suite, unchanged, on each backend."""

    @pytest.fixture()
    def vectorstore(self, lc_client) -> Iterator[VectorStore]:  # type: ignore[override]
        """An empty store over a fresh collection of the backend's client."""
        name = f"lc-{uuid.uuid4().hex[:12]}"
        store = VectorDBStore(name, self.get_embeddings(), client=lc_client)
        try:
            yield store
        finally:
            store.delete_collection()

    @property
    def has_async(self) -> bool:
        return True


class TableEmbeddings(Embeddings):
    """Embeds each known text as its given vector (queries too), so distances are known exactly."""

    def __init__(self, table: Dict[str, List[float]]) -> None:
        self.table = table
        self.embedded: List[str] = []

    def embed_documents(self, texts: List[str]) -> List[List[float]]:
        self.embedded.extend(texts)
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> List[float]:
        return self.table[text]


TABLE = {
    "north": [0.0, 1.0], "east": [1.0, 0.0], "north-east": [math.sqrt(0.5), math.sqrt(0.5)],
    "north-again": [0.0, 1.0], "south": [0.0, -1.0], "q-north": [0.0, 1.0],
}


def test_filters_relevance_and_mmr(lc_client):
    emb = TableEmbeddings(TABLE)
    store = VectorDBStore("compass", emb, client=lc_client, collection_metadata={"hnsw:space": "cosine"})
    store.add_texts(
        ["north", "east", "north-east", "north-again", "south"],
        metadatas=[{"axis": "y", "n": 1}, {"axis": "x", "n": 2}, {"axis": "xy", "n": 3},
                   {"axis": "y", "n": 4}, {"axis": "y", "n": 5}],
        ids=["n", "e", "ne", "n2", "s"],
    )
    assert {d.id for d in store.similarity_search("q-north", k=2)} == {"n", "n2"}  # both at distance 0
    assert [d.id for d in store.similarity_search("q-north", k=5, filter={"n": {"$gte": 3}})] == ["n2", "ne", "s"]
    assert [d.id for d in store.similarity_search("q-north", k=5, filter={"axis": "x"})] == ["e"]
    assert [d.id for d in store.similarity_search("q-north", k=5, where_document={"$contains": "east"})] == ["ne", "e"]
    scored = dict((d.id, s) for d, s in store.similarity_search_with_relevance_scores("q-north", k=4))
    assert scored["n"] == pytest.approx(1.0, abs=1e-5) and scored["e"] == pytest.approx(0.0, abs=1e-5)
    assert scored["ne"] == pytest.approx(math.sqrt(0.5), abs=1e-5) and "s" not in scored
    distances = dict((d.id, s) for d, s in store.similarity_search_with_score("q-north", k=5))
    assert distances["e"] == pytest.approx(1.0, abs=1e-5)  # 1 - cosine similarity
    # MMR: after "north", its duplicate adds nothing; pure diversity picks "south" next
    assert [d.id for d in store.max_marginal_relevance_search("q-north", k=2, fetch_k=5, lambda_mult=0.0)][1] == "s"
    relevant = store.max_marginal_relevance_search("q-north", k=2, fetch_k=5, lambda_mult=1.0)
    assert {d.id for d in relevant} == {"n", "n2"}
    diverse = store.max_marginal_relevance_search("q-north", k=2, fetch_k=5, lambda_mult=0.2, filter={"axis": "y"})
    assert [d.id for d in diverse][1] == "s" and all(d.metadata["axis"] == "y" for d in diverse)
    retriever = store.as_retriever(search_kwargs={"k": 1, "filter": {"axis": "xy"}})
    assert [d.id for d in retriever.invoke("q-north")] == ["ne"]


@pytest.mark.parametrize("space, expected", [("l2", {"n": 1.0, "e": 0.0, "s": 1 - math.sqrt(2)}),
                                             ("ip", {"n": 1.0, "e": 0.0, "s": -1.0})])
def test_relevance_score_follows_the_collection_metric(lc_client, space, expected):
    store = VectorDBStore(f"metric-{space}", TableEmbeddings(TABLE), client=lc_client,
                          collection_metadata={"hnsw:space": space})
    store.add_texts(["north", "east", "south"], ids=["n", "e", "s"])
    fn = store._select_relevance_score_fn()
    scores = {d.id: fn(dist) for d, dist in store.similarity_search_with_score("q-north", k=3)}
    # l2: distance is squared L2 → sqrt → 1 - d/sqrt(2); ip: distance is 1 - dot → relevance is the dot product
    assert scores == pytest.approx(expected, abs=1e-5)


def test_writing_an_id_again_replaces_the_record_and_bad_metadata_changes_nothing(lc_client):
    store = VectorDBStore("replace", TableEmbeddings(TABLE), client=lc_client)
    store.add_documents([Document(id="a", page_content="north", metadata={"old": 1, "kept": "x"})])
    store.add_documents([Document(id="a", page_content="east", metadata={"kept": "y", "gone": None})])
    (doc,) = store.get_by_ids(["a"])
    assert doc == Document(id="a", page_content="east", metadata={"kept": "y"})
    assert store.similarity_search_by_vector([1.0, 0.0], k=1)[0].id == "a"
    with pytest.raises(InvalidArgumentError, match=r"metadatas\[1\]\['tags'\]"):
        store.add_texts(["north", "south"], metadatas=[{"a": 1}, {"tags": {"nested": "dict"}}], ids=["b", "c"])
    emb = store.embeddings
    before = len(emb.embedded)
    with pytest.raises(DuplicateIDError, match="'b'"):
        store.add_texts(["north", "south"], ids=["b", "b"])
    assert len(emb.embedded) == before  # refused before embedding
    with pytest.raises(InvalidArgumentError, match="metadatas: expected 2 items"):
        store.add_texts(["north", "south"], metadatas=[{"a": 1}])
    assert store.get_by_ids(["b", "c"]) == [] and store.collection.count() == 1
    assert store.get_by_ids(["missing", "a", "a"])[0].id == "a"
    store.delete([])  # nothing to delete: a no-op
    with pytest.raises(InvalidArgumentError, match="deleting everything is refused"):
        store.delete()
    store.delete(where={"kept": "y"})
    assert store.collection.count() == 0


def test_from_texts_and_from_documents_keep_ids_and_metadata(lc_client):
    emb = TableEmbeddings(TABLE)
    store = VectorDBStore.from_texts(["north", "east"], emb, metadatas=[{"k": 1}, {"k": 2}], ids=["1", "2"],
                                     client=lc_client, collection_name="from-texts")
    assert store.collection.name == "from-texts" and store.collection.count() == 2
    docs = [Document(id="x", page_content="south", metadata={"k": 3}), Document(page_content="north")]
    store2 = VectorDBStore.from_documents(docs, emb, client=lc_client, collection_name="from-docs")
    got = store2.get()
    assert got["ids"][0] == "x" and got["metadatas"] == [{"k": 3}, None] and len(got["ids"]) == 2
    assert docs[1].id is None  # the caller's documents are not changed
    store2.delete_collection()
    with pytest.raises(CollectionNotFoundError):
        lc_client.get_collection("from-docs")


def test_a_store_on_disk_is_there_after_reopening(tmp_path):
    emb = TableEmbeddings(TABLE)
    store = VectorDBStore("kept", emb, persist_directory=str(tmp_path / "db"))
    store.add_texts(["north", "east"], metadatas=[{"k": 1}, {"k": 2}], ids=["n", "e"])
    store.client.close()
    reopened = VectorDBStore("kept", emb, persist_directory=str(tmp_path / "db"))
    assert [d.id for d in reopened.similarity_search("q-north", k=1, filter={"k": 1})] == ["n"]
    reopened.client.close()


def test_constructor_errors(lc_client):
    with pytest.raises(InvalidArgumentError, match="embedding"):
        VectorDBStore("no-embedding", client=lc_client)
    col = lc_client.create_collection("given", embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="not both"):
        VectorDBStore("given", TableEmbeddings(TABLE), client=lc_client, collection=col)
    store = VectorDBStore(embedding_function=TableEmbeddings(TABLE), collection=col)
    store.add_texts(["north"], ids=["n"])
    assert col.count() == 1 and store.client is None
