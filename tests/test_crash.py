"""Crash safety: a writer process killed with SIGKILL at random moments loses no
acknowledged call and never leaves half a batch; reopening recovers by itself.

Set VECTORDB_SOAK=1 for a long soak (many more kill/recover cycles).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest

import vectordb

sys.path.insert(0, os.path.dirname(__file__))
import crash_writer
from bm25_oracle import oracle

SOAK = os.environ.get("VECTORDB_SOAK") == "1"
CYCLES = 80 if SOAK else 10
WRITER = os.path.join(os.path.dirname(__file__), "crash_writer.py")

Model = Dict[str, int]
"""id -> the call number that last wrote the record."""


def apply(model: Model, entry: dict) -> Model:
    """The model after the call described by an ``intent`` log entry."""
    out = dict(model)
    call, op, ids = entry["intent"], entry["op"], entry["ids"]
    for record_id in ids:
        if op == "delete":
            out.pop(record_id, None)
        elif op == "upsert" or (op == "add" and record_id not in out) or (op == "update" and record_id in out):
            out[record_id] = call
    return out


def read_log(path: str, offset: int) -> Tuple[List[dict], int]:
    """Complete log lines from ``offset`` on (a torn last line is ignored)."""
    if not os.path.exists(path):
        return [], offset
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    return [json.loads(line) for line in data[:end].splitlines()], offset + end


def stored_state(path: str) -> Tuple[Model, dict]:
    """The records of the crash collection, checked to be whole; and the full get result."""
    with vectordb.PersistentClient(path) as client:
        collection = crash_writer.collection_of(client)
        got = collection.get(include=["embeddings", "metadatas", "documents"])
        model: Model = {}
        for record_id, emb, meta, doc in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"]):
            call = meta["call"]
            assert doc == f"{record_id}@{call}", f"{record_id}: document {doc!r} is not of call {call}"
            np.testing.assert_allclose(emb, crash_writer.vector(call, record_id), rtol=0, atol=0)
            model[record_id] = call
        check_queries(collection, got)
        check_text_queries(collection, got)
        report = client.check()
        assert report.ok, str(report)
    return model, got


def check_queries(collection, got: dict) -> None:
    """Queries, plain and filtered, return what exact search over the records returns."""
    if not got["ids"]:
        return
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    rng = np.random.default_rng(len(got["ids"]))
    queries = rng.standard_normal((5, crash_writer.DIM)).astype(np.float32)
    k = min(10, len(got["ids"]))
    exact = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    for where in (None, {"call": {"$gte": 0}}):
        result = collection.query(queries, n_results=k, where=where, include=["distances"])
        for q in range(len(queries)):
            expected = np.sort(exact[q])[:k]
            np.testing.assert_allclose(result["distances"][q], expected, rtol=1e-4, atol=1e-4, err_msg=f"where={where}")
            assert set(result["ids"][q]) <= set(got["ids"])


def check_text_queries(collection, got: dict) -> None:
    """Text queries after the kill rank exactly as BM25 over the stored documents: no stale or missing terms."""
    docs = dict(zip(got["ids"], got["documents"]))
    rng = np.random.default_rng(len(docs))
    picks = [got["documents"][i] for i in rng.integers(0, len(docs), 3)] if docs else []
    queries = ["r1", "r7 r19 r230", "r3 0 1 2"] + [doc.replace("@", " ") for doc in picks]
    for text in queries:
        result = collection.query(query_texts=text, mode="text", n_results=10)
        want = oracle(docs, text)[:10]
        assert result["ids"][0] == [i for i, _ in want], f"text query {text!r}"
        np.testing.assert_allclose(result["scores"][0], [s for _, s in want], rtol=1e-5, err_msg=text)


def run_writer(store: str, log: str, seed: int, first_call: int, kill_after: float) -> None:
    """Start the writer, let it work ``kill_after`` seconds past its start-up, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, WRITER, store, log, str(seed), str(first_call)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))},
    )  # this checkout's vectordb, not an installed one
    try:
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read().decode()[-3000:]
        time.sleep(kill_after)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


def resolve(acked: Model, pending: Optional[dict], found: Model) -> Model:
    """The stored state must be the acknowledged one, or that plus the whole cut-short call."""
    if found == acked:
        return acked
    assert pending is not None, "the store differs from every acknowledged call's effect"
    with_pending = apply(acked, pending)
    differing = sorted(set(found.items()) ^ set(with_pending.items()))[:10]
    assert found == with_pending, (
        f"lost or half-applied writes around cut-short call {pending['intent']} ({pending['op']}): {differing}"
    )
    return with_pending


def test_sigkill_during_writes_loses_nothing_acknowledged(tmp_path):
    store, log = str(tmp_path / "db"), str(tmp_path / "log.jsonl")
    rng = random.Random(1234)
    model: Model = {}
    offset, next_call, acked_calls = 0, 0, 0
    for cycle in range(CYCLES):
        run_writer(store, log, rng.randrange(1 << 30), next_call, kill_after=rng.uniform(0.05, 1.5))
        entries, offset = read_log(log, offset)
        pending = None
        for entry in entries:
            if "intent" in entry:
                pending = entry
                next_call = entry["intent"] + 1
            else:
                assert entry["done"] == pending["intent"]
                model = apply(model, pending)
                pending = None
                acked_calls += 1
        found, _ = stored_state(store)
        model = resolve(model, pending, found)
    assert acked_calls > CYCLES, "the writer should have acknowledged many calls"


def test_recovery_rebuilds_index_from_database_alone(tmp_path):
    """With the index files gone after a kill, the store still answers as before."""
    store, log = str(tmp_path / "db"), str(tmp_path / "log.jsonl")
    run_writer(store, log, 7, 0, kill_after=1.0)
    before, got = stored_state(store)
    shutil.rmtree(os.path.join(store, "index"))
    shutil.rmtree(os.path.join(store, "text"))
    after, got_after = stored_state(store)
    assert after == before and got_after["ids"] == got["ids"]


def test_duckdb_syncs_its_log_on_commit(tmp_path):
    """A commit is on disk when the call returns: DuckDB fdatasyncs its write-ahead log."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    script = (
        "import vectordb,os\n"
        f"c = vectordb.PersistentClient({str(tmp_path / 'db')!r})\n"
        "col = c.create_collection('sync', embedding_function=None)\n"
        "os.write(2, b'BEGIN-ADD\\n')\n"
        "col.add(['a'], [[1.0, 2.0]])\n"
        "os.write(2, b'END-ADD\\n')\n"
        "os._exit(0)\n"
    )
    trace = tmp_path / "trace.txt"
    done = subprocess.run([strace, "-f", "-e", "trace=write,fsync,fdatasync", "-o", str(trace),
                           sys.executable, "-c", script], capture_output=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        pytest.skip(f"strace cannot trace here: {done.stderr.decode()[-300:]}")
    text = trace.read_text()
    during = text[text.index("BEGIN-ADD"): text.index("END-ADD")]
    assert "fdatasync(" in during or "fsync(" in during
