"""Recovery after an unclean end is cheap: the first query does not wait for a replay.

A writer child adds, updates and deletes records after the index was last saved, and is
killed with SIGKILL (or drops its client without ``close()`` and ends with ``os._exit``).
On reopen the saved index is loaded and the records written since (the tail) are searched
exactly while a worker thread inserts them into the graph. These tests hold that worker
back (its ``start`` is deferred) to see the state a first query meets, and check that
answers equal exact search over the records at every step, through the graph's own
paths (the engine's ``SearchPolicy`` lowers the exact-search thresholds so that plain and
filtered queries go through hnswlib), with writes, deletes, compaction and close in
the middle of a catch-up.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import vectordb
from vectordb.engine import catchup as catchup_module
from vectordb.engine.structure import InsertPolicy, SavePolicy
from vectordb.index.search import SearchPolicy

DIM = 8
BASE = 2500  # saved with the index on close
TAIL_NEW = 2000  # added after, never saved
UPDATED = range(0, 600, 2)  # records of the saved index whose vectors change after the save
DELETED = [f"b{i}" for i in range(1, 400, 4)] + [f"t{i}" for i in range(0, 200, 5)]

WRITER = """
import sys, time
import numpy as np
import vectordb
path, end = sys.argv[1], sys.argv[2]
client = vectordb.PersistentClient(path)
col = client.get_collection("docs")
rng = np.random.default_rng(1)
for start in range(0, {tail}, 200):  # one write each: a seq each
    col.add(ids=[f"t{{i}}" for i in range(start, start + 200)],
            embeddings=rng.standard_normal((200, {dim})).astype(np.float32),
            metadatas=[{{"group": i % 10}} for i in range(start, start + 200)])
updated = [f"b{{i}}" for i in {updated}]
col.update(ids=updated, embeddings=rng.standard_normal((len(updated), {dim})).astype(np.float32))
col.delete(ids={deleted})
if end == "drop":
    import gc, os
    del col, client
    gc.collect()
    os._exit(0)
print("ready", flush=True)
time.sleep(120)
""".format(tail=TAIL_NEW, dim=DIM, updated=list(UPDATED), deleted=DELETED)


def _base(path: str) -> None:
    rng = np.random.default_rng(0)
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", metadata={"hnsw:search_ef": 400}, embedding_function=None)
        col.add(ids=[f"b{i}" for i in range(BASE)], embeddings=rng.standard_normal((BASE, DIM)).astype(np.float32),
                metadatas=[{"group": i % 10} for i in range(BASE)])


def _crash(path: str, end: str) -> None:
    """Run the writer on ``path``; ``end`` is ``kill`` (SIGKILL once it is done) or ``drop``."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER), path, end], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if end == "kill":
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-3000:]
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        assert proc.returncode == (-signal.SIGKILL if end == "kill" else 0), proc.stderr.read().decode()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()


GRAPH_PATHS = SearchPolicy(exact_collection_max=100, exact_search_max=100)
"""Plain and wide filtered queries go through the graph (not exact search) at these sizes."""


def graph_paths(client) -> None:
    """Set :data:`GRAPH_PATHS` on the client's engine (before its first query loads an index)."""
    client.backend.engine.indexes.search_policy = GRAPH_PATHS


@pytest.fixture
def held(monkeypatch):
    """The catch-up worker does not start until ``release()`` is called (then it runs as usual)."""
    real_start = catchup_module.CatchUp.start
    monkeypatch.setattr(catchup_module.CatchUp, "start", lambda self: None)

    def release() -> None:
        monkeypatch.setattr(catchup_module.CatchUp, "start", real_start)

    return release


@pytest.fixture(params=["kill", "drop"])
def crashed(request, tmp_path) -> str:
    """A store whose saved index lacks the writer's changes: killed with SIGKILL, or dropped unclosed."""
    path = str(tmp_path / "db")
    _base(path)
    _crash(path, request.param)
    return path


def _saved_seq(path: str, collection_id: str) -> int:
    with open(os.path.join(path, "index", collection_id, "meta.json")) as f:
        return json.load(f)["seq"]


def assert_exact(col, seed: int = 0) -> None:
    """Queries (plain, wide and narrow filters) equal exact search over the stored records."""
    got = col.get(include=["embeddings", "metadatas"])
    vectors = np.asarray(got["embeddings"], dtype=np.float64)
    groups = np.asarray([m["group"] for m in got["metadatas"]])
    queries = np.random.default_rng(seed).standard_normal((6, DIM)).astype(np.float32)
    exact = ((queries[:, None, :].astype(np.float64) - vectors[None]) ** 2).sum(-1)
    for where, members in ((None, np.ones(len(groups), bool)), ({"group": {"$lt": 7}}, groups < 7),
                           ({"group": 3}, groups == 3)):
        result = col.query(queries, n_results=10, where=where, include=["distances", "embeddings"])
        for q in range(len(queries)):
            masked = np.where(members, exact[q], np.inf)
            order = np.argsort(masked, kind="stable")[:10]
            np.testing.assert_allclose(result["distances"][q], masked[order], rtol=1e-4, atol=1e-5,
                                       err_msg=f"where={where}")
            assert result["ids"][q] == [got["ids"][i] for i in order], f"where={where}"
            np.testing.assert_allclose(result["embeddings"][q], vectors[order], rtol=1e-6)


def test_first_query_answers_exactly_before_the_tail_is_in_the_graph(crashed, held):
    with vectordb.PersistentClient(crashed) as client:
        graph_paths(client)
        col = client.get_collection("docs")
        indexes = client.backend.engine.indexes
        assert_exact(col)
        tail = TAIL_NEW + len(UPDATED) - sum(d.startswith("t") for d in DELETED)
        assert indexes.pending(col.id) == tail, "the first query was answered with the whole tail still pending"
        graph = indexes.loaded(col.id)
        assert graph.count == BASE - sum(d.startswith("b") for d in DELETED), "deletions apply at once"
        held()
        indexes.wait()
        assert indexes.pending(col.id) == 0 and indexes.catch_up_of(col.id) is None
        assert graph.count == col.count() and indexes.loaded(col.id) is graph
        assert_exact(col, seed=1)
        report = client.check()
        assert report.ok, str(report)


def test_writes_deletes_and_updates_during_a_catch_up_are_seen(crashed, held):
    rng = np.random.default_rng(7)
    with vectordb.PersistentClient(crashed) as client:
        graph_paths(client)
        col = client.get_collection("docs")
        indexes = client.backend.engine.indexes
        col.query(rng.standard_normal(DIM).astype(np.float32), n_results=3)  # opens it: the tail is pending
        assert indexes.pending(col.id) > 0
        col.add(ids=[f"n{i}" for i in range(300)], embeddings=rng.standard_normal((300, DIM)).astype(np.float32),
                metadatas=[{"group": i % 10} for i in range(300)])
        # pending ones written again, graph ones changed, both deleted, a new one deleted
        again = [f"t{i}" for i in range(1, 100, 3)] + [f"b{i}" for i in range(1000, 1100)]
        col.upsert(ids=again, embeddings=rng.standard_normal((len(again), DIM)).astype(np.float32),
                   metadatas=[{"group": 3}] * len(again))
        col.delete(ids=[f"t{i}" for i in range(2, 60, 3)] + [f"b{i}" for i in range(2000, 2050)] + ["n5"])
        assert indexes.pending(col.id) > 300
        assert_exact(col)
        held()
        col.add(ids=["late"], embeddings=[[9.0] * DIM], metadatas=[{"group": 0}])  # starts the worker
        assert col.query([9.0] * DIM, n_results=1, include=[])["ids"] == [["late"]]
        indexes.wait()
        assert indexes.pending(col.id) == 0
        assert_exact(col, seed=2)
        assert client.check().ok
    with vectordb.PersistentClient(crashed) as client:  # closed after the catch-up: nothing pending
        graph_paths(client)
        col = client.get_collection("docs")
        assert_exact(col, seed=3)
        assert client.backend.engine.indexes.pending(col.id) == 0


def test_close_during_a_catch_up_saves_what_is_in(crashed, monkeypatch):
    client = vectordb.PersistentClient(crashed)
    graph_paths(client)
    client.backend.engine.indexes.insertion = InsertPolicy(catch_up_chunk=100)
    client.backend.engine.indexes.policy = SavePolicy(min_changes=300)
    col = client.get_collection("docs")
    before = _saved_seq(crashed, col.id)
    col.query(np.zeros(DIM, dtype=np.float32), n_results=3)
    catchup = client.backend.engine.indexes.catch_up_of(col.id)
    while catchup.inserted < 500 and not catchup.done:
        threading.Event().wait(0.005)
    with catchup._turn():  # the worker pauses after its chunk in progress
        pending = catchup.pending
        assert 0 < pending
        client.close()  # stops the worker and saves the graph as covering what it holds
    assert catchup.done and not threading.enumerate().count(catchup._thread)
    saved = _saved_seq(crashed, col.id)
    assert saved > before
    with vectordb.PersistentClient(crashed) as client:
        graph_paths(client)
        col = client.get_collection("docs")
        col.query(np.zeros(DIM, dtype=np.float32), n_results=3)
        assert client.backend.engine.indexes.pending(col.id) < pending + 200  # + the rest of a write cut in two
        assert_exact(col)
        assert client.check().ok


def test_a_compaction_during_a_catch_up_rebuilds_from_the_records(crashed, held):
    with vectordb.PersistentClient(crashed) as client:
        graph_paths(client)
        col = client.get_collection("docs")
        col.query(np.zeros(DIM, dtype=np.float32), n_results=3)
        assert client.backend.engine.indexes.pending(col.id) > 0
        col.compact()
        assert client.backend.engine.indexes.pending(col.id) == 0
        assert_exact(col)
        assert client.check().ok


def test_a_store_never_saved_is_caught_up_and_saved_in_the_background(tmp_path, held):
    """A client dropped before its first save (fewer changes than SAVE_MIN_CHANGES) leaves no index file."""
    path = str(tmp_path / "db")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import gc, os, numpy as np, vectordb
        col = vectordb.PersistentClient({path!r}).create_collection("docs", embedding_function=None)
        vectors = np.random.default_rng(0).standard_normal((3000, {DIM}))
        col.add(ids=[f"r{{i}}" for i in range(3000)], embeddings=vectors,
                metadatas=[{{"group": i % 10}} for i in range(3000)])
        del col
        gc.collect()
        os._exit(0)
    """)], env=dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(sys.path)), capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert not os.path.exists(os.path.join(path, "index")) or not os.listdir(os.path.join(path, "index"))
    with vectordb.PersistentClient(path) as client:
        graph_paths(client)
        col = client.get_collection("docs")
        assert_exact(col)
        assert client.backend.engine.indexes.pending(col.id) == 3000
        held()
        client.backend.engine.indexes.wait()
        row = client.backend.engine.row(col.ref)
        assert _saved_seq(path, col.id) == row.seq, "the rebuilt index is saved once it is complete"
        assert client.check().ok


def test_a_failed_catch_up_still_answers_exactly_then_rebuilds(crashed, monkeypatch, caplog):
    from vectordb.index import hnsw

    real_add = hnsw.HnswIndex.add
    calls = []

    def failing_on_the_worker(self, labels, vectors):
        if threading.current_thread().name == "vectordb-catch-up":
            calls.append(len(labels))
            if len(calls) == 3:
                raise MemoryError("no room for the graph")
        real_add(self, labels, vectors)

    monkeypatch.setattr(hnsw.HnswIndex, "add", failing_on_the_worker)
    with vectordb.PersistentClient(crashed) as client:
        graph_paths(client)
        client.backend.engine.indexes.insertion = InsertPolicy(catch_up_chunk=100)
        col = client.get_collection("docs")
        col.query(np.zeros(DIM, dtype=np.float32), n_results=3)
        catchup = client.backend.engine.indexes.catch_up_of(col.id)
        catchup.finish()
        assert catchup.error is not None and catchup.pending > 0
        assert_exact(col)  # takes in the failure; the index is built again from the records
        assert "catching up the index failed" in caplog.text
        client.backend.engine.indexes.wait()
        assert_exact(col, seed=4)
        assert client.check().ok


def test_a_dropped_clients_worker_stops(crashed, monkeypatch):
    """A client dropped without close() in a live process: its catch-up worker ends with it."""
    from vectordb.index import hnsw

    real_add = hnsw.HnswIndex.add

    def slow_add(self, labels, vectors):
        threading.Event().wait(0.01)
        real_add(self, labels, vectors)

    monkeypatch.setattr(hnsw.HnswIndex, "add", slow_add)  # about 2.5 s for the whole tail
    client = vectordb.PersistentClient(crashed)
    client.backend.engine.indexes.insertion = InsertPolicy(catch_up_chunk=10)
    col = client.get_collection("docs")
    col.query(np.zeros(DIM, dtype=np.float32), n_results=3)
    catchup = client.backend.engine.indexes.catch_up_of(col.id)
    worker, tail = catchup._thread, catchup.tail  # not the catch-up itself: it holds the store
    assert worker.is_alive()
    del client, col, catchup
    gc.collect()
    worker.join(30)
    assert not worker.is_alive() and tail.count > 0, "it stopped instead of inserting the whole tail"
    with vectordb.PersistentClient(crashed) as reopened:  # the store is free and whole
        assert_exact(reopened.get_collection("docs"))
        assert reopened.check().ok


def test_the_tail_reads_back_in_chunks(crashed, held):
    """The records after the saved seq come back whole, a chunk at a time, with the seq of each."""
    with vectordb.PersistentClient(crashed) as client:
        graph_paths(client)
        col = client.get_collection("docs")
        seq = _saved_seq(crashed, col.id)
        with client.backend.engine.turn():
            chunks = list(client.backend.engine.store.records_since(col.id, seq, chunk=700))
        assert len(chunks) > 1 and all(len(labels) <= 700 for labels, _, _ in chunks)
        labels = np.concatenate([c[0] for c in chunks])
        seqs = np.concatenate([c[1] for c in chunks])
        vectors = np.concatenate([c[2] for c in chunks])
        got = col.get(include=["embeddings"])
        with client.backend.engine.turn():
            by_label = client.backend.engine.store.fetch(col.id, labels, embeddings=True)
        np.testing.assert_array_equal(vectors, np.stack([by_label[int(x)][3] for x in labels]))
        assert (seqs > seq).all() and len(set(labels.tolist())) == len(labels)
        assert len(labels) == TAIL_NEW + len(UPDATED) - sum(d.startswith("t") for d in DELETED)
        assert len(got["ids"]) == BASE + TAIL_NEW - len(DELETED)
        assert_exact(col)


def test_a_dropped_clients_insertion_stops_and_saves_nothing(tmp_path, monkeypatch):
    """A write's insertion still running when its client is dropped (no close()) is abandoned: the
    store opens again at once in the same process, and the abandoned graph is not saved over its files."""
    from vectordb.index import hnsw

    path = str(tmp_path / "db")
    _base(path)
    real_add = hnsw.HnswIndex.add
    chunks = []

    def slow_on_the_worker(self, labels, vectors):
        if threading.current_thread().name == "vectordb-index":
            chunks.append(len(labels))
            threading.Event().wait(0.02)
        real_add(self, labels, vectors)

    monkeypatch.setattr(hnsw.HnswIndex, "add", slow_on_the_worker)  # about 2 s for the whole write
    client = vectordb.PersistentClient(path)
    client.backend.engine.indexes.policy = SavePolicy(min_changes=100)  # the write's job would save when done
    client.backend.engine.indexes.insertion = InsertPolicy(write_chunk=50)
    col = client.get_collection("docs")
    collection_id = col.id
    before = _saved_seq(path, collection_id)
    rng = np.random.default_rng(3)
    col.add(ids=[f"w{i}" for i in range(5000)], embeddings=rng.standard_normal((5000, DIM)).astype(np.float32),
            metadatas=[{"group": i % 10} for i in range(5000)])
    worker = next(t for t in threading.enumerate() if t.name == "vectordb-index")
    del client, col
    gc.collect()
    worker.join(30)
    assert not worker.is_alive() and len(chunks) < 100, "the abandoned insertion stopped early"
    assert _saved_seq(path, collection_id) == before, "and saved nothing"
    with vectordb.PersistentClient(path) as reopened:
        col = reopened.get_collection("docs")
        assert col.count() == BASE + 5000
        assert_exact(col)
        assert reopened.check().ok
