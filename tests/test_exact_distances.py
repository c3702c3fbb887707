"""Exact search returns distances that agree with a float64 computation to float32 rounding:
l2 = Σ(q−x)², cosine = 1 − cos, ip = 1 − q·x, at several dimensions and scales; a vector
is at distance 0 from itself (a float32 |q|² − 2q·x + |x|² put a 290-d vector 1.2e-4
away from itself); and near-ties that float32 cannot order still come back in order."""

from __future__ import annotations

import numpy as np
import pytest

from exact_helpers import near_ties, reference_distances
import vectordb
from vectordb.index.exact import ExactVectors, exact_search

DIMS = [2, 17, 128, 290, 384, 1536]
SCALES = [1e-3, 1.0, 1e3]
SPACES = ["l2", "cosine", "ip"]
N = 120


def _matrix(vectors: np.ndarray) -> ExactVectors:
    """An exact-search matrix filled with ``vectors`` under labels 0..n-1."""
    return ExactVectors(vectors.shape[1], lambda: iter([(np.arange(len(vectors)), vectors)]))


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("space", SPACES)
def test_distances_agree_with_float64(space, dim, scale):
    rng = np.random.default_rng(dim)
    vectors = (rng.standard_normal((N, dim)) * scale).astype(np.float32)
    queries = np.concatenate([vectors[:4], (rng.standard_normal((4, dim)) * scale).astype(np.float32)])
    labels = np.arange(N)
    for k in (5, N):  # a selection, and every candidate
        found, distances = exact_search(space, queries, k, labels, _matrix(vectors))
        reference = reference_distances(space, queries, vectors)
        expected = np.take_along_axis(reference, found, axis=1)
        assert distances.dtype == np.float32
        # float32 rounding of the float64 value (plus float64 rounding of its terms)
        tolerance = 1e-6 * np.abs(expected) + 1e-12 * (scale**2 * dim if space != "cosine" else 1)
        assert np.all(np.abs(distances - expected) <= tolerance), np.abs(distances - expected).max()
        order = np.argsort(reference, axis=1, kind="stable")[:, :k]
        assert np.array_equal(found, order)
    own = exact_search(space, queries[:4], 1, labels[:4], _matrix(vectors))[1][:, 0]  # each query against itself
    if space == "l2":
        assert np.all(own == 0)
    elif space == "cosine":
        assert np.all(np.abs(own) <= 1e-12)


def test_a_290_dim_vector_is_at_distance_zero_from_itself_through_a_collection():
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((50, 290)).astype(np.float32)
    col = vectordb.Client().create_collection("self-distance", embedding_function=None)
    col.add([str(i) for i in range(50)], vectors, metadatas=[{"x": i % 3} for i in range(50)])
    result = col.query(vectors[:10], n_results=1, include=["distances"])
    assert [ids[0] for ids in result["ids"]] == [str(i) for i in range(10)]
    assert [d[0] for d in result["distances"]] == [0.0] * 10
    filtered = col.query(vectors[3], n_results=2, where={"x": 0}, include=["distances"])
    assert filtered["ids"][0][0] == "3" and filtered["distances"][0][0] == 0.0


@pytest.mark.parametrize("space", SPACES)
def test_near_ties_float32_cannot_order_come_back_in_order(space):
    """Vectors 1e-3 apart on a 1e3 scale: float32 |q|²−2q·x+|x|² errs by far more than their
    differences, so the float32 pass must keep every candidate it cannot tell apart."""
    vectors, base = near_ties()
    labels = np.arange(len(vectors))
    query = base[None, :]
    found, distances = exact_search(space, query, 10, labels, _matrix(vectors))
    reference = reference_distances(space, query, vectors)[0]
    assert np.array_equal(found[0], np.argsort(reference, kind="stable")[:10])
    assert np.all(np.diff(distances[0]) >= 0)
