"""One client used from many threads at once stays correct: every write lands,
reads never see half a write, and the index agrees with the records afterwards."""

from __future__ import annotations

import random
import threading
from typing import Callable, List

import numpy as np
import pytest

import vectordb

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
