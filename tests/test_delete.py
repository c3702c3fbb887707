"""delete: by ids, by filters, both; refusing to delete everything."""

from __future__ import annotations

import pytest
from conftest import snapshot

from vectordb.errors import DuplicateIDError, InvalidArgumentError


@pytest.fixture
def filled(collection):
    collection.add(
        ids=["a", "b", "c", "d"],
        embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 2.0]],
        metadatas=[{"k": 1}, {"k": 2}, {"k": 1}, None],
        documents=["apple pie", "banana", "apple juice", "date"],
    )
    return collection


def test_delete_by_ids(filled):
    filled.delete(ids=["b", "d"])
    assert filled.get()["ids"] == ["a", "c"]
    assert filled.count() == 2


def test_delete_single_id(filled):
    filled.delete(ids="a")
    assert filled.get()["ids"] == ["b", "c", "d"]


def test_delete_missing_ids_is_quiet(filled):
    filled.delete(ids=["zzz"])
    assert filled.count() == 4


def test_delete_by_where(filled):
    filled.delete(where={"k": 1})
    assert filled.get()["ids"] == ["b", "d"]


def test_delete_by_where_document(filled):
    filled.delete(where_document={"$contains": "apple"})
    assert filled.get()["ids"] == ["b", "d"]


def test_delete_ids_and_where_must_both_hold(filled):
    filled.delete(ids=["a", "b"], where={"k": 1})
    assert filled.get()["ids"] == ["b", "c", "d"]


def test_deleted_records_leave_query_results(filled):
    filled.delete(ids="c")
    result = filled.query(query_embeddings=[1.0, 1.0], n_results=10)
    assert "c" not in result["ids"][0]
    assert sorted(result["ids"][0]) == ["a", "b", "d"]


def test_delete_then_readd_same_id(filled):
    filled.delete(ids="a")
    filled.add(ids="a", embeddings=[5.0, 5.0], documents="again")
    assert filled.get(ids="a", include=["embeddings", "documents"])["embeddings"].tolist() == [[5.0, 5.0]]
    assert filled.query(query_embeddings=[5.0, 5.0], n_results=1)["ids"] == [["a"]]
    assert filled.get()["ids"] == ["b", "c", "d", "a"]  # insertion order: a is new now


def test_delete_without_arguments_refused(filled):
    with pytest.raises(InvalidArgumentError, match="delet"):
        filled.delete()
    assert filled.count() == 4


@pytest.mark.parametrize("kwargs", [{"where": {}}, {"where_document": {}}, {"where": {}, "where_document": {}}])
def test_delete_with_empty_filters_refused(filled, kwargs):
    with pytest.raises(InvalidArgumentError):
        filled.delete(**kwargs)
    assert filled.count() == 4


def test_delete_repeated_id(filled):
    with pytest.raises(DuplicateIDError, match="'a'"):
        filled.delete(ids=["a", "b", "a"])
    assert filled.count() == 4


def test_delete_bad_filter_changes_nothing(filled):
    before = snapshot(filled)
    with pytest.raises(InvalidArgumentError, match=r"\$bogus"):
        filled.delete(where={"k": {"$bogus": 1}})
    assert snapshot(filled) == before
