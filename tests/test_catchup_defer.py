"""A process defers inserting other processes' writes into its own graph while they keep coming.

Every process keeps its own graph, so a reader that inserted each write of a writer at once
would spend as much CPU as the writer on its insertion. A catch-up of another process's writes
(:mod:`vectordb.engine.catchup`, with a :class:`Pace`) waits for the writes to pause (or for its
tail to reach a bound, or for a caller that needs the whole graph) and answers queries exactly
over its tail meanwhile; the tail's exact search reads a bounded number of rows at a time
(:mod:`vectordb.index.tail`). Checked here: the answers stay exact while insertion waits, the
worker inserts once the writes pause, finish()/stop() do not wait for a pause, a tail past the
bound goes in at once, and across processes a reader sees every acknowledged write while it defers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Dict, Optional

import numpy as np
import pytest

import vectordb
from vectordb.engine.structure import InsertPolicy
from vectordb.engine.catchup import CatchUp, Pace
from vectordb.index import tail as tail_module
from vectordb.index.base import IndexParams
from vectordb.index.hnsw import HnswIndex
from vectordb.index.tail import Tail

DIM = 8
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _nearest(model: Dict[int, np.ndarray], query: np.ndarray, k: int) -> list:
    labels = np.array(sorted(model))
    vectors = np.stack([model[int(label)] for label in labels])
    distances = ((vectors - query) ** 2).sum(axis=1)
    return labels[np.lexsort((labels, distances))[:k]].tolist()


def _catch_up(rng: np.random.Generator, model: Dict[int, np.ndarray], pace: Optional[Pace], backlog_max: int = 100_000):
    """A graph of 300 vectors (labels 0..299) and a deferring catch-up of 100 more (300..399)."""
    graph = HnswIndex(IndexParams(space="l2"), DIM)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    graph.add(np.arange(300), vectors)
    model.update({i: vectors[i] for i in range(300)})
    tail = Tail(DIM)
    more = rng.standard_normal((100, DIM)).astype(np.float32)
    tail.extend(np.arange(300, 400), 1, more)
    model.update({300 + i: more[i] for i in range(100)})
    if pace is not None:
        pace.note()
    return CatchUp(graph, tail, 1, 0, None, lambda unsaved, count: False, backlog_max, chunk=16, pace=pace)


def _assert_exact(catchup: CatchUp, model: Dict[int, np.ndarray], rng: np.random.Generator) -> None:
    for query in rng.standard_normal((5, DIM)).astype(np.float32):
        labels, _ = catchup.search(query[None, :], 10)
        assert labels[0].tolist() == _nearest(model, query, 10)


def _wait(condition, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_insertion_waits_while_writes_come_and_queries_stay_exact():
    rng = np.random.default_rng(1)
    model: Dict[int, np.ndarray] = {}
    catchup = _catch_up(rng, model, Pace(InsertPolicy(defer_quiet_min_s=1.5)))
    catchup.start()
    for seq in range(2, 7):
        time.sleep(0.02)
        labels = np.concatenate([np.arange(seq * 100 + 200, seq * 100 + 250), np.arange(seq * 10, seq * 10 + 5)])
        vectors = rng.standard_normal((len(labels), DIM)).astype(np.float32)  # new labels, and graph ones changed
        assert catchup.append(seq, labels, vectors)
        model.update({int(label): vectors[i] for i, label in enumerate(labels)})
        assert catchup.inserted == 0 and catchup.pending == 100 + (seq - 1) * 55
        _assert_exact(catchup, model, rng)
    assert catchup.remove(7, np.array([0, 305, 21]))  # a graph label, a pending one, a changed one
    for label in (0, 305, 21):
        del model[label]
    _assert_exact(catchup, model, rng)
    _wait(lambda: catchup.done)  # once the writes have paused
    assert catchup.pending == 0 and catchup.error is None
    assert catchup.inserted == 100 + 5 * 55 - 2
    _assert_exact(catchup, model, rng)


def test_finish_and_stop_do_not_wait_for_a_pause():
    policy = InsertPolicy(defer_quiet_min_s=60.0)
    rng = np.random.default_rng(2)
    catchup = _catch_up(rng, {}, Pace(policy))
    catchup.start()
    time.sleep(0.05)
    assert catchup.inserted == 0
    start = time.monotonic()
    catchup.finish()
    assert time.monotonic() - start < 30 and catchup.pending == 0 and catchup.done

    stopped = _catch_up(rng, {}, Pace(policy))
    stopped.start()
    time.sleep(0.05)
    start = time.monotonic()
    stopped.stop()
    assert time.monotonic() - start < 30 and stopped.done and stopped.pending == 100
    assert not stopped._thread.is_alive()


def test_a_tail_past_the_bound_goes_in_without_waiting():
    rng = np.random.default_rng(3)
    model: Dict[int, np.ndarray] = {}
    catchup = _catch_up(rng, model, Pace(InsertPolicy(defer_quiet_min_s=60.0, defer_max_bytes=150 * DIM * 4)))
    catchup.start()
    time.sleep(0.05)
    assert catchup.inserted == 0  # 100 pending: under the bound
    vectors = rng.standard_normal((60, DIM)).astype(np.float32)
    catchup.append(2, np.arange(400, 460), vectors)
    _wait(lambda: catchup.done)
    assert catchup.pending == 0 and catchup.inserted == 160


def test_without_a_pace_a_catch_up_inserts_at_once():
    rng = np.random.default_rng(4)
    catchup = _catch_up(rng, {}, None)  # a crash's tail (opening), not another process's writes
    catchup.start()
    _wait(lambda: catchup.done)
    assert catchup.pending == 0


def test_pace_waits_twice_the_interval_within_bounds():
    pace = Pace(InsertPolicy(defer_quiet_min_s=0.25, defer_quiet_max_s=5.0))
    assert pace.wait_s(0.0) == 0.0  # no write yet
    pace.note(100.0)
    assert pace.quiet_s() == 0.25 and pace.wait_s(100.1) == pytest.approx(0.15)
    pace.note(101.0)
    pace.note(102.0)
    assert pace.quiet_s() == pytest.approx(2.0) and pace.wait_s(103.0) == pytest.approx(1.0)
    pace.note(104.0)
    pace.note(104.1)
    assert pace.quiet_s() == pytest.approx(2 * (1.5 + 0.1) / 2)
    pace.note(120.0)  # after a long pause: a new burst
    assert pace.quiet_s() == 0.25
    for t in range(10):
        pace.note(200.0 + 4.0 * t)
    assert pace.quiet_s() == 5.0


@pytest.mark.parametrize("space", ["l2", "cosine", "ip"])
def test_the_tail_searches_a_few_rows_at_a_time_and_stays_exact(monkeypatch, space):
    monkeypatch.setattr(tail_module, "BLOCK_ROWS", 50)
    monkeypatch.setattr(tail_module, "SEARCH_ROWS", 7)
    rng = np.random.default_rng(5)
    tail = Tail(DIM)
    vectors = rng.standard_normal((170, DIM)).astype(np.float32)
    tail.extend(np.arange(170), np.arange(170), vectors)
    head = tail.head(20)
    assert head is not None
    tail.taken(head[0][:13])  # a block partly inserted
    tail.discard(np.array([60, 61, 99, 150]))
    live = tail.labels()
    assert len(live) == 170 - 13 - 4
    allowed = np.sort(rng.choice(170, 90, replace=False))
    for query in rng.standard_normal((4, DIM)).astype(np.float32):
        for among in (None, allowed):
            labels = live if among is None else np.intersect1d(live, among)
            rows = vectors[labels].astype(np.float64)
            q = query.astype(np.float64)
            if space == "l2":
                distances = ((rows - q) ** 2).sum(axis=1)
            elif space == "cosine":
                distances = 1 - rows @ q / (np.linalg.norm(rows, axis=1) * np.linalg.norm(q))
            else:
                distances = 1 - rows @ q
            expected = labels[np.lexsort((labels, distances))[:10]]
            got, got_distances = tail.search(space, query[None, :], 10, among)
            assert got[0].tolist() == expected.tolist()
            assert np.allclose(got_distances[0], np.sort(distances)[:10], atol=1e-5)


WRITER = """
import sys, time, numpy as np, vectordb
client = vectordb.PersistentClient(sys.argv[1])
col = client.get_collection("docs", embedding_function=None)
rng = np.random.default_rng(7)
for batch in range(int(sys.argv[2])):
    vectors = rng.standard_normal((100, 8)).astype(np.float32)
    col.add(ids=[f"w{batch}-{i}" for i in range(100)], embeddings=vectors)
    print(batch, flush=True)
    sys.stdin.readline()  # the reader has checked it
client.close()
"""


def test_a_reader_defers_a_writers_stream_and_sees_every_acknowledged_write(tmp_path):
    store = str(tmp_path / "db")
    rng = np.random.default_rng(7)
    with vectordb.PersistentClient(store) as client:
        client.backend.engine.indexes.insertion = InsertPolicy(defer_quiet_min_s=1.0)
        col = client.create_collection("docs", embedding_function=None)
        col.add(ids=[f"b{i}" for i in range(3000)], embeddings=np.random.default_rng(0).standard_normal((3000, DIM)))
        assert col.query(np.zeros(DIM), n_results=1, include=[])["ids"][0]  # the reader's graph is loaded
        indexes = client.backend.engine.indexes
        batches, most_pending = 12, 0
        writer = subprocess.Popen([sys.executable, "-c", WRITER, store, str(batches)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "PYTHONPATH": ROOT, "HF_HUB_OFFLINE": "1"})
        try:
            for batch in range(batches):
                line = writer.stdout.readline()
                assert line.strip() == str(batch), writer.stderr.read()[-3000:]
                vectors = rng.standard_normal((100, DIM)).astype(np.float32)  # the writer's, acknowledged
                for i in (0, 57, 99):
                    got = col.query(vectors[i], n_results=1, include=[])["ids"]
                    assert got == [[f"w{batch}-{i}"]]
                most_pending = max(most_pending, indexes.pending(col.id))
                assert col.count() == 3000 + 100 * (batch + 1)
                writer.stdin.write("\n")
                writer.stdin.flush()
            assert writer.wait(timeout=120) == 0, writer.stderr.read()[-3000:]
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.wait()
            for stream in (writer.stdin, writer.stdout, writer.stderr):
                stream.close()
        assert most_pending >= 500  # the reader did not insert while the writes kept coming
        _wait(lambda: indexes.pending(col.id) == 0 or indexes.catch_up_of(col.id) is None, timeout=30)
        col.query(np.zeros(DIM), n_results=1, include=[])  # takes the ended catch-up in
        assert indexes.pending(col.id) == 0 and indexes.catch_up_of(col.id) is None
        rng = np.random.default_rng(7)
        for batch in range(batches):
            vectors = rng.standard_normal((100, DIM)).astype(np.float32)
            assert col.query(vectors[5], n_results=1, include=[])["ids"] == [[f"w{batch}-5"]]
        assert client.check().ok
