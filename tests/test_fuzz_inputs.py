"""Bad input to every public method gives a typed vectordb error and changes nothing;
it never crashes the process nor leaks a foreign exception."""

from __future__ import annotations

from typing import Any, Callable, Dict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectordb
from conftest import BACKENDS, backend_client
from vectordb.errors import InvalidArgumentError, VectorDBError

ODD_STRINGS = ["", " ", "\x00", "\ud800", "a\udfffb", "\u202e\u0301", "🦆" * 3, "x" * 70_000, "$eq", "'; DROP TABLE records; --"]
FILTER_KEYS = ["$and", "$or", "$eq", "$ne", "$gt", "$in", "$nin", "$contains", "$not_contains", "$regex", "$not_regex", "$bogus", "k", "", "\x00"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8), st.sampled_from(ODD_STRINGS),
    st.binary(max_size=8), st.builds(object), st.just(float("nan")),
)
garbage = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.sampled_from(FILTER_KEYS), st.text(max_size=4)), inner, max_size=3),
        st.builds(lambda xs: np.asarray(xs, dtype=object), st.lists(scalars, max_size=3)),
    ),
    max_leaves=10,
)
filters = st.recursive(
    st.one_of(scalars, st.lists(scalars, max_size=3)),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(FILTER_KEYS), inner, min_size=1, max_size=2),
        st.lists(inner, max_size=3),
    ),
    max_leaves=8,
)

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", params=BACKENDS)
def client(request, tmp_path_factory):
    """One seeded client per backend for the whole module (a fresh one per example would cost too much)."""
    with backend_client(request.param, str(tmp_path_factory.mktemp("fuzz"))) as c:
        col = c.create_collection("fuzz", embedding_function=None)
        col.add(["a", "b", "c"], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                metadatas=[{"k": 1, "s": "x"}, {"k": 2}, None], documents=["one", "two", ""])
        yield c


def _state(client) -> Dict[str, Any]:
    out = {}
    for col in client.list_collections():
        got = col.get(include=["embeddings", "metadatas", "documents"])
        out[col.name] = (col.metadata, got["ids"], got["embeddings"].tolist(), got["metadatas"], got["documents"])
    return out


def _call(client, action: Callable[[], Any]) -> None:
    """Run ``action``: it may succeed; if it raises, the error is a VectorDBError and nothing changed."""
    before = _state(client)
    try:
        action()
    except VectorDBError:
        assert _state(client) == before
        return
    if _state(client) != before:
        _restore(client)


def _restore(client) -> None:
    """Undo successful writes of garbage that happened to be valid, so each example starts alike."""
    for col in client.list_collections():
        if col.name != "fuzz":
            client.delete_collection(col.name)
    col = client.get_collection("fuzz")
    if col.metadata is not None:
        col.modify(metadata={})
    extra = [i for i in col.get(include=[])["ids"] if i not in ("a", "b", "c")]
    if extra:
        col.delete(extra)
    col.upsert(["a", "b", "c"], [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
               metadatas=[{"k": 1, "s": "x"}, {"k": 2}, {"k": None, "s": None}], documents=["one", "two", ""])


WRITES = ["add", "upsert", "update"]


@FUZZ
@given(method=st.sampled_from(WRITES), slot=st.sampled_from(["ids", "embeddings", "metadatas", "documents"]),
       value=garbage)
def test_writes_with_garbage(client, method, slot, value):
    args = {"ids": ["z"], "embeddings": [[0.5, 0.5]], "metadatas": [{"k": 3}], "documents": ["zz"]}
    args[slot] = value
    col = client.get_collection("fuzz")
    _call(client, lambda: getattr(col, method)(**args))


@FUZZ
@given(ids=st.one_of(st.none(), garbage), where=st.one_of(st.none(), filters), where_document=st.one_of(st.none(), filters))
def test_delete_with_garbage(client, ids, where, where_document):
    col = client.get_collection("fuzz")
    _call(client, lambda: col.delete(ids=ids, where=where, where_document=where_document))


@FUZZ
@given(slot=st.sampled_from(["ids", "where", "limit", "offset", "where_document", "include"]), value=garbage,
       where=filters)
def test_get_with_garbage(client, slot, value, where):
    col = client.get_collection("fuzz")
    args = {slot: where if slot in ("where", "where_document") else value}
    _call(client, lambda: col.get(**args))


@FUZZ
@given(slot=st.sampled_from(["query_embeddings", "query_texts", "n_results", "where", "where_document", "include"]),
       value=garbage, where=filters)
def test_query_with_garbage(client, slot, value, where):
    col = client.get_collection("fuzz")
    args: Dict[str, Any] = {"query_embeddings": [[0.1, 0.2]]}
    if slot == "query_texts":
        args = {}
    args[slot] = where if slot in ("where", "where_document") else value
    _call(client, lambda: col.query(**args))


@FUZZ
@given(value=garbage, which=st.sampled_from(["create", "get", "get_or_create", "delete", "modify_name",
                                             "modify_metadata", "create_metadata", "peek"]))
def test_client_and_collection_methods_with_garbage(client, value, which):
    col = client.get_collection("fuzz")
    actions = {
        "create": lambda: client.create_collection(value, embedding_function=None),
        "get": lambda: client.get_collection(value),
        "get_or_create": lambda: client.get_or_create_collection(value, embedding_function=None),
        "delete": lambda: client.delete_collection(value),
        "modify_name": lambda: col.modify(name=value),
        "modify_metadata": lambda: col.modify(metadata=value),
        "create_metadata": lambda: client.create_collection("fresh", metadata=value, embedding_function=None),
        "peek": lambda: col.peek(value),
    }
    _call(client, actions[which])


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_embeddings_are_refused(client, bad):
    col = client.get_collection("fuzz")
    before = _state(client)
    for action in (lambda: col.add(["n"], [[bad, 0.0]]), lambda: col.upsert(["a"], [[0.0, bad]]),
                   lambda: col.update(["b"], [[bad, bad]]), lambda: col.query([[bad, 1.0]])):
        with pytest.raises(InvalidArgumentError):
            action()
    assert _state(client) == before


@pytest.mark.parametrize("empty", [[], (), np.empty((0, 2))])
def test_empty_lists_are_refused(client, empty):
    col = client.get_collection("fuzz")
    with pytest.raises(InvalidArgumentError):
        col.add(empty, empty)
    with pytest.raises(InvalidArgumentError):
        col.query(query_embeddings=empty)
    with pytest.raises(InvalidArgumentError):
        col.delete(ids=[])


def test_path_of_wrong_type_is_refused():
    for path in (3, ["x"], b"\x00", object()):
        with pytest.raises(VectorDBError):
            vectordb.PersistentClient(path)
