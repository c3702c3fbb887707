"""Data that exact search finds hard, and the float64 distances it must agree with, shared by the tests
of its float32 and one-byte-code paths."""

from __future__ import annotations

from typing import Tuple

import numpy as np


def near_ties(zeros: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """Forty vectors 1e-2 apart along one direction on a 1e3 scale (float32 |q|²−2q·x+|x|² errs by
    far more than their differences) among 200 far ones, with ``zeros`` zero vectors; and the base
    point they start from (the query that must get them back in order). 290 dimensions."""
    rng = np.random.default_rng(11)
    dim = 290
    base = (rng.standard_normal(dim) * 1e3).astype(np.float32)
    direction = rng.standard_normal(dim).astype(np.float32)
    direction /= np.linalg.norm(direction)
    steps = rng.permutation(40)
    near = (base[None, :] + (steps[:, None] * 1e-2 + 1e-2) * direction[None, :]).astype(np.float32)
    far = (rng.standard_normal((200, dim)) * 1e3).astype(np.float32)
    vectors = np.concatenate([far[:100], near, np.zeros((zeros, dim), np.float32), far[100:]])
    return vectors, base


def reference_distances(space: str, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Float64 distances of every query to every vector (a zero vector's cosine distance is 1, as the
    engine gives it)."""
    q = queries.astype(np.float64)[:, None, :]
    x = vectors.astype(np.float64)[None, :, :]
    if space == "l2":
        return ((q - x) ** 2).sum(-1)
    dots = (q * x).sum(-1)
    if space == "cosine":
        qn, xn = np.linalg.norm(q, axis=-1), np.linalg.norm(x, axis=-1)
        return 1 - dots / (np.where(qn == 0, 1, qn) * np.where(xn == 0, 1, xn))
    return 1 - dots
