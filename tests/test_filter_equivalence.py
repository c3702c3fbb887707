"""The two interpreters of a parsed filter agree: MetadataIndex.evaluate and the store's SQL.

One tree from :func:`parse_where` goes to both :meth:`MetadataIndex.evaluate` and
:func:`to_sql` run by a real DuckDB store; on random metadata (str / int / float / bool
values, lists of one of them with repeats, missing keys, ints beyond 2**53, -0.0, huge
floats) after random writes and deletes, and random filters (every operator,
``$contains`` / ``$not_contains`` on list values and scalars, ``$in`` lists past the
index's ``np.isin`` threshold, nested ``$and`` / ``$or``), the labels are the same
whenever the index answers, and it declines only where float64 cannot compare exactly. Then big
``$in`` / ``$nin`` lists (20k values) on both paths against a Python answer. Last, document
filters: ``$contains`` / ``$regex`` and their negations, nested, over random documents (case
pairs, non-ASCII letters, newlines, no document) after random updates and deletes, answered
by the store's SQL (DuckDB's RE2) and by :func:`document_matches` (google-re2), equally.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vectordb.filters import And, Filter, Node, Or, document_matches, parse_where, parse_where_document, to_sql
from vectordb.filters.metadata_index import EXACT, MAX_KEYS, MetadataIndex

KEYS = ["a", "b", "c", "d"]
NUMBERS = [-2, -1, 0, 1, 2, 3, -1.0, -0.0, 0.0, 1.0, 2.0, 3.0, -1.5, 2.5, 1e300, -1e300]  # integral floats meet ints
BIG = [EXACT, EXACT + 1, -EXACT - 1, 2**63 - 1, -(2**63)]
STRINGS = ["", "x", "X", "xy", "1", "é", "a\x00b"]
small = st.sampled_from(NUMBERS)
# big ints make the index decline for the whole key, so they are rare: about 1 in 30
number = st.one_of(small, small, small, small, small, small, small, small, st.sampled_from(BIG * 2 + NUMBERS))
value = st.one_of(number, st.booleans(), st.sampled_from(STRINGS))
INTS = [v for v in NUMBERS if isinstance(v, int)]
FLOATS = [v for v in NUMBERS if isinstance(v, float)]
list_value = st.one_of(  # lists of one type, repeats allowed; a big int in about 1 in 10 int lists
    st.lists(st.one_of(*[st.sampled_from(INTS)] * 9, st.sampled_from(BIG)), min_size=1, max_size=4),
    st.lists(st.sampled_from(FLOATS), min_size=1, max_size=4),
    st.lists(st.booleans(), min_size=1, max_size=3),
    st.lists(st.sampled_from(STRINGS), min_size=1, max_size=4),
)
stored = st.one_of(value, value, list_value)
metadata = st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS[:3]), stored, max_size=3))  # "d" is never stored
merge = st.dictionaries(st.sampled_from(KEYS[:3]), st.one_of(st.none(), stored), min_size=1, max_size=3)


def _condition() -> st.SearchStrategy:
    # up to 24 values: past 16 the index switches from == chains to np.isin
    ints = st.sampled_from([v for v in NUMBERS if isinstance(v, int)])
    floats = st.sampled_from([v for v in NUMBERS if isinstance(v, float)])
    kinds = (ints, floats, small, number, st.booleans(), st.sampled_from(STRINGS))  # ints alone meet stored floats
    lists = st.one_of(*(st.lists(s, min_size=1, max_size=24) for s in kinds))
    return st.one_of(
        value,
        st.tuples(st.sampled_from(["$eq", "$ne"]), value).map(lambda t: {t[0]: t[1]}),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), number).map(lambda t: {t[0]: t[1]}),
        st.tuples(st.sampled_from(["$in", "$nin"]), lists).map(lambda t: {t[0]: t[1]}),
        st.tuples(st.sampled_from(["$contains", "$not_contains"]), value).map(lambda t: {t[0]: t[1]}),
    )


leaf = st.dictionaries(st.sampled_from(KEYS), _condition(), min_size=1, max_size=2)
where_dicts = st.recursive(
    leaf,
    lambda inner: st.tuples(st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=2, max_size=3)).map(
        lambda t: {t[0]: t[1]}
    ),
    max_leaves=8,
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


def _subtrees(tree: Node) -> Iterator[Node]:
    """The tree and each of its parts."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (And, Or)):
            stack.extend(node.children)


def _apply(col, idx: MetadataIndex, op: str, items) -> None:
    store = col.backend.engine.store
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


def sql_labels(store, collection_id: str, tree) -> list:
    return store.select_labels(collection_id, to_sql(Filter(tree, None), collection_id)).tolist()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=records, ops=st.lists(operation, max_size=4), wheres=st.lists(where_dicts, min_size=1, max_size=5))
@example(  # ints asked of stored floats and back, -0.0, a missing key: always tried
    first=[(0, {"a": 1.0, "b": -0.0}), (1, {"a": 2, "b": 3}), (2, {"a": "1"}), (3, None)],
    ops=[],
    wheres=[{"a": {"$in": [1, 0]}}, {"a": {"$nin": [2.0, 7.5]}}, {"b": {"$in": [0.0, 3.0]}}, {"b": {"$in": [0]}},
            {"$or": [{"a": {"$gte": 1}}, {"b": {"$ne": 3}}]}, {"c": {"$nin": [True]}}],
)
@example(  # lists beside scalars of the same key, rewritten and deleted: always tried
    first=[(0, {"a": ["x", "x", "y"], "b": [1, 2]}), (1, {"a": "x", "b": [2.0, -0.0]}), (2, {"a": [True]}), (3, None)],
    ops=[("update", [(0, {"a": ["y"]})]), ("upsert", [(2, {"a": ["x"], "c": [1.5]})]), ("delete", [1])],
    wheres=[{"a": {"$contains": "x"}}, {"a": {"$not_contains": "y"}}, {"b": {"$contains": 2}}, {"b": {"$contains": 0}},
            {"a": {"$contains": True}}, {"a": "x"}, {"a": {"$ne": "x"}}, {"c": {"$contains": 1.5}},
            {"$and": [{"a": {"$contains": "y"}}, {"b": {"$nin": [1]}}]}],
)
def test_index_and_sql_agree(shared_memory_client, first, ops, wheres):
    ops = [("add", first), *ops]
    col = shared_memory_client.create_collection(f"eq{next(_names)}", embedding_function=None)
    try:
        store = col.backend.engine.store
        incremental = MetadataIndex.load(store.metadata_columns(col.id), 0)
        for op, items in ops:
            _apply(col, incremental, op, items)
        loaded = MetadataIndex.load(store.metadata_columns(col.id), col.backend.engine.row(col.ref).next_label)
        stored_big = _has_big(col.get(include=["metadatas"])["metadatas"]) or _has_big([x for _, i in ops for x in i])
        for where in wheres:
            for node in _subtrees(parse_where(where)):  # every part, so no mismatch hides under an $and
                expected = sql_labels(store, col.id, node)
                for candidate in (incremental, loaded):
                    got = candidate.evaluate(node)
                    if got is None:
                        assert _has_big(dataclasses.astuple(node)) or stored_big, (where, node)
                    else:
                        assert got.dtype == np.int64 and got.tolist() == expected, (where, node)
    finally:
        shared_memory_client.delete_collection(col.name)


# -- big $in / $nin lists, on both paths ------------------------------------------------

N = 3000
BIG_LIST = 20_000


def _meta(i: int):
    if i % 10 == 0:
        return None  # lacks every key: matched by $nin only
    return {"s": f"v{i}", "n": i if i % 2 else float(i), "x": i + 0.5, "b": i % 3 == 0}


def _fill_big(col) -> None:
    col.add(ids=[f"r{i}" for i in range(N)], embeddings=[[float(i)] for i in range(N)], metadatas=[_meta(i) for i in range(N)])


@pytest.fixture(scope="module")
def big(shared_memory_client):
    col = shared_memory_client.create_collection("big-lists", embedding_function=None)
    _fill_big(col)
    yield col
    shared_memory_client.delete_collection(col.name)


CASES = [
    ("s", [f"v{j}" for j in range(N // 2, N // 2 + BIG_LIST)], lambda m, vs: m["s"] in vs),
    ("n", list(range(N // 2, N // 2 + BIG_LIST)), lambda m, vs: m["n"] in vs),  # ints asked, ints and floats stored
    ("n", [float(j) for j in range(-BIG_LIST // 2, BIG_LIST // 2)], lambda m, vs: m["n"] in vs),
    ("x", [j + 0.5 for j in range(N // 2, N // 2 + BIG_LIST)] + [7, 9], lambda m, vs: m["x"] in vs),  # mixed int/float
    ("n", list(range(BIG_LIST)) + [2**62], lambda m, vs: m["n"] in vs),  # a big int: only SQL answers
    ("b", [True] * BIG_LIST, lambda m, vs: m["b"] is True),
]


@pytest.mark.parametrize("op", ["$in", "$nin"])
@pytest.mark.parametrize("key, values, holds", CASES, ids=["str", "int", "float", "mixed", "big-int", "bool"])
def test_big_lists_on_both_paths(big, op, key, values, holds):
    wanted = set(values)
    hit = [i for i in range(N) if _meta(i) is not None and holds(_meta(i), wanted)]
    expected = hit if op == "$in" else sorted(set(range(N)) - set(hit))
    assert 0 < len(expected) < N
    tree = parse_where({key: {op: values}})
    engine = big.backend.engine
    row = engine.row(big.ref)
    assert sql_labels(engine.store, big.id, tree) == expected
    from_index = engine.derived.metadata(row).evaluate(tree)
    if any(isinstance(v, int) and not isinstance(v, bool) and abs(v) > EXACT for v in values):
        assert from_index is None
    else:
        assert from_index is not None and from_index.tolist() == expected
    assert big.get(where={key: {op: values}}, include=[])["ids"] == [f"r{i}" for i in expected]


def test_big_list_through_sql_only_collection(shared_memory_client):
    """More than MAX_KEYS keys: the index gives up and every filter, however big, runs as SQL."""
    col = shared_memory_client.create_collection("sql-only", embedding_function=None)
    try:
        _fill_big(col)
        col.add(ids="pad", embeddings=[[0.0]], metadatas={f"p{k}": k for k in range(MAX_KEYS + 1)})
        row = col.backend.engine.row(col.ref)
        assert col.backend.engine.derived.metadata(row).evaluate(parse_where({"s": "v1"})) is None
        values = [f"v{j}" for j in range(1, 2 * BIG_LIST, 2)]
        odd = [f"r{i}" for i in range(1, N, 2) if i % 10]
        assert col.get(where={"s": {"$in": values}}, include=[])["ids"] == odd
        rest = {f"r{i}" for i in range(N)} - set(odd) | {"pad"}
        assert set(col.get(where={"s": {"$nin": values}}, include=[])["ids"]) == rest
        got = col.query(query_embeddings=[[1.0]], n_results=3, where={"n": {"$in": list(range(1, 2 * BIG_LIST, 2))}})
        assert got["ids"] == [["r1", "r3", "r5"]]
    finally:
        shared_memory_client.delete_collection(col.name)


# -- document filters: SQL (DuckDB's regexp_matches) and document_matches (google-re2) ----

TEXT = ["a", "b", "A", "é", "É", "ß", "k", "\u212a", " ", "\n", "1", "."]  # \u212a: KELVIN SIGN, folds to k
ATOMS = ["a", "b", "A", "é", "É", "ß", "k", "K", " ", "1", "\\.", ".", "[ab]", "[^a]", "[a-z]", "\\w", "\\W", "\\d",
         "\\s", "\\b", "\\pL", "\\p{Lu}", "[[:upper:]]", "(a|é)", "(?:b|$)", "^", "$", "\\n"]
atom = st.tuples(st.sampled_from(ATOMS), st.sampled_from(["", "", "*", "+", "?", "{1,2}"])).map(
    lambda t: t[0] + t[1] if t[0] not in ("^", "$", "\\b") else t[0]  # no quantified anchors
)
pattern = st.tuples(
    st.sampled_from(["", "", "(?i)", "(?s)", "(?m)", "(?is)"]),
    st.lists(st.lists(atom, min_size=0, max_size=4).map("".join), min_size=1, max_size=2).map("|".join),
).map("".join)
doc_leaf = st.one_of(
    st.tuples(st.sampled_from(["$regex", "$not_regex"]), pattern).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["$regex", "$not_regex"]), pattern).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["$contains", "$not_contains"]), st.text(TEXT, min_size=1, max_size=2)).map(
        lambda t: {t[0]: t[1]}
    ),
)
document_dicts = st.recursive(
    doc_leaf,
    lambda inner: st.tuples(st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=2, max_size=3)).map(
        lambda t: {t[0]: t[1]}
    ),
    max_leaves=6,
)
document = st.one_of(st.none(), st.text(TEXT, max_size=8))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    docs=st.lists(st.tuples(st.integers(0, 11), document), min_size=3, max_size=12),
    updates=st.lists(st.tuples(st.integers(0, 9), st.text(TEXT, max_size=8)), max_size=3),
    deleted=st.lists(st.integers(0, 9), max_size=2),
    filters=st.lists(document_dicts, min_size=1, max_size=6),
)
@example(  # case folding, dot and newlines, anchors, an empty match on a record without a document
    docs=[(0, "a\nb"), (1, "\u212a"), (2, "ß"), (3, None), (4, ""), (5, "ÉA")],
    updates=[(4, "k")], deleted=[], filters=[{"$regex": "(?i)k"}, {"$regex": "a.b"}, {"$regex": "(?s)a.b"},
    {"$regex": "^b"}, {"$regex": "(?m)^b$"}, {"$not_regex": ""}, {"$regex": "(?i)SS"}, {"$regex": "\\p{Lu}\\pL$"},
    {"$regex": "(?i)éa"}, {"$and": [{"$regex": "\\w"}, {"$not_contains": "A"}]}],
)
def test_document_filters_agree(shared_memory_client, docs, updates, deleted, filters):
    col = shared_memory_client.create_collection(f"doc{next(_names)}", embedding_function=None)
    try:
        by_id = {f"r{i}": doc for i, doc in docs}
        col.add(ids=list(by_id), embeddings=[[1.0, 0.0]] * len(by_id), documents=list(by_id.values()))
        for i, text in updates:
            if f"r{i}" in by_id:
                col.update(ids=f"r{i}", documents=text, embeddings=[[0.0, 1.0]])
        gone = sorted({f"r{i}" for i in deleted if f"r{i}" in by_id})
        if gone:
            col.delete(ids=gone)
        got = col.get(include=["documents"])
        store = col.backend.engine.store
        labels = store.labels_of(col.id, got["ids"])
        stored = {labels[i]: d for i, d in zip(got["ids"], got["documents"])}
        for where_document in filters:
            for node in _subtrees(parse_where_document(where_document)):
                expected = sorted(label for label, d in stored.items() if document_matches(node, d))
                in_sql = sorted(store.select_labels(col.id, to_sql(Filter(None, node), col.id)).tolist())
                assert in_sql == expected, (where_document, node, stored)
    finally:
        shared_memory_client.delete_collection(col.name)
