"""MetadataIndex: each operator on a parsed tree, replacement and deletion, and where it gives up.

That it answers exactly as the SQL path does is the property test in test_filter_equivalence.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from vectordb.filters import parse_where, parse_where_document
from vectordb.filters.metadata_index import EXACT, MAX_KEYS, MetadataIndex

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
    assert index.evaluate(parse_where(where)).tolist() == expected


def test_put_replaces_and_drop_forgets(index):
    index.put([0, 100], [{"genre": "crime"}, {"genre": "sf", "year": 2019}])
    assert index.evaluate(parse_where({"genre": "sf"})).tolist() == [2, 100]
    assert index.evaluate(parse_where({"year": 2019})).tolist() == [100]
    assert index.evaluate(parse_where({"new": {"$ne": False}})).tolist() == [0, 2, 3, 4, 5, 6, 100]
    index.drop([2, 100, 10_000])
    assert index.evaluate(parse_where({"genre": "sf"})).tolist() == []
    assert index.evaluate(parse_where({"genre": {"$ne": "x"}})).tolist() == [0, 1, 3, 4, 5, 6]


def test_large_ints_go_to_sql():
    idx = MetadataIndex()
    idx.put([0, 1], [{"n": 1}, {"m": EXACT + 1}])
    assert idx.evaluate(parse_where({"n": EXACT})).tolist() == []
    assert idx.evaluate(parse_where({"n": EXACT + 1})) is None
    assert idx.evaluate(parse_where({"n": {"$in": [1, -EXACT - 1]}})) is None
    assert idx.evaluate(parse_where({"m": 1.5})) is None
    assert idx.evaluate(parse_where({"m": {"$ne": "s"}})).tolist() == [0, 1]


def test_too_many_keys_gives_up():
    idx = MetadataIndex()
    idx.put([0], [{f"k{i}": i for i in range(MAX_KEYS + 1)}])
    assert idx.evaluate(parse_where({"k1": 1})) is None


def test_document_conditions_go_to_sql(index):
    assert index.evaluate(parse_where_document({"$contains": "x"})) is None
