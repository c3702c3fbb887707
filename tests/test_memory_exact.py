"""Exact search over int8 codes (the exact-search matrix of a large collection) is exact: it
returns the same labels, in the same order, with the same distances as a float64 computation,
at several dimensions, scales and spaces, with near-ties and zero vectors; it reads back from
the index only a few candidates; and if the index cannot hand vectors back, it goes back to a
float32 copy and stays exact."""

from __future__ import annotations

import numpy as np
import pytest

from exact_helpers import near_ties, reference_distances
from vectordb.index import exact as exact_module
from vectordb.index.exact import ExactVectors, exact_search

SPACES = ["l2", "cosine", "ip"]


class _Index:
    """Stands in for hnswlib: hands back its copy of vectors by label (normalised for cosine), counting reads."""

    def __init__(self, space: str, vectors: np.ndarray) -> None:
        stored = vectors.astype(np.float32)
        if space == "cosine":
            norms = np.linalg.norm(stored, axis=1, keepdims=True)
            stored = (stored / np.where(norms == 0, 1, norms)).astype(np.float32)
        self.stored = stored
        self.read = 0

    def fetch(self, labels: np.ndarray) -> np.ndarray:
        self.read += len(labels)
        return self.stored[labels]


def _coded(space: str, vectors: np.ndarray, monkeypatch) -> "tuple[ExactVectors, _Index]":
    monkeypatch.setattr(exact_module, "QUANTIZE_MIN_ROWS", 1)
    index = _Index(space, vectors)
    matrix = ExactVectors(vectors.shape[1], lambda: iter([(np.arange(len(vectors)), vectors)]), exact=index.fetch)
    matrix.capacity = len(vectors)
    return matrix, index


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("dim", [3, 64, 384])
@pytest.mark.parametrize("space", SPACES)
def test_codes_give_the_exact_neighbours_and_distances(space, dim, scale, monkeypatch):
    rng = np.random.default_rng(dim)
    vectors = (rng.standard_normal((3000, dim)) * scale).astype(np.float32)
    queries = np.concatenate([vectors[:3], (rng.standard_normal((5, dim)) * scale).astype(np.float32)])
    matrix, index = _coded(space, vectors, monkeypatch)
    labels = np.sort(rng.choice(len(vectors), 1500, replace=False))
    labels[:3] = [0, 1, 2]
    labels.sort()
    for k in (1, 10, 40):
        found, distances = exact_search(space, queries, k, labels, matrix)
        assert matrix.quantized
        reference = reference_distances(space, queries, vectors[labels])
        order = np.argsort(reference, axis=1, kind="stable")[:, :k]
        assert np.array_equal(found, labels[order])
        expected = np.take_along_axis(reference, order, axis=1)
        tolerance = 2e-6 * np.abs(expected) + 1e-12 * (scale**2 * dim if space != "cosine" else 1) \
            + (1e-6 if space == "cosine" else 0)  # cosine: from the unit vectors hnswlib keeps
        assert np.all(np.abs(distances - expected) <= tolerance)
    own = exact_search(space, vectors[:3], 1, labels, matrix)
    assert np.array_equal(own[0][:, 0], [0, 1, 2]) or space == "ip"
    if space == "l2":
        assert np.all(own[1] == 0)
    if space == "cosine":
        assert np.all(np.abs(own[1]) <= 1e-12)
    assert index.read < 8 * 40 * len(queries)  # a few candidates per query, not the 1,500


@pytest.mark.parametrize("space", SPACES)
def test_near_ties_and_zero_vectors(space, monkeypatch):
    vectors, base = near_ties(zeros=3)
    dim = vectors.shape[1]
    matrix, _ = _coded(space, vectors, monkeypatch)
    labels = np.arange(len(vectors))
    for query in (base[None, :], np.zeros((1, dim), np.float32)):
        found, distances = exact_search(space, query, 10, labels, matrix)
        reference = reference_distances(space, query, vectors)[0]
        assert np.array_equal(found[0], np.argsort(reference, kind="stable")[:10])
        assert np.all(np.diff(distances[0]) >= 0)


def test_puts_after_filling_and_growing_into_codes(monkeypatch):
    monkeypatch.setattr(exact_module, "QUANTIZE_MIN_ROWS", 64)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    index = _Index("l2", vectors)
    matrix = ExactVectors(16, lambda: iter([(np.arange(40), vectors[:40])]), exact=index.fetch)
    matrix.capacity = 40
    exact_search("l2", vectors[:1], 5, np.arange(40), matrix)
    assert matrix.filled and not matrix.quantized  # 40 rows: float32
    matrix.put(np.arange(40, 200), vectors[40:])  # grows past QUANTIZE_MIN_ROWS: converted to codes
    assert matrix.quantized
    found, distances = exact_search("l2", vectors[150:152], 3, np.arange(200), matrix)
    assert found[:, 0].tolist() == [150, 151] and np.all(distances[:, 0] == 0)
    assert not matrix.differs(np.arange(200), vectors)
    assert matrix.differs(np.arange(1), vectors[1:2])


def test_an_index_that_cannot_hand_vectors_back_falls_back_to_float32(monkeypatch, caplog):
    monkeypatch.setattr(exact_module, "QUANTIZE_MIN_ROWS", 1)
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((500, 8)).astype(np.float32)

    def broken(labels: np.ndarray) -> np.ndarray:
        raise RuntimeError("Label not found")

    matrix = ExactVectors(8, lambda: iter([(np.arange(500), vectors)]), exact=broken)
    matrix.capacity = 500
    found, distances = exact_search("l2", vectors[7:8], 3, np.arange(500), matrix)
    assert found[0, 0] == 7 and distances[0, 0] == 0
    assert matrix.filled and not matrix.quantized
    assert "float32 copy" in caplog.text
