"""Deletes give space back: compact() rebuilds the index from live vectors and copies the
database into a fresh file; it also runs by itself past a threshold of deleted slots, and
a kill at any moment of it leaves a usable store."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import vectordb
from vectordb.engine import maintenance
from vectordb.engine.maintenance import disk_usage
from vectordb.errors import StoreCorruptedError

DIM = 32


def _fill(col, n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).random((n, DIM), dtype=np.float32)
    for start in range(0, n, 5000):
        stop = min(n, start + 5000)
        col.add([f"id{i}" for i in range(start, stop)], vectors[start:stop],
                metadatas=[{"i": i, "tag": "t" * 20} for i in range(start, stop)],
                documents=[f"document number {i}" for i in range(start, stop)])
    return vectors


def _assert_exact(col, vectors: np.ndarray, kept: np.ndarray) -> None:
    queries = np.random.default_rng(9).random((4, DIM), dtype=np.float32)
    exact = ((queries[:, None] - vectors[kept][None]) ** 2).sum(-1)
    result = col.query(queries, n_results=5, include=["distances"])
    for q in range(len(queries)):
        assert result["ids"][q] == [f"id{kept[j]}" for j in np.argsort(exact[q])[:5]]


def test_deleting_90_percent_and_compacting_shrinks_the_store_to_a_quarter(tmp_path):
    path = str(tmp_path / "db")
    n = 20_000
    with vectordb.PersistentClient(path) as client:
        vectors = _fill(client.create_collection("big", embedding_function=None), n)
    before = disk_usage(path)
    kept = np.arange(0, n, 10)
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("big")
        col.delete([f"id{i}" for i in range(n) if i % 10])
        result = col.compact()
        assert result.bytes_after < result.bytes_before and result.indexes_rebuilt == 1
    after = disk_usage(path)
    print(f"\ncompaction: {before} bytes before the deletes, {after} after compacting ({after / before:.1%})")
    assert after <= 0.25 * before
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("big")
        assert col.count() == len(kept)
        got = col.get(ids=[f"id{i}" for i in kept[:50]], include=["embeddings", "metadatas", "documents"])
        np.testing.assert_array_equal(np.asarray(got["embeddings"], dtype=np.float32), vectors[kept[:50]])
        assert got["metadatas"][3] == {"i": int(kept[3]), "tag": "t" * 20}
        assert got["documents"][3] == f"document number {kept[3]}"
        _assert_exact(col, vectors, kept)
        assert client.check().ok


def test_automatic_compaction_past_the_deleted_slot_threshold(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("auto", embedding_function=None)
        vectors = _fill(col, 4000)
        col.query(vectors[0], n_results=1)
        index = client.backend.engine.indexes.loaded(col.id)
        col.delete([f"id{i}" for i in range(1000)])
        assert client.backend.engine.indexes.loaded(col.id).deleted == 1000, "below the threshold: no compaction"
        size_before = disk_usage(path)
        col.delete([f"id{i}" for i in range(1000, 3000)])
        index = client.backend.engine.indexes.loaded(col.id)
        assert index.deleted == 0 and index.count == 1000
        assert disk_usage(path) < size_before
        _assert_exact(col, vectors, np.arange(3000, 4000))
        assert client.check().ok


def test_compact_in_memory_rebuilds_the_index():
    client = vectordb.Client()
    col = client.create_collection("mem", embedding_function=None)
    vectors = _fill(col, 500)
    col.delete([f"id{i}" for i in range(400)])
    result = col.compact()
    assert (result.bytes_before, result.bytes_after, result.indexes_rebuilt) == (0, 0, 1)
    assert client.backend.engine.indexes.loaded(col.id).deleted == 0
    _assert_exact(col, vectors, np.arange(400, 500))
    assert client.compact().indexes_rebuilt == 1


DIE_AT = """
import os, sys, duckdb, vectordb
from vectordb.persistence import compaction
stage = sys.argv[2]
client = vectordb.PersistentClient(sys.argv[1])
col = client.get_collection("docs")
col.delete([f"id{i}" for i in range(0, 600, 2)])
print("ready", flush=True)
if stage == "before-swap":
    compaction.fsync_path = lambda *a: os._exit(9)
elif stage == "after-swap":
    duckdb.connect = lambda *a, **k: os._exit(9)
if stage == "loop":
    while True:
        col.compact()
col.compact()
"""


def _child(path: str, stage: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", DIE_AT, path, stage], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def _assert_store_whole(path: str, vectors: np.ndarray, expected_counts: tuple) -> None:
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("docs")
        assert col.count() in expected_counts
        kept = np.asarray(sorted(int(i[2:]) for i in col.get()["ids"]))
        _assert_exact(col, vectors, kept)
        assert client.check().ok, str(client.check())
    assert not os.path.exists(os.path.join(path, "vectordb.duckdb" + maintenance.COMPACT_SUFFIX))


@pytest.mark.parametrize("stage", ["before-swap", "after-swap"])
def test_process_dying_inside_compaction_leaves_a_usable_store(tmp_path, stage):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        vectors = _fill(client.create_collection("docs", embedding_function=None), 600)
    proc = _child(path, stage)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 9, err.decode()[-2000:]
    _assert_store_whole(path, vectors, (300,))


def test_sigkill_at_random_moments_of_compaction(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        vectors = _fill(client.create_collection("docs", embedding_function=None), 600)
    rng = random.Random(3)
    for _ in range(4):
        proc = _child(path, "loop")
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-2000:]
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        _assert_store_whole(path, vectors, (300,))


def _swap_then(monkeypatch, damage) -> None:
    """Do ``damage`` to the database file right after compaction renames the new file in, before it reopens."""
    from vectordb.persistence import database

    real = database.fsync_dir

    def fsync_then_damage(folder: str) -> None:
        real(folder)
        damage(os.path.join(folder, "vectordb.duckdb"))

    monkeypatch.setattr(database, "fsync_dir", fsync_then_damage)


def test_a_failed_reopen_after_the_swap_leaves_a_usable_client(tmp_path, monkeypatch):
    path = str(tmp_path / "db")
    client = vectordb.PersistentClient(path)
    col = client.create_collection("docs", embedding_function=None)
    vectors = _fill(col, 600)
    col.delete([f"id{i}" for i in range(300)])
    db_file = os.path.join(path, "vectordb.duckdb")
    _swap_then(monkeypatch, lambda f: os.rename(f, f + ".away"))  # the file is gone for a while, for real
    with pytest.raises(StoreCorruptedError) as err:
        col.compact()
    monkeypatch.undo()
    assert path in str(err.value) and "reopening it failed" in str(err.value) and "disappeared" in str(err.value)
    with pytest.raises(StoreCorruptedError, match="disappeared"):  # a typed error, not "Connection already closed"
        col.get(include=["embeddings"])  # (a count answers from memory)
    assert not os.path.exists(db_file)  # and no empty database was made in its place
    os.rename(db_file + ".away", db_file)
    assert col.count() == 300  # the next call reopened the database by itself
    _assert_exact(col, vectors, np.arange(300, 600))
    col.add(["new"], vectors[:1])
    client.close()
    with vectordb.PersistentClient(path) as again:
        assert again.get_collection("docs").count() == 301 and again.check().ok


def test_a_reopen_that_keeps_failing_gives_typed_errors_and_close_releases_the_lock(tmp_path, monkeypatch):
    path = str(tmp_path / "db")
    client = vectordb.PersistentClient(path)
    col = client.create_collection("docs", embedding_function=None)
    _fill(col, 600)
    _swap_then(monkeypatch, lambda f: os.truncate(f, 0))  # the new file is destroyed, for real
    with pytest.raises(StoreCorruptedError) as err:
        col.compact()
    monkeypatch.undo()
    assert path in str(err.value) and "not a valid DuckDB database file" in str(err.value)
    assert col.count() == 600  # answered from memory
    for call in (lambda: col.get(include=["embeddings"]), lambda: col.add(["x"], [[0.0] * DIM])):
        with pytest.raises(StoreCorruptedError, match="reopening failed"):  # these read or write the database
            call()
    with pytest.raises(StoreCorruptedError):
        client.close()  # cannot save through a lost database: says so, after releasing the lock
    with pytest.raises(vectordb.errors.VectorDBError, match="closed"):
        col.count()
    code = "import sys, vectordb; vectordb.PersistentClient(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert "StoreCorruptedError" in done.stderr and "StoreLockedError" not in done.stderr, done.stderr[-2000:]
