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
