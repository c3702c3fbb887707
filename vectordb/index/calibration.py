"""The search breadth (hnswlib's ``ef``) that meets a collection's recall target.

hnswlib answers a query by a best-first walk over the graph that keeps ``ef`` candidates;
more candidates find more of the true nearest neighbours, at a cost that grows with ``ef``.
A fixed ``ef`` gives up recall as a collection grows (measured on the benchmark's 384-d
data, ef=50: recall@10 0.98 at 100,000 records, 0.90 at 200,000, 0.81 at 1,000,000), so
a collection that does not set ``hnsw:search_ef`` picks its own:

* Each time its index is saved after it grew by :data:`GROWTH` (or changed by
  :data:`CHANGES` of its size) since the last calibration, and holds at least
  :data:`CALIBRATE_MIN` vectors, the index measures its recall on queries made from its own
  data: :data:`SAMPLE` of its vectors, drawn at random, each moved in a random direction by
  its distance to its nearest neighbour (:func:`perturb`), so that a query sits among the
  data as a new one would, not on a node of the graph (queries that are stored vectors,
  their own record left out, overstated recall: 0.956 where new queries got 0.934, on
  uniform 64-d data; perturbed ones measured 0.934). Their exact 10 nearest neighbours are
  found by one pass over the file just written (:func:`read_elements`, a chunk at a time,
  so memory stays flat), and :func:`choose_ef` walks a ladder of ``ef`` values
  (:data:`LADDER`) from the last choice to the smallest that meets the target plus
  :data:`MARGIN` (the sampling error of 120 queries).
* Between calibrations the chosen ``ef`` is scaled with the collection's growth, and
  before the first one (or for a collection kept in memory, which is never saved)
  :func:`rule_ef` gives an ``ef`` from the size alone, measured on the benchmark's data.

The cost is one read of the saved file and a few hundred graph queries per calibration:
about 0.1 s at 100,000 records; calibrations come at most at every 1.25x of growth.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Optional, Tuple

import numpy as np

from vectordb.index.hnsw_file import HEADER

K = 10
"""Recall is measured at this many neighbours (recall@10, as the benchmark reports it)."""
SAMPLE = 120
"""Queries per calibration."""
MARGIN = 0.01
"""The measured recall must exceed the target by this much (leave-one-out queries are a little easier)."""
LADDER = (24, 32, 40, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768)
"""The ``ef`` values a calibration chooses from."""
CALIBRATE_MIN = 5_000
"""Smaller collections keep :func:`rule_ef` (below 2,000 records queries are exact anyway)."""
GROWTH = 1.25
"""A save calibrates again once the live count grew (or shrank) by this factor since the last calibration..."""
CHANGES = 0.25
"""... or once this fraction of it was added, replaced or deleted."""
RULE_BASE, RULE_SIZE, RULE_EXPONENT = 128, 100_000, 0.6
"""``rule_ef(n) = RULE_BASE * max(1, n / RULE_SIZE) ** RULE_EXPONENT``, at most the ladder's top."""
READ_CHUNK = 8192
"""Elements read from the index file per step of the exact pass."""


@dataclass(frozen=True)
class Calibrated:
    """The outcome of a calibration: ``ef`` met ``recall`` (>= target + margin unless the
    ladder's top could not) for ``target``, measured at ``count`` live vectors."""

    ef: int
    count: int
    recall: float
    target: float

    def to_json(self) -> dict:
        """As saved in the index's ``meta.json``."""
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> Optional["Calibrated"]:
        """Read back from ``meta.json``; None when absent or not a calibration (never an error:
        the index then goes by :func:`rule_ef` until it calibrates again)."""
        try:
            found = cls(int(value["ef"]), int(value["count"]), float(value["recall"]), float(value["target"]))
        except (TypeError, KeyError, ValueError):
            return None
        ok = 1 <= found.ef <= LADDER[-1] and found.count >= 0 and 0 < found.target <= 1
        return found if ok and 0 <= found.recall <= 1 else None


def rule_ef(count: int) -> int:
    """The ``ef`` for a collection of ``count`` vectors before it is calibrated: on the safe side,
    since it cannot know its data (measured, recall@10 >= 0.95 needed ef 64 at 100,000 records of
    the benchmark's 384-d data, 96 at 200,000, and 192 at 14,000 uniform 64-d vectors): 128 up to
    100,000 vectors, grown as count**0.6 beyond."""
    ef = RULE_BASE * max(1.0, count / RULE_SIZE) ** RULE_EXPONENT
    return int(min(math.ceil(ef), LADDER[-1]))


def scaled_ef(calibrated: Calibrated, count: int) -> int:
    """``calibrated.ef`` carried over to ``count`` vectors (grown with the collection as :func:`rule_ef` grows)."""
    if count <= calibrated.count or calibrated.count == 0:
        return calibrated.ef
    return int(min(math.ceil(calibrated.ef * (count / calibrated.count) ** RULE_EXPONENT), LADDER[-1]))


def due(calibrated: Optional[Calibrated], count: int, changes: int, target: float) -> bool:
    """Whether a save at ``count`` live vectors, ``changes`` since the last calibration, should calibrate."""
    if count < CALIBRATE_MIN:
        return False
    if calibrated is None or calibrated.target != target:
        return True
    if futile(calibrated) and count >= calibrated.count:
        return False  # the ladder's top missed the target, and a graph's recall at one ef falls as it grows
    return count >= GROWTH * calibrated.count or GROWTH * count <= calibrated.count \
        or changes >= CHANGES * calibrated.count


def futile(calibrated: Calibrated) -> bool:
    """Whether the calibration found no ef of the ladder that meets its target (it then keeps the top).

    Such a collection is not calibrated again while it grows: at a million records of the
    benchmark's data (M=16, ef_construction=100), raw hnswlib itself reaches recall@10 0.936 at
    ef 768 and 0.937 at 1,536, and the measurement costs 1.8 s of each save there."""
    return calibrated.ef >= LADDER[-1] and calibrated.recall < min(calibrated.target + MARGIN, 1.0)


def sample(keys: np.ndarray, count: int) -> np.ndarray:
    """:data:`SAMPLE` of ``keys`` (or all), drawn with a seed fixed by ``count`` (reproducible)."""
    rng = np.random.default_rng(count)
    if len(keys) <= SAMPLE:
        return np.asarray(keys, dtype=np.int64)
    return np.sort(rng.choice(np.asarray(keys, dtype=np.int64), SAMPLE, replace=False))


def perturb(space: str, vectors: np.ndarray, neighbours: np.ndarray, seed: int) -> np.ndarray:
    """Queries near ``vectors`` (as hnswlib holds them): each moved in a random direction by its
    distance to ``neighbours`` (its nearest other vector), renormalised for cosine."""
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(vectors.shape).astype(np.float32)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    step = np.linalg.norm(vectors - neighbours, axis=1, keepdims=True)
    queries = vectors + direction * step
    if space == "cosine":
        queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
    return queries.astype(np.float32)


def read_elements(path: str, dim: int, chunk: int = READ_CHUNK) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """``(keys, vectors)`` of every element of the hnswlib file at ``path`` not marked deleted, a
    chunk at a time (the file is one vectordb just wrote: its layout is in :mod:`vectordb.index.hnsw_file`)."""
    with open(path, "rb") as f:
        header = np.frombuffer(f.read(HEADER.itemsize), dtype=HEADER)[0]
        size, count = int(header["size_data_per_element"]), int(header["cur_element_count"])
        data_at, label_at = int(header["offset_data"]), int(header["label_offset"])
        buffer = bytearray(size * chunk)
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            view = memoryview(buffer)[: n * size]
            got = 0
            while got < len(view):
                read = f.readinto(view[got:])
                if not read:
                    raise ValueError("the index file ended early")
                got += read
            rows = np.frombuffer(buffer, dtype=np.uint8, count=n * size).reshape(n, size)
            live = (rows[:, 2] & 1) == 0
            vectors = np.ascontiguousarray(rows[live, data_at: data_at + 4 * dim]).view(np.float32)
            keys = np.ascontiguousarray(rows[live, label_at: label_at + 8]).view(np.uint64).ravel()
            yield keys.astype(np.int64), vectors


def exact_neighbours(space: str, queries: np.ndarray, elements: Iterator[Tuple[np.ndarray, np.ndarray]],
                     k: int = K) -> np.ndarray:
    """The keys of each query's ``k`` nearest elements (in any order).

    ``queries`` and the elements' vectors are as hnswlib holds them (normalised for cosine).
    """
    best_d = np.full((len(queries), k), np.inf, dtype=np.float32)
    best_k = np.full((len(queries), k), -1, dtype=np.int64)
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    q_squares = (queries ** 2).sum(axis=1)[:, None]
    for keys, vectors in elements:
        if not len(keys):
            continue
        dist = queries @ vectors.T
        if space == "l2":
            dist *= -2
            dist += q_squares
            dist += (vectors ** 2).sum(axis=1)[None, :]
        else:
            np.subtract(1, dist, out=dist)
        near = dist < best_d.max(axis=1)[:, None]
        found = int(near.sum())
        if not found:
            continue
        if found > 4 * k * len(queries):  # early chunks: this chunk's k nearest first, then merge
            pick = np.argpartition(dist, min(k, dist.shape[1]) - 1, axis=1)[:, :k]
            all_d = np.concatenate([best_d, np.take_along_axis(dist, pick, axis=1)], axis=1)
            all_k = np.concatenate([best_k, keys[pick]], axis=1)
            pick = np.argpartition(all_d, k - 1, axis=1)[:, :k]
            best_d = np.take_along_axis(all_d, pick, axis=1)
            best_k = np.take_along_axis(all_k, pick, axis=1)
            continue
        rows, cols = np.nonzero(near)  # later chunks: the few that beat a query's k-th best
        all_rows = np.concatenate([np.repeat(np.arange(len(queries)), k), rows])
        all_d = np.concatenate([best_d.ravel(), dist[rows, cols]])
        all_k = np.concatenate([best_k.ravel(), keys[cols]])
        order = np.lexsort((all_d, all_rows))
        firsts = np.searchsorted(all_rows[order], np.arange(len(queries)))[:, None] + np.arange(k)[None, :]
        best_d, best_k = all_d[order][firsts], all_k[order][firsts]
    return best_k


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Recall of ``found`` (keys per query) against ``truth`` (-1: no such neighbour)."""
    answers = found
    valid = truth >= 0
    hits = ((answers[:, :, None] == truth[:, None, :]) & valid[:, None, :]).any(axis=2).sum()
    return float(hits) / max(int(valid.sum()), 1)


def choose_ef(recall_at: Callable[[int], float], target: float, start: int) -> Tuple[int, float]:
    """The smallest ``ef`` of :data:`LADDER` whose ``recall_at(ef)`` reaches ``target`` + :data:`MARGIN`,
    walking from ``start`` (recall grows with ef, so a few steps suffice); the ladder's top if none does."""
    goal = min(target + MARGIN, 1.0)
    at = min(range(len(LADDER)), key=lambda i: abs(LADDER[i] - start))
    measured = {at: recall_at(LADDER[at])}
    if measured[at] >= goal:
        while at > 0:
            below = recall_at(LADDER[at - 1])
            if below < goal:
                break
            at -= 1
            measured[at] = below
        return LADDER[at], measured[at]
    while at + 1 < len(LADDER):
        at += 1
        measured[at] = recall_at(LADDER[at])
        if measured[at] >= goal:
            break
    return LADDER[at], measured[at]
