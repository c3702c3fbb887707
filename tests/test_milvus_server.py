"""MilvusClient against a real ``milvus-lite server`` process on a loopback port (a gRPC hop),
and the Milvus backend's own promises: hostile keys, ids and values filter exactly, filters
beyond float64's exact range match what a local store matches (by vectordb's shared
interpreters), text and hybrid searches are refused before any request, a collection's
function comes back in another process, errors are typed.

The server is started once for the module and killed for real in the last tests.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import time
from typing import Any, Dict, Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vectordb
from conftest import in_new_process
from vectordb.errors import BackendError, InvalidArgumentError, ServerUnreachableError
from vectordb.milvus import expressions as x
from vectordb.milvus import features, layout
from vectordb.milvus.layout import Layout

HOSTILE = ['a"b', "a'b", "back\\slash", 'x"] or true or ["', "line\nbreak", "tab\t", "{p0}", "ünï😀", "", "%_\\%"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Dict[str, Any]]:
    """``milvus-lite server`` on a free loopback port; killed at the end (if a test did not)."""
    port = _free_port()
    data = str(tmp_path_factory.mktemp("milvus-server"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "milvus_lite", "server", "--data-dir", data, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:  # wait for the port to accept connections
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("milvus-lite server did not start")
            time.sleep(0.05)
    yield {"uri": f"http://127.0.0.1:{port}", "proc": proc}
    proc.kill()
    proc.wait()


def user_script(client: vectordb.Client) -> Dict[str, Any]:
    """An app written for PersistentClient: everything it prints, as one dict."""
    col = client.get_or_create_collection("my-notes.v1", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    col.add(ids=["n1", "n2", "n3", "n4"], embeddings=[[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0, 1]],
            documents=["the cat sat", "a cat ran", "dogs bark", None],
            metadatas=[{"year": 2020, "tags": ["pet", "cat"]}, {"year": 2021.0}, {"year": 2022, "ok": True}, None])
    col.add(ids=["n1"], embeddings=[[0, 0, 1]], documents=["changed?"])  # an existing id: left unchanged
    col.upsert(ids=["n2", "n5"], embeddings=[[0.8, 0.2, 0], [0.5, 0.5, 0]], metadatas=[{"year": None, "new": 1}, {"year": 2023}])
    col.update(ids=["n3", "nope"], documents=["dogs bark loudly", "x"], embeddings=[[0, 1, 0.1], [1, 1, 1]])
    out: Dict[str, Any] = {"count": col.count(), "all": col.get(include=["metadatas", "documents"])}
    q = col.query(query_embeddings=[[1, 0.05, 0]], n_results=3, where={"year": {"$gte": 2020}}, include=["distances", "documents"])
    out["query"] = {"ids": q["ids"], "distances": np.round(q["distances"], 5).tolist(), "documents": q["documents"]}
    out["contains"] = col.get(where_document={"$contains": "cat"})["ids"]
    out["ne"] = col.get(where={"year": {"$ne": 2020}})["ids"]
    out["list"] = col.get(where={"tags": {"$contains": "cat"}})["ids"]
    out["deleted"] = col.delete(where={"$or": [{"ok": True}, {"new": 1}]})
    out["peek"] = col.peek(2)["ids"]
    col.modify(name="renamed-notes")
    out["names"] = [c.name for c in client.list_collections()]
    return out


def test_a_persistent_client_script_runs_unchanged_on_a_milvus_server(server, tmp_path):
    with vectordb.PersistentClient(str(tmp_path / "db")) as local:
        expected = user_script(local)
    with vectordb.MilvusClient(server["uri"]) as remote:
        got = user_script(remote)
    assert got == expected


def test_hostile_keys_ids_and_values_filter_exactly(server):
    with vectordb.MilvusClient(server["uri"]) as client:
        col = client.create_collection("hostile", embedding_function=None)
        ids = [f"id{i}{text}" for i, text in enumerate(HOSTILE)]
        col.add(ids=ids, embeddings=[[float(i), 1.0] for i in range(len(ids))],
                metadatas=[{text or "empty": text, "n": i} for i, text in enumerate(HOSTILE)], documents=HOSTILE)
        for i, text in enumerate(HOSTILE):
            key = text or "empty"
            assert col.get(where={key: text})["ids"] == [ids[i]], text
            assert col.get(ids=[ids[i]])["metadatas"] == [{key: text, "n": i}]
            if text:
                want = [ids[j] for j, doc in enumerate(HOSTILE) if text in doc]
                assert col.get(where_document={"$contains": text})["ids"] == want, text
        assert col.get(where_document={"$contains": ""})["ids"] == ids
        assert col.delete(ids=[ids[0], ids[3]]) == {"deleted": 2}
        assert col.count() == len(ids) - 2
        client.delete_collection("hostile")


def test_literals_render_exactly_what_the_templates_hold():
    assert x.literal('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert x.render(("f == {p0} and g in {p1}", {"p0": True, "p1": [1, 2.5, "x"]})) == 'f == true and g in [1, 2.5, "x"]'
    assert x.render(x.joined(("a == {p0}", {"p0": 1}), ("b == {p0}", {"p0": "{p1}"}))) == '(a == 1) and (b == "{p1}")'
    for key in HOSTILE:
        assert x.decode_key(x.encode_key(key)) == key and set(x.encode_key(key)[1:]) <= set("0123456789abcdef")
    with pytest.raises(ValueError):
        x.literal(float("nan"))


def test_another_process_rebuilds_the_embedding_function(server):
    from vectordb.embedding_functions import DefaultEmbeddingFunction  # noqa: F401  (registered, allow-listed)

    with vectordb.MilvusClient(server["uri"]) as client:
        client.create_collection("with-function", embedding_function=None, metadata={"topic": "x"})
        col = client.create_collection("counting", metadata={"a": 1})  # the default function, by name and config
        expected = [col.embedding_function.name(), col.embedding_function.get_config()]
    got = in_new_process(f"""
        import json, vectordb
        c = vectordb.MilvusClient({server['uri']!r})
        col = c.get_collection("counting")
        print(json.dumps([col.embedding_function.name(), col.embedding_function.get_config(), col.metadata,
                          c.get_collection("with-function").embedding_function is None]))
    """)
    assert got == expected + [{"a": 1}, True]


def test_a_collection_dropped_behind_vectordbs_back_is_a_typed_error(server):
    from pymilvus import MilvusClient as Raw

    with vectordb.MilvusClient(server["uri"]) as client:
        col = client.create_collection("dropped", embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        Raw(server["uri"]).drop_collection("vdb_" + col.id.replace("-", ""))
        with pytest.raises(BackendError, match=server["uri"]):
            col.get()
        report = client.check()
        assert not report.ok and "dropped" in report.problems[0].what
        client.delete_collection("dropped")


def test_server_versions_decide_the_encoding():
    assert features.parse_version("v2.3.5-lite") == ("milvus", (2, 3, 5))  # the milvus package's 2.3 server
    assert features.parse_version("milvus_lite-3.2.2") == ("milvus_lite", (3, 2, 2))
    assert features.parse_version("Zilliz Cloud") is None
    wanted = {"v2.3.5-lite": False, "v2.4.13": False, "v2.5.0": True, "2.6.1": True, "milvus_lite-3.2.2": True,
              "milvus_lite-2.4.10": False, "": None, "unknown": None}
    assert {text: features.nullable_by_version(text) for text in wanted} == wanted


def test_layouts_keep_none_and_empty_apart():
    flagged, strict = Layout(layout.FLAGGED), Layout(layout.STRICT)
    for document, metadata in ((None, None), ("", None), ("d", {"k": 1})):
        row = flagged.row("a", 1, [0.0], document, metadata)
        assert (flagged.document(row), flagged.metadata(row)) == (document, metadata)
        assert row["has_doc"] is (document is not None) and row["doc"] == (document or "")
        assert row["metadata"] == (x.encode_metadata(metadata) or {})  # no NULLs: nothing is nullable
    assert layout.layout_of([{"name": "doc", "nullable": True}]).kind == layout.NULLABLE
    assert layout.layout_of([{"name": "doc"}, {"name": "has_doc"}]).kind == layout.FLAGGED
    assert layout.layout_of([{"name": "doc"}]).kind == layout.STRICT
    with pytest.raises(BackendError, match="needs a document"):
        strict.row("a", 1, [0.0], None, None)


def test_the_flagged_layout_reads_back_what_was_written(server):
    """The encoding of servers without nullable fields (Milvus 2.3/2.4), forced on Milvus Lite."""
    with vectordb.MilvusClient(server["uri"]) as client:
        backend = client._backend
        assert backend.features.nullable is True  # Milvus Lite 3.x has nullable fields ...
        backend.features = dataclasses.replace(backend.features, nullable=False)  # ... taken away
        col = client.create_collection("flagged", embedding_function=None)
        col.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                documents=[None, "", "cat"], metadatas=[None, {"k": 1}, None])
        assert backend.layout("vdb_" + col.id.replace("-", "")).kind == layout.FLAGGED
        got = col.get(include=["documents", "metadatas"])
        assert got["documents"] == [None, "", "cat"] and got["metadatas"] == [None, {"k": 1}, None]
        assert col.get(where_document={"$not_contains": "a"})["ids"] == ["a", "b"]
        assert col.query(query_embeddings=[[1.0, 0.9]], n_results=2, where_document={"$contains": ""},
                         include=["documents"])["documents"] == [["cat", ""]]
        client.delete_collection("flagged")


def test_an_unknown_version_is_probed_and_the_probe_leaves_nothing(server):
    with vectordb.MilvusClient(server["uri"]) as client:
        backend = client._backend
        before = set(backend.client.list_collections())
        assert features.probe_nullable(backend.calls) is True
        assert set(backend.client.list_collections()) == before


def test_consistency_is_checked_and_strong_is_available(server):
    with pytest.raises(InvalidArgumentError, match="consistency"):
        vectordb.MilvusClient(server["uri"], consistency="bounded")
    with vectordb.MilvusClient(server["uri"], consistency="strong") as client:
        col = client.create_collection("strong-reads", embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        assert client._backend.read_level == "Strong" and col.count() == 1
        client.delete_collection("strong-reads")


def test_text_and_hybrid_searches_are_refused_before_any_request(server, monkeypatch):
    from vectordb.errors import TextSearchUnavailableError
    from vectordb.requests import CollectionRef, Search

    with vectordb.MilvusClient(server["uri"]) as client:
        backend = client._backend
        monkeypatch.setattr(backend.calls, "call", lambda *a, **k: pytest.fail("a request was sent"))
        ref = CollectionRef("no-such-id", "notes")
        for search in (Search("text", 1, ("scores",), texts=["x"]),
                       Search("hybrid", 1, ("scores",), vectors=np.ones((1, 2), np.float32), texts=["x"])):
            with pytest.raises(TextSearchUnavailableError, match=f"mode={search.mode!r}.*not available on Milvus"):
                backend.search(ref, search)


BIG = 2**53
EXACT_CASES = [  # what float64 cannot compare exactly: only exact arithmetic answers
    {"n": BIG + 1}, {"n": {"$gte": BIG + 1}}, {"n": {"$lt": BIG + 1}}, {"n": {"$in": [BIG + 1, 3]}},
    {"n": {"$nin": [BIG + 1]}}, {"n": {"$ne": float(BIG)}}, {"n": float(BIG)}, {"n": {"$contains": BIG + 1}},
    {"n": {"$not_contains": 2}}, {"$or": [{"k7": 7}, {"n": 3}]}, {"k7": {"$ne": 7}}, {"flag": 1}, {"flag": True},
    {"n": {"$lte": float(BIG)}}, {"n": {"$lte": BIG}}, {"n": {"$gt": -float(BIG)}}, {"n": {"$in": [float(BIG)]}},
]
DOCUMENT_CASES = [{"$regex": "^a.c$"}, {"$not_regex": "(?i)B"}, {"$and": [{"$regex": "b"}, {"$not_contains": "x"}]}]


def _exact_cases_collection(client: vectordb.Client) -> Any:
    col = client.create_collection("exact-cases", embedding_function=None)
    metadatas = [{"n": BIG + 1}, {"n": BIG}, {"n": float(BIG)}, {"n": 3, "flag": True}, {"n": [BIG + 1, 2]},
                 None, {"n": -BIG - 1, "flag": 1}, {f"k{j}": j for j in range(130)}]  # more keys than the index holds
    documents = ["abc", "aBc", None, "xbx", "", "abc\n", "b", "a\nc"]
    col.add(ids=[f"r{i}" for i in range(len(metadatas))], embeddings=[[float(i), 1.0] for i in range(len(metadatas))],
            metadatas=metadatas, documents=documents)
    return col


def test_filters_beyond_float64_and_regexes_match_what_a_local_store_matches(server, monkeypatch):
    """Milvus narrows, vectordb's interpreters decide: where the vectorised index declines, the
    exact per-record check answers, with the local store's semantics; never a store of its own."""
    from vectordb.filters import documents
    from vectordb.milvus import matching

    exact = []
    monkeypatch.setattr(matching, "metadata_matches", lambda *a: exact.append(1) or documents.metadata_matches(*a))
    with vectordb.Client() as local, vectordb.MilvusClient(server["uri"]) as remote:
        expected, got = _exact_cases_collection(local), _exact_cases_collection(remote)
        for where in EXACT_CASES + [None]:
            for where_document in DOCUMENT_CASES + [None]:
                want, have = (
                    (col.get(where=where, where_document=where_document)["ids"],
                     col.query(query_embeddings=[[2.5, 1.0]], n_results=3, where=where, where_document=where_document,
                               include=["distances"]))
                    for col in (expected, got))
                assert have[0] == want[0], (where, where_document)
                assert have[1]["ids"] == want[1]["ids"], (where, where_document)
                np.testing.assert_allclose(have[1]["distances"][0], want[1]["distances"][0], rtol=1e-6)
        assert exact  # the exact check answered what the index declined
        remote.delete_collection("exact-cases")


NUMBERS = [-2, 0, 1, 3, -0.0, 1.0, 2.5, 1e300, BIG - 1, BIG, BIG + 1, float(BIG), -BIG - 1, 2**63 - 1]
scalar = st.one_of(st.sampled_from(NUMBERS), st.booleans(), st.sampled_from(["", "x", "X", "é"]))
INTS, FLOATS = [n for n in NUMBERS if isinstance(n, int)], [n for n in NUMBERS if isinstance(n, float)]
stored_value = st.one_of(scalar, scalar, st.lists(st.sampled_from(INTS), min_size=1, max_size=3),
                         st.lists(st.sampled_from(FLOATS), min_size=1, max_size=3),
                         st.lists(st.booleans(), min_size=1, max_size=2), st.lists(st.sampled_from(["x", "y"]), min_size=1))
condition = st.one_of(
    scalar,
    st.tuples(st.sampled_from(["$eq", "$ne", "$contains", "$not_contains"]), scalar).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), st.sampled_from(NUMBERS)).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.one_of(
        st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=4), st.lists(st.booleans(), min_size=1, max_size=2),
        st.lists(st.sampled_from(["x", "y", ""]), min_size=1, max_size=3))).map(lambda t: {t[0]: t[1]}),
)
where_tree = st.recursive(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), condition, min_size=1, max_size=2),
    lambda inner: st.tuples(st.sampled_from(["$and", "$or"]), st.lists(inner, min_size=2, max_size=3)).map(
        lambda t: {t[0]: t[1]}),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(metadatas=st.lists(st.one_of(st.none(), st.dictionaries(st.sampled_from(["a", "b"]), stored_value, max_size=2)),
                          min_size=1, max_size=10),
       wheres=st.lists(where_tree, min_size=1, max_size=4))
def test_the_exact_metadata_check_agrees_with_the_local_store(shared_memory_client, metadatas, wheres):
    """:func:`metadata_matches` (Milvus's exact check where the vectorised index declines) against the
    store's SQL, on ints and floats around 2**53, bools beside numbers, lists beside scalars."""
    from vectordb.filters import parse_where
    from vectordb.filters.documents import metadata_matches

    col = shared_memory_client.create_collection("exact-metadata", embedding_function=None)
    try:
        col.add(ids=[f"r{i}" for i in range(len(metadatas))], embeddings=[[1.0]] * len(metadatas), metadatas=metadatas)
        stored = col.get(include=["metadatas"])
        for where in wheres:
            node = parse_where(where)
            got = [i for i, m in zip(stored["ids"], stored["metadatas"]) if metadata_matches(node, m)]
            assert got == col.get(where=where, include=[])["ids"], where
    finally:
        shared_memory_client.delete_collection("exact-metadata")


def test_a_killed_server_is_a_typed_error_naming_it(server):
    client = vectordb.MilvusClient(server["uri"])
    col = client.create_collection("before-kill", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 2.0]])
    server["proc"].kill()
    server["proc"].wait()
    with pytest.raises(ServerUnreachableError, match="127.0.0.1"):
        col.count()
    with pytest.raises(ServerUnreachableError):
        vectordb.MilvusClient(server["uri"])
    client.close()


def test_import_vectordb_does_not_import_pymilvus():
    code = "import sys, json, vectordb; print(json.dumps('pymilvus' in sys.modules))"
    assert in_new_process(code) is False


def test_milvus_lite_file_uri_reopens_with_its_data(tmp_path):
    path = str(tmp_path / "lite.db")
    with vectordb.MilvusClient(path) as client:
        col = client.create_collection("kept", embedding_function=None)
        col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], metadatas=[{"k": 1}, None])
    assert os.path.exists(path)
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(path)  # this process's Lite server lets go of the file
    script = f"""
        import json, vectordb
        col = vectordb.MilvusClient({path!r}).get_collection("kept")
        print(json.dumps(col.get(include=["metadatas"])["metadatas"]))
    """
    assert in_new_process(script) == [{"k": 1}, None]  # a new process: loaded from the file
