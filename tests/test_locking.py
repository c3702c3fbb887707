"""One writer per store: a second process fails fast with StoreLockedError naming the
path and the holder's PID; read-only opens work where DuckDB allows them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Iterator

import pytest

import vectordb
from vectordb.errors import InvalidArgumentError, StoreLockedError, VectorDBError

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


def test_second_writer_fails_fast_naming_path_pid_and_serve(store, writer):
    start = time.monotonic()
    with pytest.raises(StoreLockedError) as err:
        vectordb.PersistentClient(store)
    assert time.monotonic() - start < 5
    message = str(err.value)
    assert store in message and f"process {writer.pid}" in message and "vectordb serve" in message
    assert err.value.http_status == 423


def test_reader_is_refused_while_a_writer_holds_the_store(store, writer):
    with pytest.raises(StoreLockedError) as err:
        vectordb.PersistentClient(store, read_only=True)
    message = str(err.value)
    assert store in message and str(writer.pid) in message and "read-only" in message


def test_readers_share_a_store_and_a_writer_is_told_why_not(store, reader):
    with vectordb.PersistentClient(store, read_only=True) as client:
        col = client.get_collection("docs")
        assert col.count() == 2
        assert col.query([1.0, 0.1], n_results=1, include=[])["ids"] == [["a"]]
    with pytest.raises(StoreLockedError) as err:
        vectordb.PersistentClient(store)
    assert "read-only" in str(err.value) and str(reader.pid) in str(err.value)


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


def test_lock_is_released_when_the_holder_is_killed(store):
    holder = _hold(store, "rw")
    proc = next(holder)
    with pytest.raises(StoreLockedError):
        vectordb.PersistentClient(store)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with vectordb.PersistentClient(store) as client:
        assert client.get_collection("docs").count() == 2
    holder.close()


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


def test_nobody_gets_in_while_a_writer_compacts(store, tmp_path):
    """Compaction closes DuckDB's connection to swap files; the store lock stays held throughout."""
    rounds = 40
    finished = str(tmp_path / "finished")
    proc = subprocess.Popen([sys.executable, "-c", COMPACTOR, store, str(rounds), finished], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()[-2000:]
        refused = {"rw": 0, "ro": 0}
        while not os.path.exists(finished) and proc.poll() is None:
            for mode in ("rw", "ro"):
                try:
                    client = vectordb.PersistentClient(store, read_only=mode == "ro")
                except StoreLockedError as exc:
                    assert store in str(exc) and f"process {proc.pid}" in str(exc), str(exc)
                    refused[mode] += 1
                    continue
                client.close()
                raise AssertionError(f"a {mode} client opened the store while another process compacts it")
        out, err = proc.communicate(b"\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert out.split() == [b"done", str(rounds * 50).encode()]
    assert min(refused.values()) > rounds, refused  # many tries during every compaction
    with vectordb.PersistentClient(store) as client:
        assert client.get_collection("churn").count() == rounds * 50
        assert client.check().ok


def test_deleting_the_database_under_a_writer_does_not_let_a_second_one_in(store, writer):
    db_file = os.path.join(store, "vectordb.duckdb")
    os.remove(db_file)
    for read_only in (False, True):
        with pytest.raises(StoreLockedError) as err:
            vectordb.PersistentClient(store, read_only=read_only)
        assert store in str(err.value) and f"process {writer.pid}" in str(err.value)
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
