"""Exact (brute-force) search, with distances exact to float32 rounding.

:class:`ExactVectors` is a dense float32 copy of an index's vectors by label, filled on
first use from the store's records and kept current by the index's adds: reading
vectors back from a graph library is far slower (hnswlib's ``get_items`` costs about
20 µs a vector). :func:`exact_search` picks the k nearest of a set of labels.

Distances are those of hnswlib: squared l2, 1 - cosine similarity, 1 - dot product.
Candidates are chosen with one float32 matrix product (fast), then the distances of
every candidate that could be among the k nearest are computed again in float64 from
the vectors themselves (l2 from the differences), so a vector is at distance 0 from
itself and a distance agrees with a float64 computation to float32 rounding. A float32
``|q|² - 2q·x + |x|²`` alone would be off by up to ~1e-7 of ``|q|² + |x|²``, which is
large for near neighbours (a 290-d vector came back 1.2e-4 from itself).
"""

from __future__ import annotations

import threading
from typing import Optional, Tuple

import numpy as np

from vectordb.index.base import SearchResult, VectorSource

_U32 = float(np.finfo(np.float32).eps) / 2
"""Unit roundoff of float32."""
_REFINE_BLOCK = 1 << 22
"""Float64 elements per refinement step (bounds its memory to 32 MiB)."""


class ExactVectors:
    """A dense float32 matrix of vectors by label (as the records hold them) and their squared norms.

    It is filled on first read from :attr:`source` (the engine points it at the store's
    records), or from ``fallback`` (the index's own copy) when no source is set, and
    then kept current by :meth:`put`. Until then it costs no memory. Several searches
    may read it at once (never beside :meth:`put`): the first fills it under a mutex and
    publishes it only once it is full.
    """

    def __init__(self, dim: int, fallback: VectorSource) -> None:
        self.dim = dim
        self.source: Optional[VectorSource] = None
        self.capacity = 1024
        """Rows to allocate when filling (the index keeps it at its label bound, so the
        matrix is allocated once instead of grown by copies)."""
        self._fallback = fallback
        self._rows: Optional[np.ndarray] = None
        self._squares: Optional[np.ndarray] = None
        self._filling = threading.Lock()

    @property
    def filled(self) -> bool:
        """Whether the matrix has been filled (after which :meth:`put` keeps it current)."""
        return self._rows is not None

    def _fill(self) -> None:
        with self._filling:
            if self._rows is not None:
                return  # another search filled it meanwhile
            rows = np.zeros((max(self.capacity, 1), self.dim), dtype=np.float32)
            squares = np.zeros(len(rows), dtype=np.float32)
            for labels, vectors in (self.source or self._fallback)():
                rows, squares = self._put(rows, squares, labels, vectors)
            self._squares = squares
            self._rows = rows  # last: a search that sees the rows sees the squares

    def put(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Store the vectors of ``labels`` (ignored until the matrix is filled)."""
        if self._rows is None or self._squares is None or len(labels) == 0:
            return
        self._rows, self._squares = self._put(self._rows, self._squares, labels, vectors)

    def _put(self, rows: np.ndarray, squares: np.ndarray, labels: np.ndarray, vectors: np.ndarray
             ) -> Tuple[np.ndarray, np.ndarray]:
        """Write ``vectors`` at ``labels`` into ``rows`` and ``squares``, grown first if need be."""
        if len(labels) == 0:
            return rows, squares
        labels = np.asarray(labels, dtype=np.int64)
        top = int(labels.max())
        if top >= len(rows):
            size = max(top + 1, 2 * len(rows))
            grown = np.zeros((size, self.dim), dtype=np.float32)
            grown[: len(rows)] = rows
            grown_squares = np.zeros(size, dtype=np.float32)
            grown_squares[: len(squares)] = squares
            rows, squares = grown, grown_squares
        vectors = np.asarray(vectors, dtype=np.float32)
        rows[labels] = vectors
        squares[labels] = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
        return rows, squares

    def rows(self, labels: np.ndarray) -> np.ndarray:
        """The vectors of ``labels`` (a copy)."""
        if self._rows is None:
            self._fill()
        assert self._rows is not None
        return self._rows[labels]

    def squares(self, labels: np.ndarray) -> np.ndarray:
        """The squared norms of the vectors of ``labels``."""
        if self._squares is None:
            self._fill()
        assert self._squares is not None
        return self._squares[labels]

    def differs(self, labels: np.ndarray, embeddings: np.ndarray) -> bool:
        """Whether the filled matrix holds other vectors than ``embeddings`` for ``labels``."""
        if self._rows is None:
            return False
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) and int(labels.max()) >= len(self._rows):
            return True
        return not np.allclose(self._rows[labels], embeddings, atol=1e-5)


def exact_search(space: str, queries: np.ndarray, k: int, labels: np.ndarray, vectors: ExactVectors) -> SearchResult:
    """The k nearest of ``labels`` to each query, by brute force; ties go to the earlier label."""
    labels = np.asarray(labels, dtype=np.int64)
    queries = np.asarray(queries, dtype=np.float32)
    n = len(labels)
    k = min(k, n)
    if k == 0:
        return np.empty((len(queries), 0), dtype=np.int64), np.empty((len(queries), 0), dtype=np.float32)
    rows = vectors.rows(labels)
    rough, margin = _float32_distances(space, queries, rows, vectors.squares(labels))
    at = np.arange(len(queries))[:, None]
    valid: Optional[np.ndarray] = None
    if k < n:
        top = np.argpartition(rough, k - 1, axis=1)[:, :k]
        threshold = (rough[at, top].max(axis=1) + margin)[:, None]
        near = rough <= threshold
        width = int(near.sum(axis=1).max())
        if width == k:  # the usual case: the k chosen in float32 are the only candidates
            candidates = top
        else:  # near-ties float32 cannot order: keep every candidate within the margin
            candidates = np.argpartition(rough, width - 1, axis=1)[:, :width] if width < n \
                else np.broadcast_to(np.arange(n), rough.shape)
            valid = near[at, candidates]
    else:
        candidates = np.broadcast_to(np.arange(n), rough.shape)
    out_positions = np.empty((len(queries), k), dtype=np.int64)
    out_distances = np.empty((len(queries), k), dtype=np.float32)
    step = max(1, _REFINE_BLOCK // max(1, candidates.shape[1] * vectors.dim))
    for start in range(0, len(queries), step):
        block = slice(start, start + step)
        chosen = np.ascontiguousarray(candidates[block])
        exact = exact_distances(space, queries[block], rows[chosen])
        if valid is not None:
            exact[~valid[block]] = np.inf  # beyond their row's threshold: cannot be among the k
        order = np.lexsort((chosen, exact), axis=-1)[:, :k]
        inner = np.arange(len(chosen))[:, None]
        out_positions[block] = chosen[inner, order]
        out_distances[block] = exact[inner, order]
    return labels[out_positions], out_distances


def exact_distances(space: str, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Float64 distances of each query (``queries``: (q, dim)) to its own rows of ``vectors``
    ((q, m, dim)): squared l2 from the differences, 1 - cosine, 1 - dot product."""
    q = np.asarray(queries, dtype=np.float64)[:, None, :]
    x = np.asarray(vectors, dtype=np.float64)
    if space == "l2":
        diff = x - q
        return np.einsum("qmd,qmd->qm", diff, diff)
    dots = np.einsum("qmd,qmd->qm", x, np.broadcast_to(q, x.shape))
    if space == "cosine":
        qn = np.sqrt(np.einsum("qmd,qmd->qm", q, q))
        xn = np.sqrt(np.einsum("qmd,qmd->qm", x, x))
        return 1 - dots / (np.where(qn == 0, 1, qn) * np.where(xn == 0, 1, xn))
    return 1 - dots


def _float32_distances(space: str, queries: np.ndarray, rows: np.ndarray, squares: np.ndarray):
    """Distances by one float32 matrix product, and per query a bound on twice their rounding error.

    A float32 dot product of length d errs by at most about d·u·|q|·|x| whatever the
    order of summation (u: float32 unit roundoff), so ``2·(d + 4)·u·scale`` covers the
    error of a candidate's distance and of the k-th distance it is compared with.
    """
    dim = rows.shape[1]
    q_squares = np.einsum("ij,ij->i", queries, queries, dtype=np.float64)
    x_max = float(np.sqrt(squares.max())) if len(squares) else 0.0
    q_norms = np.sqrt(q_squares)
    products = queries @ rows.T
    if space == "l2":
        rough = q_squares.astype(np.float32)[:, None] - 2 * products + squares[None, :]
        np.maximum(rough, 0, out=rough)
        scale = (q_norms + x_max) ** 2
    elif space == "cosine":
        x_norms = np.sqrt(squares)
        q_safe = np.where(q_norms == 0, 1, q_norms).astype(np.float32)
        rough = 1 - products / (q_safe[:, None] * np.where(x_norms == 0, 1, x_norms)[None, :])
        scale = np.full(len(queries), 2.0)
    else:
        rough = 1 - products
        scale = q_norms * x_max + 1
    return rough.astype(np.float32, copy=False), 2 * (dim + 4) * _U32 * scale
