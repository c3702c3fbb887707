"""HttpClient against a real `vectordb serve`: every Client/Collection method, errors, client-side embedding."""

from __future__ import annotations

import os
import sys
import uuid

import numpy as np
import pytest

import vectordb
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DuplicateIDError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
    InvalidDimensionError,
    ServerUnreachableError,
)
from vectordb.http_backend import HttpClient
from vectordb.collection import Collection as HttpCollection

sys.path.insert(0, os.path.dirname(__file__))
from server_helpers import HashEmbedding, embed_text, free_port, running_server  # noqa: E402

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(str(tmp_path_factory.mktemp("http") / "db")) as srv:
        yield srv


@pytest.fixture
def client(server):
    with HttpClient("127.0.0.1", server.port) as c:
        yield c


def unique(prefix: str = "col") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def col(client) -> HttpCollection:
    return client.create_collection(unique(), embedding_function=None)


def vectors(n: int, dim: int = 4) -> np.ndarray:
    return RNG.random((n, dim), dtype=np.float32)


def test_heartbeat_and_url(client, server):
    assert abs(client.heartbeat() - __import__("time").time_ns()) < 60 * 10**9
    assert client.url == server.url
    assert HttpClient(server.url).heartbeat() > 0


def test_collection_lifecycle(client):
    before = client.count_collections()
    names = [unique("life"), unique("life")]
    made = [client.create_collection(n, metadata={"topic": "t", "hnsw:space": "cosine"}, embedding_function=None)
            for n in names]
    assert made[0].metadata == {"topic": "t", "hnsw:space": "cosine"}
    assert client.count_collections() == before + 2
    listed = [c.name for c in client.list_collections()]
    assert listed[-2:] == names
    got = client.get_collection(names[0])
    assert got.id == made[0].id and got.name == names[0]
    assert client.get_or_create_collection(names[0], embedding_function=None).id == made[0].id
    with pytest.raises(CollectionExistsError):
        client.create_collection(names[0], embedding_function=None)
    client.delete_collection(names[0])
    with pytest.raises(CollectionNotFoundError):
        client.get_collection(names[0])
    with pytest.raises(CollectionNotFoundError):
        client.delete_collection(names[0])
    with pytest.raises(CollectionNotFoundError):
        made[0].count()
    assert client.count_collections() == before + 1


def test_bad_names_and_metadata(client):
    with pytest.raises(InvalidArgumentError, match="not a valid collection name"):
        client.create_collection("x", embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="hnsw:space"):
        client.create_collection(unique(), metadata={"hnsw:space": "manhattan"}, embedding_function=None)
    with pytest.raises(CollectionNotFoundError):
        client.get_collection("a/b")


def test_add_get_peek_count(col):
    vecs = vectors(5)
    ids = [f"id{i}" for i in range(5)]
    col.add(ids=ids, embeddings=vecs, metadatas=[{"i": i, "even": i % 2 == 0} for i in range(5)],
            documents=[f"doc {i}" for i in range(5)])
    assert col.count() == 5
    got = col.get(ids=["id3", "id1", "nope"], include=["embeddings", "metadatas", "documents"])
    assert got["ids"] == ["id3", "id1"]
    assert got["documents"] == ["doc 3", "doc 1"]
    assert got["metadatas"] == [{"i": 3, "even": False}, {"i": 1, "even": False}]
    np.testing.assert_array_equal(np.asarray(got["embeddings"], dtype=np.float32), vecs[[3, 1]])
    assert got["included"] == ["embeddings", "metadatas", "documents"]
    default = col.get(where={"even": True})
    assert default["ids"] == ["id0", "id2", "id4"] and default["embeddings"] is None
    assert col.get(limit=2, offset=1)["ids"] == ["id1", "id2"]
    assert col.get(where_document={"$contains": "doc 4"})["ids"] == ["id4"]
    peek = col.peek(2)
    assert peek["ids"] == ["id0", "id1"] and len(peek["embeddings"]) == 2
    col.add(ids="id0", embeddings=vecs[4], documents="changed?")
    assert col.get(ids="id0")["documents"] == ["doc 0"]


def test_upsert_update_delete(col):
    col.add(ids=["a", "b", "c"], embeddings=vectors(3), metadatas=[{"k": 1, "x": "y"}, {"k": 2}, {"k": 3}],
            documents=["A", "B", "C"])
    col.update(ids=["a", "zz"], embeddings=vectors(2), metadatas=[{"k": 10, "x": None}, {"k": 0}],
               documents=["A2", "Z"])
    assert col.get(ids="zz")["ids"] == []
    assert col.get(ids="a")["metadatas"] == [{"k": 10}]
    assert col.get(ids="a")["documents"] == ["A2"]
    col.upsert(ids=["b", "d"], embeddings=vectors(2), metadatas=[{"new": True}, {"k": 4}], documents=["B2", "D"])
    assert col.get(ids=["b", "d"])["metadatas"] == [{"k": 2, "new": True}, {"k": 4}]
    assert col.count() == 4
    col.delete(where={"k": {"$in": [3, 4]}}, where_document={"$contains": "D"})
    assert sorted(col.get()["ids"]) == ["a", "b", "c"]
    col.delete(ids=["a"])
    assert col.get()["ids"] == ["b", "c"]
    with pytest.raises(InvalidArgumentError, match="deleting everything"):
        col.delete()
    assert col.count() == 2


def test_query_matches_brute_force(client):
    collection = client.create_collection(unique("q"), metadata={"hnsw:space": "cosine"}, embedding_function=None)
    data = vectors(60, 8)
    collection.add(ids=[str(i) for i in range(60)], embeddings=data, metadatas=[{"i": i} for i in range(60)])
    queries = vectors(3, 8)
    result = collection.query(query_embeddings=queries, n_results=5, include=["distances", "embeddings"])
    normed = data / np.linalg.norm(data, axis=1, keepdims=True)
    for q, ids, dists in zip(queries, result["ids"], result["distances"]):
        exact = 1 - normed @ (q / np.linalg.norm(q))
        assert ids == [str(i) for i in np.argsort(exact)[:5]]
        np.testing.assert_allclose(dists, np.sort(exact)[:5], atol=1e-4)
    assert result["metadatas"] is None and len(result["embeddings"][0]) == 5
    filtered = collection.query(query_embeddings=queries[0].tolist(), n_results=100, where={"i": {"$lt": 3}})
    assert sorted(filtered["ids"][0]) == ["0", "1", "2"]


def test_modify(client):
    collection = client.create_collection(unique("mod"), metadata={"a": 1}, embedding_function=None)
    new_name = unique("renamed")
    collection.modify(name=new_name, metadata={"b": 2})
    assert collection.name == new_name and collection.metadata == {"b": 2}
    assert client.get_collection(new_name).id == collection.id
    with pytest.raises(InvalidArgumentError, match="cannot change"):
        collection.modify(metadata={"hnsw:space": "ip"})


def test_server_errors_are_typed(col):
    col.add(ids=["a"], embeddings=vectors(1))
    with pytest.raises(DuplicateIDError):
        col.add(ids=["b", "b"], embeddings=vectors(2))
    with pytest.raises(DuplicateIDError):
        col.upsert(ids=["b", "b"], embeddings=vectors(2))
    with pytest.raises(InvalidDimensionError):
        col.add(ids=["c"], embeddings=[[1.0, 2.0]])
    with pytest.raises(InvalidDimensionError):
        col.query(query_embeddings=[[1.0, 2.0]])
    with pytest.raises(InvalidArgumentError, match="NaN"):
        col.add(ids=["d"], embeddings=[[float("nan")] * 4])
    with pytest.raises(InvalidArgumentError, match=r"\$regex"):
        col.get(where={"k": {"$regex": "x"}})
    with pytest.raises(InvalidArgumentError, match="n_results"):
        col.query(query_embeddings=vectors(1), n_results=0)
    with pytest.raises(InvalidArgumentError, match="include"):
        col.get(include=["distances"])
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        col.add(ids=["e"], documents=["text"])
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        col.query(query_texts=["text"])
    with pytest.raises(InvalidArgumentError, match=r"metadatas\[0\]\['k'\]: expected str, int, float, bool or a list of one of them, got set"):
        col.add(ids=["f"], embeddings=vectors(1), metadatas={"k": {1, 2}})  # checked before anything is sent
    assert col.get()["ids"] == ["a"]


def test_client_side_embedding_and_persisted_function(client):
    fn = HashEmbedding(dim=8)
    name = unique("ef")
    collection = client.create_collection(name, embedding_function=fn)
    collection.add(ids=["cat", "dog", "car"], documents=["the cat sat", "a dog barked", "a red car"])
    assert fn.calls == [["the cat sat", "a dog barked", "a red car"]]
    stored = collection.get(ids="cat", include=["embeddings"])["embeddings"][0]
    np.testing.assert_allclose(stored, embed_text("the cat sat"), rtol=1e-6)
    result = collection.query(query_texts="the cat sat", n_results=1)
    assert result["ids"] == [["cat"]] and result["distances"][0][0] == pytest.approx(0, abs=1e-5)
    collection.update(ids="dog", documents="the cat sat")
    np.testing.assert_allclose(collection.get(ids="dog", include=["embeddings"])["embeddings"][0],
                               embed_text("the cat sat"), rtol=1e-6)

    rebuilt = client.get_collection(name)
    assert isinstance(rebuilt.embedding_function, HashEmbedding) and rebuilt.embedding_function.dim == 8
    assert [c.embedding_function.get_config() for c in client.list_collections() if c.name == name] == [{"dim": 8}]
    assert client.get_collection(name, embedding_function=HashEmbedding(8)).id == collection.id
    with pytest.raises(EmbeddingFunctionConflictError):
        client.get_collection(name, embedding_function=HashEmbedding(16))
    assert client.get_or_create_collection(name, embedding_function=None).embedding_function is None  # no conflict


def test_local_store_sees_the_function_name(tmp_path):
    path = str(tmp_path / "db")
    with running_server(path) as srv:
        http = HttpClient(port=srv.port)
        http.create_collection("hashed", embedding_function=HashEmbedding(4)).add(ids="a", documents="abc")
    local = vectordb.PersistentClient(path)
    collection = local.get_collection("hashed")
    assert isinstance(collection.embedding_function, HashEmbedding)
    assert collection.get(include=["documents"])["documents"] == ["abc"]
    local.close()


def test_connection_failure_names_the_url():
    port = free_port()
    client = HttpClient("127.0.0.1", port, timeout=5)
    with pytest.raises(ServerUnreachableError, match=f"http://127.0.0.1:{port}"):
        client.heartbeat()
    with pytest.raises(ConnectionError, match="cannot reach"):
        client.list_collections()


def test_import_vectordb_stays_light():
    import subprocess

    code = "import sys, vectordb; print(any(m in sys.modules for m in ('fastapi', 'uvicorn', 'httpx')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
