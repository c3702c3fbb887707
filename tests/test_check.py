"""client.check(): records, metadata rows, indexes and catalog must agree; each kind of
disagreement is reported with its collection, and repair=True fixes what it can."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

import vectordb
from vectordb.types import CheckReport

DIM = 4
N = 60


@pytest.fixture
def client(local_client):
    """These tests look inside the local engine (its store and indexes): memory and disk only."""
    return local_client



@pytest.fixture
def client(tmp_path):
    c = vectordb.PersistentClient(str(tmp_path / "db"))
    col = c.create_collection("docs", embedding_function=None)
    vectors = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)
    col.add([f"r{i}" for i in range(N)], vectors, metadatas=[{"i": i, "even": i % 2 == 0} for i in range(N)])
    col.delete(["r0", "r1"])
    c.create_collection("empty", embedding_function=None)
    yield c
    c.close()


class _InTurn:
    """The store's connection, each statement run inside the engine's turn (to damage the store on purpose)."""

    def __init__(self, backend) -> None:
        self.backend = backend

    def execute(self, *args):
        with self.backend.engine.turn():
            return self.backend.engine.store.con.execute(*args)


def _con(client):
    return _InTurn(client.backend)


def _label(client, record_id: str) -> int:
    col = client.get_collection("docs")
    with client.backend.engine.turn():
        return client.backend.engine.store.labels_of(col.id, [record_id])[record_id]


def _index(client):
    col = client.get_collection("docs")
    col.count()
    client.backend.engine.indexes.get(col.backend.engine.row(col.ref))
    return client.backend.engine.indexes.loaded(col.id)


def _assert_found_then_repaired(client, fragment: str, collection="docs") -> CheckReport:
    report = client.check()
    assert not report.ok
    assert any(fragment in p.what and p.collection == collection for p in report.problems), str(report)
    fixed = client.check(repair=True)
    assert fixed.ok and fixed.repairs, str(fixed)
    assert client.check().problems == [], str(client.check())
    return fixed


def test_a_healthy_store_has_no_problems(client):
    report = client.check()
    assert report.ok and report.problems == [] and report.collections_checked == 2
    assert "no problems" in str(report)


def test_a_healthy_store_stays_healthy_after_reopen(client, tmp_path):
    client.close()
    with vectordb.PersistentClient(str(tmp_path / "db")) as again:
        assert again.check().problems == []


def test_index_missing_a_record(client):
    _index(client).remove(np.asarray([_label(client, "r5")]))
    _assert_found_then_repaired(client, "lacks 1 records")
    result = client.get_collection("docs").query([0.0] * DIM, n_results=N, include=[])
    assert "r5" in result["ids"][0]


def test_index_vector_differs_from_stored_embedding(client):
    for rid in [f"r{i}" for i in range(2, N)]:
        _index(client).add(np.asarray([_label(client, rid)]), np.full((1, DIM), 9.0, dtype=np.float32))
    _assert_found_then_repaired(client, "differ from the stored embeddings")


def test_metadata_rows_disagree_with_records(client):
    col = client.get_collection("docs")
    _con(client).execute("DELETE FROM metadata WHERE label = ? AND collection_id = ?", [_label(client, "r4"), col.id])
    _con(client).execute("UPDATE metadata SET int_value = 999 WHERE key = 'i' AND label = ? AND collection_id = ?",
                         [_label(client, "r6"), col.id])
    assert col.get(where={"i": 4})["ids"] == []
    _assert_found_then_repaired(client, "metadata rows disagree")
    assert col.get(where={"i": 4})["ids"] == ["r4"] and col.get(where={"i": 999})["ids"] == []


def test_sequence_and_next_label_behind_the_records(client):
    col = client.get_collection("docs")
    _con(client).execute("UPDATE collections SET seq = 0, next_label = 3 WHERE id = ?", [col.id])
    client.close()
    client = vectordb.PersistentClient(client.path)
    col = client.get_collection("docs")
    col.count()
    report = client.check()
    whats = " | ".join(p.what for p in report.problems)
    assert "seq 0 is behind" in whats and "next_label 3" in whats
    assert client.check(repair=True).ok and client.check().problems == []
    col.add(["new"], [[1.0, 2.0, 3.0, 4.0]])
    assert col.count() == N - 1 and col.get(ids=["r10"])["ids"] == ["r10"]
    assert client.check().problems == []
    client.close()


def test_exact_search_matrix_differs_from_stored_embeddings(client):
    index = _index(client)
    label = _label(client, "r9")
    with client.backend.engine.turn():  # it reads the store
        index._exact.rows(np.asarray([label]))  # fill the exact-search matrix, then damage one row
    index._exact._rows[label] = 7.0
    _assert_found_then_repaired(client, "exact-search matrix")


def test_orphan_rows_and_index_folders(client, tmp_path):
    _con(client).execute("INSERT INTO records (collection_id, label, id, seq) VALUES ('gone', 0, 'x', 1)")
    _con(client).execute("INSERT INTO tombstones VALUES ('gone', 5, 1)")
    orphan = tmp_path / "db" / "index" / "not-a-collection"
    orphan.mkdir(parents=True)
    report = client.check()
    store_problems = [p for p in report.problems if p.collection is None]
    assert len(store_problems) == 3 and "store:" in str(store_problems[0])
    assert client.check(repair=True).ok
    assert not orphan.exists() and client.check().problems == []
    assert _con(client).execute("SELECT count(*) FROM records WHERE collection_id = 'gone'").fetchone()[0] == 0


def test_saved_index_file_corrupted_while_open(client):
    client.close()
    path = client.path
    client = vectordb.PersistentClient(path)
    (index_bin,) = glob.glob(os.path.join(path, "index", "*", "index.bin"))
    with open(index_bin, "r+b") as f:
        f.truncate(100)
    try:
        report = client.check()
        # Opening rebuilds an unusable saved index by itself: a note, not a problem.
        assert report.ok and report.problems == [], str(report)
        assert [n.collection for n in report.notes] == ["docs"] and "unusable" in report.notes[0].what
        fixed = client.check(repair=True)
        assert fixed.ok and fixed.notes[0].repaired, str(fixed)
        again = client.check()
        assert again.problems == [] and again.notes == [], str(again)
    finally:
        client.close()


def test_duplicate_ids_are_reported_not_repaired(client):
    col = client.get_collection("docs")
    _con(client).execute(
        "INSERT INTO records SELECT collection_id, 1000, id, seq, embedding, document, metadata "
        "FROM records WHERE collection_id = ? AND id = 'r7'", [col.id])
    _con(client).execute("UPDATE collections SET next_label = 1001 WHERE id = ?", [col.id])
    report = client.check(repair=True)
    assert not report.ok
    assert any("stored more than once" in p.what and not p.repaired for p in report.problems)


def test_in_memory_client_can_be_checked():
    client = vectordb.Client()
    col = client.create_collection("mem", embedding_function=None)
    col.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    col.query([1.0, 0.0], n_results=1)
    assert client.check().problems == []
    client.backend.engine.indexes.loaded(col.id).remove(np.asarray([0]))
    assert not client.check().ok
    assert client.check(repair=True).ok and client.check().problems == []


KILLED_WRITER = """
import sys, time, numpy as np, vectordb
client = vectordb.PersistentClient(sys.argv[1])
col = client.create_collection("docs", embedding_function=None)
vectors = np.random.default_rng(0).standard_normal((2000, 4)).astype(np.float32)
for start in range(0, 2000, 500):
    col.add([f"r{i}" for i in range(start, start + 500)], vectors[start:start + 500])
col.delete(["r0", "r1"])
print("added", flush=True)
time.sleep(120)
"""


def test_check_right_after_a_crash_is_ok(tmp_path):
    """A writer killed before its index was ever saved: the normal state after a crash, not a problem."""
    path = str(tmp_path / "db")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, path], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"added", proc.stderr.read().decode()[-2000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert not glob.glob(os.path.join(path, "index", "*", "meta.json"))  # no index was saved
    cli = subprocess.run([sys.executable, "-m", "vectordb", "check", "--path", path], capture_output=True,
                         text=True, env=env, timeout=120)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith("checked 1 collection: no problems") and "note:" in cli.stdout, cli.stdout
    with vectordb.PersistentClient(path) as client:
        report = client.check()
        assert report.ok and report.problems == [], str(report)
        assert len(report.notes) == 1 and "missing" in report.notes[0].what
        col = client.get_collection("docs")
        assert col.count() == 1998
        assert col.query([0.0] * DIM, n_results=5, include=[])["ids"][0]  # opening rebuilt the index
        assert client.check().notes == [] and client.check().ok
