"""The inner steps of BM25 ranking and hybrid fusion, as whole-array numpy operations.

A text query touches every posting of its terms: about 19,000 for a two-word query over
the benchmark's 100,000 documents (short documents over a small vocabulary). Each step
here is a few numpy passes over those arrays, never a Python loop over postings or
records, and never a pass over every label of the collection. These steps were loops
compiled by numba until the base install had to fit in 450 MB: numba and llvmlite
weighed 208 MB, and these passes cost a few tens of microseconds more per two-word
query (see ``docs/hybrid-search.md``, Performance), while the first text query of a
process no longer waits for numba to start (about 0.5 s; 7 s after an install, to compile).

Scores are the same floating-point operations, in the same order, as the compiled loops
and the dense numpy form: a document's score is ``0.0`` plus, in query term order,
``weight · coefficient`` for each query term it holds (the first contribution ``0.0 + c``
is ``c``), so rankings and scores are bit for bit the same.

Ranking orders equal scores by ascending id key (:mod:`vectordb.text.topk`). The k best
of many scores are found by :func:`_kth` (a quickselect that copes with thousands of
equal scores) and only those few are sorted; ``np.partition`` is not used, as its
introselect takes about 1 ms on 18,000 scores of 11 distinct values, which is what BM25
gives short documents.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

_NO_LABELS = np.empty(0, dtype=np.int64)
_SMALL = 1024
"""Up to this many values are sorted outright; more are narrowed by :func:`_kth` first."""
_SAMPLE = 256
"""How many evenly spaced values choose each pivot of :func:`_kth`."""


class Slots:
    """A query's scratch: where each touched label's score sits in the query's compact arrays.

    ``slots[label]`` is ``stamp + position`` for a label this query has touched; anything
    below ``stamp`` is left over from an earlier query, so nothing is zeroed between
    queries. Each query takes a fresh stamp (:meth:`next_stamp`), a multiple of 2**32
    above the last one (positions stay below 2**32). Reused between queries (allocating and
    faulting in fresh pages for each query cost more than the scoring), one per query
    running at once; ``mask`` is a zeroed 0/1 byte array for the allowed labels."""

    __slots__ = ("slots", "mask", "stamp")

    def __init__(self, size: int) -> None:
        self.slots = np.zeros(size, dtype=np.int64)
        self.mask = np.zeros(size, dtype=np.uint8)
        self.stamp = 0

    def next_stamp(self) -> int:
        """This query's stamp (every slot is reset once, after 2**31 - 1 queries)."""
        self.stamp += _STAMP
        if self.stamp >= 2**62:
            self.slots[:] = 0
            self.stamp = _STAMP
        return self.stamp


_STAMP = 2**32


def best_of_terms(
    terms: Sequence[Tuple[np.ndarray, np.ndarray]], scratch: Slots, keys: np.ndarray, k: int
) -> Tuple[np.ndarray, np.ndarray, bool]:
    """The ``k`` best ``(labels, scores, exact)`` (see :func:`top`), highest first, equal scores
    by ascending id key, of the labels in the query terms' postings ``terms`` (each a pair
    of distinct labels and their contributions ``weight · coefficient``, the latter this
    query's own: they may be changed in place), a label's score being its contributions
    added in term order.

    All terms but the last are added up by :func:`_accumulate`. The last term's labels
    found there add their contribution in place; the others (the documents holding only
    the last term, often most of its postings) are never gathered into the compact
    arrays: only those scoring at least the k-th best of the rest can be among the ``k``
    best, and only they join the few candidates of the rest that :func:`top` ranks."""
    if k <= 0:
        return _NO_LABELS, np.empty(0, dtype=np.float64), True
    if len(terms) == 1:
        return top_of_term(*terms[0], keys, k)
    labels, scores, dead = _accumulate(terms[:-1], scratch)
    last_labels, last_scores = terms[-1]
    found = scratch.slots[last_labels]
    held = found >= scratch.stamp
    in_both = np.flatnonzero(held)
    at = found[in_both]
    at -= scratch.stamp
    scores[at] += last_scores[in_both]
    if len(scores) - dead > k:  # the k-th best of some final scores is a floor: only what reaches it belongs
        if len(at) >= k:  # of the documents holding the last term and another (final scores; often the best)
            floor = _kth(scores[at], k, largest=True)
        else:  # of all but the documents holding only the last term (dead entries, 0.0, rank below them all)
            floor = _kth(scores[_candidates(scores, k)], k, largest=True)
        reaching = np.flatnonzero(scores >= floor)
        only_last = np.flatnonzero(last_scores >= floor)
        only_last = only_last[~held[only_last]]
    else:
        reaching = np.flatnonzero(scores) if dead else None
        only_last = np.flatnonzero(~held)
    if reaching is not None:
        labels, scores = labels[reaching], scores[reaching]
    return top_of_term(np.concatenate([labels, last_labels[only_last]]),
                       np.concatenate([scores, last_scores[only_last]]), keys, k)


def top_of_term(
    labels: np.ndarray, scores: np.ndarray, keys: np.ndarray, k: int
) -> Tuple[np.ndarray, np.ndarray, bool]:
    """The ``k`` best ``(labels, scores, exact)`` of one term's postings (distinct labels), as :func:`best_of_terms`."""
    chosen, exact = top(scores, labels, keys, k, higher_first=True)
    return labels[chosen], scores[chosen], exact


def _accumulate(terms: Sequence[Tuple[np.ndarray, np.ndarray]], scratch: Slots) -> Tuple[np.ndarray, np.ndarray, int]:
    """``(labels, scores, dead)`` of every label in ``terms`` (see :func:`best_of_terms`), in
    no particular order, each label's slot in ``scratch`` stamped with its position; ``dead``
    entries (score ``0.0``) are to be skipped.

    The first term's labels take positions 0, 1, ... of the compact arrays. Each later term
    looks its labels up in ``scratch`` (:class:`Slots`): those already there add their
    contribution in place. The term's postings are then appended whole (a copy, cheaper
    than picking out the new ones), its labels' slots pointed at them, and the few that
    were already there pointed back and their appended entries zeroed (dead). A label's
    score is thus its first contribution ``c`` (``0.0 + c`` in a zeroed array), then ``+``
    each later one, the same operations as adding every term into a dense zeroed array.
    One term alone is returned as it is (its contributions array becomes the scores)."""
    stamp = scratch.next_stamp()
    slots = scratch.slots
    first_labels, first_scores = terms[0]
    n = len(first_labels)
    slots[first_labels] = np.arange(stamp, stamp + n, dtype=np.int64)
    if len(terms) == 1:
        return first_labels, first_scores, 0
    scores = np.concatenate([contributions for _, contributions in terms])
    dead = 0
    for term_labels, contributions in terms[1:]:
        found = slots[term_labels]
        in_both = np.flatnonzero(found >= stamp)
        at = found[in_both]
        scores[at - stamp] += contributions[in_both]
        slots[term_labels] = np.arange(stamp + n, stamp + n + len(term_labels), dtype=np.int64)
        slots[term_labels[in_both]] = at
        scores[n + in_both] = 0.0
        dead += len(in_both)
        n += len(term_labels)
    return np.concatenate([term_labels for term_labels, _ in terms]), scores, dead


def masked(
    labels: np.ndarray, weights: np.ndarray, coefficient: float, mask: np.ndarray
) -> Tuple[np.ndarray, np.ndarray]:
    """The ``labels`` with ``mask[label]`` set (a 0/1 byte array), and their contributions
    ``weights · coefficient`` (computed for those alone: a filter often keeps few)."""
    keep = np.flatnonzero(mask[labels].view(np.bool_))  # nonzero() of bytes is several times slower
    return labels[keep], weights[keep] * coefficient


def top(
    scores: np.ndarray, labels: np.ndarray, keys: np.ndarray, k: int, higher_first: bool
) -> Tuple[np.ndarray, bool]:
    """Positions of the ``k`` best ``scores`` (highest or lowest first; no NaN) of ``labels``,
    equal scores by ascending id key (``keys[label]``), in rank order, plus every entry
    equal to the k-th on both score and key; and whether that is the exact ranking: False
    when two entries that decide the order share score and key (ids sharing their first 8
    bytes), which the caller then orders by the full ids.

    Up to :data:`_SMALL` entries are sorted outright. Of more, only the candidates are
    (:func:`_candidates`), and when those are many (thousands of equal scores) only the
    entries above the k-th best score and, of those equal to it, the ones with the
    smallest keys (keys are read only for those)."""
    m = len(scores)
    if k <= 0 or m == 0:
        return _NO_LABELS, True
    signed = scores if higher_first else -scores
    size = min(k, m)
    candidates: Optional[np.ndarray] = None
    if m > _SMALL:
        candidates = _candidates(signed, size)
        signed = signed[candidates]
        if len(candidates) > _SMALL:
            keep = _above_and_first_ties(signed, labels[candidates], keys, size)
            candidates, signed = candidates[keep], signed[keep]
        labels = labels[candidates]
    order_keys = keys[labels]
    by_rank = np.lexsort((order_keys, -signed))  # score descending, then key ascending
    n = size
    last = by_rank[size - 1]
    while n < len(by_rank) and signed[by_rank[n]] == signed[last] and order_keys[by_rank[n]] == order_keys[last]:
        n += 1  # entries equal to the k-th on score and key: the full ids decide which belong
    by_rank = by_rank[:n]
    ranked_scores, ranked_keys = signed[by_rank], order_keys[by_rank]
    exact = n == size and not bool(
        np.any((ranked_scores[1:] == ranked_scores[:-1]) & (ranked_keys[1:] == ranked_keys[:-1]))
    )
    return (by_rank if candidates is None else candidates[by_rank]), exact


def _above_and_first_ties(values: np.ndarray, labels: np.ndarray, keys: np.ndarray, k: int) -> np.ndarray:
    """Which of ``values`` (k ≤ len) may be among the ``k`` highest, equal values by ascending
    key: those above the k-th highest value and, of those equal to it, the ones with the
    smallest keys (every one sharing the boundary key)."""
    threshold = _kth(values, k, largest=True)
    above = values > threshold
    ties = values == threshold
    wanted = k - int(np.count_nonzero(above))  # how many of the tied entries belong (≥ 1)
    if np.count_nonzero(ties) > wanted:
        tie_keys = keys[labels[ties]]
        ties[ties] = tie_keys <= _kth(tie_keys, wanted, largest=False)
    return above | ties


def _candidates(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of a few of ``values`` (1 ≤ k < len) that hold every value at least the k-th
    largest, usually found in one pass: those at or above a pivot from a sorted sample,
    chosen so that about ``2k + 32`` values lie at or above it (with thousands of equal
    scores, all of the pivot's equals are candidates). Too few, and the pivot moves down
    the sample, at least twice as far from the top each time, until enough are found."""
    m = len(values)
    sample = np.sort(values[:: max(1, m // _SAMPLE)])
    n = len(sample)
    i = n - min(n, (2 * k + 32) * n // m + 1)
    while True:
        at_least = np.flatnonzero(values >= sample[i])
        if len(at_least) >= k:
            return at_least
        i = min(int(np.searchsorted(sample, sample[i])) - 1, 2 * i - n)  # a lower value, twice as far down
        if i < 0:
            return np.arange(m)


def _kth(values: np.ndarray, k: int, largest: bool) -> Any:
    """The k-th largest (or smallest) of ``values`` (1 ≤ k ≤ len, no NaN): a quickselect whose
    pivot is chosen from a sorted sample so that about ``2k + 32`` values lie beyond it.

    One comparison pass then keeps only those values, or answers at once when the pivot is
    the k-th value itself (as with thousands of equal scores), and a sort finishes the
    few left. Each round keeps fewer values (never the pivot), so it ends."""
    while True:
        m = len(values)
        if m <= _SMALL:
            ordered = np.sort(values)
            return ordered[m - k] if largest else ordered[k - 1]
        sample = np.sort(values[:: m // _SAMPLE])
        n = len(sample)
        r = min(n, (2 * k + 32) * n // m + 1)  # the pivot's rank from the wanted end of the sample
        pivot = sample[n - r] if largest else sample[r - 1]
        beyond = values > pivot if largest else values < pivot
        n_beyond = int(np.count_nonzero(beyond))
        if n_beyond >= k:  # the k-th lies beyond the pivot
            values = values[beyond]
            continue
        n_equal = int(np.count_nonzero(values == pivot))
        if n_beyond + n_equal >= k:
            return pivot
        values = values[values < pivot] if largest else values[values > pivot]
        k -= n_beyond + n_equal


def rrf(v_labels: np.ndarray, t_labels: np.ndarray, reciprocals: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Reciprocal rank fusion of two rankings of distinct labels, best first: each label's
    ``reciprocals[rank − 1]`` summed over the rankings it is in (the vector one first), as
    ``(labels ascending, fused scores)``.

    A stable sort puts a label's vector entry before its text entry, and ``np.add.reduceat``
    adds each label's run in that order: a label in both rankings scores ``v + t``, one in
    a single ranking its one reciprocal."""
    nv, nt = len(v_labels), len(t_labels)
    if not nv + nt:
        return _NO_LABELS, np.empty(0, dtype=np.float64)
    both = np.concatenate((v_labels, t_labels))
    order = np.argsort(both, kind="stable")
    ordered = both[order]
    contributions = np.concatenate((reciprocals[:nv], reciprocals[:nt]))[order]
    first = np.empty(nv + nt, dtype=np.bool_)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return ordered[starts], np.add.reduceat(contributions, starts)


def in_rank_order(values: np.ndarray, labels: np.ndarray, keys: np.ndarray, higher_first: bool) -> bool:
    """Whether ``values`` are already in rank order (highest or lowest first), equal values
    by strictly ascending id key (``keys[label]``). Two passes when no two values are equal
    (a vector ranking, mostly); the keys are read only when some are."""
    if len(values) < 2:
        return True
    a, b = values[:-1], values[1:]
    strictly = a > b if higher_first else a < b
    if strictly.all():
        return True
    ordered = keys[labels]
    return bool((strictly | ((a == b) & (ordered[:-1] < ordered[1:]))).all())
