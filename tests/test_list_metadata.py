"""Metadata values that are lists (as Chroma 1.x): stored, returned, merged, persisted, filtered.

A list holds items of one type (str, int, float or bool) and is not empty. ``$contains``
/ ``$not_contains`` on a key ask whether its list holds a value; as in Chroma, a list
equals no scalar (``$eq`` / ``$in`` never match it, ``$ne`` / ``$nin`` always do) and
``$contains`` never matches a scalar value. A store made before list values existed
(no ``metadata_lists`` table) still opens, for writing and read-only.
"""

from __future__ import annotations

import os

import duckdb
import pytest

import vectordb
from conftest import snapshot
from vectordb.errors import InvalidArgumentError
from vectordb.persistence.store import DB_FILE

RECORDS = {
    "a": {"tags": ["x", "y"], "n": 1},
    "b": {"tags": ["y"]},
    "c": {"tags": "x"},
    "d": {"nums": [1, 2, 3]},
    "e": {"nums": [2.5, 4.0]},
    "f": {"flags": [True]},
    "g": {"tags": "xyz"},
    "h": None,
}


@pytest.fixture
def tagged(collection):
    collection.add(ids=list(RECORDS), embeddings=[[float(i), 1.0] for i in range(len(RECORDS))],
                   metadatas=list(RECORDS.values()))
    return collection


def ids(col, where) -> list:
    return col.get(where=where, include=[])["ids"]


def test_lists_are_stored_and_returned(tagged):
    got = tagged.get(include=["metadatas"])
    assert dict(zip(got["ids"], got["metadatas"])) == RECORDS
    assert type(tagged.get(ids="d")["metadatas"][0]["nums"][0]) is int
    assert type(tagged.get(ids="e")["metadatas"][0]["nums"][0]) is float


@pytest.mark.parametrize(
    "where, expected",
    [
        ({"tags": {"$contains": "x"}}, ["a"]),  # "c" holds the scalar "x": not a list
        ({"tags": {"$contains": "y"}}, ["a", "b"]),  # "g" holds "xyz": not a substring match
        ({"tags": {"$not_contains": "x"}}, ["b", "c", "d", "e", "f", "g", "h"]),
        ({"nums": {"$contains": 2}}, ["d"]),
        ({"nums": {"$contains": 4}}, ["e"]),  # numbers compare numerically, as everywhere in vectordb
        ({"nums": {"$contains": 2.5}}, ["e"]),
        ({"flags": {"$contains": True}}, ["f"]),
        ({"flags": {"$contains": 1}}, []),  # a bool is not a number
        ({"nums": {"$contains": "2"}}, []),
        ({"missing": {"$contains": "x"}}, []),
        ({"missing": {"$not_contains": "x"}}, list(RECORDS)),
        ({"tags": "x"}, ["c"]),  # a list equals no scalar
        ({"tags": {"$ne": "x"}}, ["a", "b", "d", "e", "f", "g", "h"]),
        ({"tags": {"$in": ["y", "x"]}}, ["c"]),
        ({"tags": {"$nin": ["y"]}}, list(RECORDS)),
        ({"nums": {"$gt": 0}}, []),
        ({"$and": [{"tags": {"$contains": "y"}}, {"n": 1}]}, ["a"]),
        ({"$or": [{"tags": {"$contains": "x"}}, {"nums": {"$contains": 3}}]}, ["a", "d"]),
    ],
)
def test_contains_and_scalars_on_list_keys(tagged, where, expected):
    """The expected ids are Chroma 1.5.9's answers (checked with the oracle), except ``$contains 4``
    on a float list, where vectordb compares numbers numerically (Chroma: no match)."""
    assert ids(tagged, where) == expected
    got = tagged.query(query_embeddings=[0.0, 1.0], n_results=10, where=where, include=[])
    assert sorted(got["ids"][0]) == sorted(expected)


def test_contains_in_delete_and_with_documents(tagged):
    tagged.update(ids=["a", "b"], embeddings=[[0.0, 1.0], [1.0, 1.0]], documents=["red fox", "blue bird"])
    assert tagged.get(where={"tags": {"$contains": "y"}}, where_document={"$contains": "fox"})["ids"] == ["a"]
    assert tagged.delete(where={"tags": {"$contains": "y"}}) == {"deleted": 2}
    assert ids(tagged, {"tags": {"$contains": "y"}}) == []
    assert tagged.count() == len(RECORDS) - 2


def test_lists_merge_like_other_values(tagged):
    tagged.update(ids="a", metadatas={"tags": ["z"], "extra": [0.5]})
    assert tagged.get(ids="a")["metadatas"] == [{"tags": ["z"], "n": 1, "extra": [0.5]}]
    tagged.upsert(ids="c", embeddings=[0.0, 0.0], metadatas={"tags": ["x"]})  # a scalar becomes a list
    tagged.update(ids="a", metadatas={"tags": None})
    assert tagged.get(ids="a")["metadatas"] == [{"n": 1, "extra": [0.5]}]
    assert ids(tagged, {"tags": {"$contains": "x"}}) == ["c"]
    assert ids(tagged, {"tags": {"$contains": "z"}}) == []
    assert ids(tagged, {"tags": "x"}) == []


@pytest.mark.parametrize(
    "value, message",
    [
        ([], r"metadatas\[0\]\['k'\]: a list value must not be empty"),
        ([1, 2.5], r"all items of a list value must be of one type, got float, int"),
        ([True, 1], r"all items of a list value must be of one type, got bool, int"),
        (["a", None], r"metadatas\[0\]\['k'\]\[1\]: list items must be str, int, float or bool, got NoneType"),
        ([["a"]], r"\['k'\]\[0\]: list items must be str, int, float or bool, got list"),
        ([float("nan")], r"\['k'\]\[0\]: NaN or infinite float"),
        ((1, 2), r"expected str, int, float, bool or a list of one of them, got tuple"),
    ],
)
def test_bad_lists_are_refused_and_change_nothing(tagged, value, message):
    before = snapshot(tagged)
    with pytest.raises(InvalidArgumentError, match=message):
        tagged.add(ids=["new"], embeddings=[[1.0, 1.0]], metadatas=[{"k": value}])
    with pytest.raises(InvalidArgumentError, match=message):
        tagged.update(ids=["a"], metadatas=[{"k": value}])
    assert snapshot(tagged) == before


@pytest.mark.parametrize("operand", [["x"], None, {"a": 1}])
def test_contains_takes_one_scalar(tagged, operand):
    with pytest.raises(InvalidArgumentError, match=r"where\['tags'\]\['\$contains'\]"):
        tagged.get(where={"tags": {"$contains": operand}})


def test_lists_persist_and_check_clean(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("lists", embedding_function=None)
        col.add(ids=list(RECORDS), embeddings=[[float(i)] for i in range(len(RECORDS))], metadatas=list(RECORDS.values()))
        col.add(ids=["dup"], embeddings=[[9.0]], metadatas=[{"tags": ["x", "x"]}])  # repeats are kept as given
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("lists")
        assert col.get(ids="dup")["metadatas"] == [{"tags": ["x", "x"]}]
        assert ids(col, {"tags": {"$contains": "x"}}) == ["a", "dup"]
        assert client.check().ok
        col.delete(ids="dup")
        assert client.check().ok


def test_check_finds_and_repairs_damaged_list_rows(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("lists", embedding_function=None)
        col.add(ids=["a", "b"], embeddings=[[1.0], [2.0]], metadatas=[{"tags": ["x", "y"]}, {"tags": ["y"]}])
    con = duckdb.connect(os.path.join(path, DB_FILE))
    con.execute("DELETE FROM metadata_lists WHERE str_value = 'y'")
    con.close()
    with vectordb.PersistentClient(path) as client:
        report = client.check()
        assert not report.ok and "metadata rows disagree" in str(report)
        assert client.check(repair=True).problems
        assert client.check().ok
        assert ids(client.get_collection("lists"), {"tags": {"$contains": "y"}}) == ["a", "b"]


def _store_without_lists_table(path: str) -> None:
    """A store as vectordb wrote it before list values: the same schema without ``metadata_lists``."""
    with vectordb.PersistentClient(path) as client:
        client.create_collection("old", embedding_function=None).add(
            ids=["a", "b"], embeddings=[[1.0], [2.0]], metadatas=[{"k": "x"}, {"k": "y"}])
    con = duckdb.connect(os.path.join(path, DB_FILE))
    con.execute("DROP TABLE metadata_lists")
    con.close()


def test_a_store_made_before_lists_opens_read_only(tmp_path):
    path = str(tmp_path / "db")
    _store_without_lists_table(path)
    with vectordb.PersistentClient(path, read_only=True) as client:
        col = client.get_collection("old")
        assert ids(col, {"k": {"$contains": "x"}}) == []
        assert ids(col, {"k": {"$not_contains": "x"}}) == ["a", "b"]
        assert ids(col, {"k": "x"}) == ["a"]
        assert client.check().ok
    con = duckdb.connect(os.path.join(path, DB_FILE), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    con.close()
    assert "metadata_lists" not in tables  # a read-only open wrote nothing


def test_a_store_made_before_lists_gets_the_table_when_opened_for_writing(tmp_path):
    path = str(tmp_path / "db")
    _store_without_lists_table(path)
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("old")
        col.add(ids="c", embeddings=[3.0], metadatas={"k": ["x", "z"]})
        assert ids(col, {"k": {"$contains": "x"}}) == ["c"]
        assert ids(col, {"k": "x"}) == ["a"]
    with vectordb.PersistentClient(path, read_only=True) as client:
        assert ids(client.get_collection("old"), {"k": {"$contains": "z"}}) == ["c"]
        assert client.check().ok


def test_collection_metadata_may_hold_lists(client):
    col = client.create_collection("listed", metadata={"owners": ["ann", "bob"]}, embedding_function=None)
    assert client.get_collection("listed").metadata == {"owners": ["ann", "bob"]}
    col.modify(metadata={"owners": ["cy"]})
    assert client.get_collection("listed").metadata == {"owners": ["cy"]}
