"""`vectordb serve` over raw HTTP: docs, heartbeat, auth, bad requests, body limit, many client processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import pytest

from vectordb.errors import InvalidArgumentError, UnauthorizedError
from vectordb.http_backend import HttpClient

sys.path.insert(0, os.path.dirname(__file__))
from concurrency_helpers import beside, sized  # noqa: E402
from server_helpers import ROOT, HashEmbedding, running_server, subprocess_env  # noqa: E402

API = "/api/v1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_server(str(tmp_path_factory.mktemp("srv") / "db"), "--max-body-mb", "0.5") as srv:
        yield srv


@pytest.fixture(scope="module")
def seeded(server):
    """A collection with 3 records, and a snapshot of them."""
    client = HttpClient(port=server.port)
    collection = client.create_collection("seeded", embedding_function=None)
    collection.add(ids=["a", "b", "c"], embeddings=[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], documents=["x", "y", "z"])
    return collection


def snapshot(collection) -> dict:
    got = collection.get(include=["embeddings", "metadatas", "documents"])
    return {**got, "embeddings": got["embeddings"].tolist()}


def test_heartbeat_version_and_docs(server):
    beat = httpx.get(server.url + API + "/heartbeat")
    assert beat.status_code == 200 and beat.json()["nanosecond heartbeat"] > 0
    assert httpx.get(server.url + API + "/version").json() == {"version": "0.1.0"}
    docs = httpx.get(server.url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = httpx.get(server.url + "/openapi.json").json()
    for path in ("/api/v1/heartbeat", "/api/v1/collections", "/api/v1/collections/{collection_id}/query"):
        assert path in spec["paths"]


def test_binds_to_loopback_by_default(server):
    assert "http://127.0.0.1:" in server.log()


def test_unknown_route_is_a_json_404(server):
    answer = httpx.get(server.url + API + "/nowhere")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path, body, fragment",
    [
        ("/collections", b"{not json", "malformed JSON"),
        ("/collections", b"[1, 2]", "JSON object"),
        ("/collections", json.dumps({"name": 5}).encode(), "name"),
        ("/collections", json.dumps({"name": "okay", "unknown": 1}).encode(), "unknown"),
        ("/collections/{id}/add", json.dumps({"ids": 7, "embeddings": [[1.0, 2.0]]}).encode(), "ids"),
        ("/collections/{id}/add", json.dumps({"ids": ["q"], "embeddings": "abc"}).encode(), "embeddings"),
        ("/collections/{id}/add", json.dumps({"ids": ["q"], "embeddings": [[True, 1.0]]}).encode(), "embeddings"),
        ("/collections/{id}/add", json.dumps({"ids": ["q"], "embeddings": [[1.0, 2.0, 3.0]]}).encode(), "dimension"),
        ("/collections/{id}/add", json.dumps({"ids": ["q", "q"], "embeddings": [[1.0, 2.0]] * 2}).encode(), "repeated"),
        ("/collections/{id}/query",
         json.dumps({"query_embeddings": [[1.0, 0.0]], "n_results": "5"}).encode(), "n_results"),
        ("/collections/{id}/query", json.dumps({"query_texts": ["hello"]}).encode(), "no embedding function"),
        ("/collections/{id}/get", json.dumps({"where": {"$bad": 1}}).encode(), "$bad"),
        ("/collections/{id}/delete", json.dumps({}).encode(), "deleting everything"),
    ],
)
def test_bad_requests_are_4xx_and_change_nothing(server, seeded, path, body, fragment):
    before = snapshot(seeded)
    answer = httpx.post(server.url + API + path.format(id=seeded.id), content=body,
                        headers={"content-type": "application/json"})
    assert 400 <= answer.status_code < 500, answer.text
    payload = answer.json()
    assert fragment in payload["message"] and payload["error"]
    assert snapshot(seeded) == before
    assert server.alive()


def test_the_server_never_embeds(server):
    collection = HttpClient(port=server.port).create_collection("hashed", embedding_function=HashEmbedding(4))
    answer = httpx.post(server.url + API + f"/collections/{collection.id}/add", json={"ids": ["a"], "documents": ["text"]})
    assert answer.status_code == 409 and "does not embed" in answer.json()["message"]
    assert answer.json()["error"] == "embeddings_needed" and answer.json()["texts"] == ["text"]
    answer = httpx.post(server.url + API + f"/collections/{collection.id}/query", json={"query_texts": ["text"]})
    assert answer.status_code == 400 and "does not embed" in answer.json()["message"]
    assert collection.count() == 0
    described = httpx.get(server.url + API + "/collections/hashed").json()
    assert described["embedding_function"] == {"name": "test-server-hash", "config": {"dim": 4}}


def test_error_codes_and_statuses(server, seeded):
    missing = httpx.get(server.url + API + "/collections/nope-nope")
    assert (missing.status_code, missing.json()["error"]) == (404, "collection_not_found")
    exists = httpx.post(server.url + API + "/collections", json={"name": "seeded"})
    assert (exists.status_code, exists.json()["error"]) == (409, "collection_exists")
    duplicate = httpx.post(server.url + API + f"/collections/{seeded.id}/upsert",
                           json={"ids": ["a", "a"], "embeddings": [[1.0, 2.0]] * 2})
    assert (duplicate.status_code, duplicate.json()["error"]) == (400, "duplicate_id")


def test_oversized_body_is_413_and_changes_nothing(server, seeded):
    before = snapshot(seeded)
    ids = [f"big{i}" for i in range(20_000)]
    embeddings = [[0.123456789, 0.987654321]] * len(ids)
    body = json.dumps({"ids": ids, "embeddings": embeddings}).encode()
    assert len(body) > 0.5 * 2**20
    answer = httpx.post(server.url + API + f"/collections/{seeded.id}/add", content=body,
                        headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "--max-body-mb" in answer.json()["message"]
    with pytest.raises(InvalidArgumentError, match="limit"):
        seeded.add(ids=ids, embeddings=embeddings)
    assert snapshot(seeded) == before
    assert server.alive()


def test_auth_token(tmp_path):
    with running_server(str(tmp_path / "db"), token="s3cret") as srv:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            for path in (API + "/heartbeat", API + "/collections", "/docs", "/openapi.json"):
                answer = httpx.get(srv.url + path, headers=headers)
                assert answer.status_code == 401, (path, headers)
        assert httpx.post(srv.url + API + "/collections", json={"name": "abc"}).status_code == 401
        with pytest.raises(UnauthorizedError, match="401"):
            HttpClient(port=srv.port).list_collections()
        client = HttpClient(port=srv.port, headers={"Authorization": "Bearer s3cret"})
        client.create_collection("abc", embedding_function=None).add(ids="a", embeddings=[1.0, 2.0])
        assert client.get_collection("abc").count() == 1
        assert httpx.get(srv.url + "/docs", headers=srv.headers).status_code == 200


def test_data_survives_a_restart(tmp_path):
    path = str(tmp_path / "db")
    with running_server(path) as srv:
        collection = HttpClient(port=srv.port).create_collection("kept", embedding_function=None)
        collection.add(ids=[str(i) for i in range(50)], embeddings=[[float(i), 1.0] for i in range(50)])
    with running_server(path) as srv:
        collection = HttpClient(port=srv.port).get_collection("kept")
        assert collection.count() == 50
        assert collection.query(query_embeddings=[[7.0, 1.0]], n_results=1)["ids"] == [["7"]]


WORKER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from vectordb.http_backend import HttpClient

    port, worker = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(worker)
    collection = HttpClient(port=port).get_collection("shared")
    ids = [f"w{worker}-{i}" for i in range(200)]
    data = rng.random((200, 16), dtype=np.float32)
    for start in range(0, 200, 25):
        collection.add(ids=ids[start:start + 25], embeddings=data[start:start + 25],
                       metadatas=[{"worker": worker}] * 25)
        result = collection.query(query_embeddings=data[start], n_results=1)
        assert result["ids"] == [[ids[start]]], result
    mine = collection.get(where={"worker": worker})["ids"]
    assert sorted(mine) == sorted(ids), len(mine)
    print("ok")
    """
)


def test_many_client_processes_at_once(server):
    HttpClient(port=server.port).create_collection("shared", metadata={"hnsw:space": "l2"}, embedding_function=None)
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(server.port), str(w)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=subprocess_env(), cwd=ROOT)
        for w in range(3)
    ]
    for process in workers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0 and out.strip() == "ok", err
    collection = HttpClient(port=server.port).get_collection("shared")
    assert collection.count() == 600
    for w in range(3):
        assert len(collection.get(where={"worker": w})["ids"]) == 200


@pytest.mark.parametrize("depth", [300, 20_000])
def test_deeply_nested_filters_are_a_400_and_change_nothing(server, seeded, depth):
    before = snapshot(seeded)
    nested = '{"$and": [' * depth + '{"k": 1}' + ', {"k": 2}]}' * depth
    for action in ("get", "delete", "query"):
        extra = ', "query_embeddings": [[0.1, 0.2]]' if action == "query" else ""
        answer = httpx.post(server.url + API + f"/collections/{seeded.id}/{action}",
                            content='{"where": ' + nested + extra + "}", headers={"content-type": "application/json"})
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_argument", answer.text
        if depth == 300:  # parsed as JSON, refused by vectordb's filter parser
            assert answer.json()["message"] == "where: $and / $or nested too deep (the limit is 64 levels)"
        else:  # deeper than Python's JSON parser goes
            assert answer.json()["message"].startswith("the request body cannot be parsed as JSON")
    assert snapshot(seeded) == before


@pytest.mark.parametrize("config, message", [
    ("[" * 3_000 + "]" * 3_000, "nested too deep (the limit is 32 levels)"),
    ('{"a":' * 3_000 + "1" + "}" * 3_000, "nested too deep (the limit is 32 levels)"),
    ("[1, 2]", "expected a JSON object, got list"),
    ("{not json", "not JSON"),
])
def test_a_bad_embedding_function_config_parameter_is_a_400(server, seeded, config, message):
    answer = httpx.get(server.url + API + f"/collections/{seeded.name}",
                       params={"embedding_function": "x", "embedding_function_config": config})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_argument"
    assert message in answer.json()["message"]


def test_a_slow_request_on_one_collection_does_not_hold_up_another_client(tmp_path):
    """Two HttpClients of one `vectordb serve`: while one waits for a slow query batch on
    ``big`` (20,000 records searched with a large ef), the other's query on ``small``
    is answered in a small share of that time, before the batch ends."""
    with running_server(str(tmp_path / "db")) as srv:
        first, second = HttpClient(port=srv.port, timeout=300), HttpClient(port=srv.port, timeout=300)
        rng = np.random.default_rng(0)
        big = first.create_collection("big", metadata={"hnsw:search_ef": 1000}, embedding_function=None)
        for start in range(0, 20_000, 5000):
            big.add(ids=[f"b{i}" for i in range(start, start + 5000)], embeddings=rng.standard_normal((5000, 32)))
        small = second.create_collection("small", embedding_function=None)
        small.add(ids=[f"s{i}" for i in range(300)], embeddings=rng.standard_normal((300, 32)))
        probe = rng.standard_normal((1, 32))
        alone = small.query(query_embeddings=probe, n_results=3)

        def batch(n: int):
            queries = np.random.default_rng(n).standard_normal((n, 32))
            return lambda: big.query(query_embeddings=queries, n_results=10, include=["distances"])

        timing = beside(batch(sized(batch, 2.0, start=200)), lambda: small.query(query_embeddings=probe, n_results=3))
        assert timing.quick_ended_first, timing
        assert timing.quick_s < timing.slow_s / 5, timing
        assert timing.quick_result["ids"] == alone["ids"]
        assert second.check().ok
