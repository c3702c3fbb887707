"""Uniform metadata batches take a column-at-a-time path; it must agree with the per-record one.

A bulk load usually gives every record the same keys with one value type per key.
Validation and the typed metadata rows handle such a batch a key at a time. These tests
compare that path with the per-record path on the same data, and check that bad values
inside a uniform batch are still reported by position.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vectordb import validation as v
from vectordb.errors import InvalidArgumentError
from vectordb.persistence import encoding

PLAIN_VALUES = st.one_of(
    st.text(max_size=8),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)
KEYS = st.text(alphabet="abcxyz_", min_size=1, max_size=4)


@st.composite
def uniform_batches(draw):
    """Batches whose dicts share keys; values per key of one type, or mixed when drawn so."""
    keys = draw(st.lists(KEYS, min_size=1, max_size=4, unique=True))
    n = draw(st.integers(min_value=1, max_value=12))
    columns = {}
    for key in keys:
        kind = draw(st.sampled_from(["str", "bool", "int", "float", "mixed"]))
        strategy = {
            "str": st.text(max_size=8),
            "bool": st.booleans(),
            "int": st.integers(min_value=-(2**63), max_value=2**63 - 1),
            "float": st.floats(allow_nan=False, allow_infinity=False),
            "mixed": PLAIN_VALUES,
        }[kind]
        columns[key] = draw(st.lists(strategy, min_size=n, max_size=n))
    return [{key: columns[key][i] for key in keys} for i in range(n)]


def _per_record(batch):
    return [v.validate_metadata(m, f"metadatas[{i}]") for i, m in enumerate(batch)]


def _rows(groups):
    """The metadata rows ``(label, key, column, value)`` that groups describe."""
    out = set()
    for column, key, columns in groups:
        keys = [key] * len(columns["label"]) if key is not None else columns["key"]
        for label, k, value in zip(columns["label"].tolist(), keys, columns["value"].tolist()):
            out.add((label, k, column, value))
    return out


def _expected_rows(labels, batch):
    return {
        (label, key, encoding.value_column(value), value)
        for label, meta in zip(labels.tolist(), batch)
        for key, value in (meta or {}).items()
    }


@settings(max_examples=200, deadline=None)
@given(uniform_batches())
def test_uniform_validation_equals_per_record(batch):
    assert v.validate_metadatas(batch, len(batch)) == _per_record(batch)


@settings(max_examples=200, deadline=None)
@given(uniform_batches())
def test_metadata_rows_equal_per_record_rows(batch):
    labels = np.arange(100, 100 + len(batch), dtype=np.int64)
    assert _rows(encoding.metadata_columns(labels, batch)) == _expected_rows(labels, batch)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.dictionaries(KEYS, PLAIN_VALUES, max_size=3)), min_size=1, max_size=8))
def test_metadata_rows_of_ragged_batches(batch):
    labels = np.arange(len(batch), dtype=np.int64)
    assert _rows(encoding.metadata_columns(labels, batch)) == _expected_rows(labels, batch)


def test_uniform_batch_is_copied_not_kept():
    batch = [{"a": 1}, {"a": 2}]
    checked = v.validate_metadatas(batch, 2)
    batch[0]["a"] = 99
    assert checked == [{"a": 1}, {"a": 2}]


@pytest.mark.parametrize(
    "bad, message",
    [
        (float("nan"), "metadatas[3]['score']: NaN or infinite float"),
        (math.inf, "metadatas[3]['score']: NaN or infinite float"),
        (2**63, "metadatas[3]['score']: int 9223372036854775808 is outside the 64-bit range"),
        ([1, 2.5], "metadatas[3]['score']: all items of a list value must be of one type, got float, int"),
        ({"a": 1}, "metadatas[3]['score']: expected str, int, float, bool or a list of one of them, got dict"),
    ],
)
def test_bad_value_in_uniform_batch_is_named(bad, message):
    batch = [{"score": 0.5} for _ in range(6)]
    if isinstance(bad, int):
        batch = [{"score": i} for i in range(6)]
    batch[3] = {"score": bad}
    with pytest.raises(InvalidArgumentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        v.validate_metadatas(batch, len(batch))


def test_non_ascii_and_numpy_values_take_the_checked_path():
    batch = [{"name": "café", "n": np.int64(3)}, {"name": "naïve", "n": np.int64(4)}]
    assert v.validate_metadatas(batch, 2) == [{"name": "café", "n": 3}, {"name": "naïve", "n": 4}]
    assert all(type(m["n"]) is int for m in v.validate_metadatas(batch, 2))
    with pytest.raises(InvalidArgumentError, match="not valid Unicode"):
        v.validate_metadatas([{"name": "ok"}, {"name": "\ud800"}], 2)


def test_bulk_add_filters_like_per_record_adds(client):
    """The same records added as one uniform batch and one at a time answer every filter alike."""
    rng = np.random.default_rng(3)
    metas = [{"cat": int(c), "tag": t, "score": float(s), "flag": bool(c % 2)}
             for c, t, s in zip(rng.integers(0, 5, 60), rng.choice(["a", "b", "c"], 60), rng.random(60))]
    vectors = rng.random((60, 4)).astype(np.float32)
    bulk = client.create_collection("bulk", embedding_function=None)
    single = client.create_collection("single", embedding_function=None)
    bulk.add(ids=[f"r{i}" for i in range(60)], embeddings=vectors, metadatas=metas)
    for i in range(60):
        single.add(ids=f"r{i}", embeddings=vectors[i], metadatas=metas[i])
    for where in ({"cat": 3}, {"tag": "c"}, {"score": {"$gt": 0.5}}, {"flag": True},
                  {"$and": [{"cat": {"$in": [1, 2]}}, {"tag": {"$ne": "a"}}]}):
        assert sorted(bulk.get(where=where)["ids"]) == sorted(single.get(where=where)["ids"])
    assert bulk.get(include=["metadatas"])["metadatas"] == metas
    assert client.check().ok
