"""``vectordb copy``: a store → Milvus Lite → a new store gives back identical collections, and reruns are idempotent."""

from __future__ import annotations

import json

import numpy as np

import vectordb
from vectordb.cli import main
from vectordb.embedding_functions import DefaultEmbeddingFunction


def _everything(client: vectordb.Client, name: str):
    info = client._backend.get_collection(name)
    got = client.get_collection(name, embedding_function=None).get(include=["embeddings", "metadatas", "documents"])
    return info.metadata, info.ef_name, info.ef_config, got["ids"], got["embeddings"], got["metadatas"], got["documents"]


def test_copy_round_trip_store_to_milvus_to_store(tmp_path, capsys):
    rng = np.random.default_rng(7)
    n = 1100  # more than one batch
    with vectordb.PersistentClient(str(tmp_path / "src")) as src:
        col = src.create_collection("notes.v1", metadata={"hnsw:space": "cosine", "owner": "me"},
                                    embedding_function=DefaultEmbeddingFunction())
        vectors = rng.normal(size=(n, 8)).astype(np.float32)
        metas = [None if i % 7 == 0 else {"i": i, "f": i / 3, "b": i % 2 == 0, "s": f"'{i}\"", "l": [i, i + 1]}
                 for i in range(n)]
        docs = [None if i % 5 == 0 else f"doc {i} 50% \\ \"q\"" for i in range(n)]
        col.add(ids=[f"id-{i}'" for i in range(n)], embeddings=vectors, metadatas=metas, documents=docs)
        src.create_collection("empty-one", embedding_function=None)
        expected = {name: _everything(src, name) for name in ("notes.v1", "empty-one")}
    lite = f"milvus-lite:{tmp_path / 'mid.db'}"
    for _ in range(2):  # a rerun changes nothing
        assert main(["copy", "--from", str(tmp_path / "src"), "--to", lite, "--no-progress", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == [{"name": "notes.v1", "records": n}, {"name": "empty-one", "records": 0}]
    assert main(["copy", "--from", lite, "--to", str(tmp_path / "back"), "--no-progress", "notes.v1", "empty-one"]) == 0
    with vectordb.PersistentClient(str(tmp_path / "back")) as back:
        for name, want in expected.items():
            got = _everything(back, name)
            assert got[:4] == want[:4], name
            np.testing.assert_array_equal(got[4], want[4])  # embeddings: exact
            assert got[5:] == want[5:], name


def test_copy_refuses_a_missing_source(tmp_path, capsys):
    assert main(["copy", "--from", str(tmp_path / "nothing"), "--to", str(tmp_path / "x")]) == 1
    assert "no vectordb store there" in capsys.readouterr().err
