"""Processes share a store: writers and readers open it beside each other, a call waits at most
``lock_timeout`` for the others (then StoreBusyError naming the holder), a killed holder leaves no
lock, and no process ever sees the database half-swapped by a compaction."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Iterator

import pytest

import vectordb
from vectordb.errors import (
    CollectionNotFoundError,
    InvalidArgumentError,
    StoreBusyError,
    StoreCorruptedError,
    StoreLockedError,
    VectorDBError,
)

HOLDER = """
import sys, time, vectordb
client = vectordb.PersistentClient(sys.argv[1], read_only=sys.argv[2] == "ro")
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def store(tmp_path) -> str:
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        client.create_collection("docs", embedding_function=None).add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    return path


def _hold(path: str, mode: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, path, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-2000:]
        yield proc
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def writer(store) -> Iterator[subprocess.Popen]:
    """Another process holding the store open for writing."""
    yield from _hold(store, "rw")


@pytest.fixture
def reader(store) -> Iterator[subprocess.Popen]:
    """Another process holding the store open read-only."""
    yield from _hold(store, "ro")


READ_ONLY_QUERY = """
import sys, vectordb
with vectordb.PersistentClient(sys.argv[1], read_only=True) as client:
    col = client.get_collection("docs")
    print(col.count(), col.query([1.0, 1.0], n_results=1, include=[])["ids"][0][0])
"""


def test_a_second_writer_and_a_reader_open_the_store_beside_a_writer(store, writer, reader):
    with vectordb.PersistentClient(store) as second:
        second.get_collection("docs").add(["c"], [[1.0, 1.0]])
        out = subprocess.run([sys.executable, "-c", READ_ONLY_QUERY, store], capture_output=True, timeout=120,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
        assert out.returncode == 0, out.stderr.decode()[-2000:]
        assert out.stdout.split() == [b"3", b"c"]  # read after acknowledge, in another process


HOLDER_THAT_WRITES = """
import sys, vectordb
client = vectordb.PersistentClient(sys.argv[1])
col = client.get_collection("docs")
col.add(["held"], [[0.5, 0.5]])  # it holds its turn now: nobody else has asked
print("added", flush=True)
sys.stdin.readline()
col.add(["after"], [[0.7, 0.7]])
print("added", col.count(), flush=True)
"""


def test_a_call_that_waits_past_lock_timeout_gets_store_busy_naming_the_holder(store):
    """A process frozen while it holds the store (SIGSTOP: a debugger, a machine swapping) keeps
    others out: they wait lock_timeout, then get StoreBusyError naming it, and changed nothing."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER_THAT_WRITES, store], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        assert proc.stdout.readline().strip() == b"added", proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGSTOP)
        start = time.monotonic()
        with pytest.raises(StoreBusyError) as err:
            with vectordb.PersistentClient(store, lock_timeout=1.0) as client:
                client.get_collection("docs").add(["mine"], [[0.5, 0.5]])
        waited = time.monotonic() - start
        assert 1.0 <= waited < 5, waited
        message = str(err.value)
        assert store in message and f"process {proc.pid}" in message and "lock_timeout" in message
        assert err.value.holder == proc.pid and isinstance(err.value, StoreLockedError)
        assert err.value.http_status == 423
        proc.send_signal(signal.SIGCONT)
        out, errs = proc.communicate(b"\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait()
    assert proc.returncode == 0 and out.split() == [b"added", b"4"], errs.decode()[-2000:]  # the holder is unaffected
    with vectordb.PersistentClient(store) as client:  # and the refused call changed nothing
        assert sorted(client.get_collection("docs").get()["ids"]) == ["a", "after", "b", "held"]


def test_lock_timeout_is_checked(tmp_path):
    for bad in (-1, "3", True):
        with pytest.raises(InvalidArgumentError, match="lock_timeout"):
            vectordb.PersistentClient(str(tmp_path / "db"), lock_timeout=bad)


def test_read_only_client_refuses_writes_and_changes_nothing(store):
    with vectordb.PersistentClient(store, read_only=True) as client:
        col = client.get_collection("docs")
        for write in (lambda: col.add(["c"], [[1.0, 1.0]]), lambda: col.delete(["a"]),
                      lambda: client.create_collection("other", embedding_function=None),
                      lambda: client.delete_collection("docs"), lambda: col.compact(),
                      lambda: client.check(repair=True)):
            with pytest.raises(VectorDBError, match="read-only"):
                write()
        assert client.check().ok
    with vectordb.PersistentClient(store) as client:
        assert sorted(client.get_collection("docs").get()["ids"]) == ["a", "b"]


def test_read_only_needs_an_existing_store(tmp_path):
    with pytest.raises(InvalidArgumentError):
        vectordb.PersistentClient(str(tmp_path / "missing"), read_only=True)


KILLED_WRITER = """
import sys, vectordb
client = vectordb.PersistentClient(sys.argv[1])
col = client.get_collection("docs")
col.add(["k"], [[0.3, 0.3]])
print("added", flush=True)
sys.stdin.readline()
"""


def test_a_killed_holder_leaves_no_lock_and_its_acknowledged_write_is_seen(store):
    with vectordb.PersistentClient(store) as watcher:  # open before, and after the kill: no restart needed
        col = watcher.get_collection("docs")
        assert col.count() == 2
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, store], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        try:
            assert proc.stdout.readline().strip() == b"added", proc.stderr.read().decode()[-2000:]
            proc.send_signal(signal.SIGKILL)  # it may still hold the store
            proc.wait()
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            proc.stdin.close()
        assert col.count() == 3 and col.get(["k"])["ids"] == ["k"]
        col.add(["after"], [[0.9, 0.1]])  # the killed process's turn is free
    with vectordb.PersistentClient(store) as client:
        assert client.get_collection("docs").count() == 4 and client.check().ok


COMPACTOR = """
import sys, numpy as np, vectordb
rounds = int(sys.argv[2])
client = vectordb.PersistentClient(sys.argv[1])
col = client.get_or_create_collection("churn", embedding_function=None)
rng = np.random.default_rng(0)
print("ready", flush=True)
for r in range(rounds):
    col.add([f"r{r}-{i}" for i in range(300)], rng.random((300, 4), dtype=np.float32))
    col.delete([f"r{r}-{i}" for i in range(250)])
    col.compact()
open(sys.argv[3], "w").close()
print("done", col.count(), flush=True)
sys.stdin.readline()  # the client stays open until the test has stopped trying
client.close()
"""


def test_readers_beside_a_writer_that_compacts_always_see_a_whole_store(store, tmp_path):
    """Compaction closes DuckDB's connection to swap files inside its turn: another process opening
    and reading meanwhile never sees the store half-swapped, and gets in between compactions."""
    rounds = 15
    finished = str(tmp_path / "finished")
    proc = subprocess.Popen([sys.executable, "-c", COMPACTOR, store, str(rounds), finished], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-2000:]
        seen = []
        while not os.path.exists(finished) and proc.poll() is None:
            with vectordb.PersistentClient(store, read_only=len(seen) % 2 == 1) as client:
                try:
                    count = client.get_collection("churn").count()
                except CollectionNotFoundError:
                    continue  # not created yet
                assert count % 50 == 0, count  # after a round, or after its add: never inside a write
                seen.append(count)
        out, err = proc.communicate(b"\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert out.split() == [b"done", str(rounds * 50).encode()]
    assert len(seen) >= 3, seen
    with vectordb.PersistentClient(store) as client:
        assert client.get_collection("churn").count() == rounds * 50
        assert client.check().ok


def test_deleting_the_database_under_a_writer_does_not_make_an_empty_store(store, writer):
    db_file = os.path.join(store, "vectordb.duckdb")
    os.remove(db_file)
    for read_only in (False, True):
        with pytest.raises(StoreCorruptedError) as err:
            vectordb.PersistentClient(store, read_only=read_only)
        assert store in str(err.value) and "missing" in str(err.value)
    assert not os.path.exists(db_file)  # no empty store was made beside the open one


def test_lock_file_names_the_writer_and_is_emptied_on_close(store):
    lock_file = os.path.join(store, "vectordb.lock")
    client = vectordb.PersistentClient(store)
    with open(lock_file) as f:
        assert f.read().strip() == str(os.getpid())
    client.close()
    with open(lock_file) as f:
        assert f.read() == ""
    with vectordb.PersistentClient(store, read_only=True) as reader:  # the lock is free again
        assert reader.get_collection("docs").count() == 2


def test_a_dropped_client_frees_the_store_for_a_new_one(store):
    client = vectordb.PersistentClient(store)
    client.get_collection("docs").count()
    del client  # never closed: its lock goes with it, as DuckDB's own does
    with vectordb.PersistentClient(store) as again:
        assert again.get_collection("docs").count() == 2
