"""add: one-or-many arguments, existing ids, dimensions, embedding with the collection's function."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import CountingEmbedding, snapshot, text_vector

from vectordb.errors import (
    DuplicateIDError,
    InvalidArgumentError,
    InvalidDimensionError,
)

ALL = ["embeddings", "metadatas", "documents"]


def test_add_and_get_back(collection):
    collection.add(
        ids=["a", "b"],
        embeddings=[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
        metadatas=[{"year": 2020, "score": 0.5, "ok": True, "tag": "x"}, {"year": 1999}],
        documents=["first", "second"],
    )
    got = collection.get(include=ALL)
    assert got["ids"] == ["a", "b"]
    assert got["embeddings"].tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert got["metadatas"] == [{"year": 2020, "score": 0.5, "ok": True, "tag": "x"}, {"year": 1999}]
    assert got["documents"] == ["first", "second"]
    meta = got["metadatas"][0]
    assert type(meta["year"]) is int and type(meta["score"]) is float and type(meta["ok"]) is bool


def test_add_single_items(collection):
    collection.add(ids="a", embeddings=[1.0, 2.0], metadatas={"k": "v"}, documents="doc a")
    got = collection.get(include=ALL)
    embeddings = got.pop("embeddings")
    assert isinstance(embeddings, np.ndarray) and embeddings.dtype == np.float64 and embeddings.tolist() == [[1.0, 2.0]]
    assert got == {
        "ids": ["a"],
        "metadatas": [{"k": "v"}],
        "documents": ["doc a"],
        "included": ALL,
        "uris": None,
        "data": None,
    }


def test_add_numpy_2d_and_1d(collection):
    matrix = np.array([[0.5, 1.5], [2.5, 3.5]], dtype=np.float64)
    collection.add(ids=["a", "b"], embeddings=matrix)
    collection.add(ids="c", embeddings=np.array([7.0, 8.0], dtype=np.float32))
    collection.add(ids=["d"], embeddings=[np.array([9.0, 10.0])])
    collection.add(ids=("e",), embeddings=np.array([[1, 2]], dtype=np.int64))
    got = collection.get(include=["embeddings"])
    assert got["ids"] == ["a", "b", "c", "d", "e"]
    assert got["embeddings"].tolist() == [[0.5, 1.5], [2.5, 3.5], [7.0, 8.0], [9.0, 10.0], [1.0, 2.0]]


def test_add_without_metadata_or_documents(collection):
    collection.add(ids=["a", "b"], embeddings=[[1.0], [2.0]])
    got = collection.get()
    assert got["metadatas"] == [None, None]
    assert got["documents"] == [None, None]


def test_add_some_metadatas_none(collection):
    collection.add(ids=["a", "b"], embeddings=[[1.0], [2.0]], metadatas=[None, {"k": 1}])
    assert collection.get()["metadatas"] == [None, {"k": 1}]


def test_add_existing_id_is_left_unchanged_and_warned(collection, caplog):
    collection.add(ids="a", embeddings=[1.0, 1.0], documents="original", metadatas={"v": 1})
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        collection.add(ids=["a", "b"], embeddings=[[5.0, 5.0], [2.0, 2.0]], documents=["changed", "new"])
    got = collection.get(include=ALL)
    assert got["ids"] == ["a", "b"]
    assert got["documents"] == ["original", "new"]
    assert got["embeddings"][0].tolist() == [1.0, 1.0]
    assert got["metadatas"][0] == {"v": 1}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "already exist" in warnings[0] and warnings[0].endswith(": a")
    # the index still holds the original vector for a
    assert collection.query(query_embeddings=[1.0, 1.0], n_results=1)["ids"] == [["a"]]


def test_add_repeated_id_in_one_call(collection):
    with pytest.raises(DuplicateIDError, match="'a'"):
        collection.add(ids=["a", "b", "a"], embeddings=[[1.0], [2.0], [3.0]])
    assert collection.count() == 0


def test_add_first_embeddings_fix_dimension(collection):
    collection.add(ids="a", embeddings=[1.0, 2.0, 3.0])
    with pytest.raises(InvalidDimensionError, match="dimension 2 .*dimension 3"):
        collection.add(ids="b", embeddings=[1.0, 2.0])
    with pytest.raises(InvalidDimensionError):
        collection.upsert(ids="a", embeddings=[1.0, 2.0, 3.0, 4.0])
    with pytest.raises(InvalidDimensionError):
        collection.update(ids="a", embeddings=[1.0])
    assert collection.get(include=["embeddings"])["embeddings"].tolist() == [[1.0, 2.0, 3.0]]


def test_dimension_error_is_an_invalid_argument_and_value_error(collection):
    collection.add(ids="a", embeddings=[1.0, 2.0])
    with pytest.raises(ValueError):
        collection.add(ids="b", embeddings=[1.0])
    with pytest.raises(InvalidArgumentError):
        collection.add(ids="b", embeddings=[1.0])


def test_dimension_fixed_by_first_add_on_another_handle(client):
    col = client.create_collection("books", embedding_function=None)
    other = client.get_collection("books")
    other.add(ids="a", embeddings=[1.0, 2.0])
    with pytest.raises(InvalidDimensionError):
        col.add(ids="b", embeddings=[1.0, 2.0, 3.0])
    assert col.count() == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_add_nan_inf_refused(collection, bad):
    with pytest.raises(InvalidArgumentError, match=r"embeddings\[1\]\[0\].*(NaN|inf)"):
        collection.add(ids=["a", "b"], embeddings=[[1.0, 2.0], [bad, 2.0]])
    with pytest.raises(InvalidArgumentError, match="NaN or infinite"):
        collection.add(ids=["a"], embeddings=np.array([[1.0, bad]]))
    assert collection.count() == 0


def test_add_documents_with_function(client, counting_ef):
    col = client.create_collection("docs", embedding_function=counting_ef)
    col.add(ids=["a", "b"], documents=["hello world", "bye"])
    assert sorted(counting_ef.embedded) == ["bye", "hello world"]
    got = col.get(include=["embeddings", "documents"])
    assert got["documents"] == ["hello world", "bye"]
    np.testing.assert_allclose(got["embeddings"], [text_vector("hello world"), text_vector("bye")], rtol=1e-6)
    assert col.dimension == 4


def test_add_same_document_twice_embeds_once(client, counting_ef):
    col = client.create_collection("docs", embedding_function=counting_ef)
    col.add(ids=["a", "b"], documents=["same", "same"])
    assert counting_ef.embedded == ["same"]
    got = col.get(include=["embeddings"])
    assert got["embeddings"][0].tolist() == got["embeddings"][1].tolist()


def test_add_explicit_embeddings_skip_the_function(client, counting_ef):
    col = client.create_collection("docs", embedding_function=counting_ef)
    col.add(ids="a", documents="text", embeddings=[1.0, 2.0, 3.0, 4.0])
    assert counting_ef.calls == []
    assert col.get(include=["embeddings"])["embeddings"].tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_add_documents_without_function_refused(collection):
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        collection.add(ids="a", documents="text")
    assert collection.count() == 0


def test_add_needs_embeddings_or_documents(collection):
    with pytest.raises(InvalidArgumentError, match="embeddings or documents"):
        collection.add(ids="a", metadatas={"k": 1})
    assert collection.count() == 0


def test_function_output_with_wrong_dimension_refused(client):
    state = {"dim": 3}

    def ef(input):
        return [[1.0] * state["dim"] for _ in input]

    col = client.create_collection("docs", embedding_function=ef)
    col.add(ids="a", documents="x")
    state["dim"] = 5
    with pytest.raises(InvalidDimensionError, match="dimension 5"):
        col.add(ids="b", documents="y")
    assert col.get()["ids"] == ["a"]


def test_large_batch_keeps_order(collection):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 8)).astype(np.float32)
    ids = [f"r{i}" for i in rng.permutation(500)]
    collection.add(ids=ids, embeddings=vectors)
    got = collection.get(include=["embeddings"])
    assert got["ids"] == ids
    np.testing.assert_array_equal(np.array(got["embeddings"], dtype=np.float32), vectors)


def test_failed_add_changes_nothing(collection):
    collection.add(ids=["a"], embeddings=[[1.0, 2.0]], metadatas=[{"k": 1}], documents=["d"])
    before = snapshot(collection)
    with pytest.raises(InvalidArgumentError):
        collection.add(ids=["b", "c"], embeddings=[[1.0, 2.0], [3.0, 4.0]], metadatas=[{"k": 1}, {"k": [1, "x"]}])
    assert snapshot(collection) == before


def test_counting_embedding_is_deterministic():
    ef = CountingEmbedding()
    assert ef(["x"]) == ef(["x"])
    assert ef(["x"]) != ef(["y"])
