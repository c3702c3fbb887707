"""where_document ``$regex`` / ``$not_regex`` on every backend (memory, disk, http).

Matches are RE2 searches anywhere in the document (anchors, Unicode, ``(?i)``, ``(?s)``,
``(?m)``), combined with ``$contains`` and ``$and`` / ``$or`` and with ``where``; a record
without a document matches no pattern (so every ``$not_regex``). Invalid, non-string and
too costly patterns are InvalidArgumentErrors naming the pattern and the reason, raised
before anything changes, also when sent to the server raw. Pathological patterns over a
megabyte-long document answer within seconds (RE2 is linear), and delete() takes them.
"""

from __future__ import annotations

import time

import httpx
import pytest

from conftest import BACKENDS, snapshot
from vectordb.errors import InvalidArgumentError
from vectordb.filters import DocRegex, document_matches, parse_where_document
from vectordb.filters.regex import MAX_PATTERN_LENGTH, MAX_PROGRAM_SIZE

RECORDS = {
    "a": ("The Cat sat on the mat", {"n": 1}),
    "b": ("A dog barked at night\nthen slept", {"n": 2}),
    "c": ("cats and dogs", {"n": 3}),
    "d": ("Crème brûlée for ÉMILE", {"n": 4}),
    "e": (None, {"n": 5}),
    "f": ("", {"n": 6}),
    "g": ("ERR_1042: disk full", {"n": 7}),
}


def _fill(col) -> None:
    ids = list(RECORDS)
    col.add(ids=ids, embeddings=[[float(i), 1.0] for i in range(len(ids))],
            documents=[RECORDS[i][0] for i in ids], metadatas=[RECORDS[i][1] for i in ids])


@pytest.fixture(scope="module", params=BACKENDS)
def backend_client(request, clients):
    """The module's client of one backend (one store / server for all tests here)."""
    return clients(request.param)


@pytest.fixture(scope="module")
def col(backend_client):
    """RECORDS, shared by the read-only tests of one backend."""
    col = backend_client.create_collection("regex-read", embedding_function=None)
    _fill(col)
    return col


@pytest.fixture
def fresh(backend_client):
    """RECORDS in a collection of the test's own, for tests that write or delete."""
    col = backend_client.create_collection("regex-write", embedding_function=None)
    _fill(col)
    yield col
    backend_client.delete_collection("regex-write")


def ids(col, where_document, where=None):
    return sorted(col.get(where=where, where_document=where_document, include=[])["ids"])


ALL = sorted(RECORDS)


@pytest.mark.parametrize(
    "where_document, expected",
    [
        ({"$regex": "cat"}, ["c"]),  # case-sensitive, anywhere in the document
        ({"$regex": "(?i)cat"}, ["a", "c"]),
        ({"$regex": "^c"}, ["c"]),  # ^ / $ at the document's ends
        ({"$regex": "mat$"}, ["a"]),
        ({"$regex": "^then"}, []),
        ({"$regex": "(?m)^then"}, ["b"]),  # (?m): at line ends
        ({"$regex": "night.then"}, []),  # . does not match a newline ...
        ({"$regex": "(?s)night.then"}, ["b"]),  # ... unless (?s)
        ({"$regex": r"ERR_\d{4}\b"}, ["g"]),
        ({"$regex": "brûl"}, ["d"]),  # Unicode text and classes
        ({"$regex": r"\p{Lu}{5}$"}, ["d"]),
        ({"$regex": "(?i)émile"}, ["d"]),  # case folding beyond ASCII
        ({"$regex": r"^\w+$"}, []),
        ({"$regex": "(a+)+$"}, []),
        ({"$regex": ""}, ["a", "b", "c", "d", "f", "g"]),  # matches every document, not a missing one
        ({"$regex": "^$"}, ["f"]),
        ({"$not_regex": ""}, ["e"]),  # no document: matches every $not_regex
        ({"$not_regex": "(?i)cat"}, ["b", "d", "e", "f", "g"]),
        ({"$or": [{"$regex": "^A "}, {"$regex": "^ERR"}]}, ["b", "g"]),
        ({"$and": [{"$regex": "(?i)cat"}, {"$contains": "dogs"}]}, ["c"]),
        ({"$and": [{"$not_regex": "[A-Z]"}, {"$not_contains": "z"}]}, ["c", "e", "f"]),
        ({"$or": [{"$and": [{"$regex": "o"}, {"$not_regex": "a"}]}, {"$contains": "Cat"}]}, ["a", "d"]),
    ],
)
def test_regex_matches(col, where_document, expected):
    assert ids(col, where_document) == expected
    tree = parse_where_document(where_document)  # the in-memory evaluator agrees
    assert sorted(i for i in RECORDS if document_matches(tree, RECORDS[i][0])) == expected


def test_regex_with_where_and_in_query(col):
    assert ids(col, {"$regex": "(?i)^[a-c]"}, where={"n": {"$gte": 2}}) == ["b", "c", "d"]
    got = col.query(query_embeddings=[[0.0, 1.0]], n_results=3, where_document={"$regex": "(?i)cats?"})
    assert got["ids"] == [["a", "c"]]
    assert col.get(ids=["a", "b", "c"], where_document={"$not_regex": "dog"}, include=[])["ids"] == ["a"]


def test_delete_by_regex(fresh):
    fresh.delete(where_document={"$regex": "(?i)^(a|the) "})
    assert sorted(fresh.get(include=[])["ids"]) == ["c", "d", "e", "f", "g"]
    fresh.delete(where_document={"$not_regex": "."})  # no document, or an empty one
    assert sorted(fresh.get(include=[])["ids"]) == ["c", "d", "g"]


@pytest.mark.parametrize(
    "where_document, match",
    [
        ({"$regex": "("}, r"where_document\['\$regex'\]: invalid regular expression '\(': missing \)"),
        ({"$not_regex": "[z-a]"}, r"\['\$not_regex'\]: invalid regular expression '\[z-a\]': invalid character class range"),
        ({"$regex": r"(\w)\1"}, r"invalid regular expression .*invalid escape sequence: \\1"),  # no backreferences
        ({"$regex": "(?=x)"}, r"invalid regular expression '\(\?=x\)': invalid perl operator"),  # no lookaround
        ({"$regex": "a{1001}"}, r"invalid repetition size"),
        ({"$regex": r"\pL{1000}"}, r"invalid regular expression .*pattern too large"),  # RE2's memory budget
        ({"$regex": r"(\pL|\pN){1,20}$"}, rf"is too costly: it compiles to \d+ RE2 instructions \(the limit is {MAX_PROGRAM_SIZE}"),
        ({"$regex": "x" * (MAX_PATTERN_LENGTH + 1)}, rf"is {MAX_PATTERN_LENGTH + 1} characters long \(the limit is {MAX_PATTERN_LENGTH}\)"),
        ({"$regex": 5}, r"where_document\['\$regex'\]: expected a string, got int 5"),
        ({"$not_regex": ["a"]}, r"\['\$not_regex'\]: expected a string, got list \['a'\]"),
        ({"$regex": "\ud800"}, r"\['\$regex'\]: not valid Unicode text"),
        ({"$and": [{"$contains": "a"}, {"$regex": "*"}]}, r"where_document\['\$and'\]\[1\]\['\$regex'\]: invalid regular expression '\*'"),
    ],
)
def test_bad_patterns_raise_and_change_nothing(fresh, where_document, match):
    before = snapshot(fresh)
    with pytest.raises(InvalidArgumentError, match=match) as info:
        fresh.get(where_document=where_document)
    assert len(str(info.value)) < 300  # a huge pattern is shown shortened
    with pytest.raises(InvalidArgumentError, match=match):
        fresh.query(query_embeddings=[[0.0, 1.0]], where_document=where_document)
    with pytest.raises(InvalidArgumentError, match=match):
        fresh.delete(where_document=where_document)
    with pytest.raises(InvalidArgumentError, match=match):
        fresh.delete(ids=["a"], where_document=where_document)
    assert snapshot(fresh) == before


@pytest.mark.parametrize("op", ["$regex", "$not_regex"])
def test_regex_is_for_documents_only(col, op):
    """``where`` (metadata) has no regex operator: it is refused, not read as another operator."""
    with pytest.raises(InvalidArgumentError, match=rf"where\['n'\]: unknown operator '\{op}'"):
        col.get(where={"n": {op: "1"}})


def test_server_checks_raw_patterns_too(clients):
    """The server parses what it is sent with the same parser: a raw bad pattern is a 400 naming it."""
    col = clients("http").get_or_create_collection("regex-raw", embedding_function=None)
    if col.count() == 0:
        _fill(col)
    url = f"{col.backend.url}/api/v1/collections/{col.id}/get"
    answer = httpx.post(url, json={"where_document": {"$regex": "(?<=a)b"}})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_argument", answer.text
    assert "invalid regular expression '(?<=a)b'" in answer.json()["message"]
    answer = httpx.post(url, json={"where_document": {"$not_regex": "x" * (MAX_PATTERN_LENGTH + 1)}})
    assert answer.status_code == 400 and "characters long" in answer.json()["message"], answer.text
    answer = httpx.post(url, json={"where_document": {"$regex": "(?i)CAT"}})
    assert answer.status_code == 200 and sorted(answer.json()["ids"]) == ["a", "c"]
    assert col.count() == len(RECORDS)


LONG = 2_000_000  # characters of one document
LONG_ON_MILVUS = 65_000  # Milvus stores documents of at most 65,535 bytes
PATHOLOGICAL = ["(a+)+$", "(a|aa)+$", "(a*)*b", "(a|b)*a(a|b){20}$", r"(\pL|\pN){1,7}$", "(x+x+)+y", r"(a+)+\pP$"]
SECONDS = 20.0  # generous for a loaded 2-core machine: each takes well under 0.1 s alone


def test_pathological_patterns_over_a_long_document_answer_quickly(fresh, request):
    size = LONG_ON_MILVUS if request.node.callspec.params["backend_client"] == "milvus" else LONG
    fresh.add(ids=["long"], embeddings=[[9.0, 1.0]], documents=["a" * size + "!"])
    for pattern in PATHOLOGICAL:
        started = time.perf_counter()
        hit = "long" in fresh.get(where_document={"$regex": pattern}, include=[])["ids"]
        spent = time.perf_counter() - started
        assert spent < SECONDS, (pattern, spent)
        assert hit == (pattern == r"(a+)+\pP$"), pattern  # the document ends in "!" (no 'b', 'x' or 'y')
        started = time.perf_counter()
        assert document_matches(DocRegex(pattern), "a" * size + "!") == hit
        assert time.perf_counter() - started < SECONDS, pattern
    started = time.perf_counter()
    fresh.delete(where_document={"$regex": "(a+)+!$"})
    assert time.perf_counter() - started < SECONDS
    assert "long" not in fresh.get(include=[])["ids"] and fresh.count() == len(RECORDS)
