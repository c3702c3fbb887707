"""Collection attributes, modify (rename, metadata, metric), count and peek."""

from __future__ import annotations

import numpy as np
import pytest

from vectordb.errors import CollectionExistsError, InvalidArgumentError


def test_attributes(client):
    col = client.create_collection("books", metadata={"owner": "me"}, embedding_function=None)
    assert col.name == "books"
    assert col.metadata == {"owner": "me"}
    assert col.embedding_function is None
    assert col.dimension is None
    col.add(ids="a", embeddings=[1.0, 2.0, 3.0])
    assert col.dimension == 3
    assert "books" in repr(col)


def test_modify_rename(client):
    col = client.create_collection("books", embedding_function=None)
    col.add(ids="a", embeddings=[1.0, 2.0])
    col.modify(name="novels")
    assert col.name == "novels"
    assert [c.name for c in client.list_collections()] == ["novels"]
    renamed = client.get_collection("novels")
    assert renamed.id == col.id
    assert renamed.get()["ids"] == ["a"]
    with pytest.raises(Exception):
        client.get_collection("books")


def test_modify_rename_to_existing_name_refused(client):
    client.create_collection("taken", embedding_function=None)
    col = client.create_collection("books", embedding_function=None)
    with pytest.raises(CollectionExistsError, match="taken"):
        col.modify(name="taken")
    assert col.name == "books"
    assert client.get_collection("books").id == col.id


def test_modify_rename_invalid_name(client):
    col = client.create_collection("books", embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="name"):
        col.modify(name="x")
    assert client.get_collection("books").name == "books"


def test_modify_metadata_replaces(client):
    col = client.create_collection("books", metadata={"a": 1, "b": "two"}, embedding_function=None)
    col.modify(metadata={"c": 3.5})
    assert col.metadata == {"c": 3.5}
    assert client.get_collection("books").metadata == {"c": 3.5}


def test_modify_metadata_keeps_metric(client):
    col = client.create_collection("books", metadata={"hnsw:space": "cosine", "a": 1}, embedding_function=None)
    col.add(ids=["x", "y"], embeddings=[[1.0, 0.0], [10.0, 10.0]])
    col.modify(metadata={"b": 2})
    # replaced, as in Chroma (chromadb 1.5.9 shows {"b": 2} too); the metric stays in the configuration
    assert col.metadata == {"b": 2} and client.get_collection("books").metadata == {"b": 2}
    assert client.get_collection("books").configuration["hnsw"]["space"] == "cosine"
    # distances are still cosine: a vector twice as long as x is at distance 0 from it
    result = col.query(query_embeddings=[2.0, 0.0], n_results=1)
    assert result["ids"] == [["x"]]
    assert result["distances"][0][0] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("created, new", [(None, "cosine"), ("cosine", "ip"), ("ip", "l2")])
def test_modify_metric_change_refused(client, created, new):
    meta = None if created is None else {"hnsw:space": created}
    col = client.create_collection("books", metadata=meta, embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="hnsw:space"):
        col.modify(metadata={"hnsw:space": new})
    assert client.get_collection("books").metadata == meta


def test_modify_same_metric_allowed(client):
    col = client.create_collection("books", metadata={"hnsw:space": "ip"}, embedding_function=None)
    col.modify(metadata={"hnsw:space": "ip", "k": "v"})
    assert col.metadata == {"hnsw:space": "ip", "k": "v"}


def test_modify_nothing_changes_nothing(client):
    col = client.create_collection("books", metadata={"a": 1}, embedding_function=None)
    col.modify()
    assert col.name == "books" and col.metadata == {"a": 1}


def test_count(collection):
    assert collection.count() == 0
    collection.add(ids=["a", "b", "c"], embeddings=np.eye(3))
    assert collection.count() == 3
    collection.delete(ids="b")
    assert collection.count() == 2


def test_peek(collection):
    vectors = np.arange(24, dtype=np.float32).reshape(12, 2)
    ids = [f"id{i:02d}" for i in range(12)]
    collection.add(ids=ids, embeddings=vectors, documents=[f"doc {i}" for i in range(12)])
    peeked = collection.peek()
    assert peeked["ids"] == ids[:10]
    assert peeked["documents"] == [f"doc {i}" for i in range(10)]
    np.testing.assert_array_equal(np.array(peeked["embeddings"]), vectors[:10])
    assert collection.peek(limit=3)["ids"] == ids[:3]
    assert collection.peek(limit=100)["ids"] == ids
    with pytest.raises(InvalidArgumentError, match="limit"):
        collection.peek(limit=0)


def test_peek_empty(collection):
    assert collection.peek()["ids"] == []


def test_info_refresh_and_using_on_every_backend(client):
    """The public ways the server and ``vectordb copy`` use: ``info``, ``refresh()``, ``using(fn)``, ``backend``."""
    from vectordb.backend import Backend

    assert isinstance(client.backend, Backend)
    col = client.create_collection("first", embedding_function=None)
    other = client.get_collection("first", embedding_function=None)
    assert col.info.name == "first" and col.info.dimension is None
    other.add(["a"], [[1.0, 0.0]])
    other.modify(name="renamed")
    assert col.info.name == "first"  # as last described, until refreshed
    assert col.refresh().name == "renamed" and col.info.dimension == 2 and col.name == "renamed"
    function = lambda input: [[0.0, 1.0] for _ in input]  # noqa: E731
    embedded = col.using(function)
    assert embedded.embedding_function is function and col.embedding_function is None
    embedded.add(["b"], [[0.0, 1.0]])
    assert embedded.id == col.id and col.count() == 2
    assert col.backend is client.backend and (col.ref.id, col.ref.name) == (col.id, "renamed")


def test_recall_target_is_a_setting_on_every_backend(client):
    """``hnsw:recall_target``: kept in the metadata, changeable with modify, a bad value a typed error
    that creates nothing (Milvus keeps it as metadata: its own index chooses its search breadth)."""
    from vectordb.errors import InvalidArgumentError

    col = client.create_collection("tuned", metadata={"hnsw:recall_target": 0.9}, embedding_function=None)
    assert col.metadata == {"hnsw:recall_target": 0.9}
    col.modify(metadata={"hnsw:recall_target": 0.99})
    assert client.get_collection("tuned", embedding_function=None).metadata == {"hnsw:recall_target": 0.99}
    for bad in (0, 1.5, True, "high"):
        with pytest.raises(InvalidArgumentError, match="recall_target"):
            client.create_collection("bad-target", metadata={"hnsw:recall_target": bad}, embedding_function=None)
        with pytest.raises(InvalidArgumentError, match="recall_target"):
            col.modify(metadata={"hnsw:recall_target": bad})
    assert [c.name for c in client.list_collections()] == ["tuned"]
    assert client.get_collection("tuned", embedding_function=None).metadata == {"hnsw:recall_target": 0.99}
