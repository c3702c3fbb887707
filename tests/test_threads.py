"""One client used from many threads at once stays correct: every write lands,
reads never see half a write, and the index agrees with the records afterwards.
Requests on different collections, and reads of one collection, run at the same time:
a slow one does not hold up the others."""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from typing import Callable, Dict, List

import numpy as np
import pytest

import vectordb

sys.path.insert(0, os.path.dirname(__file__))
from concurrency_helpers import beside, sized  # noqa: E402

DIM = 6
WRITERS = 3
BATCHES = 25
BATCH = 20


def _vector(record_id: str) -> List[float]:
    rng = np.random.default_rng(abs(hash(record_id)) % (1 << 32))
    return rng.standard_normal(DIM).astype(np.float32).tolist()


@pytest.fixture(params=["memory", "disk"])
def client(request, tmp_path):
    c = vectordb.Client() if request.param == "memory" else vectordb.PersistentClient(str(tmp_path / "db"))
    yield c
    c.close()


def _run(workers: List[Callable[[], None]]) -> None:
    errors: List[BaseException] = []

    def guard(work: Callable[[], None]) -> None:
        try:
            work()
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)


def test_concurrent_adds_deletes_and_queries(client):
    col = client.create_collection("shared", metadata={"hnsw:search_ef": 400}, embedding_function=None)
    added: List[str] = []
    deleted: List[str] = []
    book = threading.Lock()
    done = threading.Event()

    def writer(w: int) -> Callable[[], None]:
        def work() -> None:
            for b in range(BATCHES):
                ids = [f"w{w}-{b}-{i}" for i in range(BATCH)]
                op = col.add if b % 2 else col.upsert
                op(ids, [_vector(i) for i in ids], metadatas=[{"w": w, "b": b}] * BATCH)
                with book:
                    added.extend(ids)
        return work

    def deleter() -> None:
        rng = random.Random(0)
        while not done.is_set() or len(deleted) < 100:
            with book:
                gone = set(deleted)
                pool = [i for i in added if i not in gone]
            if not pool:
                continue
            victims = rng.sample(pool, min(len(pool), 7))
            col.delete(victims)
            with book:
                deleted.extend(victims)
            if len(deleted) >= 150:
                return

    def reader() -> None:
        rng = np.random.default_rng(1)
        while not done.is_set():
            result = col.query(rng.standard_normal((2, DIM)), n_results=5, include=["metadatas", "distances"])
            for ids, metas in zip(result["ids"], result["metadatas"]):
                assert len(ids) == len(metas)
                assert all(m["w"] == int(i[1]) for i, m in zip(ids, metas))
            got = col.get(where={"w": 0}, include=["metadatas"])
            assert all(m["w"] == 0 for m in got["metadatas"])
            col.count()

    writers = [writer(w) for w in range(WRITERS)]

    def writers_then_done() -> None:
        _run(writers)
        done.set()

    _run([writers_then_done, deleter, reader, reader])

    expected = set(added) - set(deleted)
    assert len(added) == WRITERS * BATCHES * BATCH and len(deleted) >= 100
    got = col.get(include=["embeddings"])
    assert set(got["ids"]) == expected and len(got["ids"]) == len(expected)
    assert client.check().ok
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    queries = np.random.default_rng(5).standard_normal((5, DIM)).astype(np.float32)
    exact = ((queries[:, None] - vectors[None]) ** 2).sum(-1)
    result = col.query(queries, n_results=10, include=["distances"])
    for q in range(5):
        np.testing.assert_allclose(result["distances"][q], np.sort(exact[q])[:10], rtol=1e-4, atol=1e-4)


def test_concurrent_get_or_create_gives_one_collection(client):
    found: List[str] = []

    def work() -> None:
        found.append(client.get_or_create_collection("same", embedding_function=None).id)

    _run([work] * 8)
    assert len(set(found)) == 1 and client.count_collections() == 1


def test_concurrent_writes_to_many_collections(client):
    cols = [client.create_collection(f"col-{i}", embedding_function=None) for i in range(4)]

    def work(col) -> Callable[[], None]:
        def run() -> None:
            for b in range(20):
                ids = [f"{b}-{i}" for i in range(10)]
                col.add(ids, [_vector(col.name + i) for i in ids])
                col.delete(ids[:3])
        return run

    _run([work(c) for c in cols])
    assert [c.count() for c in cols] == [140] * 4
    assert client.check().ok


# -- requests that run side by side ----------------------------------------------------

BIG = 20_000
BIG_DIM = 32
SLOW_S = 2.0
"""The slow request is sized to last about this long; the quick one must take under a fifth of it."""


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """A store on disk with ``big`` (20,000 records searched with a large ef, so that each
    query is slow) and ``small`` (300 records)."""
    client = vectordb.PersistentClient(str(tmp_path_factory.mktemp("side") / "db"))
    rng = np.random.default_rng(0)
    big = client.create_collection("big", metadata={"hnsw:search_ef": 1000}, embedding_function=None)
    for start in range(0, BIG, 5000):
        big.add([f"b{i}" for i in range(start, start + 5000)], rng.standard_normal((5000, BIG_DIM)))
    small = client.create_collection("small", embedding_function=None)
    small.add([f"s{i}" for i in range(300)], rng.standard_normal((300, BIG_DIM)))
    big.query(rng.standard_normal((1, BIG_DIM)), n_results=1)  # load both indexes
    small.query(rng.standard_normal((1, BIG_DIM)), n_results=1)
    yield client, big, small
    client.close()


def _query_batch(col) -> Callable[[int], Callable[[], object]]:
    def make(n: int) -> Callable[[], object]:
        queries = np.random.default_rng(n).standard_normal((n, BIG_DIM)).astype(np.float32)
        return lambda: col.query(queries, n_results=10, include=["distances"])
    return make


def _adds(col) -> Callable[[int], Callable[[], object]]:
    made = [0]

    def make(n: int) -> Callable[[], object]:
        first = made[0]
        made[0] += n
        ids = [f"added{i}" for i in range(first, first + n)]
        vectors = np.random.default_rng(first).standard_normal((n, BIG_DIM)).astype(np.float32)
        return lambda: col.add(ids, vectors, metadatas=[{"n": i} for i in range(n)])
    return make


@pytest.mark.parametrize("slow_kind", ["query batch", "add"])
def test_a_slow_request_on_one_collection_does_not_hold_up_a_query_on_another(stores, slow_kind):
    client, big, small = stores
    probe = np.random.default_rng(9).standard_normal((1, BIG_DIM))
    alone = small.query(probe, n_results=3)
    make = _query_batch(big) if slow_kind == "query batch" else _adds(big)
    timing = beside(make(sized(make, SLOW_S)), lambda: small.query(probe, n_results=3))
    assert timing.quick_ended_first, timing
    assert timing.quick_s < timing.slow_s / 5, timing
    assert timing.quick_result["ids"] == alone["ids"]


def test_reads_of_one_collection_run_beside_each_other(stores):
    client, big, small = stores
    probe = np.random.default_rng(10).standard_normal((1, BIG_DIM))
    alone = big.query(probe, n_results=3)
    make = _query_batch(big)
    timing = beside(make(sized(make, SLOW_S)), lambda: big.query(probe, n_results=3))
    assert timing.quick_ended_first, timing
    assert timing.quick_s < timing.slow_s / 5, timing
    assert timing.quick_result["ids"] == alone["ids"]


def test_a_query_does_not_wait_for_another_collections_index_insertion(stores):
    client, big, small = stores
    rng = np.random.default_rng(11)
    ids = [f"late{i}" for i in range(30_000)]
    vectors = rng.standard_normal((len(ids), BIG_DIM)).astype(np.float32)
    probe = rng.standard_normal((1, BIG_DIM))
    alone = small.query(probe, n_results=3)
    big.add(ids, vectors)  # returns once committed; the vectors go into big's index on a worker thread
    t0 = time.perf_counter()
    got_small = small.query(probe, n_results=3)
    small_s = time.perf_counter() - t0
    got_big = big.query(vectors[-1:], n_results=1)  # waits for big's insertion: it sees the write
    big_s = time.perf_counter() - t0
    assert got_big["ids"] == [[ids[-1]]]
    assert got_small["ids"] == alone["ids"]
    assert small_s < big_s / 5, (small_s, big_s)


# -- many threads against a model -------------------------------------------------------

THREADS = 6
STEPS = 40
NAMES = ["shared", "second", "third"]


def _versioned(record_id: str, version: int) -> List[float]:
    return _vector(f"{record_id}/{version}")


def _assert_whole(ids, documents, metadatas) -> None:
    """Each record is one write's: its document and metadata carry the same version."""
    for record_id, document, metadata in zip(ids, documents, metadatas):
        assert document == f"{record_id} v{metadata['v']}", (record_id, document, metadata)


def test_threads_on_several_collections_and_on_one_lose_and_tear_nothing(local_client):
    """Six threads add, upsert, delete, query and get on three collections (half of their
    requests on one of them) while another creates and deletes collections, lists them,
    checks and compacts the store. Each thread owns its ids, so it knows what it must
    read back at every step; at the end the store holds exactly the union of what the
    threads wrote."""
    client = local_client
    cols = {name: client.create_collection(name, embedding_function=None) for name in NAMES}
    owned: List[Dict[str, Dict[str, int]]] = [{name: {} for name in NAMES} for _ in range(THREADS)]
    done = threading.Event()
    reports = []

    def worker(t: int) -> Callable[[], None]:
        def work() -> None:
            rng = random.Random(t)
            fresh = 0
            for step in range(STEPS):
                name = "shared" if rng.random() < 0.5 else rng.choice(NAMES)
                col, live = cols[name], owned[t][name]
                r = rng.random()
                if r < 0.35 or not live:
                    ids = [f"t{t}-{fresh + i}" for i in range(8)]
                    fresh += 8
                    col.add(ids, [_versioned(i, 0) for i in ids], documents=[f"{i} v0" for i in ids],
                            metadatas=[{"v": 0, "t": t} for _ in ids])
                    live.update({i: 0 for i in ids})
                elif r < 0.55:
                    ids = rng.sample(sorted(live), min(len(live), 6))
                    versions = [live[i] + 1 for i in ids]
                    col.upsert(ids, [_versioned(i, v) for i, v in zip(ids, versions)],
                               documents=[f"{i} v{v}" for i, v in zip(ids, versions)],
                               metadatas=[{"v": v, "t": t} for v in versions])
                    live.update(zip(ids, versions))
                elif r < 0.7:
                    ids = rng.sample(sorted(live), min(len(live), 4))
                    col.delete(ids)
                    for i in ids:
                        del live[i]
                elif r < 0.85:
                    target = rng.choice(sorted(live))
                    found = col.query([_versioned(target, live[target])], n_results=4,
                                      include=["documents", "metadatas", "distances"])
                    assert found["ids"][0][0] == target and found["distances"][0][0] < 1e-4
                    _assert_whole(found["ids"][0], found["documents"][0], found["metadatas"][0])
                else:
                    ids = sorted(live)[:25]
                    got = col.get(ids=ids, include=["documents", "metadatas", "embeddings"])
                    assert sorted(got["ids"]) == ids
                    _assert_whole(got["ids"], got["documents"], got["metadatas"])
                    for i, m, e in zip(got["ids"], got["metadatas"], got["embeddings"]):
                        assert m["v"] == live[i]
                        np.testing.assert_allclose(e, _versioned(i, live[i]), rtol=1e-6)
        return work

    def catalog() -> None:
        round_ = 0
        while not done.is_set() or round_ < 3:
            scratch = client.create_collection(f"scratch-{round_}", embedding_function=None)
            scratch.add(["x", "y"], [[1.0] * DIM, [2.0] * DIM])
            names = {c.name for c in client.list_collections()}
            assert set(NAMES) | {scratch.name} <= names
            client.delete_collection(scratch.name)
            if round_ == 1:
                reports.append(client.check())
            if round_ == 2:
                client.compact()
            round_ += 1

    workers = [worker(t) for t in range(THREADS)]

    def workers_then_done() -> None:
        try:
            _run(workers)
        finally:
            done.set()

    _run([workers_then_done, catalog])

    assert reports and all(report.ok for report in reports), [str(r) for r in reports]
    assert sorted(c.name for c in client.list_collections()) == sorted(NAMES)
    for name, col in cols.items():
        expected = {i: v for t in range(THREADS) for i, v in owned[t][name].items()}
        got = col.get(include=["documents", "metadatas", "embeddings"])
        assert sorted(got["ids"]) == sorted(expected) and col.count() == len(expected)
        _assert_whole(got["ids"], got["documents"], got["metadatas"])
        for i, m, e in zip(got["ids"], got["metadatas"], got["embeddings"]):
            assert m["v"] == expected[i]
            np.testing.assert_allclose(e, _versioned(i, expected[i]), rtol=1e-6)
    assert client.check().ok
