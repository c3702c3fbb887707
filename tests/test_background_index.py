"""Vectors enter the index on a worker thread after the commit; every read still sees every write.

A write returns once DuckDB has committed it. Its vectors go into the hnswlib graph in
the background while the caller goes on; anything that reads or changes an index waits
for that first. These tests hold a write's insertion back (or make it fail) and check
what callers see meanwhile.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest

import vectordb
from vectordb.index import hnsw
from vectordb.engine import vectorindex
from vectordb.engine.structure import SavePolicy

DIM = 8
N = 3000  # above the exact-search size: queries go through the graph


@pytest.fixture
def client(local_client):
    """These tests look inside the local engine (its store and indexes): memory and disk only."""
    return local_client



def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM)).astype(np.float32)


def _exact_ids(vectors: np.ndarray, ids: list, query: np.ndarray, k: int) -> list:
    order = np.argsort(((vectors - query) ** 2).sum(1), kind="stable")[:k]
    return [ids[i] for i in order]


def _hold_insertions(monkeypatch) -> tuple:
    """Make ``HnswIndex.add`` wait until released: returns (an insertion started, release it) events."""
    started, release = threading.Event(), threading.Event()
    real_add = hnsw.HnswIndex.add

    def held_add(self, labels, vecs):
        started.set()
        assert release.wait(10)
        real_add(self, labels, vecs)

    monkeypatch.setattr(hnsw.HnswIndex, "add", held_add)
    return started, release


def _threads_running(monkeypatch, method: str) -> list:
    """Names of the threads that call ``HnswIndex.<method>`` from now on, in order."""
    names = []
    real = getattr(hnsw.HnswIndex, method)

    def recording(self, *args):
        names.append(threading.current_thread().name)
        return real(self, *args)

    monkeypatch.setattr(hnsw.HnswIndex, method, recording)
    return names


def test_query_right_after_add_sees_the_new_records(client):
    col = client.create_collection("docs", embedding_function=None)
    vectors = _vectors(N)
    ids = [f"r{i}" for i in range(N)]
    for start in range(0, N, 500):
        col.add(ids=ids[start : start + 500], embeddings=vectors[start : start + 500])
        # Each new record is its own nearest neighbour at once.
        got = col.query(query_embeddings=vectors[start : start + 500 : 97], n_results=1, include=[])
        assert [row[0] for row in got["ids"]] == ids[start : start + 500 : 97]
    assert col.count() == N


def test_a_read_waits_for_the_insertion_in_flight(client, monkeypatch):
    col = client.create_collection("docs", embedding_function=None)
    vectors = _vectors(N)
    col.add(ids=[f"r{i}" for i in range(N - 100)], embeddings=vectors[:-100])
    started, release = _hold_insertions(monkeypatch)
    last = [f"last{i}" for i in range(100)]  # enough vectors to go to the worker thread
    col.add(ids=last, embeddings=vectors[-100:])  # returns with its insertion held back
    assert started.wait(10)
    answers = []
    reader = threading.Thread(
        target=lambda: answers.append(col.query(query_embeddings=vectors[-1], n_results=1, include=[])["ids"][0])
    )
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not answers  # the query waits for the insertion...
    release.set()
    reader.join(10)
    assert answers == [["last99"]]  # ...and then sees the record


def test_a_failed_insertion_is_repaired_from_the_records(client, monkeypatch, caplog):
    col = client.create_collection("docs", embedding_function=None)
    vectors = _vectors(N)
    ids = [f"r{i}" for i in range(N)]
    col.add(ids=ids[:2000], embeddings=vectors[:2000])
    real_add = hnsw.HnswIndex.add
    calls = []

    def failing_once(self, labels, vecs):
        calls.append(len(labels))
        if len(calls) == 1:
            raise MemoryError("no room for the graph")
        real_add(self, labels, vecs)

    monkeypatch.setattr(hnsw.HnswIndex, "add", failing_once)
    with caplog.at_level(logging.ERROR, logger="vectordb"):
        col.add(ids=ids[2000:], embeddings=vectors[2000:])  # committed; its insertion fails afterwards
        query = vectors[2500]
        got = col.query(query_embeddings=query, n_results=5, include=[])
    assert got["ids"][0] == _exact_ids(vectors, ids, query, 5)
    assert "will be rebuilt from the records" in caplog.text
    assert client.check().ok


def test_close_waits_for_the_insertion_and_saves_the_index(tmp_path, caplog):
    vectors = _vectors(N)
    ids = [f"r{i}" for i in range(N)]
    client = vectordb.PersistentClient(tmp_path / "db")
    col = client.create_collection("docs", embedding_function=None)
    col.add(ids=ids, embeddings=vectors)
    client.close()
    with caplog.at_level(logging.INFO, logger="vectordb"):
        reopened = vectordb.PersistentClient(tmp_path / "db")
        got = reopened.get_collection("docs").query(query_embeddings=vectors[7], n_results=3, include=[])
    assert got["ids"][0] == _exact_ids(vectors, ids, vectors[7], 3)
    assert "rebuild" not in caplog.text and "caught up" not in caplog.text  # the saved index covered everything
    reopened.close()


def test_save_runs_on_the_worker_once_due(tmp_path, monkeypatch):
    client = vectordb.PersistentClient(tmp_path / "db")
    client.backend.engine.indexes.policy = SavePolicy(min_changes=1000)
    col = client.create_collection("docs", embedding_function=None)
    saver_threads = _threads_running(monkeypatch, "save")
    col.add(ids=[f"r{i}" for i in range(1500)], embeddings=_vectors(1500))
    client.backend.engine.indexes.wait()
    assert saver_threads == ["vectordb-index"]
    assert client.backend.engine.indexes.unsaved(col.id) == 0
    client.close()


def test_a_failed_commit_reaches_neither_store_nor_index(client, monkeypatch):
    col = client.create_collection("docs", embedding_function=None)
    vectors = _vectors(N)
    col.add(ids=[f"r{i}" for i in range(N - 10)], embeddings=vectors[:-10])
    before = col.count()

    def broken_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(client.backend.engine.store, "write", broken_write)
    with pytest.raises(OSError):
        col.add(ids=[f"new{i}" for i in range(10)], embeddings=vectors[-10:])
    monkeypatch.undo()
    assert col.count() == before
    index = client.backend.engine.indexes.loaded(col.id)
    assert index is not None and index.count == before


def test_small_writes_are_inserted_on_the_calling_thread(client, monkeypatch):
    col = client.create_collection("docs", embedding_function=None)
    threads = _threads_running(monkeypatch, "add")
    col.add(ids=[f"r{i}" for i in range(vectorindex.BACKGROUND_MIN - 1)],
            embeddings=_vectors(vectorindex.BACKGROUND_MIN - 1))
    col.add(ids=[f"s{i}" for i in range(vectorindex.BACKGROUND_MIN)],
            embeddings=_vectors(vectorindex.BACKGROUND_MIN, seed=1))
    client.backend.engine.indexes.wait()
    assert threads == [threading.current_thread().name, "vectordb-index"]


def test_get_and_count_do_not_wait_for_the_insertion(client, monkeypatch):
    col = client.create_collection("docs", embedding_function=None)
    vectors = _vectors(200)
    _, release = _hold_insertions(monkeypatch)
    col.add(ids=[f"r{i}" for i in range(200)], embeddings=vectors, metadatas=[{"i": i} for i in range(200)])
    try:
        # The records are committed: get and count answer from the store while the graph insertion waits.
        assert col.count() == 200
        got = col.get(ids=["r7", "r150"], include=["metadatas", "embeddings"])
        assert got["metadatas"] == [{"i": 7}, {"i": 150}]
        np.testing.assert_allclose(got["embeddings"], vectors[[7, 150]])
        assert col.get(where={"i": {"$gte": 198}})["ids"] == ["r198", "r199"]
    finally:
        release.set()
    assert col.query(query_embeddings=vectors[150], n_results=1, include=[])["ids"] == [["r150"]]
