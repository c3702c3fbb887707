"""Hybrid results: a vector ranking and a BM25 ranking fused by reciprocal rank fusion.

A hybrid :class:`~vectordb.requests.Search` asks each side for its top :func:`depth` candidates (``max(100, n_results)``); each ranking is
ordered afresh with equal values by ascending id (nearest first for distances, highest
first for BM25 scores), ranks count from 1, and a record's fused score is::

    score(d) = Σ_i 1 / (60 + rank_i(d))     over the rankings in which d appears

The ``n_results`` best fused scores come back, equal scores by ascending id.
:func:`fuse_labels` fuses two rankings of labels (the local engine reads the fields of
the fused records only), with every ordering vectorised by :mod:`vectordb.text.topk`;
:func:`ranks` and :func:`rrf` are the same rule over ids, written plainly (the tests hold
the two equal).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from vectordb.text import kernels, topk
from vectordb.text.topk import IdOrder

RRF_K = 60
MIN_DEPTH = 100
MAX_DEPTH = 2**22 - 1
"""The most candidates a side may contribute (``n_results`` of a hybrid query is at most this:
a limit of the API, kept from when fusion packed ranks in 22 bits)."""


def depth(n_results: int) -> int:
    """How many candidates each side of a hybrid query contributes."""
    return max(MIN_DEPTH, n_results)


def ranks(ids: Sequence[str], values: Sequence[float], higher_first: bool) -> Dict[str, int]:
    """Rank (from 1) of each id, ordered by value (highest first when ``higher_first``), ties by id."""
    sign = -1.0 if higher_first else 1.0
    order = sorted(range(len(ids)), key=lambda i: (sign * values[i], ids[i]))
    return {ids[i]: rank for rank, i in enumerate(order, start=1)}


def rrf(rankings: Sequence[Dict[str, int]], n_results: int) -> List[Tuple[str, float]]:
    """The ``n_results`` best ``(id, fused score)``, best first, equal scores by ascending id."""
    fused: Dict[str, float] = {}
    for ranking in rankings:
        for record_id, rank in ranking.items():
            fused[record_id] = fused.get(record_id, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:n_results]


def fuse_labels(
    vector: Tuple[np.ndarray, np.ndarray], text: Tuple[np.ndarray, np.ndarray], n_results: int, order: IdOrder
) -> Tuple[np.ndarray, np.ndarray]:
    """The ``n_results`` best ``(labels, fused scores)``, best first, equal scores by ascending
    id, from a vector ranking ``(labels, distances)`` and a text ranking ``(labels, scores)``
    (each of distinct labels; nearest first and highest first are checked in a pass, and
    any other order, equal values included, is ranked here, ties by id)."""
    keys = order.key_array()  # a label past its end raises IndexError where keys are read
    v_labels = np.asarray(vector[0], dtype=np.int64)
    t_labels = np.asarray(text[0], dtype=np.int64)
    v_values = np.asarray(vector[1], dtype=np.float64)
    t_values = np.asarray(text[1], dtype=np.float64)
    if not kernels.in_rank_order(v_values, v_labels, keys, higher_first=False):
        v_labels = v_labels[topk.best(v_labels, v_values, len(v_labels), order, higher_first=False)]
    if not kernels.in_rank_order(t_values, t_labels, keys, higher_first=True):
        t_labels = t_labels[topk.best(t_labels, t_values, len(t_labels), order, higher_first=True)]
    longest = max(len(v_labels), len(t_labels))
    if longest > MAX_DEPTH:
        raise ValueError(f"rankings of {longest} labels: a hybrid query fuses at most {MAX_DEPTH} from each side")
    labels, fused = kernels.rrf(v_labels, t_labels, _reciprocals(longest))
    chosen, exact = kernels.top(fused, labels, keys, n_results, higher_first=True)
    chosen = topk.by_full_ids(labels, fused, chosen, exact, n_results, order, higher_first=True)
    return labels[chosen], fused[chosen]


_RECIPROCALS = 1.0 / (RRF_K + np.arange(1, MIN_DEPTH + 1, dtype=np.float64))


def _reciprocals(n: int) -> np.ndarray:
    """``1 / (60 + rank)`` for ranks 1..n."""
    if n <= len(_RECIPROCALS):
        return _RECIPROCALS[:n]
    return 1.0 / (RRF_K + np.arange(1, n + 1, dtype=np.float64))
