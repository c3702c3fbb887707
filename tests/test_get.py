"""get: by ids in the order asked, by filters in insertion order, limit/offset, include."""

from __future__ import annotations

import numpy as np
import pytest

from vectordb.errors import InvalidArgumentError

IDS = [f"id{i}" for i in range(10)]


@pytest.fixture
def filled(collection):
    collection.add(
        ids=IDS,
        embeddings=np.arange(20, dtype=np.float32).reshape(10, 2),
        metadatas=[{"i": i, "even": i % 2 == 0} for i in range(10)],
        documents=[f"document number {i}" for i in range(10)],
    )
    return collection


def test_get_all_in_insertion_order(filled):
    got = filled.get()
    assert got["ids"] == IDS
    assert got["metadatas"] == [{"i": i, "even": i % 2 == 0} for i in range(10)]
    assert got["documents"] == [f"document number {i}" for i in range(10)]
    assert got["embeddings"] is None
    assert got["included"] == ["metadatas", "documents"]


def test_get_ids_in_order_asked(filled):
    got = filled.get(ids=["id7", "id2", "id5"], include=["embeddings", "documents"])
    assert got["ids"] == ["id7", "id2", "id5"]
    assert got["documents"] == ["document number 7", "document number 2", "document number 5"]
    assert got["embeddings"].tolist() == [[14.0, 15.0], [4.0, 5.0], [10.0, 11.0]]


def test_get_missing_ids_left_out(filled):
    assert filled.get(ids=["nope", "id3", "also-nope", "id1"])["ids"] == ["id3", "id1"]
    assert filled.get(ids=["nope"])["ids"] == []


def test_get_single_id(filled):
    got = filled.get(ids="id4")
    assert got["ids"] == ["id4"]
    assert got["metadatas"] == [{"i": 4, "even": True}]


def test_get_repeated_ids_once(filled):
    assert filled.get(ids=["id1", "id1", "id2"])["ids"] == ["id1", "id2"]


def test_get_ids_and_where(filled):
    got = filled.get(ids=["id9", "id4", "id6", "id1"], where={"even": True})
    assert got["ids"] == ["id4", "id6"]


def test_get_where(filled):
    assert filled.get(where={"i": {"$gte": 7}})["ids"] == ["id7", "id8", "id9"]
    assert filled.get(where_document={"$contains": "number 3"})["ids"] == ["id3"]


@pytest.mark.parametrize(
    "limit, offset, expected",
    [
        (3, None, IDS[:3]),
        (3, 2, IDS[2:5]),
        (None, 8, IDS[8:]),
        (100, 0, IDS),
        (0, None, []),
        (5, 20, []),
    ],
)
def test_get_limit_offset(filled, limit, offset, expected):
    assert filled.get(limit=limit, offset=offset)["ids"] == expected


def test_get_limit_offset_with_where(filled):
    assert filled.get(where={"even": True}, limit=2, offset=1)["ids"] == ["id2", "id4"]


def test_get_limit_offset_with_ids(filled):
    assert filled.get(ids=["id9", "id8", "id7", "id6"], limit=2, offset=1)["ids"] == ["id8", "id7"]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_get_bad_limit_offset(filled, bad):
    with pytest.raises(InvalidArgumentError, match="limit"):
        filled.get(limit=bad)
    with pytest.raises(InvalidArgumentError, match="offset"):
        filled.get(offset=bad)


@pytest.mark.parametrize(
    "include",
    [[], ["embeddings"], ["documents"], ["metadatas"], ["embeddings", "metadatas", "documents"]],
)
def test_get_include(filled, include):
    got = filled.get(ids=["id1"], include=include)
    assert got["ids"] == ["id1"]
    assert got["included"] == include
    expected = {"embeddings": [[2.0, 3.0]], "metadatas": [{"i": 1, "even": False}], "documents": ["document number 1"]}
    for field, value in expected.items():
        if field not in include:
            assert got[field] is None
        else:
            assert (got[field].tolist() if field == "embeddings" else got[field]) == value


@pytest.mark.parametrize("include", [["distances"], ["uris"], "everything", [1]])
def test_get_bad_include(filled, include):
    with pytest.raises(InvalidArgumentError, match="include"):
        filled.get(include=include)


def test_get_result_keys(filled):
    assert set(filled.get()) == {"ids", "embeddings", "metadatas", "documents", "included", "uris", "data"}


def test_get_empty_collection(collection):
    got = collection.get(include=["embeddings", "metadatas", "documents"])
    assert got["ids"] == [] and got["metadatas"] == [] and got["documents"] == []
    assert got["embeddings"].shape == (0,) and got["embeddings"].dtype == np.float64  # as Chroma 1.x
    assert collection.get(ids=["a"])["ids"] == []
    assert collection.get(where={"k": 1})["ids"] == []


def test_get_float32_roundtrip(collection):
    vector = np.array([0.1, 1 / 3, -2.5e-8], dtype=np.float32)
    collection.add(ids="a", embeddings=vector)
    np.testing.assert_array_equal(np.array(collection.get(include=["embeddings"])["embeddings"][0], np.float32), vector)


def test_get_unicode_and_odd_strings(collection):
    doc = "naïve café — 日本語 \n\t 'quotes' \"and\" \\ backslash"
    meta = {"ключ": "значение", "quote'key": "x'; DROP TABLE records; --"}
    collection.add(ids=["ü-id 1"], embeddings=[[1.0]], documents=[doc], metadatas=[meta])
    got = collection.get(ids="ü-id 1")
    assert got["documents"] == [doc]
    assert got["metadatas"] == [meta]
