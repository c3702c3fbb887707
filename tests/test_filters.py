"""where / where_document: every operator, Chroma's edge cases, errors, the parsed tree, the
nesting bound, SQL that keeps values as parameters, and a Python oracle."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectordb
from conftest import snapshot
from vectordb.errors import InvalidArgumentError
from vectordb.filters import (
    MAX_DEPTH,
    And,
    Compare,
    DocContains,
    Filter,
    Member,
    Or,
    parse_filter,
    parse_where,
    parse_where_document,
    to_dicts,
    to_sql,
)

RECORDS = {
    "a": ({"year": 2019, "genre": "sf", "score": 4.5, "new": True}, "The Cat sat on the mat"),
    "b": ({"year": 2021, "genre": "crime", "score": 3.0, "new": False}, "A dog barked at night"),
    "c": ({"year": 2020, "genre": "sf", "score": 5}, "cats and dogs"),
    "d": ({"genre": "poetry", "year": 2020.5}, "Roses are red"),
    "e": (None, None),
    "f": ({"flag": 1, "year": "2020"}, "the cat"),
    "g": ({"flag": True}, "Cat"),
}


def _fill(collection):
    for n, (record_id, (meta, doc)) in enumerate(RECORDS.items()):
        collection.add(ids=record_id, embeddings=[float(n), 1.0], metadatas=meta, documents=doc)
    return collection


@pytest.fixture
def col(memory_collection):
    """RECORDS in the module's shared in-memory client (filters are the same SQL on disk)."""
    return _fill(memory_collection)


@pytest.fixture
def any_col(collection):
    """RECORDS in memory and on disk."""
    return _fill(collection)


def test_filters_on_every_backend(any_col):
    assert ids_where(any_col, where={"$or": [{"year": {"$lt": 2020.5}}, {"flag": True}]}) == ["a", "c", "g"]
    assert ids_where(any_col, where={"genre": {"$nin": ["sf"]}}, where_document={"$contains": "Cat"}) == ["g"]
    any_col.delete(where={"year": {"$gte": 2020}})
    assert ids_where(any_col) == ["a", "e", "f", "g"]


def ids_where(col, where=None, where_document=None):
    return sorted(col.get(where=where, where_document=where_document)["ids"])


@pytest.mark.parametrize(
    "where, expected",
    [
        ({"genre": "sf"}, ["a", "c"]),
        ({"genre": {"$eq": "sf"}}, ["a", "c"]),
        ({"genre": {"$ne": "sf"}}, ["b", "d", "e", "f", "g"]),  # lacking the key matches $ne
        ({"year": {"$gt": 2020}}, ["b", "d"]),
        ({"year": {"$gte": 2020}}, ["b", "c", "d"]),  # "2020" (a str) is not a number
        ({"year": {"$lt": 2020}}, ["a"]),
        ({"year": {"$lte": 2020}}, ["a", "c"]),
        ({"year": {"$lt": 2020.5}}, ["a", "c"]),  # int vs float compares numerically
        ({"year": {"$lte": 2020.5}}, ["a", "c", "d"]),
        ({"score": 5.0}, ["c"]),  # float asked, int stored
        ({"score": 3}, ["b"]),  # int asked, float stored
        ({"year": 2020}, ["c"]),
        ({"year": "2020"}, ["f"]),  # str distinct from int
        ({"genre": {"$in": ["sf", "poetry"]}}, ["a", "c", "d"]),
        ({"genre": {"$nin": ["sf", "poetry"]}}, ["b", "e", "f", "g"]),  # lacking the key matches $nin
        ({"year": {"$in": [2019, 2020.5]}}, ["a", "d"]),
        ({"new": True}, ["a"]),
        ({"new": False}, ["b"]),
        ({"new": {"$ne": True}}, ["b", "c", "d", "e", "f", "g"]),
        ({"flag": True}, ["g"]),  # bool True is not int 1
        ({"flag": 1}, ["f"]),
        ({"flag": {"$in": [1]}}, ["f"]),
        ({"flag": {"$in": [True]}}, ["g"]),
        ({"flag": {"$gte": 1}}, ["f"]),  # bools never compare as numbers
        ({"genre": "sf", "year": 2019}, ["a"]),  # several keys: AND
        ({"$and": [{"genre": "sf"}, {"year": {"$gt": 2019}}]}, ["c"]),
        ({"$or": [{"genre": "crime"}, {"year": {"$lt": 2020}}]}, ["a", "b"]),
        ({"$or": [{"$and": [{"genre": "sf"}, {"new": True}]}, {"flag": True}]}, ["a", "g"]),
        ({"missing": {"$ne": 1}}, list("abcdefg")),
        ({"missing": 1}, []),
    ],
)
def test_where_operators(col, where, expected):
    assert ids_where(col, where=where) == expected
    # the same filter drives query, count of hits and delete alike
    result = col.query(query_embeddings=[0.0, 1.0], n_results=10, where=where)
    assert sorted(result["ids"][0]) == expected


@pytest.mark.parametrize(
    "where_document, expected",
    [
        ({"$contains": "cat"}, ["c", "f"]),  # case-sensitive
        ({"$contains": "Cat"}, ["a", "g"]),
        ({"$not_contains": "cat"}, ["a", "b", "d", "e", "g"]),  # no document: does not contain
        ({"$and": [{"$contains": "cat"}, {"$contains": "dogs"}]}, ["c"]),
        ({"$or": [{"$contains": "Roses"}, {"$contains": "dog"}]}, ["b", "c", "d"]),
        ({"$and": [{"$not_contains": "o"}, {"$or": [{"$contains": "C"}, {"$contains": "R"}]}]}, ["g"]),
        ({"$contains": "%"}, []),  # LIKE wildcards are plain text
        ({"$contains": "_"}, []),
    ],
)
def test_where_document(col, where_document, expected):
    assert ids_where(col, where_document=where_document) == expected


def test_where_and_where_document_together(col):
    assert ids_where(col, where={"genre": "sf"}, where_document={"$contains": "cat"}) == ["c"]


@pytest.mark.parametrize(
    "where, match",
    [
        ({"year": {"$gt": 1, "$lt": 3}}, r"where\['year'\]: expected exactly one operator"),
        ({"year": {"$between": 1}}, r"where\['year'\].*unknown operator '\$between'"),
        ({"$nor": [{"a": 1}, {"b": 2}]}, r"'\$nor' is not allowed"),
        ({"$and": [{"a": 1}]}, r"where\['\$and'\]: expected a list of at least two"),
        ({"$or": {"a": 1}}, r"where\['\$or'\]: expected a list"),
        ({"$and": [{"a": 1}, "b"]}, r"where\['\$and'\]\[1\]: expected a dict"),
        (
            {"$and": [{"a": 1}, {"b": {"$gt": "x"}}]},
            r"where\['\$and'\]\[1\]\['b'\]\['\$gt'\]: expected an int or float",
        ),
        ({"year": {"$gt": True}}, r"where\['year'\]\['\$gt'\]: expected an int or float, got bool"),
        ({"year": {"$in": []}}, r"where\['year'\]\['\$in'\]: expected a non-empty list"),
        ({"year": {"$in": 2020}}, r"where\['year'\]\['\$in'\]: expected a non-empty list"),
        ({"year": {"$nin": [1, "a"]}}, r"where\['year'\]\['\$nin'\]: all values must be of one type"),
        ({"year": {"$in": [1, True]}}, r"all values must be of one type"),
        ({"year": [2020]}, r"where\['year'\]\['\$eq'\]: expected str, int, float or bool, got list"),
        ({"year": None}, r"where\['year'\]"),
        ({"year": {"$eq": float("nan")}}, r"NaN"),
        ({1: "a"}, r"where: keys must be strings"),
        ("genre", r"where: expected a dict, got str"),
    ],
)
def test_malformed_where(col, where, match):
    with pytest.raises(InvalidArgumentError, match=match):
        col.get(where=where)
    with pytest.raises(InvalidArgumentError, match=match):
        col.query(query_embeddings=[0.0, 1.0], where=where)
    with pytest.raises(InvalidArgumentError, match=match):
        col.delete(where=where)
    assert col.count() == len(RECORDS)


@pytest.mark.parametrize(
    "where_document, match",
    [
        ({"$contains": 1}, r"where_document\['\$contains'\]: expected a string, got int"),
        ({"$iregex": "x"}, r"where_document: unknown operator '\$iregex'"),
        ({"$contains": "a", "$not_contains": "b"}, r"where_document: expected a dict with exactly one operator"),
        ({"$and": [{"$contains": "a"}]}, r"where_document\['\$and'\]: expected a list of at least two"),
        ({"$or": [{"$contains": "a"}, {"$like": "b"}]}, r"where_document\['\$or'\]\[1\]: unknown operator '\$like'"),
        ("cat", r"where_document: expected a dict"),
    ],
)
def test_malformed_where_document(col, where_document, match):
    with pytest.raises(InvalidArgumentError, match=match):
        col.get(where_document=where_document)
    with pytest.raises(InvalidArgumentError, match=match):
        col.query(query_embeddings=[0.0, 1.0], where_document=where_document)


# -- to_sql: values are parameters, never SQL text ----------------------

EVIL = "x'; DROP TABLE records; --"


def where_sql(where, collection_id):
    return to_sql(Filter(parse_where(where), None), collection_id)


def document_sql(where_document):
    return to_sql(Filter(None, parse_where_document(where_document)), "unused")


def test_to_sql_keeps_values_out_of_sql():
    where = {"$or": [{EVIL: EVIL}, {"k": {"$in": [EVIL, "y"]}}, {"n": {"$gt": 3}}]}
    sql, params = where_sql(where, "cid")
    assert EVIL not in sql and "DROP" not in sql and "'" not in sql
    assert params.count(EVIL) == 2  # as the key once and as a value; the $in list is one parameter
    assert [EVIL, "y"] in params
    assert "cid" in params
    assert sql.count("?") == len(params)
    doc_sql, doc_params = document_sql({"$and": [{"$contains": EVIL}, {"$not_contains": "%"}]})
    assert EVIL not in doc_sql and doc_params == [EVIL, "%"]
    assert doc_sql.count("?") == len(doc_params)
    both_sql, both_params = to_sql(parse_filter({"k": 1}, {"$contains": EVIL}), "cid")
    assert both_sql.count("?") == len(both_params) and both_params[-1] == EVIL and " AND " in both_sql


def test_compiled_filter_runs_as_parameters():
    con = duckdb.connect()
    con.execute("CREATE TABLE records (collection_id VARCHAR, label BIGINT, document VARCHAR)")
    con.execute(
        "CREATE TABLE metadata (collection_id VARCHAR, label BIGINT, key VARCHAR, str_value VARCHAR, "
        "int_value BIGINT, float_value DOUBLE, bool_value BOOLEAN)"
    )
    con.execute("INSERT INTO records VALUES ('c', 1, ?), ('c', 2, 'plain')", [EVIL])
    con.execute("INSERT INTO metadata VALUES ('c', 1, ?, ?, NULL, NULL, NULL)", [EVIL, EVIL])
    sql, params = where_sql({EVIL: EVIL}, "c")
    rows = con.execute(f"SELECT r.label FROM records r WHERE r.collection_id = 'c' AND {sql}", params).fetchall()
    assert rows == [(1,)]
    sql, params = document_sql({"$contains": EVIL})
    assert con.execute(f"SELECT r.label FROM records r WHERE {sql}", params).fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 2


def test_evil_key_and_value_round_trip(client):
    col = client.create_collection("evil", embedding_function=None)
    col.add(ids=[EVIL, "plain"], embeddings=[[1.0], [2.0]], metadatas=[{EVIL: EVIL}, {"k": "v"}], documents=[EVIL, "p"])
    assert col.get(where={EVIL: EVIL})["ids"] == [EVIL]
    assert col.get(where={EVIL: {"$ne": EVIL}})["ids"] == ["plain"]
    assert col.get(where_document={"$contains": EVIL})["ids"] == [EVIL]
    assert col.get(ids=EVIL)["metadatas"] == [{EVIL: EVIL}]
    col.delete(where={EVIL: EVIL})
    assert col.get()["ids"] == ["plain"]
    assert client.get_collection("evil").count() == 1


# -- a Python oracle on random metadata -------------------------------------------

KEYS = ["a", "b", "c"]
values = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([-1.5, 0.0, 0.5, 1.0, 2.0, 2.5]),
    st.booleans(),
    st.sampled_from(["x", "y", "1", ""]),
)
metadatas = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)


def _kind(v):
    return "bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "number"


def _eq(stored, asked):
    return _kind(stored) == _kind(asked) and stored == asked


def oracle(where, meta):
    meta = meta or {}
    result = True
    for key, cond in where.items():
        if key == "$and":
            ok = all(oracle(w, meta) for w in cond)
        elif key == "$or":
            ok = any(oracle(w, meta) for w in cond)
        else:
            op, x = next(iter(cond.items())) if isinstance(cond, dict) else ("$eq", cond)
            has = key in meta
            v = meta.get(key)
            if op == "$eq":
                ok = has and _eq(v, x)
            elif op == "$ne":
                ok = not (has and _eq(v, x))
            elif op == "$in":
                ok = has and any(_eq(v, y) for y in x)
            elif op == "$nin":
                ok = not (has and any(_eq(v, y) for y in x))
            else:
                if not has or _kind(v) != "number":
                    ok = False
                else:
                    ok = {"$gt": v > x, "$gte": v >= x, "$lt": v < x, "$lte": v <= x}[op]
        result = result and ok
    return result


def leaf():
    key = st.sampled_from(KEYS)
    numbers = st.one_of(st.integers(-3, 3), st.sampled_from([-1.5, 0.5, 1.0, 2.5]))
    return st.one_of(
        st.builds(lambda k, v: {k: v}, key, values),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$eq", "$ne"]), values),
        st.builds(lambda k, op, v: {k: {op: v}}, key, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(
            lambda k, op, vs: {k: {op: vs}},
            key,
            st.sampled_from(["$in", "$nin"]),
            st.one_of(
                st.lists(st.one_of(st.integers(-3, 3), st.sampled_from([0.5, 1.0])), min_size=1, max_size=3),
                st.lists(st.booleans(), min_size=1, max_size=2),
                st.lists(st.sampled_from(["x", "y", "1"]), min_size=1, max_size=2),
            ),
        ),
    )


filters = st.recursive(
    leaf(),
    lambda inner: st.builds(
        lambda op, ws: {op: ws}, st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=2, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def oracle_store():
    return vectordb.Client()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metas=st.lists(st.one_of(st.none(), metadatas), min_size=1, max_size=12),
    where=st.lists(filters, min_size=1, max_size=8),
)
def test_where_matches_python_oracle(oracle_store, metas, where):
    col = oracle_store.create_collection("oracle", embedding_function=None)
    try:
        ids = [str(i) for i in range(len(metas))]
        col.add(ids=ids, embeddings=[[float(i)] for i in range(len(metas))], metadatas=[m or None for m in metas])
        for w in where:
            expected = [i for i, m in zip(ids, metas) if oracle(w, m)]
            assert col.get(where=w)["ids"] == expected, w
    finally:
        oracle_store.delete_collection("oracle")


# -- the parser: one typed tree, and a bound on nesting ---------------------------------


def test_parse_builds_the_tree():
    where = {"a": np.int64(1), "$or": [{"b": {"$in": ["x", "y"]}}, {"c": {"$ne": 2.5}}], "d": {"$nin": [True]}}
    assert parse_where(where) == And(
        (
            Compare("a", "$eq", 1),
            Or((Member("b", ("x", "y")), Compare("c", "$ne", 2.5))),
            Member("d", (True,), negated=True),
        )
    )
    assert type(parse_where(where).children[0].value) is int  # numpy scalars become plain Python values
    assert parse_where_document({"$or": [{"$contains": "a"}, {"$not_contains": "b"}]}) == Or(
        (DocContains("a"), DocContains("b", negated=True))
    )
    assert parse_filter({"k": 1}, None) == Filter(Compare("k", "$eq", 1), None)
    assert parse_filter(None, {"$contains": "z"}) == Filter(None, DocContains("z"))


@pytest.mark.parametrize("where, where_document", [(None, None), ({}, None), (None, {}), ({}, {})])
def test_no_filter_parses_to_none(where, where_document):
    assert parse_filter(where, where_document) is None


def nested(depth, op, leaf):
    """``leaf`` under ``depth`` levels of ``op`` (built in a loop: no recursion here)."""
    tree = leaf
    for _ in range(depth):
        tree = {op: [tree, leaf]}
    return tree


def test_nesting_up_to_the_limit_works(col):
    assert ids_where(col, where=nested(MAX_DEPTH, "$and", {"genre": "sf"})) == ["a", "c"]
    assert ids_where(col, where_document=nested(MAX_DEPTH, "$or", {"$contains": "cat"})) == ["c", "f"]
    with pytest.raises(InvalidArgumentError, match=rf"where: \$and / \$or nested too deep \(the limit is {MAX_DEPTH}"):
        parse_where(nested(MAX_DEPTH + 1, "$and", {"genre": "sf"}))
    with pytest.raises(InvalidArgumentError, match=rf"where_document: .*nested too deep \(the limit is {MAX_DEPTH}"):
        parse_where_document(nested(MAX_DEPTH + 1, "$or", {"$contains": "x"}))


@pytest.mark.parametrize("depth", [300, 500, 10_000])
@pytest.mark.parametrize("arg", ["where", "where_document"])
def test_too_deep_filters_raise_and_change_nothing(client, arg, depth):
    col = _fill(client.create_collection("deep", embedding_function=None))
    before = snapshot(col)
    leaf = {"genre": "sf"} if arg == "where" else {"$contains": "cat"}
    for op in ("$and", "$or"):
        deep = {arg: nested(depth, op, leaf)}
        match = rf"^{arg}: \$and / \$or nested too deep \(the limit is {MAX_DEPTH} levels\)$"
        with pytest.raises(InvalidArgumentError, match=match):
            col.get(**deep)
        with pytest.raises(InvalidArgumentError, match=match):
            col.query(query_embeddings=[0.0, 1.0], **deep)
        with pytest.raises(InvalidArgumentError, match=match):
            col.delete(**deep)
        with pytest.raises(InvalidArgumentError, match=match):
            col.delete(ids=["a", "b"], **deep)
    assert snapshot(col) == before
    assert client.get_collection("deep").count() == len(RECORDS)


def test_errors_about_huge_values_stay_short(col):
    deep = nested(10_000, "$and", {"a": 1})
    with pytest.raises(InvalidArgumentError, match=r"where\['\$or'\]: expected a list of at least two filters, got \[") as info:
        col.get(where={"$or": [deep]})
    assert len(str(info.value)) < 200
    with pytest.raises(InvalidArgumentError, match=r"expected a dict with exactly one operator") as info:
        col.get(where_document={"$contains": "x" * 100_000, "$and": deep})
    assert len(str(info.value)) < 200


@settings(max_examples=200, deadline=None)
@given(where=st.recursive(
    st.one_of(
        st.builds(lambda k, v: {k: v}, st.sampled_from(["a", "b"]), st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans())),
        st.builds(lambda k, op, v: {k: {op: v}}, st.sampled_from(["a", "b"]), st.sampled_from(["$gt", "$lte", "$ne"]), st.integers(-3, 3)),
        st.builds(lambda k, op, vs: {k: {op: vs}}, st.sampled_from(["a", "b"]), st.sampled_from(["$in", "$nin"]),
                  st.lists(st.integers(-3, 3), min_size=1, max_size=4)),
    ),
    lambda inner: st.builds(lambda op, xs: {op: xs}, st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=2, max_size=3)),
    max_leaves=8,
), document=st.one_of(st.none(), st.builds(lambda op, t: {op: t}, st.sampled_from(["$contains", "$not_contains"]), st.text(min_size=1, max_size=4)),
                      st.builds(lambda op, t: {op: t}, st.sampled_from(["$regex", "$not_regex"]), st.sampled_from(["a.", "^x", "(?i)é+$", ""]))))
def test_a_parsed_filter_written_back_as_dicts_parses_to_the_same_tree(where, document):
    parsed = parse_filter(where, document)
    assert parse_filter(*to_dicts(parsed)) == parsed
