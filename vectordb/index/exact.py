"""Exact (brute-force) search, with distances exact to float32 rounding.

:class:`ExactVectors` is an index's vectors by label for exact search, filled on first use
from the store's records and kept current by the index's adds: reading vectors back from
a graph library one by one is far slower (hnswlib's ``get_items`` costs about 25 µs a
384-d vector: 2,000 in 51 ms). It holds them in one of two forms:

* **float32**: a dense copy of every vector (4 bytes a dimension). Used for small
  collections, and whenever the index cannot hand back single vectors (no :attr:`ExactVectors.exact`).
* **int8 codes** (1 byte a dimension, plus a scale and a squared norm per vector): used once
  the matrix holds :data:`QUANTIZE_MIN_ROWS` rows and the index gives :attr:`ExactVectors.exact`,
  a function that returns the index's own copy of some vectors. The codes choose the
  candidates: each rough distance comes with a rigorous bound on its error (quantization
  and float32 rounding), and every vector whose lower bound is within the k-th smallest
  upper bound is a candidate, so no true neighbour is ever left out. Only those few
  candidates (about k to 3k) are read from the index and ranked by float64 distances. A
  quarter of the memory of the float32 copy, and faster at scale (a quarter of the bytes
  to gather).

:func:`exact_search` picks the k nearest of a set of labels. Distances are those of
hnswlib: squared l2, 1 - cosine similarity, 1 - dot product. Candidates are chosen with one
float32 matrix product (fast), then the distances of every candidate that could be among
the k nearest are computed again in float64 from the vectors themselves (l2 from the
differences), so a vector is at distance 0 from itself and a distance agrees with a
float64 computation to float32 rounding. A float32 ``|q|² - 2q·x + |x|²`` alone would be
off by up to ~1e-7 of ``|q|² + |x|²``, which is large for near neighbours (a 290-d vector
came back 1.2e-4 from itself). (hnswlib keeps cosine vectors normalised: from those, a
cosine distance agrees with the float64 one to float32 rounding of the unit vector, and a
vector's distance to itself is within 1e-15 of 0.)
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional, Tuple

import numpy as np

from vectordb.index.base import SearchResult, VectorSource

log = logging.getLogger("vectordb")

_U32 = float(np.finfo(np.float32).eps) / 2
"""Unit roundoff of float32."""
_REFINE_BLOCK = 1 << 22
"""Float64 elements per refinement step (bounds its memory to 32 MiB)."""
QUANTIZE_MIN_ROWS = 16_384
"""A matrix with room for this many rows or more keeps int8 codes (when the index can hand back
single vectors); a smaller one keeps float32 vectors (read at run time)."""
ROUGH_ROWS = 1024
"""Rows per float32 matrix product of exact search (read at run time): one query against many
more rows makes OpenBLAS split the product over threads, which on a machine whose cores are busy
took 8 ms instead of 0.05 (2,078 rows; the tail's exact search found the same, see ``tail.py``)."""
_CODE_MAX = 127
_QUANTIZE_ROWS = 1024
"""Vectors quantized at a time: the float64 temporaries stay at a few MB (at 8,192 rows, ~100 MB
came on top of the peak RSS while a 200,000-record matrix was filled)."""
_QUANT_ERROR = 0.5 + 1e-4
"""|x - scale·code| <= scale·_QUANT_ERROR per component (round to nearest, plus the rounding of x/scale)."""

ExactFetch = Callable[[np.ndarray], np.ndarray]
"""Labels -> their vectors (float32, one row each) as the index holds them: exactly as added for
l2 and ip; for cosine, any copy of the same direction (hnswlib keeps them normalised)."""


class _Matrix:
    """Vectors by label in one of the two forms (float32 ``data``, or int8 ``data`` with ``scales``),
    and the squared norm of each vector as added."""

    def __init__(self, dim: int, rows: int, quantized: bool) -> None:
        self.dim = dim
        self.quantized = quantized
        self.data = np.zeros((max(rows, 1), dim), dtype=np.int8 if quantized else np.float32)
        self.scales = np.zeros(len(self.data), dtype=np.float32) if quantized else None
        self.residuals = np.zeros(len(self.data), dtype=np.float32) if quantized else None
        """With codes: an upper bound on ``|vector - scale·codes|`` (Euclidean) of each row."""
        self.squares = np.zeros(len(self.data), dtype=np.float32)

    def nbytes(self) -> int:
        """Bytes allocated (pages never written are not resident)."""
        extra = 0 if self.scales is None or self.residuals is None else self.scales.nbytes + self.residuals.nbytes
        return self.data.nbytes + self.squares.nbytes + extra

    def put(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Write ``vectors`` at ``labels``, growing the arrays (by doubling) first if need be."""
        if len(labels) == 0:
            return
        labels = np.asarray(labels, dtype=np.int64)
        top = int(labels.max())
        if top >= len(self.data):
            size = max(top + 1, 2 * len(self.data))
            self.data = _grown(self.data, size)
            self.squares = _grown(self.squares, size)
            if self.scales is not None and self.residuals is not None:
                self.scales = _grown(self.scales, size)
                self.residuals = _grown(self.residuals, size)
        vectors = np.asarray(vectors, dtype=np.float32)
        self.squares[labels] = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
        if self.scales is None or self.residuals is None:
            self.data[labels] = vectors
        else:
            for start in range(0, len(labels), _QUANTIZE_ROWS):  # bounded temporaries (float64 residuals)
                part = labels[start: start + _QUANTIZE_ROWS]
                codes, scales, residuals = quantize(vectors[start: start + _QUANTIZE_ROWS])
                self.data[part] = codes
                self.scales[part] = scales
                self.residuals[part] = residuals

    def quantized_copy(self) -> "_Matrix":
        """This float32 matrix as int8 codes (made a block at a time)."""
        out = _Matrix(self.dim, len(self.data), quantized=True)
        out.squares[:] = self.squares
        assert out.scales is not None and out.residuals is not None
        for start in range(0, len(self.data), _QUANTIZE_ROWS):
            codes, scales, residuals = quantize(self.data[start: start + _QUANTIZE_ROWS])
            out.data[start: start + len(codes)] = codes
            out.scales[start: start + len(codes)] = scales
            out.residuals[start: start + len(codes)] = residuals
        return out


def quantize(vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each vector as int8 codes, a float32 scale (the largest magnitude / 127; zero for a zero
    vector) and an upper bound on ``|vector - scale·codes|`` (Euclidean, rounded up)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if not vectors.size:
        empty = np.zeros(len(vectors), dtype=np.float32)
        return np.zeros(vectors.shape, dtype=np.int8), empty, empty.copy()
    scales = (np.abs(vectors).max(axis=1) / np.float32(_CODE_MAX)).astype(np.float32)
    safe = np.where(scales > 0, scales, np.float32(1))
    codes = np.clip(np.rint(vectors / safe[:, None]), -_CODE_MAX, _CODE_MAX).astype(np.int8)
    rest = vectors.astype(np.float64) - codes.astype(np.float64) * scales.astype(np.float64)[:, None]
    residuals = np.sqrt(np.einsum("ij,ij->i", rest, rest)) * (1 + 1e-6)
    residuals = np.nextafter(residuals.astype(np.float32), np.float32(np.inf))
    return codes, scales, residuals


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size,) + array.shape[1:], dtype=array.dtype)
    out[: len(array)] = array
    return out


class ExactVectors:
    """An index's vectors by label for exact search (float32, or int8 codes: see the module), and
    the squared norm of each.

    It is filled on first read from :attr:`source` (the engine points it at the store's
    records), or from ``fallback`` (the index's own copy) when no source is set, and then
    kept current by :meth:`put`. Until then it costs no memory. Several searches may read
    it at once (never beside :meth:`put`): the first fills it under a mutex and publishes
    it only once it is full. ``exact`` (:data:`ExactFetch`, set by the index) lets it keep
    int8 codes; should it ever fail, the matrix goes back to float32 for good.
    """

    def __init__(self, dim: int, fallback: VectorSource, exact: Optional[ExactFetch] = None) -> None:
        self.dim = dim
        self.source: Optional[VectorSource] = None
        self.exact: Optional[ExactFetch] = exact
        self.capacity = 1024
        """Rows to allocate when filling (the index keeps it at its label bound, so the
        matrix is allocated once instead of grown by copies)."""
        self._fallback = fallback
        self._matrix: Optional[_Matrix] = None
        self._filling = threading.Lock()
        self._float32_only = False

    @property
    def filled(self) -> bool:
        """Whether the matrix has been filled (after which :meth:`put` keeps it current)."""
        return self._matrix is not None

    @property
    def quantized(self) -> bool:
        """Whether the filled matrix holds int8 codes (False before it is filled)."""
        matrix = self._matrix
        return matrix is not None and matrix.quantized

    @property
    def _rows(self) -> Optional[np.ndarray]:
        """The float32 rows (None before filling, or when it holds codes): for tests that damage one."""
        matrix = self._matrix
        return None if matrix is None or matrix.quantized else matrix.data

    def nbytes(self) -> int:
        """Bytes the matrix has allocated (0 until it is filled)."""
        matrix = self._matrix
        return 0 if matrix is None else matrix.nbytes()

    def _wants_codes(self, rows: int) -> bool:
        return self.exact is not None and not self._float32_only and rows >= QUANTIZE_MIN_ROWS

    def matrix(self) -> _Matrix:
        """The filled matrix (filled now if it was not)."""
        matrix = self._matrix
        if matrix is not None:
            return matrix
        with self._filling:
            if self._matrix is not None:
                return self._matrix  # another search filled it meanwhile
            rows = max(self.capacity, 1)
            matrix = _Matrix(self.dim, rows, quantized=self._wants_codes(rows))
            for labels, vectors in (self.source or self._fallback)():
                matrix.put(labels, vectors)
            self._matrix = matrix  # published once full
            return matrix

    def put(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Store the vectors of ``labels`` (ignored until the matrix is filled)."""
        matrix = self._matrix
        if matrix is None or len(labels) == 0:
            return
        matrix.put(labels, vectors)
        if not matrix.quantized and self._wants_codes(len(matrix.data)):
            self._matrix = matrix.quantized_copy()

    def give_up_codes(self, why: BaseException) -> None:
        """The index could not hand back vectors: drop the codes and keep float32 vectors from now on."""
        log.warning("exact search cannot read vectors back from the index (%s); keeping a float32 copy", why)
        with self._filling:
            self._float32_only = True
            if self._matrix is not None and self._matrix.quantized:
                self._matrix = None

    def rows(self, labels: np.ndarray) -> np.ndarray:
        """The vectors of ``labels`` (a copy; with int8 codes, read from the index)."""
        matrix = self.matrix()
        if matrix.quantized:
            assert self.exact is not None
            return np.asarray(self.exact(np.asarray(labels, dtype=np.int64)), dtype=np.float32)
        return matrix.data[labels]

    def squares(self, labels: np.ndarray) -> np.ndarray:
        """The squared norms of the vectors of ``labels``."""
        return self.matrix().squares[labels]

    def differs(self, labels: np.ndarray, embeddings: np.ndarray) -> bool:
        """Whether the filled matrix holds other vectors than ``embeddings`` for ``labels`` (with int8
        codes: other than the codes of ``embeddings``, to within one step of the code)."""
        matrix = self._matrix
        if matrix is None:
            return False
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) and int(labels.max()) >= len(matrix.data):
            return True
        if not matrix.quantized:
            return not np.allclose(matrix.data[labels], embeddings, atol=1e-5)
        assert matrix.scales is not None
        scales = matrix.scales[labels][:, None]
        approx = matrix.data[labels].astype(np.float32) * scales
        return not np.all(np.abs(approx - np.asarray(embeddings, dtype=np.float32)) <= scales * _QUANT_ERROR + 1e-6)


def exact_search(space: str, queries: np.ndarray, k: int, labels: np.ndarray, vectors: ExactVectors) -> SearchResult:
    """The k nearest of ``labels`` to each query, by brute force; ties go to the earlier label."""
    labels = np.asarray(labels, dtype=np.int64)
    queries = np.asarray(queries, dtype=np.float32)
    n = len(labels)
    k = min(k, n)
    if k == 0:
        return np.empty((len(queries), 0), dtype=np.int64), np.empty((len(queries), 0), dtype=np.float32)
    if isinstance(vectors, ExactVectors):
        matrix = vectors.matrix()
        if matrix.quantized and vectors.exact is not None:
            try:
                return _coded_search(space, queries, k, labels, matrix, vectors.exact)
            except (RuntimeError, ValueError, IndexError, TypeError) as exc:  # hnswlib: RuntimeError
                vectors.give_up_codes(exc)
    return _float32_search(space, queries, k, labels, vectors)


def _coded_search(space: str, queries: np.ndarray, k: int, labels: np.ndarray, matrix: _Matrix,
                  fetch: ExactFetch) -> SearchResult:
    """Exact search over int8 codes: rough distances with rigorous error bounds pick every vector
    that could be among the k nearest; those are read from the index and ranked in float64."""
    n, dim = len(labels), matrix.dim
    assert matrix.scales is not None and matrix.residuals is not None
    scales = matrix.scales[labels].astype(np.float64)
    squares = matrix.squares[labels].astype(np.float64)
    residuals = matrix.residuals[labels].astype(np.float64)
    products = np.empty((len(queries), n), dtype=np.float32)
    codes, rows = _buffers(ROUGH_ROWS, dim)
    if n and (int(labels.min()) < 0 or int(labels.max()) >= len(matrix.data)):
        raise IndexError(f"labels out of the matrix's {len(matrix.data)} rows")
    for start in range(0, n, ROUGH_ROWS):
        part = labels[start: start + ROUGH_ROWS]
        size = len(part)
        np.take(matrix.data, part, axis=0, out=codes[:size], mode="clip")  # in range (checked): 2x faster
        np.copyto(rows[:size], codes[:size])
        np.matmul(queries, rows[:size].T, out=products[:, start: start + size])
    p = products.astype(np.float64) * scales[None, :]
    q64 = queries.astype(np.float64)
    q_squares = np.einsum("ij,ij->i", q64, q64)
    q_norms = np.sqrt(q_squares)
    x_norms = np.sqrt(squares)
    # |q·x - p| <= |q|·|x - s·c| (Cauchy-Schwarz) + the float32 product's rounding, (d+2)·u·|q|·|s·c|
    error = q_norms[:, None] * (residuals + (dim + 2) * _U32 * (x_norms + residuals))[None, :]
    if space == "l2":
        rough = q_squares[:, None] - 2 * p + squares[None, :]
        margin = 2 * error + 4 * _U32 * (q_squares[:, None] + 2 * np.abs(p) + squares[None, :])
    elif space == "cosine":
        denominator = np.where(q_norms == 0, 1, q_norms)[:, None] * np.where(x_norms == 0, 1, x_norms)[None, :]
        rough = 1 - p / denominator
        margin = error / denominator + 8 * _U32
    else:
        rough = 1 - p
        margin = error + 4 * _U32 * (1 + np.abs(p))
    upper = rough + margin
    bound = np.partition(upper, k - 1, axis=1)[:, k - 1] if k < n else upper.max(axis=1)
    near = (rough - margin) <= bound[:, None]  # every true k-nearest is in here
    union = np.flatnonzero(near.any(axis=0))
    found = np.asarray(fetch(labels[union]), dtype=np.float32)
    if found.shape != (len(union), dim):
        raise ValueError(f"the index handed back {found.shape} for {len(union)} vectors of {dim}")
    at = np.empty(n, dtype=np.int64)
    at[union] = np.arange(len(union))
    out_positions = np.empty((len(queries), k), dtype=np.int64)
    out_distances = np.empty((len(queries), k), dtype=np.float32)
    for row in range(len(queries)):
        candidates = np.flatnonzero(near[row])
        exact = exact_distances(space, queries[row: row + 1], found[at[candidates]][None, :, :])[0]
        order = np.lexsort((candidates, exact))[:k]
        out_positions[row] = candidates[order]
        out_distances[row] = exact[order]
    return labels[out_positions], out_distances


_LOCAL = threading.local()


def _buffers(rows: int, dim: int) -> Tuple[np.ndarray, np.ndarray]:
    """This thread's int8 and float32 buffers of ``rows`` x ``dim`` for the int8 pass, kept between
    searches: a fresh 15 MB temporary per query (10,000 rows) cost more in page faults (8 ms on a
    busy machine) than the whole search."""
    held = getattr(_LOCAL, "buffers", None)
    if held is None or held[0].shape != (rows, dim):
        held = _LOCAL.buffers = (np.empty((rows, dim), dtype=np.int8), np.empty((rows, dim), dtype=np.float32))
    return held


def _float32_search(space: str, queries: np.ndarray, k: int, labels: np.ndarray, vectors: ExactVectors
                    ) -> SearchResult:
    """Exact search over float32 rows (``vectors``: anything with ``rows``, ``squares`` and ``dim``)."""
    n = len(labels)
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
    products = np.empty((len(queries), len(rows)), dtype=np.float32)
    for start in range(0, len(rows), ROUGH_ROWS):  # in parts: see ROUGH_ROWS
        np.matmul(queries, rows[start: start + ROUGH_ROWS].T, out=products[:, start: start + ROUGH_ROWS])
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
