"""A write whose database transaction fails changes nothing: not the records, not the index."""

import numpy as np
import pytest

import vectordb
from conftest import snapshot
from vectordb.persistence import records as records_module


class DiskTrouble(Exception):
    """Stands for an I/O error raised by DuckDB inside the transaction."""


@pytest.mark.parametrize("mode", ["add", "upsert", "update"])
def test_failed_commit_leaves_records_and_index_unchanged(tmp_path, monkeypatch, mode):
    rng = np.random.default_rng(1)
    client = vectordb.PersistentClient(tmp_path / "db")
    col = client.create_collection("docs", embedding_function=None)
    vectors = rng.random((50, 8)).astype(np.float32)
    col.add(ids=[f"r{i}" for i in range(50)], embeddings=vectors, metadatas=[{"i": i} for i in range(50)])
    before = snapshot(col)

    real_insert = records_module.insert_columns

    def failing_insert(db, table, *args, **kwargs):
        real_insert(db, table, *args, **kwargs)  # the rows go in, then the transaction fails
        raise DiskTrouble("no space left on device")

    monkeypatch.setattr(records_module, "insert_columns", failing_insert)
    ids = [f"r{i}" for i in range(40, 60)] if mode != "update" else [f"r{i}" for i in range(20)]
    new_vectors = rng.random((len(ids), 8)).astype(np.float32) + 5
    with pytest.raises(DiskTrouble):
        getattr(col, mode)(ids=ids, embeddings=new_vectors, metadatas=[{"new": True}] * len(ids))
    monkeypatch.undo()

    assert snapshot(col) == before
    for query in new_vectors[:5]:
        got = col.query(query_embeddings=query, n_results=5, include=["distances"])
        exact = np.sort(((vectors - query) ** 2).sum(1))[:5]
        np.testing.assert_allclose(got["distances"][0], exact, rtol=1e-4, atol=1e-4)
    assert client.check().ok
    col.add(ids="later", embeddings=rng.random(8))
    assert col.count() == 51
    client.close()
