"""MetadataIndex: each operator, and a property test that it answers exactly as the SQL path does."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vectordb.filters import compile_where
from vectordb.index.metadata import EXACT, MAX_KEYS, MetadataIndex

RECORDS = [
    {"year": 2019, "genre": "sf", "score": 4.5, "new": True},
    {"year": 2021, "genre": "crime", "score": 3.0, "new": False},
    {"year": 2020, "genre": "sf", "score": 5},
    {"genre": "poetry", "year": 2020.5},
    None,
    {"flag": 1, "year": "2020"},
    {"flag": True},
]


@pytest.fixture
def index():
    idx = MetadataIndex()
    idx.put(np.arange(len(RECORDS)), RECORDS)
    return idx


@pytest.mark.parametrize(
    "where, expected",
    [
        ({"genre": "sf"}, [0, 2]),
        ({"genre": {"$eq": "sf"}}, [0, 2]),
        ({"genre": {"$ne": "sf"}}, [1, 3, 4, 5, 6]),
        ({"year": {"$gt": 2020}}, [1, 3]),
        ({"year": {"$gte": 2020}}, [1, 2, 3]),
        ({"year": {"$lt": 2020.5}}, [0, 2]),
        ({"year": {"$lte": 2020.5}}, [0, 2, 3]),
        ({"year": 2020}, [2]),
        ({"year": "2020"}, [5]),
        ({"score": 3}, [1]),
        ({"score": 5.0}, [2]),
        ({"flag": True}, [6]),
        ({"flag": 1}, [5]),
        ({"new": {"$ne": True}}, [1, 2, 3, 4, 5, 6]),
        ({"genre": {"$in": ["sf", "poetry", "absent"]}}, [0, 2, 3]),
        ({"genre": {"$nin": ["sf", "poetry"]}}, [1, 4, 5, 6]),
        ({"year": {"$in": [2019, 2020.5]}}, [0, 3]),
        ({"unknown": 1}, []),
        ({"unknown": {"$ne": 1}}, [0, 1, 2, 3, 4, 5, 6]),
        ({"genre": "sf", "year": 2019}, [0]),
        ({"$and": [{"genre": "sf"}, {"score": {"$gt": 4.6}}]}, [2]),
        ({"$or": [{"genre": "crime"}, {"flag": {"$in": [True]}}]}, [1, 6]),
        ({"$or": [{"$and": [{"genre": "sf"}, {"new": True}]}, {"year": "2020"}], "flag": {"$nin": [True]}}, [0, 5]),
    ],
)
def test_operators(index, where, expected):
    compile_where(where, "x")
    assert index.evaluate(where).tolist() == expected


def test_put_replaces_and_drop_forgets(index):
    index.put([0, 100], [{"genre": "crime"}, {"genre": "sf", "year": 2019}])
    assert index.evaluate({"genre": "sf"}).tolist() == [2, 100]
    assert index.evaluate({"year": 2019}).tolist() == [100]
    assert index.evaluate({"new": {"$ne": False}}).tolist() == [0, 2, 3, 4, 5, 6, 100]
    index.drop([2, 100, 10_000])
    assert index.evaluate({"genre": "sf"}).tolist() == []
    assert index.evaluate({"genre": {"$ne": "x"}}).tolist() == [0, 1, 3, 4, 5, 6]


def test_large_ints_go_to_sql():
    idx = MetadataIndex()
    idx.put([0, 1], [{"n": 1}, {"m": EXACT + 1}])
    assert idx.evaluate({"n": EXACT}).tolist() == []
    assert idx.evaluate({"n": EXACT + 1}) is None
    assert idx.evaluate({"n": {"$in": [1, -EXACT - 1]}}) is None
    assert idx.evaluate({"m": 1.5}) is None
    assert idx.evaluate({"m": {"$ne": "s"}}).tolist() == [0, 1]


def test_too_many_keys_gives_up():
    idx = MetadataIndex()
    idx.put([0], [{f"k{i}": i for i in range(MAX_KEYS + 1)}])
    assert idx.evaluate({"k1": 1}) is None


# -- the property test: the index against the store's SQL ------------------------------

KEYS = ["a", "b", "c"]
NUMBERS = [-2, -1, 0, 1, 2, 3, -1.5, -0.0, 1.0, 2.0, 2.5, 3.0, 1e300]
BIG = [EXACT, EXACT + 1, -EXACT - 1, 2**63 - 1]
STRINGS = ["", "x", "X", "xy", "1", "é", "a\x00b"]
number = st.sampled_from(NUMBERS + list(range(-3, 4)) * 2 + BIG)  # big ints: 1 in 8
value = st.one_of(number, st.booleans(), st.sampled_from(STRINGS))
metadata = st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), value, max_size=3))
merge = st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), value), min_size=1, max_size=3)


def _condition() -> st.SearchStrategy:
    lists = st.one_of(*(st.lists(s, min_size=1, max_size=3) for s in (number, st.booleans(), st.sampled_from(STRINGS))))
    return st.one_of(
        value,
        st.tuples(st.sampled_from(["$eq", "$ne"]), value).map(lambda t: {t[0]: t[1]}),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), number).map(lambda t: {t[0]: t[1]}),
        st.tuples(st.sampled_from(["$in", "$nin"]), lists).map(lambda t: {t[0]: t[1]}),
    )


leaf = st.dictionaries(st.sampled_from(KEYS), _condition(), min_size=1, max_size=2)
where_tree = st.recursive(
    leaf,
    lambda inner: st.tuples(st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=2, max_size=3)).map(
        lambda t: {t[0]: t[1]}
    ),
    max_leaves=6,
)
records = st.lists(st.tuples(st.integers(0, 11), metadata), min_size=4, max_size=12)
operation = st.one_of(
    st.tuples(st.just("add"), records),
    st.tuples(st.just("upsert"), st.lists(st.tuples(st.integers(0, 11), metadata), min_size=1, max_size=4)),
    st.tuples(st.just("update"), st.lists(st.tuples(st.integers(0, 11), merge), min_size=1, max_size=4)),
    st.tuples(st.just("delete"), st.lists(st.integers(0, 11), min_size=1, max_size=4)),
)
_names = itertools.count()


def _has_big(tree) -> bool:
    if isinstance(tree, dict):
        return any(_has_big(x) for x in tree.values())
    if isinstance(tree, (list, tuple)):
        return any(_has_big(x) for x in tree)
    return isinstance(tree, int) and not isinstance(tree, bool) and abs(tree) > EXACT


def _apply(col, idx: MetadataIndex, op: str, items) -> None:
    store = col._backend._store
    if op == "delete":
        ids = sorted({f"r{i}" for i in items})
        labels = np.fromiter(store.labels_of(col.id, ids).values(), dtype=np.int64)
        col.delete(ids=ids)
        idx.drop(labels)
        return
    by_id = {f"r{i}": meta for i, meta in items}
    ids = list(by_id)
    getattr(col, op)(ids=ids, embeddings=[[1.0, 0.0]] * len(ids), metadatas=list(by_id.values()))
    got = col.get(ids=ids, include=["metadatas"])
    labels = store.labels_of(col.id, got["ids"])
    idx.put([labels[i] for i in got["ids"]], got["metadatas"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=records, ops=st.lists(operation, max_size=4), wheres=st.lists(where_tree, min_size=1, max_size=6))
def test_matches_sql(shared_memory_client, first, ops, wheres):
    ops = [("add", first), *ops]
    col = shared_memory_client.create_collection(f"mi{next(_names)}", embedding_function=None)
    try:
        idx = MetadataIndex.load(col._backend._store.metadata_columns(col.id), 0)
        for op, items in ops:
            _apply(col, idx, op, items)
        store = col._backend._store
        loaded = MetadataIndex.load(store.metadata_columns(col.id), col._backend._row(col.id, col.name).next_label)
        stored_big = _has_big(col.get(include=["metadatas"])["metadatas"]) or _has_big([x for _, i in ops for x in i])
        for where in wheres:
            expected = store.select_labels(col.id, compile_where(where, col.id)).tolist()
            for candidate in (idx, loaded):
                got = candidate.evaluate(where)
                if got is None:
                    assert _has_big(where) or stored_big, where
                else:
                    assert got.dtype == np.int64 and got.tolist() == expected, where
    finally:
        shared_memory_client.delete_collection(col.name)
