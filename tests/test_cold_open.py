"""The first query after a reopen loads the saved index once.

A read that finds the store's other processes may have written first runs without the
turn, and again inside it when it needs the database (see ``engine/sharing.py``). Opening
the index reads the collection's labels from the database before loading the index file,
so a read that must wait for the turn waits before the (costly) load, not after it.
"""

from __future__ import annotations

import numpy as np

import vectordb
from vectordb.index.hnsw import HnswIndex


def test_the_first_query_after_a_reopen_loads_the_index_once(tmp_path, monkeypatch):
    path = str(tmp_path / "db")
    vectors = np.random.default_rng(0).standard_normal((3000, 16)).astype(np.float32)
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", embedding_function=None)
        col.add([f"r{i}" for i in range(len(vectors))], vectors)
    loads = []
    original = HnswIndex.load.__func__

    def counted(cls, *args, **kwargs):
        loads.append(args[0])
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(HnswIndex, "load", classmethod(counted))
    with vectordb.PersistentClient(path) as client:
        result = client.get_collection("docs").query(vectors[:1], n_results=3)
    assert result["ids"][0][0] == "r0"
    assert len(loads) == 1, loads


def test_a_saved_index_that_covers_every_write_is_opened_without_reading_a_tail(tmp_path, monkeypatch):
    """The collection's ``seq`` is its last write or delete: an index saved at that position has no
    tail, so opening it scans no embeddings."""
    from vectordb.persistence.store import Store

    path = str(tmp_path / "db")
    vectors = np.random.default_rng(1).standard_normal((3000, 16)).astype(np.float32)
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", embedding_function=None)
        col.add([f"r{i}" for i in range(len(vectors))], vectors)
        col.delete(["r5"])
    scans = []
    original = Store.records_since

    def counted(self, *args, **kwargs):
        scans.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "records_since", counted)
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("docs")
        assert col.query(vectors[:1], n_results=2)["ids"][0][0] == "r0"
        assert col.count() == 2999 and col.get(["r5"])["ids"] == []
    assert scans == []
