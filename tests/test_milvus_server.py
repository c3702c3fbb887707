"""MilvusClient against a real ``milvus-lite server`` process on a loopback port (a gRPC hop),
and the Milvus backend's own promises: hostile keys, ids and values filter exactly, a
collection's function comes back in another process, errors are typed.

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
        assert features.probe_nullable(backend) is True
        assert set(backend.client.list_collections()) == before


def test_consistency_is_checked_and_strong_is_available(server):
    with pytest.raises(InvalidArgumentError, match="consistency"):
        vectordb.MilvusClient(server["uri"], consistency="bounded")
    with vectordb.MilvusClient(server["uri"], consistency="strong") as client:
        col = client.create_collection("strong-reads", embedding_function=None)
        col.add(ids=["a"], embeddings=[[1.0, 2.0]])
        assert client._backend.read_level == "Strong" and col.count() == 1
        client.delete_collection("strong-reads")


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
