"""Clients of one folder in one process share one engine (as Chroma's PersistentClient does).

Two ``PersistentClient(path)`` objects see each other's writes at once (one engine, one
index); closing one leaves the other working; the store closes (and its lock is
released, so another process can open it) only when the last client closes. A
read-only client of a folder open for writing (or the reverse) is refused.
"""

from __future__ import annotations

import gc

import pytest

import vectordb
from conftest import run_python
from vectordb.errors import StoreLockedError, VectorDBError


def _other_process_opens(path: str) -> str:
    proc = run_python(f"""
        import vectordb
        try:
            with vectordb.PersistentClient({path!r}) as client:
                print("opened", client.count_collections())
        except vectordb.errors.StoreLockedError:
            print("locked")
    """)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_two_clients_of_one_path_share_one_engine(tmp_path):
    path = str(tmp_path / "db")
    first = vectordb.PersistentClient(path)
    second = vectordb.PersistentClient(str(tmp_path / "db" / ".." / "db"))  # the same folder, spelt otherwise
    try:
        assert first.backend.engine is second.backend.engine
        col = first.create_collection("docs", embedding_function=None)
        col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])
        other = second.get_collection("docs")
        assert other.count() == 2
        other.add(ids="c", embeddings=[1.0, 1.0])
        assert col.query(query_embeddings=[1.0, 1.0], n_results=1, include=[])["ids"] == [["c"]]
    finally:
        first.close()
        second.close()


def test_closing_one_client_keeps_the_other_working(tmp_path):
    path = str(tmp_path / "db")
    first = vectordb.PersistentClient(path)
    second = vectordb.PersistentClient(path)
    col = first.create_collection("docs", embedding_function=None)
    col.add(ids="a", embeddings=[1.0])
    first.close()
    first.close()  # idempotent
    with pytest.raises(VectorDBError, match="this client is closed"):
        col.count()
    with pytest.raises(VectorDBError, match="this client is closed"):
        first.list_collections()
    assert first.path == path
    assert second.get_collection("docs").count() == 1
    assert _other_process_opens(path) == "opened 1"  # another process shares the open store
    second.get_collection("docs").add(ids="b", embeddings=[2.0])
    second.close()
    assert _other_process_opens(path) == "opened 1"  # the last close closed the store
    with vectordb.PersistentClient(path) as again:
        assert sorted(again.get_collection("docs").get()["ids"]) == ["a", "b"]


def test_a_dropped_client_gives_its_share_back(tmp_path):
    path = str(tmp_path / "db")
    kept = vectordb.PersistentClient(path)
    dropped = vectordb.PersistentClient(path)
    engine = kept.backend.engine
    del dropped
    gc.collect()
    kept.close()
    assert engine.closed  # the dropped client held no share any more: the kept one was the last


def test_read_only_and_writer_clients_of_one_path_are_refused(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as writer:
        writer.create_collection("docs", embedding_function=None)
        with pytest.raises(StoreLockedError, match=r"already open for writing in this process.*read_only=False"):
            vectordb.PersistentClient(path, read_only=True)
    with vectordb.PersistentClient(path, read_only=True) as reader:
        with vectordb.PersistentClient(path, read_only=True) as other_reader:
            assert other_reader.count_collections() == reader.count_collections() == 1
        with pytest.raises(StoreLockedError, match="already open read-only in this process"):
            vectordb.PersistentClient(path)
