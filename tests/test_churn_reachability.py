"""Records stay within reach of the graph after churn: a new vector for a record is inserted
afresh (hnswlib's in-place update left moved vectors with no links to them), deleted slots
are not patched over, and the graph is rebuilt once they pile up (vectordb.index.hnsw)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vectordb
from vectordb.index import hnsw, hnsw_file
from vectordb.index.base import IndexParams
from vectordb.index.hnsw import HnswIndex

DIM = 32
PARAMS = IndexParams(space="l2", search_ef=64)


def _not_top1(index: HnswIndex, labels: np.ndarray, vectors: np.ndarray) -> int:
    found, _ = index.knn(vectors, 1)
    return int((found[:, 0] != labels).sum())


def _churn(index: HnswIndex, rng: np.random.Generator, rounds: int) -> dict:
    """Rounds of 200 adds, 100 upserts with new vectors and 100 deletes; the final vectors by label."""
    vectors = {}
    next_label = 0

    def add(n: int) -> None:
        nonlocal next_label
        labels = np.arange(next_label, next_label + n)
        new = rng.random((n, DIM), dtype=np.float32)
        index.add(labels, new)
        vectors.update(zip(labels.tolist(), new))
        next_label += n

    add(2000)
    for _ in range(rounds):
        add(200)
        changed = rng.choice(np.fromiter(vectors, dtype=np.int64), 100, replace=False)
        new = rng.random((100, DIM), dtype=np.float32)
        index.add(changed, new)
        vectors.update(zip(changed.tolist(), new))
        gone = rng.choice(np.fromiter(vectors, dtype=np.int64), 100, replace=False)
        index.remove(gone)
        for label in gone.tolist():
            del vectors[label]
    return vectors


def test_every_record_stays_as_reachable_as_in_a_fresh_graph():
    rng = np.random.default_rng(0)
    index = HnswIndex(PARAMS, DIM)
    vectors = _churn(index, rng, rounds=20)
    labels = np.fromiter(sorted(vectors), dtype=np.int64)
    final = np.stack([vectors[int(label)] for label in labels])
    assert index.count == len(labels) and sorted(index.live_labels()) == labels.tolist()
    fresh = HnswIndex(PARAMS, DIM)
    fresh.add(labels, final)
    churned_misses, fresh_misses = _not_top1(index, labels, final), _not_top1(fresh, labels, final)
    # Before: records whose vector was replaced in place lost their in-links (tens of misses here).
    assert churned_misses <= fresh_misses + 3, (churned_misses, fresh_misses)
    queries = rng.random((300, DIM), dtype=np.float32)
    exact = ((queries ** 2).sum(1)[:, None] - 2 * queries @ final.T + (final ** 2).sum(1)[None, :])
    truth = labels[np.argsort(exact, axis=1)[:, :10]]

    def recall(ix: HnswIndex) -> float:
        found, _ = ix.knn(queries, 10)
        return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))

    assert recall(index) >= recall(fresh) - 0.02


def test_an_upserted_vector_is_found_and_its_old_vector_is_gone():
    rng = np.random.default_rng(1)
    index = HnswIndex(PARAMS, DIM)
    old = rng.random((3000, DIM), dtype=np.float32)
    index.add(np.arange(3000), old)
    new = rng.random((500, DIM), dtype=np.float32)
    index.add(np.arange(500), new)
    assert index.count == 3000 and index.deleted == 500
    assert _not_top1(index, np.arange(500), new) <= 2
    found, _ = index.knn(old[:500], 10)
    for label, row in enumerate(found):
        assert len(set(row.tolist())) == 10  # no label twice
    np.testing.assert_allclose(index.stored_vectors(np.arange(500)), new, atol=1e-6)
    assert index.compare_vectors(np.arange(3000), np.concatenate([new, old[500:]])) is None


def test_a_label_given_twice_in_one_add_keeps_its_last_vector():
    index = HnswIndex(PARAMS, DIM)
    vectors = np.random.default_rng(2).random((4, DIM), dtype=np.float32)
    index.add(np.array([7, 8, 7, 9]), vectors)
    assert index.count == 3 and index.deleted == 0
    np.testing.assert_allclose(index.stored_vectors(np.array([7])), vectors[2:3], atol=1e-6)


def test_deleted_slots_past_the_threshold_rebuild_the_graph(monkeypatch):
    monkeypatch.setattr(hnsw, "COMPACT_MIN", 100)
    rng = np.random.default_rng(3)
    index = HnswIndex(PARAMS, DIM)
    vectors = rng.random((1000, DIM), dtype=np.float32)
    index.add(np.arange(1000), vectors)
    for _ in range(6):  # upserts only: no delete ever asks the engine to compact
        changed = rng.choice(1000, 100, replace=False)
        vectors[changed] = rng.random((100, DIM), dtype=np.float32)
        index.add(changed, vectors[changed])
    assert index.deleted < 500 and index.count == 1000
    assert _not_top1(index, np.arange(1000), vectors) <= 2
    np.testing.assert_allclose(index.stored_vectors(np.arange(1000)), vectors, atol=1e-6)


def test_a_churned_index_saves_and_loads_its_key_map(tmp_path):
    rng = np.random.default_rng(4)
    index = HnswIndex(PARAMS, DIM)
    vectors = _churn(index, rng, rounds=5)
    index.save(str(tmp_path), 3, "c")
    loaded, seq = HnswIndex.load(str(tmp_path), PARAMS, DIM, "c")
    labels = np.fromiter(sorted(vectors), dtype=np.int64)
    final = np.stack([vectors[int(label)] for label in labels])
    assert (seq, loaded.count, loaded.deleted) == (3, index.count, index.deleted)
    assert loaded.live_labels().tolist() == labels.tolist()
    assert loaded.compare_vectors(labels, final) is None
    assert _not_top1(loaded, labels, final) == _not_top1(index, labels, final)


@pytest.mark.parametrize("keys", [np.array([0, 0, 1], dtype=np.int64), np.array([5, -7, 1], dtype=np.int64),
                                  np.arange(3, dtype=np.int32)])
def test_a_hostile_key_map_makes_the_index_unusable(tmp_path, keys):
    index = HnswIndex(PARAMS, DIM)
    index.add(np.arange(3), np.random.default_rng(5).random((3, DIM), dtype=np.float32))
    index.save(str(tmp_path), 1, "c")
    with open(tmp_path / "keys.npy", "wb") as f:
        np.save(f, keys)
    assert HnswIndex.load(str(tmp_path), PARAMS, DIM, "c") is None  # its checksum
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["files"]["keys.npy"] = hnsw_file.checksum(str(tmp_path / "keys.npy"))
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    assert HnswIndex.load(str(tmp_path), PARAMS, DIM, "c") is None  # its contents


def test_through_the_api_upserted_records_are_found_by_their_new_vectors(tmp_path):
    rng = np.random.default_rng(6)
    with vectordb.PersistentClient(str(tmp_path / "db")) as client:
        col = client.create_collection("col", metadata={"hnsw:space": "l2"}, embedding_function=None)
        col.add(ids=[f"r{i}" for i in range(4000)], embeddings=rng.random((4000, DIM), dtype=np.float32))
        new = rng.random((1000, DIM), dtype=np.float32)
        col.upsert(ids=[f"r{i}" for i in range(1000)], embeddings=new)
        col.delete(ids=[f"r{i}" for i in range(3000, 3500)])
        got = col.query(query_embeddings=new, n_results=1, include=[])["ids"]
        assert sum(g != [f"r{i}"] for i, g in enumerate(got)) <= 3
        assert col.count() == 3500
    with vectordb.PersistentClient(str(tmp_path / "db")) as client:
        col = client.get_collection("col", embedding_function=None)
        got = col.query(query_embeddings=new, n_results=1, include=[])["ids"]
        assert sum(g != [f"r{i}"] for i, g in enumerate(got)) <= 3
        assert client.check().ok
