"""The compiled inner loops of BM25 ranking (numba), run without the GIL.

A text query touches every posting of its terms: about 28,000 for a three-word query
over the benchmark's 100,000 documents. Done as numpy passes (scatter the scores, gather
them back, partition, break ties) that cost about 0.5 ms; these loops do it in one
pass per term, one pass gathering the scores and a selection, about 0.15 ms. (A
document-at-a-time merge with MaxScore pruning, as Lucene does, was measured too: on
short documents over a small vocabulary, where bounds prune little, it was 2–4× slower
than the dense array.)

Each function is compiled on its first call and the machine code cached beside this
file (numba's ``cache=True``), so only the first process after an install pays the
compile (about 2 s); later processes load it (about 0.5 s, with numba's import). This
module is imported by :mod:`vectordb.text.bm25` on the first ranking, never by
``import vectordb``.

The scores are computed with the same floating-point operations, in the same order, as
the formula in :mod:`vectordb.text.bm25` states: a document's score is the sum, in query
term order, of ``weight · coefficient`` per term it holds.
"""

from __future__ import annotations

from typing import Any, Callable, Tuple

import numpy as np
from numba import njit


def _compiled(function: Callable[..., Any]) -> Any:
    """``function`` compiled without the GIL, its machine code cached on disk where numba
    finds a writable place (beside this file, else the user's cache folder), else not cached."""
    try:
        return njit(nogil=True, cache=True)(function)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return njit(nogil=True)(function)


@_compiled
def add_term(
    labels: np.ndarray,
    weights: np.ndarray,
    coefficient: float,
    total: np.ndarray,
    touched: np.ndarray,
    m: int,
    mask: np.ndarray,
    use_mask: bool,
) -> int:
    """Add ``weights[j] · coefficient`` to ``total[labels[j]]`` for each posting ``j`` (only the
    labels with ``mask[label]`` set when ``use_mask``); labels seen for the first time are
    appended to ``touched`` from position ``m``. Returns the new count.

    ``total`` is zero at every label not yet touched by this query, and every contribution
    is positive (a term frequency ≥ 1 and an idf > 0), so zero marks "not touched"; the
    first contribution is ``0.0 + c``, as adding into a zeroed array.
    """
    for j in range(labels.shape[0]):
        label = labels[j]
        if use_mask and mask[label] == 0:
            continue
        before = total[label]
        if before == 0.0:
            touched[m] = label
            m += 1
        total[label] = before + weights[j] * coefficient
    return m


@_compiled
def take_scores(touched: np.ndarray, m: int, total: np.ndarray, k: int) -> Tuple[np.ndarray, float]:
    """The scores (``total``) of the labels ``touched[:m]``, in that order, zeroing ``total``
    at them again for the next query; and the k-th highest of them (the lowest when fewer),
    kept in a heap on the way (see :func:`_kth_largest`)."""
    scores = np.empty(m, dtype=np.float64)
    size = min(k, m)
    heap = np.empty(max(size, 1), dtype=np.float64)
    for i in range(m):
        label = touched[i]
        value = total[label]
        scores[i] = value
        total[label] = 0.0
        if i < size:
            _heap_push(heap, i, value)
        elif value > heap[0]:
            _heap_replace(heap, size, value)
    return scores, heap[0] if m else 0.0


@_compiled
def rrf(v_labels: np.ndarray, t_labels: np.ndarray, reciprocals: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion of two rankings of distinct labels, best first: each label's
    ``reciprocals[rank − 1]`` summed over the rankings it is in (the vector one first), as
    ``(labels ascending, fused scores)``."""
    nv = v_labels.shape[0]
    nt = t_labels.shape[0]
    codes = np.empty(nv + nt, dtype=np.int64)  # label · 2 + side: one sort orders labels, vector side first
    for i in range(nv):
        codes[i] = v_labels[i] * 2
    for i in range(nt):
        codes[nv + i] = t_labels[i] * 2 + 1
    order = np.argsort(codes)
    labels = np.empty(nv + nt, dtype=np.int64)
    scores = np.empty(nv + nt, dtype=np.float64)
    n = 0
    for i in order:
        label = codes[i] >> 1
        contribution = reciprocals[i] if i < nv else reciprocals[i - nv]
        if n > 0 and labels[n - 1] == label:
            scores[n - 1] += contribution
        else:
            labels[n] = label
            scores[n] = contribution
            n += 1
    return labels[:n], scores[:n]


@njit(inline="always")
def _heap_push(heap: np.ndarray, filled: int, value: float) -> None:
    """Add ``value`` to the min-heap ``heap[:filled]`` (sift up)."""
    j = filled
    while j > 0:
        parent = (j - 1) >> 1
        if heap[parent] > value:
            heap[j] = heap[parent]
            j = parent
        else:
            break
    heap[j] = value


@njit(inline="always")
def _heap_replace(heap: np.ndarray, size: int, value: float) -> None:
    """Replace the smallest of the min-heap ``heap[:size]`` by ``value`` (sift down)."""
    j = 0
    while True:
        child = 2 * j + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= value:
            break
        heap[j] = heap[child]
        j = child
    heap[j] = value


@_compiled
def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of ``values`` (1 ≤ k ≤ len): a min-heap of the k largest seen, in one
    pass; a value equal to the smallest held is never pushed, so ties cost one comparison."""
    heap = np.empty(k, dtype=np.float64)
    for i in range(k):
        _heap_push(heap, i, values[i])
    for i in range(k, values.shape[0]):
        if values[i] > heap[0]:
            _heap_replace(heap, k, values[i])
    return heap[0]


@_compiled
def top(scores: np.ndarray, labels: np.ndarray, keys: np.ndarray, k: int, higher_first: bool) -> Tuple[np.ndarray, bool]:
    """Positions of the ``k`` best ``scores`` (highest or lowest first) of ``labels``, equal
    scores by ascending id key (``keys[label]``), in rank order, plus every entry equal to
    the k-th on both score and key; and whether that is the exact ranking: False when two
    entries that decide the order share score and key (ids sharing their first 8 bytes),
    which the caller then orders by the full ids.

    The k-th best score first (:func:`_kth_largest`), then :func:`top_above` it."""
    m = scores.shape[0]
    if k <= 0 or m == 0:
        return np.empty(0, dtype=np.int64), True
    signed = scores if higher_first else -scores
    return top_above(signed, labels, keys, k, _kth_largest(signed, min(k, m)))


@_compiled
def top_above(scores: np.ndarray, labels: np.ndarray, keys: np.ndarray, k: int, threshold: float) -> Tuple[np.ndarray, bool]:
    """:func:`top` (highest first) given ``threshold``, the k-th highest of ``scores`` (the
    lowest when fewer): the entries above it and, among those equal to it, the ones with
    the smallest keys, sorted; keys are read only for those."""
    m = scores.shape[0]
    if k <= 0 or m == 0:
        return np.empty(0, dtype=np.int64), True
    size = min(k, m)
    chosen = np.empty(size, dtype=np.int64)
    ties = np.empty(m, dtype=np.int64)
    n = 0
    n_ties = 0
    for i in range(m):
        value = scores[i]
        if value > threshold:
            chosen[n] = i
            n += 1
        elif value == threshold:
            ties[n_ties] = i
            n_ties += 1
    ties = ties[:n_ties]
    wanted = size - n  # how many of the tied entries belong (≥ 1)
    if n_ties > wanted:  # keep the tied entries with the smallest keys (and any sharing the boundary key)
        tie_keys = np.empty(n_ties, dtype=np.uint64)
        for i in range(n_ties):
            tie_keys[i] = keys[labels[ties[i]]]
        boundary = np.partition(tie_keys, wanted - 1)[wanted - 1]
        ties = ties[tie_keys <= boundary]
    out = np.empty(n + ties.shape[0], dtype=np.int64)
    out[:n] = chosen[:n]
    out[n:] = ties
    n = out.shape[0]
    out_keys = np.empty(n, dtype=np.uint64)
    for i in range(n):
        out_keys[i] = keys[labels[out[i]]]
    by_key = np.argsort(out_keys, kind="mergesort")  # by key, then (stable) by score
    out, out_keys = out[by_key], out_keys[by_key]
    by_score = np.argsort(-scores[out], kind="mergesort")
    out, out_keys = out[by_score], out_keys[by_score]
    exact = n == size
    for i in range(1, n):
        if scores[out[i]] == scores[out[i - 1]] and out_keys[i] == out_keys[i - 1]:
            exact = False
    return out, exact


@_compiled
def in_rank_order(values: np.ndarray, labels: np.ndarray, keys: np.ndarray, higher_first: bool) -> bool:
    """Whether ``values`` are already in rank order (highest or lowest first), equal values
    by strictly ascending id key (``keys[label]``)."""
    for i in range(1, values.shape[0]):
        a = values[i - 1]
        b = values[i]
        if a == b:
            if keys[labels[i - 1]] >= keys[labels[i]]:
                return False
        elif (a < b) == higher_first:
            return False
    return True
