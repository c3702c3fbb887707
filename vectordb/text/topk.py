"""The k best of many scored records, equal scores ordered by ascending record id, vectorised.

Every ranking of the text and hybrid modes orders equal values by ascending id (a
string). Comparing strings in Python costs about a microsecond per comparison, and the
BM25 rankings of short documents tie by the thousand (every one-term match of a
ten-word document scores the same), so the order is decided on **id keys** instead:
the first 8 bytes of each id's UTF-8 encoding as a big-endian ``uint64``, zero-padded.
UTF-8 byte order is code-point order, which is Python's string order, so ``key(a) <
key(b)`` implies ``a < b``; only records whose keys are equal (ids sharing their first
8 bytes) are compared as strings, and only where the order among them matters.

The keys come from an :class:`IdOrder` (the engine's record cache), which holds them by
label beside the ids.
"""

from __future__ import annotations

from typing import List, Protocol, Sequence

import numpy as np


class IdOrder(Protocol):
    """Record ids and id keys by label."""

    def ids(self, labels: np.ndarray) -> List[str]:
        """The ids of these labels, in order."""

    def id_keys(self, labels: np.ndarray) -> np.ndarray:
        """The :func:`id_keys` of these labels' ids, in order."""


def id_keys(ids: Sequence[str]) -> np.ndarray:
    """The order keys of ``ids``: their first 8 UTF-8 bytes as big-endian uint64 (zero-padded)."""
    if not len(ids):
        return np.empty(0, dtype=np.uint64)
    packed = b"".join(i.encode("utf-8", "surrogatepass")[:8].ljust(8, b"\0") for i in ids)
    return np.frombuffer(packed, dtype=">u8").astype(np.uint64)


def smallest_ids(labels: np.ndarray, m: int, order: IdOrder) -> np.ndarray:
    """Positions in ``labels`` of the ``m`` labels with the smallest ids (in no particular order)."""
    if m >= len(labels):
        return np.arange(len(labels))
    if m <= 0:
        return np.empty(0, dtype=np.int64)
    keys = order.id_keys(labels)
    kth = np.partition(keys, m - 1)[m - 1]
    below = np.flatnonzero(keys < kth)
    at = np.flatnonzero(keys == kth)
    rest = m - len(below)
    if len(at) > rest:  # ids sharing the boundary key: compared as strings
        at_ids = order.ids(labels[at])
        at = at[sorted(range(len(at)), key=at_ids.__getitem__)[:rest]]
    return np.concatenate([below, at])


def best(labels: np.ndarray, values: np.ndarray, k: int, order: IdOrder, higher_first: bool) -> np.ndarray:
    """Positions of the ``k`` best ``values`` (highest or lowest first), equal values by
    ascending id, in rank order; ``labels`` are distinct."""
    if len(labels) > k:
        if higher_first:
            threshold = np.partition(values, len(values) - k)[len(values) - k]
            inside = np.flatnonzero(values > threshold)
        else:
            threshold = np.partition(values, k - 1)[k - 1]
            inside = np.flatnonzero(values < threshold)
        tied = np.flatnonzero(values == threshold)
        tied = tied[smallest_ids(labels[tied], k - len(inside), order)]
        chosen = np.concatenate([inside, tied])
    else:
        chosen = np.arange(len(labels))
    return chosen[ranked(labels[chosen], values[chosen], order, higher_first)]


def ranked(labels: np.ndarray, values: np.ndarray, order: IdOrder, higher_first: bool) -> np.ndarray:
    """The permutation ordering ``values`` (highest or lowest first), equal values by ascending id."""
    if len(labels) < 2:
        return np.arange(len(labels))
    signed = -values if higher_first else values
    steps = signed[1:] - signed[:-1]
    if (steps > 0).all():  # already in order, no equal values (the usual nearest-first list)
        return np.arange(len(labels))
    keys = order.id_keys(labels)
    if (steps >= 0).all():  # in order: are equal values by ascending key (a ranking made by best())?
        equal = steps == 0
        if (keys[1:][equal] > keys[:-1][equal]).all():
            return np.arange(len(labels))
    perm = np.lexsort((keys, signed))
    ordered_values, ordered_keys = signed[perm], keys[perm]
    same = (ordered_values[1:] == ordered_values[:-1]) & (ordered_keys[1:] == ordered_keys[:-1])
    if same.any():  # equal values and equal keys: the full ids decide
        ids = order.ids(labels)
        perm = np.asarray(sorted(range(len(labels)), key=lambda i: (signed[i], ids[i])), dtype=np.int64)
    return perm
