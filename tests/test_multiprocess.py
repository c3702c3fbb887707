"""Many processes on one store, each doing the damage for real.

- several writer processes and a reader, any of them SIGKILLed at random moments: every
  acknowledged call stays, no call is half there, queries equal exact search, check() is clean;
- two clients in two processes follow one model: after every acknowledged write, reads in both
  processes (get, count, vector, text and hybrid queries) equal the model;
- a uvicorn app run with ``--workers 4``: every worker serves, and every acknowledged add is
  seen by every worker;
- a notebook-style client left open beside a script that re-indexes the collection.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import pytest

import vectordb
from vectordb.errors import CollectionNotFoundError

sys.path.insert(0, os.path.dirname(__file__))
import crash_writer  # noqa: E402
from test_crash import WRITER, Model, apply, read_log, resolve  # noqa: E402
from test_text_index import oracle  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ROOT}


def _start(args: List[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, **kwargs)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


# -- SIGKILL of any of several processes ----------------------------------------------

READER = """
import sys, numpy as np, vectordb
sys.path.insert(0, sys.argv[2])
import crash_writer
client = vectordb.PersistentClient(sys.argv[1])
col = crash_writer.collection_of(client)
rng = np.random.default_rng(int(sys.argv[3]))
print("ready", flush=True)
while True:
    got = col.query(rng.standard_normal((1, crash_writer.DIM)), n_results=10, include=["metadatas", "documents"])
    for i, meta, doc in zip(got["ids"][0], got["metadatas"][0], got["documents"][0]):
        assert doc == f"{i}@{meta['call']}", (i, meta, doc)  # never half a write
    text = col.query(query_texts="r1 r2 r3", mode="text", n_results=5, include=["metadatas", "documents"])
    for i, meta, doc in zip(text["ids"][0], text["metadatas"][0], text["documents"][0]):
        assert doc == f"{i}@{meta['call']}", (i, meta, doc)
"""

WRITERS = ("w0", "w1", "w2")


def _found(path: str) -> Dict[str, Model]:
    """Each writer's records as stored, checked whole; queries checked against exact search."""
    with vectordb.PersistentClient(path) as client:
        col = crash_writer.collection_of(client)
        got = col.get(include=["embeddings", "metadatas", "documents"])
        found: Dict[str, Model] = {w: {} for w in WRITERS}
        for record_id, emb, meta, doc in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"]):
            assert doc == f"{record_id}@{meta['call']}"
            np.testing.assert_allclose(emb, crash_writer.vector(meta["call"], record_id), rtol=0, atol=0)
            found[record_id[:2]][record_id] = meta["call"]
        if got["ids"]:
            vectors = np.asarray(got["embeddings"], dtype=np.float32)
            queries = np.random.default_rng(len(got["ids"])).standard_normal((4, crash_writer.DIM))
            k = min(10, len(got["ids"]))
            exact = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
            result = col.query(queries, n_results=k, include=["distances"])
            for q in range(len(queries)):
                expected = np.argsort(exact[q])[:k]
                assert np.allclose(result["distances"][q], exact[q][expected], rtol=1e-4, atol=1e-4), _query_diff(
                    path, result["ids"][q], result["distances"][q], [got["ids"][i] for i in expected],
                    exact[q][expected], dict(zip(got["ids"], exact[q])))
            docs = dict(zip(got["ids"], got["documents"]))
            text = col.query(query_texts="r1 r7", mode="text", n_results=10)
            assert text["ids"][0] == [i for i, _ in oracle(docs, "r1 r7")[:10]]
        report = client.check()
        assert report.ok, str(report)
    return found


STORED = """
import json, sys, vectordb
with vectordb.PersistentClient(sys.argv[1]) as client:
    col = client.get_collection("crash", embedding_function=None)
    got = col.get(ids=json.loads(sys.argv[2]), include=["metadatas"])
    print(json.dumps(dict(zip(got["ids"], got["metadatas"]))))
"""


def _query_diff(path: str, ids, distances, expected_ids, expected, exact_of: Dict[str, float]) -> str:
    """What a query found that exact search did not, id by id, with its exact distance and its record
    as a fresh process reads it (this process's record cache could be the stale part)."""
    lines = [f"found {[(i, round(float(d), 6)) for i, d in zip(ids, distances)]}",
             f"exact {[(i, round(float(d), 6)) for i, d in zip(expected_ids, expected)]}"]
    extra = [(i, float(d)) for i, d in zip(ids, distances) if i not in expected_ids]
    done = subprocess.run([sys.executable, "-c", STORED, path, json.dumps([i for i, _ in extra])],
                          capture_output=True, text=True, timeout=120)
    lines.append(f"a fresh process reads {done.stdout.strip() or done.stderr[-500:]} for {[i for i, _ in extra]}")
    lines += [f"{i}: distance {d:.6f}, exact {exact_of.get(i)}" for i, d in extra]
    return "\n".join(lines)


def _records_of(path: str, writer: str) -> Model:
    """The records of one writer, read by another process while the other writers go on."""
    with vectordb.PersistentClient(path) as client:
        got = crash_writer.collection_of(client).get(include=["metadatas", "documents"])
    found: Model = {}
    for record_id, meta, doc in zip(got["ids"], got["metadatas"], got["documents"]):
        assert doc == f"{record_id}@{meta['call']}"
        if record_id.startswith(writer):
            found[record_id] = meta["call"]
    return found


def _history(exc: AssertionError, log: str, model: Model, found: Model) -> str:
    """The failure, with the calls of the writer's log that touched the first differing ids."""
    lines = [str(exc)[:500]]
    with open(log) as f:
        entries = [json.loads(line) for line in f if line.strip()]
    for record_id in sorted({i for i, _ in set(found.items()) ^ set(model.items())})[:4]:
        calls = [(e["intent"], e["op"]) for e in entries if "intent" in e and record_id in e["ids"]][-5:]
        lines.append(f"{record_id}: stored {found.get(record_id)}, acknowledged {model.get(record_id)}, calls {calls}")
    return "\n".join(lines)


def test_sigkill_of_any_process_sharing_a_store_loses_nothing_acknowledged(tmp_path):
    store = str(tmp_path / "db")
    logs = {w: str(tmp_path / f"{w}.jsonl") for w in WRITERS}
    rng = random.Random(99)
    models: Dict[str, Model] = {w: {} for w in WRITERS}
    offsets = {w: 0 for w in WRITERS}
    next_call = {w: 0 for w in WRITERS}
    running: Dict[str, subprocess.Popen] = {}
    acked = 0

    def start(name: str) -> None:
        if name == "reader":
            proc = _start(["-c", READER, store, os.path.dirname(__file__), str(rng.randrange(1 << 30))])
        else:
            proc = _start([WRITER, store, logs[name], str(rng.randrange(1 << 30)), str(next_call[name]), name])
        running[name] = proc

    def settle(name: str) -> None:
        """The killed writer's log: its acknowledged calls, and the one it may have cut short."""
        nonlocal acked
        entries, offsets[name] = read_log(logs[name], offsets[name])
        pending: Optional[dict] = None
        for entry in entries:
            if "intent" in entry:
                pending, next_call[name] = entry, entry["intent"] + 1
            else:
                models[name] = apply(models[name], pending)
                pending = None
                acked += 1
        return pending

    pendings: Dict[str, Optional[dict]] = {w: None for w in WRITERS}
    try:
        for cycle in range(8):
            started = [name for name in (*WRITERS, "reader") if name not in running]
            for name in started:
                start(name)
            for name in started:
                line = running[name].stdout.readline()
                assert line.strip() == b"ready", (name, "\n".join(l for l in running[name].stderr.read().decode().splitlines() if "left unchanged" not in l and "were skipped" not in l)[-4000:])
            time.sleep(rng.uniform(0.3, 1.5))
            for name, proc in running.items():
                assert proc.poll() is None, (name, proc.stderr.read().decode()[-3000:])  # the reader's checks hold
            victim = rng.choice([*WRITERS, "reader"])
            running[victim].send_signal(signal.SIGKILL)
            _stop(running.pop(victim))
            if victim != "reader":  # its records stand still now: they must be its acknowledged calls
                pending = settle(victim)
                found = _records_of(store, victim)
                try:
                    models[victim] = resolve(models[victim], pending, found)
                except AssertionError as exc:
                    raise AssertionError(_history(exc, logs[victim], models[victim], found)) from None
        for name in list(running):
            running[name].send_signal(signal.SIGKILL)
            _stop(running.pop(name))
            if name != "reader":
                pendings[name] = settle(name)
        found = _found(store)  # opened after every process died: recovers by itself
        for w in WRITERS:
            resolve(models[w], pendings[w], found[w])
        assert acked > 30, acked
    finally:
        for proc in running.values():
            _stop(proc)


# -- two processes, one model ---------------------------------------------------------

PEER = """
import json, sys, vectordb
client = vectordb.PersistentClient(sys.argv[1])
col = client.get_or_create_collection("model", embedding_function=None, metadata={"hnsw:search_ef": 200})
print("ready", flush=True)
for line in sys.stdin:
    op, kwargs = json.loads(line)
    if op == "get":
        out = col.get(include=["metadatas", "documents", "embeddings"])
        out = {"ids": out["ids"], "metadatas": out["metadatas"], "documents": out["documents"],
               "embeddings": [list(map(float, e)) for e in out["embeddings"]]}
    elif op == "query":
        out = col.query(**kwargs, include=["distances"])
    elif op == "text":
        out = col.query(**kwargs, mode="text")
    elif op == "count":
        out = col.count()
    else:
        getattr(col, op)(**kwargs)
        out = None
    print(json.dumps(out), flush=True)
"""


class Peer:
    """A client in another process, driven over its stdin."""

    def __init__(self, store: str) -> None:
        self.proc = _start(["-c", PEER, store], stdin=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == b"ready", self.proc.stderr.read().decode()[-3000:]

    def __call__(self, op: str, **kwargs):
        self.proc.stdin.write((json.dumps([op, kwargs]) + "\n").encode())
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read().decode()[-3000:]
        return json.loads(line)


class Local:
    """The same calls on a client of this process."""

    def __init__(self, store: str) -> None:
        self.client = vectordb.PersistentClient(store)
        self.col = self.client.get_or_create_collection("model", embedding_function=None,
                                                        metadata={"hnsw:search_ef": 200})

    def __call__(self, op: str, **kwargs):
        col = self.col
        if op == "get":
            out = col.get(include=["metadatas", "documents", "embeddings"])
            return {"ids": out["ids"], "metadatas": out["metadatas"], "documents": out["documents"],
                    "embeddings": [list(map(float, e)) for e in out["embeddings"]]}
        if op == "query":
            return json.loads(json.dumps(col.query(**kwargs, include=["distances"])))
        if op == "text":
            return json.loads(json.dumps(col.query(**kwargs, mode="text")))
        if op == "count":
            return col.count()
        getattr(col, op)(**kwargs)
        return None


def _check_reads(side, model: Dict[str, tuple], rng: random.Random) -> None:
    got = side("get")
    assert sorted(got["ids"]) == sorted(model)
    for i, meta, doc, emb in zip(got["ids"], got["metadatas"], got["documents"], got["embeddings"]):
        assert (meta, doc) == (model[i][0], model[i][1])
        np.testing.assert_allclose(emb, model[i][2], rtol=1e-6)
    assert side("count") == len(model)
    if not model:
        return
    query = [rng.uniform(-1, 1) for _ in range(4)]
    k = min(5, len(model))
    out = side("query", query_embeddings=[query], n_results=k)
    exact = sorted(float(np.sum((np.asarray(v[2], np.float32) - np.asarray(query, np.float32)) ** 2))
                   for v in model.values())
    np.testing.assert_allclose(out["distances"][0], exact[:k], rtol=1e-4, atol=1e-4)
    word = rng.choice(["alpha", "beta", "gamma", "delta"])
    text = side("text", query_texts=[word], n_results=k)
    docs = {i: v[1] for i, v in model.items()}
    assert text["ids"][0] == [i for i, _ in oracle(docs, word)[:k]]


def test_two_processes_follow_one_model(tmp_path):
    store = str(tmp_path / "db")
    local = Local(store)
    peer = Peer(store)
    rng = random.Random(5)
    model: Dict[str, tuple] = {}
    words = ["alpha", "beta", "gamma", "delta", "omega"]
    try:
        for step in range(60):
            side = rng.choice([local, peer])
            op = rng.choice(["add", "upsert", "update", "delete"])
            ids = [f"id{rng.randrange(40)}" for _ in range(rng.randint(1, 6))]
            ids = list(dict.fromkeys(ids))
            if op == "delete":
                side("delete", ids=ids)
                for i in ids:
                    model.pop(i, None)
            else:
                rows = {i: ({"step": step}, " ".join(rng.sample(words, 2)), [rng.uniform(-1, 1) for _ in range(4)])
                        for i in ids}
                side(op, ids=ids, metadatas=[rows[i][0] for i in ids], documents=[rows[i][1] for i in ids],
                     embeddings=[rows[i][2] for i in ids])
                for i in ids:
                    if op == "upsert" or (op == "add" and i not in model) or (op == "update" and i in model):
                        model[i] = rows[i]
            for reader in (local, peer):  # read after acknowledge, in both processes
                _check_reads(reader, model, rng)
    finally:
        peer.proc.stdin.close()
        _stop(peer.proc)
        local.client.close()
    with vectordb.PersistentClient(store) as client:
        assert client.check().ok


# -- a uvicorn app with four workers --------------------------------------------------

APP = """
import os, vectordb
from fastapi import FastAPI
client = vectordb.PersistentClient(os.environ["STORE"])
col = client.get_or_create_collection("web", embedding_function=None)
app = FastAPI()

@app.post("/add/{record_id}")
def add(record_id: str):
    col.add(ids=[record_id], embeddings=[[1.0, float(len(record_id))]])
    return {"pid": os.getpid()}

@app.get("/has/{record_id}")
def has(record_id: str):
    return {"pid": os.getpid(), "found": col.get(ids=[record_id])["ids"] == [record_id], "count": col.count()}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_uvicorn_with_four_workers_serves_from_every_worker_and_sees_every_write(tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("uvicorn")
    (tmp_path / "webapp.py").write_text(APP)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "webapp:app", "--workers", "4", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**ENV, "STORE": str(tmp_path / "db"), "PYTHONPATH": f"{ROOT}:{tmp_path}"})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/has/nothing", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-3000:]
                time.sleep(0.2)
        pids = set()
        for n in range(120):
            with httpx.Client(timeout=30) as fresh:  # a new connection each time: any worker may answer
                added = fresh.post(f"{base}/add/r{n}")
            assert added.status_code == 200, added.text
            pids.add(added.json()["pid"])
            for _ in range(2):
                with httpx.Client(timeout=30) as fresh:
                    seen = fresh.get(f"{base}/has/r{n}").json()
                assert seen["found"] and seen["count"] == n + 1, (n, seen)
                pids.add(seen["pid"])
        assert len(pids) == 4, pids  # every worker served
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    with vectordb.PersistentClient(str(tmp_path / "db")) as client:
        assert client.get_collection("web").count() == 120 and client.check().ok


# -- a notebook left open beside a script that re-indexes ------------------------------

REINDEX = """
import sys, vectordb
with vectordb.PersistentClient(sys.argv[1]) as client:
    client.delete_collection("notes")
    col = client.create_collection("notes", embedding_function=None)
    col.add(ids=["new1", "new2"], embeddings=[[0.0, 1.0], [0.1, 0.9]], documents=["fresh start", "fresh again"])
print("done", flush=True)
"""


def test_a_notebook_left_open_sees_a_script_reindex(tmp_path):
    store = str(tmp_path / "db")
    notebook = vectordb.PersistentClient(store)
    try:
        old = notebook.create_collection("notes", embedding_function=None)
        old.add(ids=["old"], embeddings=[[1.0, 0.0]], documents=["stale words"])
        assert old.query(query_texts="stale", mode="text", n_results=1)["ids"] == [["old"]]
        out = subprocess.run([sys.executable, "-c", REINDEX, store], capture_output=True, env=ENV, timeout=120)
        assert out.returncode == 0, out.stderr.decode()[-3000:]
        with pytest.raises(CollectionNotFoundError):
            old.count()  # the collection it held was deleted by the script
        fresh = notebook.get_collection("notes")
        assert sorted(fresh.get()["ids"]) == ["new1", "new2"]
        assert fresh.query(query_texts="fresh", mode="text", n_results=2)["ids"][0][0] in ("new1", "new2")
        assert fresh.query([0.0, 1.0], n_results=1, include=[])["ids"] == [["new1"]]
        hybrid = fresh.query(query_embeddings=[[0.0, 1.0]], query_texts="again", mode="hybrid", n_results=2)
        assert sorted(hybrid["ids"][0]) == ["new1", "new2"]
    finally:
        notebook.close()


# -- `vectordb serve` and the CLI beside an app ----------------------------------------


def test_the_server_and_the_cli_run_beside_an_app_process(tmp_path):
    from server_helpers import running_server

    store = str(tmp_path / "db")
    app = vectordb.PersistentClient(store)  # the app keeps its client open throughout
    try:
        mine = app.create_collection("shared", embedding_function=None)
        mine.add(ids=["app"], embeddings=[[1.0, 0.0]], documents=["from the app"])
        with running_server(store) as server:
            remote = vectordb.HttpClient(port=server.port).get_collection("shared")
            assert remote.count() == 1  # the server sees the app's write
            remote.add(ids=["http"], embeddings=[[0.0, 1.0]], documents=["from the server"])
            assert sorted(mine.get()["ids"]) == ["app", "http"]  # and the app sees the server's at once
            listed = subprocess.run([sys.executable, "-m", "vectordb", "ls", "--path", store, "--json"],
                                    capture_output=True, env=ENV, timeout=120)
            assert listed.returncode == 0, listed.stderr.decode()[-2000:]
            assert [(c["name"], c["count"]) for c in json.loads(listed.stdout)] == [("shared", 2)]
    finally:
        app.close()
