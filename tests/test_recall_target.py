"""The search breadth that meets a collection's recall target (vectordb.index.calibration):
``hnsw:recall_target`` is validated, a save calibrates ef against exact search, the
choice survives a reopen, and a user's ``hnsw:search_ef`` always wins."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

import vectordb
from vectordb.errors import InvalidArgumentError
from vectordb.index import calibration, settings
from vectordb.index.base import IndexParams
from vectordb.index.hnsw import HnswIndex

DIM = 24
N = 8000


def _data(seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def _true_recall(index: HnswIndex, vectors: np.ndarray, queries: np.ndarray) -> float:
    exact = ((queries ** 2).sum(1)[:, None] - 2 * queries @ vectors.T + (vectors ** 2).sum(1)[None, :])
    truth = np.argsort(exact, axis=1)[:, :10]
    found, _ = index.search(queries, 10)
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))


def _built(params: IndexParams, vectors: np.ndarray) -> HnswIndex:
    index = HnswIndex(params, DIM)
    for start in range(0, len(vectors), 1000):
        index.add(np.arange(start, start + 1000), vectors[start: start + 1000])
    return index


@pytest.mark.parametrize("value", [0, -0.5, 1.01, float("nan"), "high", True, None, [0.9]])
def test_a_bad_recall_target_is_a_typed_error(value):
    client = vectordb.Client()
    with pytest.raises(InvalidArgumentError, match="recall_target"):
        client.create_collection("col", metadata={"hnsw:recall_target": value}, embedding_function=None)


def test_recall_target_and_search_ef_become_index_params():
    assert settings.index_params({}).search_ef == settings.AUTO_EF
    assert settings.index_params({}).recall_target == 0.95
    params = settings.index_params({"hnsw:search_ef": 40, "hnsw:recall_target": 0.9})
    assert (params.search_ef, params.recall_target) == (40, 0.9)
    with pytest.raises(InvalidArgumentError, match="unknown index setting"):
        vectordb.Client().create_collection("col", metadata={"hnsw:recal_target": 0.9})


def test_a_save_calibrates_ef_to_meet_the_target_and_a_reopen_keeps_it(tmp_path):
    vectors = _data(0)
    params = IndexParams(space="l2", search_ef=0, recall_target=0.95)
    index = _built(params, vectors)
    assert index.calibrated is None and index.search_ef == calibration.rule_ef(N)
    index.save(str(tmp_path), 1, "c")
    found = index.calibrated
    assert found is not None and found.ef in calibration.LADDER and found.count == N
    assert found.recall >= 0.95 + calibration.MARGIN or found.ef == calibration.LADDER[-1]
    assert index.search_ef == found.ef
    queries = _data(1, 300)
    assert _true_recall(index, vectors, queries) >= 0.93  # fresh queries, 300 of them: sampling error
    loaded, seq = HnswIndex.load(str(tmp_path), params, DIM, "c")
    assert seq == 1 and loaded.calibrated == found and loaded.search_ef == found.ef
    with open(tmp_path / "meta.json") as f:
        assert json.load(f)["calibrated"]["ef"] == found.ef


def test_a_higher_target_gets_a_larger_ef(tmp_path):
    vectors = _data(2)
    low = _built(IndexParams(space="l2", search_ef=0, recall_target=0.7), vectors)
    low.save(str(tmp_path / "low"), 1, "c")
    high = _built(IndexParams(space="l2", search_ef=0, recall_target=0.99), vectors)
    high.save(str(tmp_path / "high"), 1, "c")
    assert low.calibrated.ef < high.calibrated.ef


def test_a_given_search_ef_wins_and_is_not_calibrated(tmp_path):
    index = _built(IndexParams(space="l2", search_ef=40), _data(3))
    index.save(str(tmp_path), 1, "c")
    assert index.calibrated is None and index.search_ef == 40


def test_small_collections_keep_the_rule_and_ef_grows_with_size(tmp_path):
    index = _built(IndexParams(space="l2", search_ef=0), _data(4, 2000))
    index.save(str(tmp_path), 1, "c")
    assert index.calibrated is None and index.search_ef == calibration.rule_ef(2000)
    sizes = [1_000, 100_000, 200_000, 1_000_000, 10_000_000]
    efs = [calibration.rule_ef(n) for n in sizes]
    assert efs == sorted(efs) and efs[-1] == calibration.LADDER[-1]
    found = calibration.Calibrated(ef=64, count=100_000, recall=0.96, target=0.95)
    assert calibration.scaled_ef(found, 100_000) == 64
    assert calibration.scaled_ef(found, 200_000) == math.ceil(64 * 2 ** calibration.RULE_EXPONENT)
    assert calibration.Calibrated.from_json({"ef": 10 ** 9, "count": 1, "recall": 1, "target": 1}) is None
    assert calibration.Calibrated.from_json("garbage") is None


def test_a_target_the_ladder_could_not_meet_is_not_measured_again_as_the_collection_grows():
    top = calibration.LADDER[-1]
    missed = calibration.Calibrated(ef=top, count=400_000, recall=0.93, target=0.95)
    assert calibration.futile(missed)
    assert not calibration.due(missed, 800_000, 400_000, 0.95)  # grown 2x: would be due, but futile
    assert calibration.due(missed, 300_000, 0, 0.95)  # shrunk by 1.25x: measured again
    assert calibration.due(missed, 800_000, 400_000, 0.9)  # another target: measured again
    met = calibration.Calibrated(ef=top, count=400_000, recall=0.97, target=0.95)
    below_top = calibration.Calibrated(ef=640, count=400_000, recall=0.93, target=0.95)
    assert not calibration.futile(met) and not calibration.futile(below_top)
    assert calibration.due(met, 800_000, 400_000, 0.95) and calibration.due(below_top, 800_000, 0, 0.95)


def test_through_the_api_a_collection_reopens_with_its_calibrated_ef(tmp_path):
    path = str(tmp_path / "db")
    vectors = _data(5, 6000)
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("col", metadata={"hnsw:space": "l2"}, embedding_function=None)
        col.add(ids=[f"r{i}" for i in range(len(vectors))], embeddings=vectors)
    (folder,) = [os.path.join(path, "index", name) for name in os.listdir(os.path.join(path, "index"))]
    with open(os.path.join(folder, "meta.json")) as f:
        ef = json.load(f)["calibrated"]["ef"]
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("col", embedding_function=None)
        assert col.query(query_embeddings=vectors[:5], n_results=1)["ids"] == [[f"r{i}"] for i in range(5)]
        index = client.backend.engine.indexes.loaded(col.id)
        assert index.search_ef == ef
        col.modify(metadata={"hnsw:space": "l2", "hnsw:search_ef": 33})
        col.query(query_embeddings=vectors[:1], n_results=1)
        assert client.backend.engine.indexes.loaded(col.id).search_ef == 33
