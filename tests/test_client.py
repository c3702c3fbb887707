"""Client: heartbeat, collections' lifecycle, listing and counting, name rules."""

from __future__ import annotations

import time
import uuid

import pytest

import vectordb
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidArgumentError,
    VectorDBError,
)


def test_heartbeat_is_nanoseconds_since_epoch(client):
    before = time.time_ns()
    beat = client.heartbeat()
    after = time.time_ns()
    assert isinstance(beat, int)
    assert before <= beat <= after


def test_ephemeral_client_is_an_in_memory_client():
    c = vectordb.EphemeralClient()
    assert isinstance(c, vectordb.Client)
    assert c.path is None
    c.create_collection("abc", embedding_function=None)
    assert vectordb.EphemeralClient().count_collections() == 0  # each one is its own store


def test_create_and_get_collection(client):
    created = client.create_collection("books", metadata={"topic": "fiction"}, embedding_function=None)
    assert created.name == "books"
    assert uuid.UUID(created.id)
    assert created.metadata == {"topic": "fiction"}
    assert created.embedding_function is None
    got = client.get_collection("books")
    assert got.id == created.id
    assert got.metadata == {"topic": "fiction"}
    assert got == created


def test_create_existing_raises_unless_get_or_create(client):
    first = client.create_collection("books", embedding_function=None)
    with pytest.raises(CollectionExistsError, match="books"):
        client.create_collection("books", embedding_function=None)
    again = client.create_collection("books", embedding_function=None, get_or_create=True)
    assert again.id == first.id
    assert client.count_collections() == 1


def test_get_missing_collection_raises(client):
    with pytest.raises(CollectionNotFoundError, match="nope"):
        client.get_collection("nope")


def test_get_or_create_collection(client):
    created = client.get_or_create_collection("books", metadata={"a": 1}, embedding_function=None)
    got = client.get_or_create_collection("books", embedding_function=None)
    assert got.id == created.id
    assert got.metadata == {"a": 1}
    assert client.count_collections() == 1


def test_list_collections_in_creation_order(client):
    names = ["zeta", "alpha", "mid-1", "beta"]
    for name in names:
        client.create_collection(name, embedding_function=None)
    listed = client.list_collections()
    assert [c.name for c in listed] == names
    assert all(isinstance(c, vectordb.Collection) for c in listed)
    client.delete_collection("alpha")
    client.create_collection("alpha", embedding_function=None)
    assert [c.name for c in client.list_collections()] == ["zeta", "mid-1", "beta", "alpha"]


def test_count_collections(client):
    assert client.count_collections() == 0
    for i in range(3):
        client.create_collection(f"col{i}", embedding_function=None)
    assert client.count_collections() == 3
    client.delete_collection("col1")
    assert client.count_collections() == 2


def test_delete_collection_removes_records(client):
    col = client.create_collection("books", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 2.0], [3.0, 4.0]])
    client.delete_collection("books")
    with pytest.raises(CollectionNotFoundError):
        client.get_collection("books")
    with pytest.raises(CollectionNotFoundError):
        col.count()
    fresh = client.create_collection("books", embedding_function=None)
    assert fresh.count() == 0
    assert fresh.id != col.id
    fresh.add(ids="a", embeddings=[9.0, 9.0, 9.0])  # new dimension is fine: a new collection
    assert fresh.get(include=["embeddings"])["embeddings"].tolist() == [[9.0, 9.0, 9.0]]


def test_delete_missing_collection_raises(client):
    with pytest.raises(CollectionNotFoundError, match="ghost"):
        client.delete_collection("ghost")


@pytest.mark.parametrize(
    "name",
    ["abc", "a-b", "A.b_c", "x" * 512, "0ab", "my.collection-01", "a__b"],
)
def test_valid_collection_names(client, name):
    assert client.create_collection(name, embedding_function=None).name == name


@pytest.mark.parametrize(
    "name",
    ["ab", "", "x" * 513, "-abc", "abc-", ".abc", "abc.", "a b c", "abc/d", "ab$c", "é-abc", "abc\n"],
)
def test_invalid_collection_names(client, name):
    with pytest.raises(InvalidArgumentError, match="name"):
        client.create_collection(name, embedding_function=None)
    assert client.count_collections() == 0


def test_collection_name_must_be_str(client):
    with pytest.raises(InvalidArgumentError, match="name: expected str, got int"):
        client.create_collection(123, embedding_function=None)


@pytest.mark.parametrize(
    "metadata, match",
    [
        ({"hnsw:space": "manhattan"}, "hnsw:space"),
        ({"hnsw:M": 0}, "hnsw:M"),
        ({"hnsw:M": "16"}, "hnsw:M"),
        ({"hnsw:bogus": 1}, "hnsw:bogus"),
        ({"tags": []}, r"metadata\['tags'\]: a list value must not be empty"),
        ("l2", "metadata: expected a dict"),
    ],
)
def test_bad_collection_metadata(client, metadata, match):
    with pytest.raises(InvalidArgumentError, match=match):
        client.create_collection("books", metadata=metadata, embedding_function=None)
    assert client.count_collections() == 0


def test_closed_client_refuses_work(tmp_path):
    c = vectordb.PersistentClient(str(tmp_path))
    c.create_collection("books", embedding_function=None)
    c.close()
    with pytest.raises(VectorDBError, match="closed"):
        c.list_collections()


def test_persistent_client_path_must_be_a_folder(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(InvalidArgumentError, match="not a folder"):
        vectordb.PersistentClient(str(f))


def test_get_collection_name_must_be_str(client):
    with pytest.raises(InvalidArgumentError, match="name: expected str, got int"):
        client.get_collection(123)
