"""The k best of many scored records, equal scores ordered by ascending record id.

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

from typing import List, Optional, Protocol, Sequence

import numpy as np

from vectordb.text import kernels


class IdOrder(Protocol):
    """Record ids and id keys by label."""

    def ids(self, labels: np.ndarray) -> List[str]:
        """The ids of these labels, in order."""

    def key_array(self) -> np.ndarray:
        """The :func:`id_keys` of every label's id, indexed by label (for whole-array lookups)."""


def id_keys(ids: Sequence[str]) -> np.ndarray:
    """The order keys of ``ids``: their first 8 UTF-8 bytes as big-endian uint64 (zero-padded)."""
    if not len(ids):
        return np.empty(0, dtype=np.uint64)
    packed = b"".join(i.encode("utf-8", "surrogatepass")[:8].ljust(8, b"\0") for i in ids)
    return np.frombuffer(packed, dtype=">u8").astype(np.uint64)


def best(labels: np.ndarray, values: np.ndarray, k: int, order: IdOrder, higher_first: bool) -> np.ndarray:
    """Positions of the ``k`` best ``values`` (highest or lowest first), equal values by
    ascending id, in rank order; ``labels`` are distinct.

    Chosen and ordered by value and id key in whole-array numpy steps
    (:func:`vectordb.text.kernels.top`); only when ids sharing their key decide the order
    are those few (the k best and any equal to the k-th on value and key) sorted here by
    the full ids."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if np.isnan(values).any():  # never from BM25, fusion or finite embeddings: ranked last, not lost
        values = np.where(np.isnan(values), -np.inf if higher_first else np.inf, values)
    chosen, exact = kernels.top(values, labels, key_array(order, labels), k, higher_first)
    return by_full_ids(labels, values, chosen, exact, k, order, higher_first)


def by_full_ids(
    labels: np.ndarray, values: np.ndarray, chosen: np.ndarray, exact: bool, k: int, order: IdOrder,
    higher_first: bool,
) -> np.ndarray:
    """``chosen`` (positions from :func:`vectordb.text.kernels.top`) as the ``k`` best in rank
    order: as they are when ``exact``, else sorted by value and full id here (ids sharing
    their 8-byte key decide the order)."""
    if exact:
        return chosen
    ids = order.ids(labels[chosen])
    signed = (-values[chosen] if higher_first else values[chosen]).tolist()
    by_id = sorted(range(len(chosen)), key=lambda i: (signed[i], ids[i]))[:k]
    return chosen[np.asarray(by_id, dtype=np.int64)]


def ranked(labels: np.ndarray, values: np.ndarray, order: IdOrder, higher_first: bool) -> np.ndarray:
    """The permutation ordering ``values`` (highest or lowest first), equal values by ascending id
    (checked in a few whole-array passes first: a ranking already in that order is kept as it is)."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if kernels.in_rank_order(values, labels, key_array(order, labels), higher_first):
        return np.arange(len(labels))
    return best(labels, values, len(labels), order, higher_first)


def key_array(order: IdOrder, labels: np.ndarray, label_bound: Optional[int] = None) -> np.ndarray:
    """``order``'s key array, checked to cover ``labels`` (all below ``label_bound`` when the
    caller knows it), so that a bad label is this typed error, not a wrong key."""
    keys = order.key_array()
    if label_bound is not None:
        covered = label_bound <= len(keys)
    else:
        covered = not len(labels) or (int(labels.max()) < len(keys) and int(labels.min()) >= 0)
    if not covered:
        raise IndexError(f"labels reach past the {len(keys)} id keys held")
    return keys
