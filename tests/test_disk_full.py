"""A full disk, for real: the store lives on a small tmpfs that a filler file fills up.

Every failing call raises StorageFullError (or another StorageError) naming the store,
changes nothing, and leaves the client usable once space is freed; a delete whose
automatic compaction fails keeps its result; close() always releases the store lock.
After each scenario the store is reopened and compared with what was acknowledged.

Needs root (or CAP_SYS_ADMIN) to mount the tmpfs; elsewhere the tests are skipped.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Tuple

import numpy as np
import pytest

import vectordb
from vectordb.errors import NotDurableError, StorageError, StorageFullError, StoreCorruptedError

DIM = 16
N = 3000
DISK_MB = 16

Model = Dict[str, Tuple[Tuple[float, ...], object, object]]
"""id -> (embedding, metadata, document): what the store must hold."""


class SmallDisk:
    """A tmpfs of DISK_MB megabytes; :meth:`fill` leaves ``slack`` bytes free, :meth:`free` undoes it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.filler = root / "filler"

    def fill(self, slack: int = 0) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9):
                try:
                    while True:
                        os.write(fd, b"\1" * size)
                except OSError as exc:
                    assert exc.errno == 28, exc  # ENOSPC: the disk is full
        finally:
            os.close(fd)
        if slack:
            os.truncate(self.filler, max(0, os.path.getsize(self.filler) - slack))

    def free(self) -> None:
        if self.filler.exists():
            self.filler.unlink()


@pytest.fixture
def disk(tmp_path) -> Iterator[SmallDisk]:
    if not sys.platform.startswith("linux"):
        pytest.skip("filling a disk for real needs a Linux tmpfs")
    root = tmp_path / "disk"
    root.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(root)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {DISK_MB} MB tmpfs to fill (needs root or CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")
    try:
        yield SmallDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


def _vectors(seed: int, n: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def _build(path: str, n: int = N) -> Tuple[vectordb.PersistentClient, Model]:
    client = vectordb.PersistentClient(path)
    col = client.create_collection("docs", embedding_function=None)
    vectors = _vectors(0, n)
    for start in range(0, n, 1000):
        stop = min(n, start + 1000)
        col.add([f"id{i}" for i in range(start, stop)], vectors[start:stop],
                metadatas=[{"i": i} for i in range(start, stop)], documents=[f"doc {i}" for i in range(start, stop)])
    model = {f"id{i}": (tuple(vectors[i].tolist()), {"i": i}, f"doc {i}") for i in range(n)}
    return client, model


def _contents(col) -> Model:
    got = col.get(include=["embeddings", "metadatas", "documents"])
    return {i: (tuple(np.asarray(e, dtype=np.float32).tolist()), m, d)
            for i, e, m, d in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"])}


def _reopened(path: str) -> Model:
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("docs")
        contents = _contents(col)
        assert col.count() == len(contents)
        report = client.check()
        assert report.ok, str(report)
        if contents:
            some = next(iter(contents))
            assert col.query(list(contents[some][0]), n_results=1, include=[])["ids"] == [[some]]
    return contents


def _assert_typed(exc: BaseException, path: str) -> None:
    assert isinstance(exc, StorageError), f"{type(exc).__name__}: {exc}"
    assert path in str(exc), str(exc)


def test_writes_on_a_full_disk_raise_storage_full_and_change_nothing(disk):
    path = str(disk.root / "db")
    client, model = _build(path)
    col = client.get_collection("docs")
    disk.fill()
    new_vectors, changed_vectors = _vectors(1, 2000), _vectors(2, 2000)
    calls = [
        ("add", lambda: col.add([f"n{i}" for i in range(2000)], new_vectors, documents=["x" * 100] * 2000)),
        ("upsert", lambda: col.upsert([f"id{i}" for i in range(2000)], changed_vectors)),
        ("update", lambda: col.update([f"id{i}" for i in range(2000, 2500)], metadatas=[{"u": 1}] * 500)),
        ("delete", lambda: col.delete([f"id{i}" for i in range(1000)])),
    ]
    raised = []
    for name, call in calls:
        try:
            call()
        except StorageError as exc:
            _assert_typed(exc, path)
            raised.append((name, type(exc)))
            continue
        # The call returned: it is acknowledged and the model takes it in.
        if name == "add":
            model.update({f"n{i}": (tuple(new_vectors[i].tolist()), None, "x" * 100) for i in range(2000)})
        elif name == "upsert":
            for i in range(2000):
                old = model[f"id{i}"]
                model[f"id{i}"] = (tuple(changed_vectors[i].tolist()), old[1], old[2])
        elif name == "update":
            for i in range(2000, 2500):
                old = model[f"id{i}"]
                model[f"id{i}"] = (old[0], {**old[1], "u": 1}, old[2])
        else:
            for i in range(1000):
                model.pop(f"id{i}", None)
    assert ("add", StorageFullError) in raised, raised  # the disk really was full
    assert _contents(col) == model  # nothing half applied, in this client's view
    disk.free()
    col.add(["after"], [[0.5] * DIM])  # the same client carries on once there is space
    model["after"] = (tuple([0.5] * DIM), None, None)
    assert col.count() == len(model)
    client.close()
    assert _reopened(path) == model


def test_compact_on_a_full_disk_raises_and_removes_its_copy(disk):
    path = str(disk.root / "db")
    client, model = _build(path)
    col = client.get_collection("docs")
    col.delete([f"id{i}" for i in range(500)])
    for i in range(500):
        del model[f"id{i}"]
    disk.fill()
    with pytest.raises(StorageFullError) as err:
        col.compact()
    _assert_typed(err.value, path)
    assert not os.path.exists(os.path.join(path, "vectordb.duckdb.compact"))
    assert col.count() == len(model)  # the client reopens its database by itself
    disk.free()
    result = col.compact()
    assert result.bytes_after > 0
    assert _contents(col) == model
    client.close()
    assert _reopened(path) == model


@pytest.mark.parametrize("slack", [0, 200_000])
def test_delete_that_triggers_compaction_keeps_its_result_only_if_it_returned(disk, caplog, slack):
    path = str(disk.root / "db")
    client, model = _build(path)
    col = client.get_collection("docs")
    col.query(list(model["id0"][0]), n_results=1)  # loads the index, so the delete counts its slots
    disk.fill(slack)
    deleted = [f"id{i}" for i in range(2000)]
    caplog.set_level(logging.WARNING, logger="vectordb")
    try:
        col.delete(deleted)
    except StorageError as exc:
        _assert_typed(exc, path)
        returned = False
    else:
        returned = True
        for record_id in deleted:
            del model[record_id]
    compaction_failed = "automatic compaction of collection 'docs' after a delete failed" in caplog.text
    assert col.count() == len(model) == (1000 if returned else N)
    disk.free()
    col.add(["after"], [[0.25] * DIM])
    model["after"] = (tuple([0.25] * DIM), None, None)
    client.close()
    assert _reopened(path) == model
    # slack 0: the delete's own commit fails; 200 kB: the delete commits and its compaction fails
    assert (returned, compaction_failed) == ((False, False) if slack == 0 else (True, True)), caplog.text


def test_commit_whose_checkpoint_fails_is_not_acknowledged_and_is_kept_once_a_checkpoint_succeeds(disk, caplog):
    path = str(disk.root / "db")
    client, model = _build(path)
    col = client.get_collection("docs")
    with client.backend.engine.turn():
        client.backend.engine.store.con.execute("CHECKPOINT")
        client.backend.engine.store.con.execute("SET checkpoint_threshold = '1KB'")  # DuckDB checkpoints after every commit
    disk.fill(200_000)
    caplog.set_level(logging.WARNING, logger="vectordb")
    vectors = _vectors(3, 500)
    with pytest.raises(NotDurableError) as raised:  # committed to the log; the checkpoint after it failed
        col.add([f"n{i}" for i in range(500)], vectors)
    assert raised.value.applied is True and path in str(raised.value)
    model.update({f"n{i}": (tuple(vectors[i].tolist()), None, None) for i in range(500)})
    assert _contents(col) == model  # read back from the database, disk still full
    with pytest.raises(StorageError, match="accepts no writes until a checkpoint succeeds"):
        col.add(["refused"], [[0.5] * DIM])  # nothing is acknowledged while the log is not trusted
    assert col.count() == len(model)
    disk.free()
    col.add(["later"], [[0.5] * DIM])  # checkpoints first: n* and this write are durable
    model["later"] = (tuple([0.5] * DIM), None, None)
    client.close()
    assert _reopened(path) == model


def test_close_on_a_full_disk_releases_the_lock_and_keeps_every_record(disk, caplog):
    path = str(disk.root / "db")
    client, model = _build(path)
    disk.fill()
    caplog.set_level(logging.WARNING, logger="vectordb")
    try:
        client.close()  # the index save fails (logged): the index is a cache, caught up on next open
    except StorageError as exc:
        _assert_typed(exc, path)
    assert "saving the index of 'docs' failed" in caplog.text
    _assert_lock_free(path)
    disk.free()
    assert _reopened(path) == model


def test_failed_close_still_releases_the_lock(disk):
    path = str(disk.root / "db")
    client, model = _build(path)
    col = client.get_collection("docs")
    disk.fill()
    with pytest.raises(StorageFullError):
        col.compact()  # a fatal DuckDB error: the connection is dropped, to be reopened on next use
    db_file = os.path.join(path, "vectordb.duckdb")
    os.rename(db_file, db_file + ".away")  # ... and then the database file cannot be reopened
    with pytest.raises(StoreCorruptedError) as err:
        client.close()
    assert db_file in str(err.value)
    with pytest.raises(vectordb.errors.VectorDBError, match="closed"):
        col.count()
    os.rename(db_file + ".away", db_file)
    disk.free()
    _assert_lock_free(path)
    assert _reopened(path) == model


def _assert_lock_free(path: str) -> None:
    """Another process can open the store for writing: the lock was released."""
    code = "import sys, vectordb; vectordb.PersistentClient(sys.argv[1]).close(); print('opened')"
    done = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0 and "opened" in done.stdout, done.stderr[-2000:]


def test_a_server_on_a_full_disk_answers_507_and_the_http_client_raises_storage_full(disk):
    pytest.importorskip("httpx")
    sys.path.insert(0, os.path.dirname(__file__))
    from server_helpers import running_server

    path = str(disk.root / "served" / "db")
    os.makedirs(os.path.dirname(path))
    with running_server(path) as server, vectordb.HttpClient(server.url) as http:
        col = http.create_collection("docs", embedding_function=None)
        col.add([f"id{i}" for i in range(1000)], _vectors(0, 1000))
        disk.fill()
        with pytest.raises(StorageFullError) as err:
            col.add([f"n{i}" for i in range(2000)], _vectors(1, 2000), documents=["x" * 100] * 2000)
        assert path in str(err.value)
        assert col.count() == 1000
        disk.free()
        col.add(["after"], _vectors(2, 1))
        assert col.count() == 1001
    with vectordb.PersistentClient(path) as client:
        assert client.get_collection("docs").count() == 1001


def test_storage_errors_follow_the_error_tree():
    from vectordb.errors import ERRORS_BY_CODE, VectorDBError

    for cls, code, status in ((StorageError, "storage_error", 500), (StorageFullError, "storage_full", 507),
                              (StoreCorruptedError, "store_corrupted", 500), (NotDurableError, "not_durable", 500)):
        assert issubclass(cls, VectorDBError) and ERRORS_BY_CODE[code] is cls
        assert (cls.code, cls.http_status) == (code, status)
        error = cls("writing records in the store at /x failed", path="/x", cause="disk full")
        assert (error.message, error.path, error.cause) == ("writing records in the store at /x failed", "/x",
                                                            "disk full")
        assert cls("re-raised from a server's message").path is None  # how the HTTP client rebuilds it
    assert issubclass(NotDurableError, StorageError) and NotDurableError("m").applied is None  # unknown over HTTP
    assert NotDurableError("m", applied=True).applied is True
