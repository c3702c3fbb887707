"""The compiled inner loops of BM25 ranking and hybrid fusion (numba, without the GIL).

A text query touches every posting of its terms: about 19,000 for a two-word query over
the benchmark's 100,000 documents (short documents over a small vocabulary). As numpy
passes (scatter the scores, gather them back, partition, break ties by id) that cost
about 0.45 ms; these loops do it in one pass per term, one pass taking the scores back
(the k-th best found on the way) and one choosing the k best, about 0.17 ms. Measured
and not kept: a document-at-a-time merge with MaxScore pruning, as Lucene does (2-3x
slower on such short documents, where the bounds prune little), and ranking the text
side in a second thread beside hnswlib (handing work to a thread and back cost as much
as it saved on two cores).

numba compiles each function on its first call and caches the machine code beside this
file (else in the user's cache folder): the first process after an install pays about
7 s on the first text and hybrid queries; later processes about 1 s (numba's import and
start-up), once. :mod:`vectordb.text.bm25`, :mod:`~vectordb.text.topk` and
:mod:`~vectordb.text.fusion` import this module on their first ranking, never on
``import vectordb``; vector queries never load it.

The scores come out of the same floating-point operations, in the same order, as the
dense numpy form: a document's score is ``0.0`` plus, in query term order, ``weight ·
coefficient`` for each query term it holds. Sorting is written out (heapsort) rather than
numpy's, whose compiled forms take seconds to compile.
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
def take_best(
    touched: np.ndarray, m: int, total: np.ndarray, keys: np.ndarray, k: int
) -> Tuple[np.ndarray, np.ndarray, bool]:
    """The ``k`` best of the labels ``touched[:m]`` by score (``total``), highest first, equal
    scores by ascending id key (``keys[label]``), as ``(labels, scores, exact)`` (see
    :func:`top_above`), zeroing ``total`` at every touched label for the next query.

    One pass takes each score back, keeping the k best scores seen in a heap and, beside
    them, every label scoring at least the heap's smallest at the time (the floor only
    rises, so every label at or above the final k-th score is kept); only those few are
    then chosen and sorted."""
    size = min(k, m)
    if size <= 0:
        for i in range(m):
            total[touched[i]] = 0.0
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64), True
    heap = np.empty(size, dtype=np.float64)
    kept_labels = np.empty(m, dtype=np.int64)
    kept_scores = np.empty(m, dtype=np.float64)
    n = 0
    for i in range(m):
        label = touched[i]
        value = total[label]
        total[label] = 0.0
        if i < size:
            _heap_push(heap, i, value)
        elif value > heap[0]:
            _heap_replace(heap, size, value)
        elif value < heap[0]:
            continue
        kept_labels[n] = label
        kept_scores[n] = value
        n += 1
    threshold = heap[0]
    j = 0
    for i in range(n):  # the floor rose after some were kept
        if kept_scores[i] >= threshold:
            kept_labels[j] = kept_labels[i]
            kept_scores[j] = kept_scores[i]
            j += 1
    labels = kept_labels[:j]
    scores = kept_scores[:j]
    chosen, exact = top_above(scores, labels, keys, size, threshold)
    return labels[chosen], scores[chosen], exact


@_compiled
def rrf(v_labels: np.ndarray, t_labels: np.ndarray, reciprocals: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion of two rankings of distinct labels, best first: each label's
    ``reciprocals[rank − 1]`` summed over the rankings it is in (the vector one first), as
    ``(labels ascending, fused scores)``."""
    nv = v_labels.shape[0]
    nt = t_labels.shape[0]
    # (label · 2 + side) · 2^22 + rank: one sort orders by label, the vector side first
    # (the caller keeps labels below 2^40 and rankings shorter than 2^22)
    codes = np.empty(nv + nt, dtype=np.int64)
    for i in range(nv):
        codes[i] = ((v_labels[i] * 2) << 22) + i
    for i in range(nt):
        codes[nv + i] = ((t_labels[i] * 2 + 1) << 22) + i
    _heapsort(codes)
    labels = np.empty(nv + nt, dtype=np.int64)
    scores = np.empty(nv + nt, dtype=np.float64)
    n = 0
    for code in codes:
        label = code >> 23
        contribution = reciprocals[code & 0x3FFFFF]
        if n > 0 and labels[n - 1] == label:
            scores[n - 1] += contribution
        else:
            labels[n] = label
            scores[n] = contribution
            n += 1
    return labels[:n], scores[:n]


@njit(inline="always")
def _sift(values: np.ndarray, start: int, end: int) -> None:
    """Restore the max-heap below ``start`` in ``values[:end]``."""
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and values[child + 1] > values[child]:
            child += 1
        if values[root] >= values[child]:
            return
        values[root], values[child] = values[child], values[root]
        root = child


@njit
def _heapsort(values: np.ndarray) -> None:
    """Sort ``values`` ascending in place (heapsort: no numpy sort to compile)."""
    n = values.shape[0]
    for start in range(n // 2 - 1, -1, -1):
        _sift(values, start, n)
    for end in range(n - 1, 0, -1):
        values[0], values[end] = values[end], values[0]
        _sift(values, 0, end)


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
        largest_kept = np.empty(wanted, dtype=np.uint64)  # a max-heap of the smallest keys seen
        for i in range(n_ties):
            key = keys[labels[ties[i]]]
            if i < wanted:
                largest_kept[i] = key
                if i == wanted - 1:
                    for start in range(wanted // 2 - 1, -1, -1):
                        _sift(largest_kept, start, wanted)
            elif key < largest_kept[0]:
                largest_kept[0] = key
                _sift(largest_kept, 0, wanted)
        boundary = largest_kept[0]
        kept = 0
        for i in range(n_ties):
            if keys[labels[ties[i]]] <= boundary:
                ties[kept] = ties[i]
                kept += 1
        ties = ties[:kept]
    n_out = n + ties.shape[0]
    # rank order: sort by (score descending, key ascending) as one sortable pair per entry
    order_scores = np.empty(n_out, dtype=np.float64)
    order_keys = np.empty(n_out, dtype=np.uint64)
    out = np.empty(n_out, dtype=np.int64)
    for i in range(n_out):
        position = chosen[i] if i < n else ties[i - n]
        out[i] = position
        order_scores[i] = scores[position]
        order_keys[i] = keys[labels[position]]
    _sort_ranked(out, order_scores, order_keys)
    n = n_out
    out_keys = order_keys
    exact = n == size
    for i in range(1, n):
        if order_scores[i] == order_scores[i - 1] and out_keys[i] == out_keys[i - 1]:
            exact = False
    return out, exact


@njit(inline="always")
def _after(scores: np.ndarray, keys: np.ndarray, i: int, j: int) -> bool:
    """Whether entry i ranks after entry j: a lower score, or an equal score and a larger key."""
    return scores[i] < scores[j] or (scores[i] == scores[j] and keys[i] > keys[j])


@njit
def _sift_ranked(out: np.ndarray, scores: np.ndarray, keys: np.ndarray, start: int, end: int) -> None:
    root = start
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and _after(scores, keys, child + 1, child):
            child += 1
        if not _after(scores, keys, child, root):
            return
        out[root], out[child] = out[child], out[root]
        scores[root], scores[child] = scores[child], scores[root]
        keys[root], keys[child] = keys[child], keys[root]
        root = child


@njit
def _sort_ranked(out: np.ndarray, scores: np.ndarray, keys: np.ndarray) -> None:
    """Sort the three parallel arrays by (score descending, key ascending), in place (heapsort)."""
    n = out.shape[0]
    for start in range(n // 2 - 1, -1, -1):
        _sift_ranked(out, scores, keys, start, n)
    for end in range(n - 1, 0, -1):
        out[0], out[end] = out[end], out[0]
        scores[0], scores[end] = scores[end], scores[0]
        keys[0], keys[end] = keys[end], keys[0]
        _sift_ranked(out, scores, keys, 0, end)


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


def _warm() -> None:
    """Run each loop once on tiny inputs when this module is imported, so that a machine-code
    cache entry numba cannot use (written by another numba, or for the file loaded under
    another module name, or damaged) is dropped and the loop compiled afresh, instead of
    failing a query."""
    labels = np.arange(4, dtype=np.int64)
    values = np.array([0.5, 0.25, 0.25, 0.125])
    keys = np.arange(8, dtype=np.uint64)

    def add() -> Any:
        total = np.zeros(8)
        return add_term(labels, values, 1.0, total, np.empty(8, dtype=np.int64), 0, np.zeros(8, dtype=np.uint8), False)

    samples = [
        add,
        lambda: take_best(labels, 4, np.ones(8), keys, 2),
        lambda: rrf(labels, labels[::-1].copy(), values),
        lambda: top(values, labels, keys, 2, True),
        lambda: top_above(values, labels, keys, 2, 0.25),
        lambda: in_rank_order(values, labels, keys, True),
    ]
    try:
        for call in samples:
            call()
    except Exception:  # an unusable cache entry (a loop may load another's): forget them all, compile again
        for function in (add_term, take_best, rrf, _kth_largest, top, top_above, in_rank_order):
            cache = getattr(function, "_cache", None)
            if cache is not None:
                try:
                    cache.flush()
                except OSError:
                    pass
        for call in samples:
            call()


_warm()
