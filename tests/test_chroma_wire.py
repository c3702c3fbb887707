"""Chroma's own clients against ``vectordb serve``: Chroma's HTTP API v2 beside vectordb's /api/v1.

Two apps written for Chroma's server, tests/chroma_scripts/wire_app.py (chromadb's
Python HttpClient) and wire_app.mjs (the npm ``chromadb`` client under node), each run
once against Chroma's real server (``chroma run`` from /opt/chroma-venv) and once against
``vectordb serve``; their printed lines must be equal, save the few in
``KNOWN_DIFFERENCES`` (each says why). Token auth is checked with both clients too.
Where the oracle venv, node or npm is missing those tests are skipped, saying why; the
routes are always checked on vectordb's side with plain httpx requests.

For the JS client, ``npm install chromadb@3`` runs once into tests/.cache/chroma-js
(git-ignored); a later run reuses it. ``CHROMA_ORACLE_VENV`` names another chromadb venv.
"""

from __future__ import annotations

import base64
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import httpx
import pytest

import vectordb
from vectordb.config import Settings
from vectordb.http_backend import HttpClient as VectordbHttpClient

sys.path.insert(0, os.path.dirname(__file__))
from server_helpers import Server, free_port, running_server, serving_in_thread, stop  # noqa: E402

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "chroma_scripts"
ORACLE = Path(os.environ.get("CHROMA_ORACLE_VENV", "/opt/chroma-venv"))
ORACLE_PYTHON, CHROMA_RUN = ORACLE / "bin" / "python", ORACLE / "bin" / "chroma"
JS_CACHE = HERE / ".cache" / "chroma-js"
JS_MODULE = JS_CACHE / "node_modules" / "chromadb" / "dist" / "chromadb.mjs"
V2 = "/api/v2"
DB = V2 + "/tenants/default_tenant/databases/default_database"
TOKEN = "wire-s3cret"

KNOWN_DIFFERENCES: Dict[str, str] = {}
"""Lines of the Python app whose values may differ, each with why; all others must be equal. None at present:
index settings given as ``configuration`` stay out of the metadata and ``modify(metadata=...)`` replaces it,
as on Chroma's server."""


def _env() -> Dict[str, str]:
    return {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}


def _run(args: List[str], env: Dict[str, str], timeout: float = 180) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout, cwd=str(HERE))
    assert proc.returncode == 0, f"{args[-2:]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _compare(oracle: str, ours: str, known: Dict[str, str]) -> None:
    """Equal line for line, save the lines labelled in ``known`` (whose labels must still line up)."""
    theirs_lines, our_lines = oracle.splitlines(), ours.splitlines()
    assert [l.split(":")[0] for l in theirs_lines] == [l.split(":")[0] for l in our_lines]
    different = [(a, b) for a, b in zip(theirs_lines, our_lines) if a != b and a.split(":")[0] not in known]
    assert not different, "\n".join(f"chroma:   {a}\nvectordb: {b}" for a, b in different)


# -- servers ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def oracle_python() -> str:
    if not ORACLE_PYTHON.exists():
        pytest.skip(f"no chromadb venv at {ORACLE} (python -m venv {ORACLE} && {ORACLE}/bin/pip install chromadb==1.5.9)")
    return str(ORACLE_PYTHON)


@pytest.fixture(scope="session")
def chroma_url(oracle_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Chroma's real server, ``chroma run``, on a free loopback port for the session."""
    if not CHROMA_RUN.exists():
        pytest.skip(f"no {CHROMA_RUN} (the chromadb venv has no server)")
    folder = tmp_path_factory.mktemp("chroma-oracle")
    port = free_port()
    with open(folder / "chroma.log", "w") as log:
        process = subprocess.Popen([str(CHROMA_RUN), "run", "--path", str(folder / "db"), "--host", "127.0.0.1",
                                    "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=_env())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + V2 + "/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chroma run did not start:\n{(folder / 'chroma.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)


@pytest.fixture(scope="session")
def chroma_js() -> str:
    """The file URL of the npm chromadb client, installed once into tests/.cache/chroma-js."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed for Chroma's JS client")
    if not JS_MODULE.exists():
        JS_CACHE.mkdir(parents=True, exist_ok=True)
        (JS_CACHE / "package.json").write_text('{"name": "chroma-js-cache", "private": true}\n')
        proc = subprocess.run([npm, "install", "--no-audit", "--no-fund", "chromadb@3"], cwd=str(JS_CACHE),
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or not JS_MODULE.exists():
            pytest.skip(f"npm install chromadb@3 failed: {proc.stderr[-500:]}")
    return JS_MODULE.as_uri()


def _port(url: str) -> str:
    return url.rsplit(":", 1)[1]


@pytest.fixture
def vectordb_port(tmp_path: Path) -> Iterator[str]:
    """A fresh ``vectordb serve`` process for one app run."""
    with running_server(str(tmp_path / "db")) as server:
        yield str(server.port)


@pytest.fixture(scope="module")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``vectordb serve --auth-token TOKEN``."""
    with running_server(str(tmp_path_factory.mktemp("wire-auth") / "db"), token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """vectordb's app over an in-memory client, served in this process: the httpx tests' server."""
    with serving_in_thread(vectordb.Client()) as address:
        yield address


# -- Chroma's clients: the same app against Chroma and against vectordb -------------------------


def test_python_client_app_prints_the_same(oracle_python, chroma_url, vectordb_port):
    app = str(SCRIPTS / "wire_app.py")
    theirs = _run([oracle_python, app, _port(chroma_url)], _env())
    ours = _run([oracle_python, app, vectordb_port], _env())
    assert len(ours.splitlines()) >= 60
    _compare(theirs, ours, KNOWN_DIFFERENCES)


def test_js_client_app_prints_the_same(chroma_js, chroma_url, vectordb_port):
    env = {**_env(), "CHROMA_JS_MODULE": chroma_js}
    app = str(SCRIPTS / "wire_app.mjs")
    theirs = _run(["node", app, _port(chroma_url)], env)
    ours = _run(["node", app, vectordb_port], env)
    assert len(ours.splitlines()) >= 40
    _compare(theirs, ours, {})


def test_python_client_token_auth(oracle_python, token_server):
    out = _run([oracle_python, str(SCRIPTS / "wire_auth.py"), str(token_server.port), TOKEN], _env())
    assert out.splitlines() == [
        "bearer: ok, count 1", "x-chroma-token: ok, count 1", "headers: ok, count 1",
        "wrong: ChromaAuthError", "missing: ChromaAuthError",
    ]


def test_js_client_token_auth(chroma_js, token_server):
    env = {**_env(), "CHROMA_JS_MODULE": chroma_js}
    out = _run(["node", str(SCRIPTS / "wire_auth.mjs"), str(token_server.port), TOKEN], env)
    assert out.splitlines() == [
        "x-chroma-token: ok, count 1", "bearer: ok, count 1", "wrong: ChromaAuthError", "missing: ChromaAuthError",
    ]


# -- vectordb's side over plain HTTP (no oracle needed) --------------------------------------------


def _b64(vector: List[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _error(answer: httpx.Response, status: int, name: str) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == name, body
    return body["message"]


def _create(url: str, name: str, **body) -> Dict:
    answer = httpx.post(url + DB + "/collections", json={"name": name, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_system_tenant_and_database_routes(url):
    assert httpx.get(url + V2 + "/heartbeat").json()["nanosecond heartbeat"] > 0
    assert "nanosecond heartbeat" in httpx.get(url + V2).json()
    assert httpx.get(url + V2 + "/version").json() == vectordb.__version__
    assert httpx.get(url + V2 + "/pre-flight-checks").json() == {"max_batch_size": 5461,
                                                                  "supports_base64_encoding": True}
    assert httpx.get(url + V2 + "/auth/identity").json() == {
        "user_id": "", "tenant": "default_tenant", "databases": ["default_database"]}
    assert httpx.get(url + V2 + "/healthcheck").status_code == 200
    assert httpx.get(url + V2 + "/tenants/default_tenant").json()["name"] == "default_tenant"
    assert httpx.get(url + DB).json()["name"] == "default_database"
    assert [d["name"] for d in httpx.get(url + V2 + "/tenants/default_tenant/databases").json()] == ["default_database"]
    assert "not found" in _error(httpx.get(url + V2 + "/tenants/acme"), 404, "NotFoundError")
    _error(httpx.get(url + V2 + "/tenants/default_tenant/databases/other"), 404, "NotFoundError")
    _error(httpx.get(url + V2 + "/tenants/acme/databases/default_database/collections"), 404, "NotFoundError")
    _error(httpx.post(url + V2 + "/tenants", json={"name": "default_tenant"}), 409, "ChromaError")
    assert "one tenant" in _error(httpx.post(url + V2 + "/tenants", json={"name": "acme"}), 400,
                                  "InvalidArgumentError")
    _error(httpx.post(url + V2 + "/tenants/default_tenant/databases", json={"name": "more"}), 400,
           "InvalidArgumentError")
    _error(httpx.post(url + V2 + "/reset"), 403, "ChromaError")


def test_collection_lifecycle(url):
    made = _create(url, "life", metadata={"a": 1})
    assert set(made) >= {"id", "name", "configuration_json", "schema", "metadata", "dimension", "tenant", "database"}
    assert made["configuration_json"]["embedding_function"] is None and made["configuration_json"]["spann"] is None
    assert (made["tenant"], made["database"], made["metadata"], made["dimension"]) == (
        "default_tenant", "default_database", {"a": 1}, None)
    assert _error(httpx.post(url + DB + "/collections", json={"name": "life"}), 409, "ChromaError") == \
        "Collection [life] already exists"
    same = _create(url, "life", get_or_create=True, metadata={"b": 2})
    assert (same["id"], same["metadata"]) == (made["id"], {"a": 1})
    assert httpx.get(url + DB + "/collections/life").json()["id"] == made["id"]
    assert httpx.get(url + DB + f"/collections/by-id/{made['id']}").json()["name"] == "life"
    _error(httpx.get(url + DB + "/collections/by-id/not-a-uuid"), 400, "InvalidArgumentError")
    missing = "00000000-0000-0000-0000-000000000001"
    assert _error(httpx.get(url + DB + f"/collections/by-id/{missing}"), 404, "NotFoundError") == \
        f"Collection [{missing}] does not exist."
    _create(url, "life-two")
    names = [c["name"] for c in httpx.get(url + DB + "/collections").json()]
    assert {"life", "life-two"} <= set(names)
    assert len(httpx.get(url + DB + "/collections", params={"limit": 1, "offset": 1}).json()) == 1
    _error(httpx.get(url + DB + "/collections", params={"limit": -1}), 400, "InvalidArgumentError")
    assert httpx.get(url + DB + "/collections_count").json() == len(names)
    assert httpx.put(url + DB + f"/collections/{made['id']}", json={"new_name": "life-renamed",
                                                                     "new_metadata": {"c": 3}}).json() == {}
    assert httpx.get(url + DB + "/collections/life-renamed").json()["metadata"] == {"c": 3}
    _error(httpx.put(url + DB + f"/collections/{made['id']}", json={"new_name": "life-two"}), 409, "ChromaError")
    assert httpx.delete(url + DB + "/collections/life-renamed").json() == {}
    assert _error(httpx.delete(url + DB + "/collections/life-renamed"), 404, "NotFoundError") == \
        "Collection [life-renamed] does not exist"
    _error(httpx.post(url + DB + "/collections", json={"name": "x"}), 400, "InvalidArgumentError")
    _error(httpx.post(url + DB + "/collections", json={"name": "with-schema", "schema": {"keys": {}}}), 400,
           "InvalidArgumentError")


def test_embedding_function_entry_is_stored_not_run(url):
    known = {"type": "known", "name": "openai", "config": {"model_name": "text-embedding-3-small"}}
    made = _create(url, "ef-known", configuration={"hnsw": {"space": "cosine"}, "embedding_function": known})
    assert made["configuration_json"]["embedding_function"] == known
    assert made["configuration_json"]["hnsw"]["space"] == "cosine"
    assert httpx.get(url + DB + "/collections/ef-known").json()["configuration_json"]["embedding_function"] == known
    legacy = _create(url, "ef-legacy", configuration={"embedding_function": {"type": "legacy"}})
    assert legacy["configuration_json"]["embedding_function"] == {"type": "legacy"}
    default = _create(url, "ef-default", configuration={"hnsw": {"space": "l2"}, "spann": None,
                                                        "embedding_function": {"type": "known", "name": "default",
                                                                               "config": {}}})
    assert default["metadata"] is None, "a default setting sent unasked does not become metadata"
    assert default["configuration_json"]["hnsw"]["space"] == "l2"
    unnamed_space = _create(url, "ef-no-space", configuration={"embedding_function": known})
    assert unnamed_space["configuration_json"]["hnsw"]["space"] == "l2", "Chroma's server never asks the function"
    _error(httpx.post(url + DB + "/collections", json={"name": "ef-bad", "configuration": {
        "embedding_function": {"type": "mystery"}}}), 400, "InvalidArgumentError")
    # vectordb's own client (API v1) sees the same collection and its persisted function
    seen = httpx.get(url + "/api/v1/collections/ef-known").json()
    assert seen["embedding_function"] == {"name": "openai", "config": known["config"]}


def test_configuration_stays_out_of_the_metadata_and_modify_replaces_it(url):
    made = _create(url, "configured", metadata={"x": 1},
                   configuration={"hnsw": {"space": "cosine", "ef_search": 20}, "embedding_function": None})
    assert made["metadata"] == {"x": 1}, "as on Chroma's server: the index settings are configuration, not metadata"
    assert (made["configuration_json"]["hnsw"]["space"], made["configuration_json"]["hnsw"]["ef_search"]) == ("cosine", 20)
    assert httpx.put(url + DB + f"/collections/{made['id']}", json={"new_metadata": {"y": 2}}).json() == {}
    seen = httpx.get(url + DB + "/collections/configured").json()
    assert seen["metadata"] == {"y": 2}, "replaced, as chromadb 1.5.9 does"
    assert (seen["configuration_json"]["hnsw"]["space"], seen["configuration_json"]["hnsw"]["ef_search"]) == ("cosine", 20)
    assert httpx.put(url + DB + f"/collections/{made['id']}",
                     json={"new_configuration": {"hnsw": {"ef_search": 33}}}).json() == {}
    seen = httpx.get(url + DB + "/collections/configured").json()
    assert seen["metadata"] == {"y": 2} and seen["configuration_json"]["hnsw"]["ef_search"] == 33
    _error(httpx.put(url + DB + f"/collections/{made['id']}", json={"new_configuration": {"hnsw": {"space": "l2"}}}),
           400, "InvalidArgumentError")


def test_an_explicit_l2_space_is_kept():
    from vectordb.server.chroma_v2 import _configuration_in

    known = {"type": "known", "name": "sentence_transformer", "config": {"model_name": "all-MiniLM-L6-v2"}}
    assert _configuration_in({"hnsw": {"space": "l2"}, "embedding_function": known}) == {"hnsw": {"space": "l2"}}
    assert _configuration_in({"hnsw": {"space": "l2", "ef_search": 50, "ef_construction": 100}}) == {
        "hnsw": {"space": "l2", "ef_search": 50, "ef_construction": 100}}, "settings equal to vectordb's defaults too"
    assert _configuration_in({"embedding_function": known}) is None and _configuration_in(None) is None
    served = vectordb.Client()
    with serving_in_thread(served) as address:
        made = _create(address, "explicit-l2", configuration={"hnsw": {"space": "l2"}, "embedding_function": known})
    assert (made["metadata"], made["configuration_json"]["hnsw"]["space"]) == (None, "l2")
    # the collection records the l2 that was asked for (a configured setting), not only a default that a
    # function's default space (cosine for sentence_transformer) could stand in for
    col = served.get_collection("explicit-l2", embedding_function=None)
    assert (col.metadata, col.configuration["hnsw"]["space"]) == (None, "l2")
    assert col._info.metadata == {"hnsw:space": "l2", "hnsw:configured": ["hnsw:space"]}


def test_records(url):
    cid = _create(url, "records")["id"]
    path = url + DB + f"/collections/{cid}"
    assert httpx.post(path + "/add", json={
        "ids": ["a", "b"], "embeddings": [_b64([0.1, 0.2]), _b64([0.3, 0.7])],
        "documents": ["apple pie", "fox"], "metadatas": [{"tags": ["x", "y"], "n": 1}, None], "uris": None,
    }).status_code == 201
    assert httpx.post(path + "/add", json={"ids": ["c"], "embeddings": [[1, 0]]}).status_code == 201
    assert httpx.get(path + "/count").json() == 3
    got = httpx.post(path + "/get", json={"ids": ["a"], "include": ["embeddings", "uris", "documents"]}).json()
    assert got == {"ids": ["a"], "embeddings": [[0.1, 0.2]], "documents": ["apple pie"], "uris": [None],
                   "metadatas": None, "include": ["embeddings", "uris", "documents"]}
    assert httpx.post(path + "/get", json={"where": {"tags": {"$contains": "y"}}}).json()["ids"] == ["a"]
    assert httpx.post(path + "/get", json={"where_document": {"$regex": "^ap"}}).json()["ids"] == ["a"]
    assert httpx.post(path + "/get", json={"limit": 1, "offset": 1}).json()["ids"] == ["b"]
    found = httpx.post(path + "/query", json={"query_embeddings": [[1.0, 0.0]], "n_results": 2,
                                              "include": ["distances", "metadatas", "uris"]}).json()
    assert found["ids"] == [["c", "a"]] and found["uris"] == [[None, None]] and found["documents"] is None
    assert found["distances"][0][0] == 0.0 and found["include"] == ["distances", "metadatas", "uris"]
    assert httpx.post(path + "/upsert", json={"ids": ["c", "d"], "embeddings": [[0, 1], [1, 1]]}).json() == {}
    assert httpx.post(path + "/update", json={"ids": ["d"], "metadatas": [{"k": "v"}]}).json() == {}
    assert httpx.post(path + "/get", json={"ids": ["d"]}).json()["metadatas"] == [{"k": "v"}]
    assert httpx.post(path + "/delete", json={}).json() == {"deleted": 0}
    assert httpx.post(path + "/delete", json={"ids": ["d"]}).json() == {"deleted": 1}
    assert httpx.get(path + "/count").json() == 3
    assert "dimension of 2, got 3" in _error(httpx.post(path + "/add", json={"ids": ["z"], "embeddings": [[1, 2, 3]]}),
                                             400, "InvalidArgumentError")
    _error(httpx.post(path + "/query", json={"query_embeddings": [[1, 2, 3]]}), 400, "InvalidArgumentError")
    _error(httpx.post(path + "/add", json={"ids": ["z"]}), 422, "ChromaError")
    _error(httpx.post(path + "/get", json={"include": ["bogus"]}), 422, "ChromaError")
    _error(httpx.post(path + "/get", content=b"{not json", headers={"content-type": "application/json"}), 400,
           "InvalidArgumentError")
    _error(httpx.post(path + "/add", json={"ids": ["z"], "embeddings": ["%%%"]}), 400, "InvalidArgumentError")
    _error(httpx.post(path + "/add", json={"ids": ["z"], "embeddings": [[1, 0]], "uris": ["s3://x"]}), 400,
           "InvalidArgumentError")
    _error(httpx.post(path + "/add", json={"ids": ["z", "z"], "embeddings": [[1, 0], [0, 1]]}), 400, "DuplicateID")
    _error(httpx.post(path + "/get", json={"where": {"$bad": 1}}), 400, "InvalidArgumentError")
    gone = url + DB + "/collections/00000000-0000-0000-0000-000000000002"
    _error(httpx.post(gone + "/get", json={}), 404, "NotFoundError")
    _error(httpx.post(path + "/fork", json={"new_name": "forked"}), 501, "ChromaError")
    _error(httpx.post(path + "/search", json={"searches": []}), 501, "ChromaError")


def test_v1_and_v2_share_the_store(url):
    port = int(url.rsplit(":", 1)[1])
    ours = VectordbHttpClient(port=port).create_collection("shared-v1", embedding_function=None)
    ours.add(ids=["p"], embeddings=[[0.5, 0.25]], documents=["from v1"])
    model = httpx.get(url + DB + "/collections/shared-v1").json()
    assert (model["id"], model["dimension"]) == (ours.id, 2)
    answer = httpx.post(url + DB + f"/collections/{ours.id}/get", json={"include": ["documents", "embeddings"]})
    assert answer.json()["documents"] == ["from v1"] and answer.json()["embeddings"] == [[0.5, 0.25]]


def test_reset_when_allowed():
    client = vectordb.Client(settings=Settings(allow_reset=True))
    client.create_collection("doomed", embedding_function=None)
    with serving_in_thread(client) as address:
        assert httpx.post(address + V2 + "/reset").json() is True
        assert httpx.get(address + DB + "/collections_count").json() == 0


def test_token_auth_over_http(token_server):
    base = token_server.url
    assert httpx.get(base + V2 + "/heartbeat").status_code == 200, "open, as on Chroma's server"
    assert httpx.get(base + V2 + "/version").status_code == 200
    message = _error(httpx.get(base + DB + "/collections"), 401, "AuthError")
    assert "X-Chroma-Token" in message
    _error(httpx.get(base + DB + "/collections", headers={"X-Chroma-Token": "nope"}), 401, "AuthError")
    assert httpx.get(base + DB + "/collections", headers={"X-Chroma-Token": TOKEN}).status_code == 200
    assert httpx.get(base + DB + "/collections", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # vectordb's own API keeps its own rule: the bearer header only
    assert httpx.get(base + "/api/v1/heartbeat", headers={"X-Chroma-Token": TOKEN}).status_code == 401
    assert httpx.get(base + "/api/v1/heartbeat", headers=token_server.headers).status_code == 200


def test_openapi_lists_the_chroma_routes(url):
    paths = httpx.get(url + "/openapi.json").json()["paths"]
    assert V2 + "/tenants/{tenant}/databases/{database}/collections/{collection_id}/query" in paths
    assert "/api/v1/collections" in paths



def test_float32_values_are_written_shortest_as_chroma_does():
    import numpy as np

    from vectordb.server.chroma_shapes import f32_values

    rng = np.random.default_rng(3)
    values = np.concatenate([rng.normal(size=20000) * 10.0 ** rng.integers(-15, 15, size=20000),
                             [0.1, 0.7, 0.0, -0.0, 1e-45, 3.4e38, 16777217.0, np.inf]]).astype(np.float32)
    assert f32_values(values) == values.astype(str).astype(np.float64).tolist()  # numpy's shortest repr
    assert f32_values([[0.1, 0.2], [0.3, 0.5]]) == [[0.1, 0.2], [0.3, 0.5]] and f32_values([]) == []
