"""An hnswlib index for one collection, with exact search where it is the better choice.

The index holds vectors under integer labels (the ``label`` column of the records
table). It grows by doubling, marks deleted items and reuses their slots, and
saves itself to a folder with the record-log position (``seq``) it covers and a
checksum of every file, so that a torn or corrupt save is detected on load instead
of crashing hnswlib.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Tuple

import hnswlib
import numpy as np

from vectordb.persistence.files import fsync_dir, fsync_path, write_atomic

log = logging.getLogger("vectordb")

FORMAT = 1
EXACT_SEARCH_MAX = 20_000
"""A filtered query matching at most this many records is answered by exact search."""
OVERFETCH_MAX = 1_000
"""A filtered graph search over-fetches at most this many neighbours before using hnswlib's filter."""
EXACT_COLLECTION_MAX = 2_000
"""A collection of at most this many records is always searched exactly (as cheap as the graph)."""


@dataclass(frozen=True)
class IndexParams:
    """How the graph is built and searched (``hnsw:*`` collection metadata)."""

    space: str = "l2"
    M: int = 16
    construction_ef: int = 100
    search_ef: int = 50


class HnswIndex:
    """hnswlib plus the bookkeeping it lacks: which labels are alive, growth, exact fallbacks."""

    def __init__(self, params: IndexParams, dim: int, capacity: int = 1024) -> None:
        self.params = params
        self.dim = dim
        self._index = hnswlib.Index(space=params.space, dim=dim)
        self._index.init_index(
            max_elements=max(capacity, 16),
            ef_construction=params.construction_ef,
            M=params.M,
            allow_replace_deleted=True,
        )
        self._alive = np.zeros(max(capacity, 16), dtype=bool)
        self._deleted = 0
        self._matrix: Optional[np.ndarray] = None
        self._matrix_lock = threading.Lock()  # two reads at once fill the matrix once
        self.matrix_source: Optional[Callable[[], Iterator[Tuple[np.ndarray, np.ndarray]]]] = None

    @property
    def count(self) -> int:
        """How many live vectors the index holds."""
        return int(self._index.element_count) - self._deleted

    @property
    def deleted(self) -> int:
        """How many slots are marked deleted (reused by later adds)."""
        return self._deleted

    def _grow_alive(self, max_label: int) -> None:
        if max_label >= len(self._alive):
            grown = np.zeros(max(max_label + 1, 2 * len(self._alive)), dtype=bool)
            grown[: len(self._alive)] = self._alive
            self._alive = grown

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace the vectors of ``labels``."""
        if len(labels) == 0:
            return
        labels = np.asarray(labels, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        self._grow_alive(int(labels.max()))
        is_new = ~self._alive[labels]
        if not is_new.all():
            # Existing labels are updated in place; replace_deleted would move them to a
            # vacant slot and leave the old one behind.
            self._index.add_items(vectors[~is_new], labels[~is_new])
        new = int(is_new.sum())
        if new:
            slots_needed = int(self._index.element_count) + max(0, new - self._deleted)
            if slots_needed > self._index.get_max_elements():
                self._index.resize_index(max(slots_needed, 2 * self._index.get_max_elements()))
            self._index.add_items(vectors[is_new], labels[is_new], replace_deleted=True)
            self._deleted -= min(new, self._deleted)
            self._alive[labels[is_new]] = True
        if self._matrix is not None:
            self._put_rows(labels, vectors)

    def remove(self, labels: np.ndarray) -> None:
        """Mark ``labels`` deleted; labels not in the index are ignored."""
        labels = np.asarray(labels, dtype=np.int64)
        labels = labels[labels < len(self._alive)]
        labels = np.unique(labels[self._alive[labels]])
        for label in labels:
            self._index.mark_deleted(int(label))
        self._alive[labels] = False
        self._deleted += len(labels)

    def live_labels(self) -> np.ndarray:
        """Every live label, ascending."""
        return np.flatnonzero(self._alive)

    def vectors(self, labels: np.ndarray) -> np.ndarray:
        """The vectors of ``labels`` as searched (normalised for cosine, as hnswlib keeps them).

        Exact search reads them from a dense matrix by label: hnswlib's own ``get_items``
        costs about 20 µs a vector. The matrix is filled on first use from
        ``matrix_source`` (the store's records) and kept current by :meth:`add`. Several
        searches may run at once (never beside :meth:`add`): the matrix is published only
        once it is full.
        """
        labels = np.asarray(labels, dtype=np.int64)
        if self._matrix is None and self.matrix_source is not None:
            with self._matrix_lock:
                if self._matrix is None:
                    self._matrix = self._filled_matrix(self.matrix_source)
        if self._matrix is not None:
            return self._matrix[labels]
        if len(labels) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.get_items(labels, return_type="numpy"), dtype=np.float32)

    def _filled_matrix(self, source: Callable[[], Iterator[Tuple[np.ndarray, np.ndarray]]]) -> np.ndarray:
        matrix = np.zeros((len(self._alive), self.dim), dtype=np.float32)
        for chunk_labels, chunk_vectors in source():
            matrix = self._put_rows(chunk_labels, chunk_vectors, matrix)
        return matrix

    def _put_rows(self, labels: np.ndarray, vectors: np.ndarray, matrix: Optional[np.ndarray] = None) -> np.ndarray:
        """Write rows into ``matrix`` (default: the index's own), grown first if need be; returns it."""
        own = matrix is None
        matrix = self._matrix if own else matrix
        assert matrix is not None
        if len(matrix) < len(self._alive):
            grown = np.zeros((len(self._alive), self.dim), dtype=np.float32)
            grown[: len(matrix)] = matrix
            matrix = grown
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.params.space == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1, norms)
        matrix[labels] = vectors
        if own:
            self._matrix = matrix
        return matrix

    def search(
        self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The k nearest live labels and their distances for each query row.

        Small collections are searched exactly. ``allowed`` restricts the search to those
        labels: searched exactly when few, through the graph when many. Returns arrays of
        shape (queries, k') with k' = min(k, candidates).
        """
        candidates = self.count if allowed is None else len(allowed)
        k = min(k, candidates)
        if k == 0:
            return np.empty((len(queries), 0), dtype=np.int64), np.empty((len(queries), 0), dtype=np.float32)
        if allowed is None and self.count <= EXACT_COLLECTION_MAX:
            return self.exact_search(queries, k, self.live_labels())
        if allowed is not None and len(allowed) <= max(EXACT_SEARCH_MAX, k):
            return self.exact_search(queries, k, allowed)
        if allowed is None:
            return self._graph_search(queries, k)
        return self._filtered_graph_search(queries, k, allowed)

    def _graph_search(self, queries: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
        self._index.set_ef(max(self.params.search_ef, k))
        try:
            labels, distances = self._index.knn_query(queries, k=k)
        except RuntimeError:
            log.debug("hnswlib found fewer than %d results; answering by exact search", k)
            return self.exact_search(queries, k, self.live_labels())
        return labels.astype(np.int64), distances

    def _filtered_graph_search(self, queries: np.ndarray, k: int, allowed: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Many allowed labels: over-fetch from the graph and keep the allowed ones (vectorised);
        rows that come up short are searched again with hnswlib's own filter."""
        mask = np.zeros(len(self._alive), dtype=bool)
        mask[allowed] = True
        share = len(allowed) / max(self.count, 1)
        fetch = min(self.count, int(np.ceil(2 * k / share)) + 10)
        out_labels = np.empty((len(queries), k), dtype=np.int64)
        out_distances = np.empty((len(queries), k), dtype=np.float32)
        short = np.arange(len(queries))
        if fetch <= OVERFETCH_MAX:
            found, distances = self._graph_search(queries, fetch)
            keep = mask[found]
            enough = keep.sum(axis=1) >= k
            for row in np.flatnonzero(enough):
                chosen = np.flatnonzero(keep[row])[:k]
                out_labels[row], out_distances[row] = found[row, chosen], distances[row, chosen]
            short = np.flatnonzero(~enough)
        if len(short):
            self._index.set_ef(max(self.params.search_ef, k))
            try:
                labels, distances = self._index.knn_query(
                    queries[short], k=k, num_threads=1, filter=lambda x: bool(mask[x])
                )
            except RuntimeError:
                labels, distances = self.exact_search(queries[short], k, allowed)
            out_labels[short], out_distances[short] = labels, distances
        return out_labels, out_distances

    def exact_search(self, queries: np.ndarray, k: int, labels: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Brute-force search over ``labels``, with the index's own distance."""
        labels = np.asarray(labels, dtype=np.int64)
        k = min(k, len(labels))
        vectors = self.vectors(labels)
        distances = pairwise_distances(self.params.space, np.asarray(queries, dtype=np.float32), vectors)
        if k < len(labels):
            top = np.argpartition(distances, k - 1, axis=1)[:, :k]
        else:
            top = np.tile(np.arange(len(labels)), (len(queries), 1))
        top_d = np.take_along_axis(distances, top, axis=1)
        order = np.argsort(top_d, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        return labels[top], np.take_along_axis(top_d, order, axis=1)

    def save(self, folder: str, seq: int) -> None:
        """Write the index atomically with the record-log position ``seq`` it covers."""
        os.makedirs(folder, exist_ok=True)
        index_tmp = os.path.join(folder, "index.bin.tmp")
        alive_tmp = os.path.join(folder, "alive.npy.tmp")
        self._index.save_index(index_tmp)
        with open(alive_tmp, "wb") as f:
            np.save(f, self._alive)
        meta = {
            "format": FORMAT,
            "seq": seq,
            "dim": self.dim,
            "params": self.params.__dict__,
            "deleted": self._deleted,
            "count": self.count,
            "files": {name: _checksum(os.path.join(folder, name + ".tmp")) for name in ("index.bin", "alive.npy")},
        }
        for name in ("index.bin", "alive.npy"):
            fsync_path(os.path.join(folder, name + ".tmp"))
            os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))
        write_atomic(os.path.join(folder, "meta.json"), json.dumps(meta).encode())
        fsync_dir(folder)

    @classmethod
    def load(cls, folder: str, params: IndexParams, dim: int) -> Optional[Tuple["HnswIndex", int]]:
        """The saved index and its ``seq``, or None (with a warning) when missing, stale or corrupt."""
        meta_path = os.path.join(folder, "meta.json")
        if not os.path.exists(meta_path):
            return None
        try:
            with open(meta_path, "rb") as f:
                meta = json.loads(f.read())
            built = {k: x for k, x in (meta.get("params") or {}).items() if k != "search_ef"}  # search-time only
            wanted = {k: x for k, x in params.__dict__.items() if k != "search_ef"}
            if meta.get("format") != FORMAT or meta.get("dim") != dim or built != wanted:
                raise ValueError("it was saved with other settings")
            for name, expected in meta["files"].items():
                if _checksum(os.path.join(folder, name)) != expected:
                    raise ValueError(f"{name} does not match its checksum")
            index = cls.__new__(cls)
            index.params, index.dim = params, dim
            index._matrix, index.matrix_source = None, None
            index._matrix_lock = threading.Lock()
            with open(os.path.join(folder, "alive.npy"), "rb") as f:
                index._alive = np.load(f)
            index._index = hnswlib.Index(space=params.space, dim=dim)
            index._index.load_index(os.path.join(folder, "index.bin"), allow_replace_deleted=True)
            index._deleted = int(meta["deleted"])
            if index.count != int(meta["count"]) or int(index._alive.sum()) != index.count:
                raise ValueError("its counts disagree")
            return index, int(meta["seq"])
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            log.warning("index in %s is unusable (%s); rebuilding it from the records", folder, exc)
            return None


def pairwise_distances(space: str, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Distances as hnswlib defines them: squared l2, 1 - cosine similarity, 1 - dot product."""
    if space == "l2":
        return np.maximum(
            (queries**2).sum(1)[:, None] - 2 * queries @ vectors.T + (vectors**2).sum(1)[None, :], 0
        ).astype(np.float32)
    if space == "cosine":
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        queries = queries / np.where(norms == 0, 1, norms)
        vnorms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(vnorms == 0, 1, vnorms)
    return (1 - queries @ vectors.T).astype(np.float32)


def _checksum(path: str) -> list:
    crc = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
    return [os.path.getsize(path), crc]
