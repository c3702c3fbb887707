"""Bad input: a typed error whose message names the argument, position and value; nothing changes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import snapshot

from vectordb import errors
from vectordb.errors import (
    DuplicateIDError,
    InvalidArgumentError,
    InvalidDimensionError,
)


def _fill(col):
    col.add(
        ids=["a", "b"],
        embeddings=[[1.0, 2.0], [3.0, 4.0]],
        metadatas=[{"year": 2000}, {"year": 2001}],
        documents=["doc a", "doc b"],
    )
    return col


@pytest.fixture
def filled(collection):
    """Two records, in memory and on disk."""
    return _fill(collection)


@pytest.fixture
def filled_fast(memory_collection):
    """Two records in the module's shared in-memory client: for the big matrices (checks run before storage)."""
    return _fill(memory_collection)


GOOD = dict(ids=["x", "y"], embeddings=[[1.0, 1.0], [2.0, 2.0]])

BAD_WRITES = [
    # (kwargs, error, message pattern)
    (dict(ids=None, embeddings=[[1.0, 1.0]]), InvalidArgumentError, r"ids: required"),
    (dict(ids=[], embeddings=[[1.0, 1.0]]), InvalidArgumentError, r"ids: expected at least one id"),
    (dict(ids=["x", 5], embeddings=[[1.0, 1.0]] * 2), InvalidArgumentError, r"ids\[1\]: expected str, got int 5"),
    (dict(ids=["x", ""], embeddings=[[1.0, 1.0]] * 2), InvalidArgumentError, r"ids\[1\]: ids must be non-empty"),
    (dict(ids=7, embeddings=[[1.0, 1.0]]), InvalidArgumentError, r"ids: expected one item or a list, got int"),
    (dict(ids=["x", "x"], embeddings=[[1.0, 1.0]] * 2), DuplicateIDError, r"ids: repeated in one call: 'x'"),
    (
        dict(ids=["x", "y"], embeddings=[[1.0, 1.0]]),
        InvalidArgumentError,
        r"embeddings: expected 2 items \(one per id\), got 1",
    ),
    (
        dict(ids=["x"], embeddings=[[1.0, "2"]]),
        InvalidArgumentError,
        r"embeddings\[0\]\[1\]: expected a number, got str '2'",
    ),
    (
        dict(ids=["x"], embeddings=[["1", True]]),
        InvalidArgumentError,
        r"embeddings\[0\]\[0\]: expected a number, got str",
    ),
    (
        dict(ids=["x", "y"], embeddings=[[1.0, 1.0], [1.0]]),
        InvalidArgumentError,
        r"embeddings\[1\]: has 1 values, but embeddings\[0\] has 2",
    ),
    (
        dict(ids=["x", "y"], embeddings=[[1.0, 1.0], 3.0]),
        InvalidArgumentError,
        r"embeddings\[1\]: expected a list of floats, got float",
    ),
    (dict(ids=["x"], embeddings=[[float("nan"), 1.0]]), InvalidArgumentError, r"embeddings\[0\]\[0\]: NaN or infinite"),
    (
        dict(ids=["x"], embeddings=[[1.0, 1e39]]),
        InvalidArgumentError,
        r"embeddings\[0\]\[1\]: NaN or infinite value \(1e\+39\)",
    ),
    (
        dict(ids=["x"], embeddings=np.zeros((1, 2, 2))),
        InvalidArgumentError,
        r"embeddings: expected a 1-D or 2-D array, got 3-D",
    ),
    (dict(ids=["x"], embeddings=np.array([["a", "b"]])), InvalidArgumentError, r"embeddings: expected numbers"),
    (dict(ids=["x"], embeddings=[]), InvalidArgumentError, r"embeddings: expected a non-empty list"),
    (dict(ids=["x"], embeddings="1,2"), InvalidArgumentError, r"embeddings: expected .* got '1,2'"),
    (
        dict(ids=["x"], embeddings=[[]]),
        InvalidArgumentError,
        r"embeddings: expected at least one embedding of at least one dimension",
    ),
    (
        dict(ids=["x"], embeddings=[[1.0, 1.0, 1.0]]),
        InvalidDimensionError,
        r"embeddings: dimension 3 does not match the collection's dimension 2",
    ),
    (dict(GOOD, metadatas=[{"k": 1}]), InvalidArgumentError, r"metadatas: expected 2 items \(one per id\), got 1"),
    (
        dict(GOOD, metadatas=[{"k": 1}, {"year": [1, "a"]}]),
        InvalidArgumentError,
        r"metadatas\[1\]\['year'\]: all items of a list value must be of one type, got int, str",
    ),
    (
        dict(GOOD, metadatas=[{"k": 1}, {"k": {"a": 1}}]),
        InvalidArgumentError,
        r"metadatas\[1\]\['k'\]: expected str, int, float, bool or a list of one of them, got dict",
    ),
    (dict(GOOD, metadatas=[{"k": float("inf")}, {}]), InvalidArgumentError, r"metadatas\[0\]\['k'\]: NaN or infinite"),
    (
        dict(GOOD, metadatas=[{"k": 2**63}, {}]),
        InvalidArgumentError,
        r"metadatas\[0\]\['k'\]: int 9223372036854775808 is outside the 64-bit range",
    ),
    (
        dict(GOOD, metadatas=[{1: "a"}, {}]),
        InvalidArgumentError,
        r"metadatas\[0\]: keys must be non-empty strings, got 1",
    ),
    (dict(GOOD, metadatas=[{"": "a"}, {}]), InvalidArgumentError, r"metadatas\[0\]: keys must be non-empty strings"),
    (
        dict(GOOD, metadatas=[{"$gt": 1}, {}]),
        InvalidArgumentError,
        r"metadatas\[0\]: key '\$gt' may not start with '\$'",
    ),
    (dict(GOOD, metadatas=[{"k": 1}, "k=1"]), InvalidArgumentError, r"metadatas\[1\]: expected a dict, got str"),
    (dict(GOOD, metadatas="k=1"), InvalidArgumentError, r"metadatas: expected one item or a list, got str"),
    (dict(GOOD, documents=["one"]), InvalidArgumentError, r"documents: expected 2 items \(one per id\), got 1"),
    (dict(GOOD, documents=["one", 2]), InvalidArgumentError, r"documents\[1\]: expected str or None, got int"),
    (dict(GOOD, documents=b"bytes"), InvalidArgumentError, r"documents: expected one item or a list, got bytes"),
]


@pytest.mark.parametrize("method", ["add", "upsert", "update"])
@pytest.mark.parametrize("kwargs, error, match", BAD_WRITES)
def test_bad_write_raises_typed_error_and_changes_nothing(filled_fast, method, kwargs, error, match):
    before = snapshot(filled_fast)
    with pytest.raises(error, match=match) as info:
        getattr(filled_fast, method)(**kwargs)
    assert type(info.value) is error
    assert isinstance(info.value, ValueError)
    assert snapshot(filled_fast) == before


@pytest.mark.parametrize("kwargs, error, match", BAD_WRITES[5:7] + BAD_WRITES[18:21])
def test_bad_write_changes_nothing_on_disk_too(filled, kwargs, error, match):
    before = snapshot(filled)
    with pytest.raises(error, match=match):
        filled.upsert(**kwargs)
    assert snapshot(filled) == before


def test_metadata_none_value_refused_in_add_only(filled):
    before = snapshot(filled)
    with pytest.raises(
        InvalidArgumentError, match=r"metadatas\[0\]\['k'\]: expected str, int, float, bool or a list of one of them, got NoneType"
    ):
        filled.add(ids="x", embeddings=[1.0, 1.0], metadatas={"k": None})
    assert snapshot(filled) == before
    filled.update(ids="a", metadatas={"year": None})  # None means remove in update
    assert filled.get(ids="a")["metadatas"] == [None]


def test_error_names_position_in_long_list(filled):
    metas = [{"year": i} for i in range(5)]
    metas[3] = {"year": {2020}}
    with pytest.raises(InvalidArgumentError) as info:
        filled.add(ids=[f"n{i}" for i in range(5)], embeddings=[[0.0, 0.0]] * 5, metadatas=metas)
    assert str(info.value) == "metadatas[3]['year']: expected str, int, float, bool or a list of one of them, got set"


def test_numpy_metadata_values_accepted(filled):
    filled.add(ids="n", embeddings=[0.0, 0.0], metadatas={"i": np.int32(3), "f": np.float32(0.5), "b": np.bool_(True)})
    meta = filled.get(ids="n")["metadatas"][0]
    assert meta == {"i": 3, "f": 0.5, "b": True}
    assert type(meta["i"]) is int and type(meta["f"]) is float and type(meta["b"]) is bool


BAD_READS = [
    ("get", dict(ids=[1]), r"ids\[0\]: expected str, got int"),
    ("get", dict(limit=-1), r"limit: expected an int >= 0, got -1"),
    ("get", dict(offset="2"), r"offset: expected an int >= 0, got '2'"),
    ("get", dict(include=["distances"]), r"include: 'distances' is not one of"),
    ("get", dict(where={"k": {"$gt": "a"}}), r"where\['k'\]\['\$gt'\]: expected an int or float"),
    ("query", dict(query_embeddings=[1.0, 2.0], n_results=0), r"n_results: expected a positive int, got 0"),
    ("query", dict(query_embeddings=[[1.0, 2.0], [1.0]]), r"query_embeddings\[1\]: has 1 values"),
    ("query", dict(query_embeddings=[1.0, float("nan")]), r"query_embeddings\[0\]\[1\]: NaN"),
    ("query", dict(query_texts=[1]), r"query_texts: expected a string or a non-empty list of strings"),
    ("query", dict(query_texts=[]), r"query_texts"),
    ("query", dict(query_embeddings=[1.0, 2.0], include=["uris"]), r"include: 'uris' is not one of"),
    ("delete", dict(ids=[None]), r"ids\[0\]: expected str, got NoneType"),
    ("delete", dict(where_document={"$contains": 3}), r"where_document\['\$contains'\]: expected a string, got int"),
]


@pytest.mark.parametrize("method, kwargs, match", BAD_READS)
def test_bad_read_or_delete_arguments(filled_fast, method, kwargs, match):
    before = snapshot(filled_fast)
    with pytest.raises(InvalidArgumentError, match=match):
        getattr(filled_fast, method)(**kwargs)
    assert snapshot(filled_fast) == before


def test_query_dimension_error_is_typed(filled):
    with pytest.raises(
        InvalidDimensionError, match=r"query_embeddings: dimension 3 does not match the collection's dimension 2"
    ):
        filled.query(query_embeddings=[1.0, 2.0, 3.0])


def test_failing_embedding_function_changes_nothing(client):
    calls = {"n": 0}

    def ef(input):
        calls["n"] += 1
        if any("boom" in t for t in input):
            raise RuntimeError("model exploded")
        return [[1.0, float(len(t))] for t in input]

    col = client.create_collection("docs", embedding_function=ef)
    col.add(ids="a", documents="fine")
    before = snapshot(col)
    with pytest.raises(errors.EmbeddingError, match="model exploded"):
        col.add(ids=["b", "c"], documents=["ok", "boom"])
    with pytest.raises(errors.EmbeddingError, match="model exploded"):
        col.upsert(ids=["a"], documents=["boom"])
    assert snapshot(col) == before


def test_embedding_function_returning_garbage(client):
    col = client.create_collection("docs", embedding_function=lambda input: [[float("nan"), 1.0] for _ in input])
    with pytest.raises(errors.EmbeddingError, match="non-finite"):
        col.add(ids="a", documents="x")
    col2 = client.create_collection("docs2", embedding_function=lambda input: [[1.0]])
    with pytest.raises(errors.EmbeddingError, match="1 vectors for 2 inputs"):
        col2.add(ids=["a", "b"], documents=["x", "y"])
    assert col.count() == 0 and col2.count() == 0


def test_error_tree():
    for cls in (
        InvalidArgumentError,
        DuplicateIDError,
        InvalidDimensionError,
        errors.CollectionNotFoundError,
        errors.CollectionExistsError,
        errors.EmbeddingFunctionConflictError,
    ):
        assert issubclass(cls, errors.VectorDBError) and issubclass(cls, ValueError)
    assert issubclass(DuplicateIDError, InvalidArgumentError)
    assert issubclass(InvalidDimensionError, InvalidArgumentError)
    assert issubclass(errors.StoreLockedError, errors.VectorDBError)


BAD_TEXT = "bad \ud800 text"


@pytest.mark.parametrize(
    "method, kwargs, match",
    [
        ("add", dict(ids=BAD_TEXT, embeddings=[1.0, 1.0]), r"ids\[0\]: not valid Unicode text"),
        (
            "add",
            dict(ids=["x", "y"], embeddings=[[1.0, 1.0]] * 2, documents=["ok", BAD_TEXT]),
            r"documents\[1\]: not valid Unicode",
        ),
        ("upsert", dict(ids="a", metadatas={"k": BAD_TEXT}), r"metadatas\[0\]\['k'\]: not valid Unicode"),
        ("update", dict(ids="a", metadatas={BAD_TEXT: 1}), r"metadatas\[0\]: key .*: not valid Unicode"),
        ("get", dict(ids=["a", BAD_TEXT]), r"ids\[1\]: not valid Unicode"),
        ("get", dict(where={"k": BAD_TEXT}), r"where\['k'\]\['\$eq'\]: not valid Unicode"),
        ("get", dict(where={BAD_TEXT: "v"}), r"where: key .*: not valid Unicode"),
        ("delete", dict(where_document={"$contains": BAD_TEXT}), r"where_document\['\$contains'\]: not valid Unicode"),
    ],
)
def test_unencodable_strings_refused(filled_fast, method, kwargs, match):
    before = snapshot(filled_fast)
    with pytest.raises(InvalidArgumentError, match=match):
        getattr(filled_fast, method)(**kwargs)
    assert snapshot(filled_fast) == before
    filled_fast.add(ids="after", embeddings=[0.0, 0.0], documents="still works")
    assert filled_fast.get(ids="after")["documents"] == ["still works"]
