"""The records an index does not hold yet (its *tail*), kept as dense blocks and searched exactly.

A saved index covers the records up to its ``seq``. After an unclean end (a kill, or a
client dropped without ``close()``) the records written after that are missing from it:
up to half the collection. Inserting them into the graph before the first query would
take seconds to minutes; instead the engine (:mod:`vectordb.engine.catchup`) keeps them
here while a worker thread inserts them, oldest first, and a query searches the graph
and this tail and merges the two (:func:`merge`).

A label has at most one *pending* entry: a newer write of the same label replaces the
older entry, a delete drops it. :class:`Tail` does no locking; its owner serialises
every call.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, List, Optional, Sequence, Tuple

import numpy as np

from vectordb.index.base import SearchResult
from vectordb.index.exact import exact_search

BLOCK_ROWS = 16_384
"""Most entries per block: the copy a partly inserted block costs a query stays small."""
SEARCH_ROWS = 1024
"""Most entries one exact search reads at a time (read at run time). One query against more rows
makes OpenBLAS split the matrix product over threads: on a machine whose cores are busy that took
6 to 10 times as long (20,000 rows: 23 ms instead of 2.3) and took CPU from the other processes."""


class _Block:
    """Aligned entries (labels, the ``seq`` of the write of each, vectors) and which are still pending."""

    def __init__(self, labels: np.ndarray, seqs: np.ndarray, vectors: np.ndarray) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)
        self.seqs = np.asarray(seqs, dtype=np.int64)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.live = np.ones(len(self.labels), dtype=bool)
        self.left = len(self.labels)
        self.every = np.arange(len(self.labels), dtype=np.int64)
        self._squares: Optional[np.ndarray] = None

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ``positions`` (the block itself, not a copy, for every position)."""
        return self.vectors if positions is self.every else self.vectors[positions]

    def squares(self, positions: np.ndarray) -> np.ndarray:
        """The squared norms of the vectors at ``positions``."""
        if self._squares is None:
            self._squares = np.einsum("ij,ij->i", self.vectors, self.vectors, dtype=np.float64).astype(np.float32)
        return self._squares if positions is self.every else self._squares[positions]

    @property
    def dim(self) -> int:
        """The vectors' dimension (what :func:`exact_search` reads of its matrix)."""
        return self.vectors.shape[1]

    def pending_positions(self, allowed: Optional[np.ndarray]) -> np.ndarray:
        """Positions of the pending entries whose labels ``allowed`` (ascending) holds, or of all pending."""
        if allowed is None:
            return self.every if self.left == len(self.live) else np.flatnonzero(self.live)
        at = np.searchsorted(allowed, self.labels)
        found = allowed[np.minimum(at, len(allowed) - 1)] == self.labels if len(allowed) else \
            np.zeros(len(self.labels), dtype=bool)
        return np.flatnonzero(self.live & found)


class Tail:
    """Pending vectors by label, oldest first, for a worker to insert and queries to search exactly."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._blocks: Deque[_Block] = deque()
        self._pending = np.zeros(1024, dtype=bool)
        self.count = 0
        """How many entries are pending."""

    def _mark(self, labels: np.ndarray, value: bool) -> None:
        if len(labels) and int(labels.max()) >= len(self._pending):
            grown = np.zeros(max(int(labels.max()) + 1, 2 * len(self._pending)), dtype=bool)
            grown[: len(self._pending)] = self._pending
            self._pending = grown
        self._pending[labels] = value

    def pending(self, labels: np.ndarray) -> np.ndarray:
        """Whether each of ``labels`` has a pending entry."""
        labels = np.asarray(labels, dtype=np.int64)
        inside = labels < len(self._pending)
        out = np.zeros(len(labels), dtype=bool)
        out[inside] = self._pending[labels[inside]]
        return out

    def labels(self) -> np.ndarray:
        """Every label with a pending entry, ascending."""
        return np.flatnonzero(self._pending)

    def extend(self, labels: np.ndarray, seqs: np.ndarray, vectors: np.ndarray) -> None:
        """Add entries (unique labels, newer than every entry so far); older entries of their labels are dropped."""
        labels = np.asarray(labels, dtype=np.int64)
        if not len(labels):
            return
        self.discard(labels)
        seqs = np.broadcast_to(np.asarray(seqs, dtype=np.int64), labels.shape)
        for start in range(0, len(labels), BLOCK_ROWS):
            part = slice(start, start + BLOCK_ROWS)
            self._blocks.append(_Block(labels[part], seqs[part], vectors[part]))
        self._mark(labels, True)
        self.count += len(labels)

    def discard(self, labels: np.ndarray) -> None:
        """Drop the pending entries of ``labels`` (deleted, or written again)."""
        labels = np.asarray(labels, dtype=np.int64)
        hit = labels[self.pending(labels)]
        if not len(hit):
            return
        hit = np.unique(hit)
        for block in self._blocks:
            gone = block.live & np.isin(block.labels, hit)
            dropped = int(gone.sum())
            if dropped:
                block.live[gone] = False
                block.left -= dropped
        self._mark(hit, False)
        self.count -= len(hit)
        self._trim()

    def head(self, n: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """Up to ``n`` of the oldest pending entries as ``(labels, vectors)``, or None when none is pending.

        They stay pending until :meth:`taken` is called with the same labels.
        """
        self._trim()
        if not self._blocks:
            return None
        block = self._blocks[0]
        positions = np.flatnonzero(block.live)[:n]
        return block.labels[positions], block.vectors[positions]

    def taken(self, labels: np.ndarray) -> None:
        """The entries :meth:`head` returned for ``labels`` are in the index now: no longer pending."""
        block = self._blocks[0]
        done = block.live & np.isin(block.labels, labels)
        block.live[done] = False
        block.left -= int(done.sum())
        self._mark(block.labels[done], False)
        self.count -= int(done.sum())
        self._trim()

    def _trim(self) -> None:
        while self._blocks and self._blocks[0].left == 0:
            self._blocks.popleft()

    def first_seq(self) -> Optional[int]:
        """The smallest ``seq`` among pending entries (the index holds every record written before it)."""
        seqs = [int(b.seqs[b.live].min()) for b in self._blocks if b.left]
        return min(seqs) if seqs else None

    def search(self, space: str, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> SearchResult:
        """The k nearest pending labels to each query (restricted to ``allowed``, ascending), by exact search."""
        found: List[SearchResult] = []
        step = SEARCH_ROWS
        for block in self._blocks:
            positions = block.pending_positions(allowed)
            for start in range(0, len(positions), step):
                if positions is block.every:  # a view of the rows, not a copy
                    span = _Span(block, start, min(start + step, len(positions)))
                    at, distances = exact_search(space, queries, k, span.every, span)  # type: ignore[arg-type]
                    found.append((block.labels[start + at], distances))
                else:
                    part = positions[start: start + step]
                    at, distances = exact_search(space, queries, k, part, block)  # type: ignore[arg-type]
                    found.append((block.labels[at], distances))
        return merge(found, k, len(queries))


class _Span:
    """Rows ``start:stop`` of a block as :func:`exact_search` reads them (positions from ``start``)."""

    def __init__(self, block: _Block, start: int, stop: int) -> None:
        self.vectors = block.vectors[start:stop]
        self._squares = block.squares(block.every)[start:stop]
        self.every = np.arange(stop - start, dtype=np.int64)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def rows(self, positions: np.ndarray) -> np.ndarray:
        return self.vectors if positions is self.every else self.vectors[positions]

    def squares(self, positions: np.ndarray) -> np.ndarray:
        return self._squares if positions is self.every else self._squares[positions]


def merge(found: Sequence[SearchResult], k: int, n_queries: int) -> SearchResult:
    """The k nearest of several results for the same queries (disjoint labels); ties go to the lower label."""
    if not found:
        return np.empty((n_queries, 0), dtype=np.int64), np.empty((n_queries, 0), dtype=np.float32)
    if len(found) == 1:
        labels, distances = found[0]
        return labels[:, :k], distances[:, :k]
    labels = np.concatenate([f[0] for f in found], axis=1)
    distances = np.concatenate([np.asarray(f[1], dtype=np.float32) for f in found], axis=1)
    order = np.lexsort((labels, distances), axis=-1)[:, :k]
    return np.take_along_axis(labels, order, axis=1), np.take_along_axis(distances, order, axis=1)
