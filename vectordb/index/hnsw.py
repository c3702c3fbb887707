"""The hnswlib implementation of :class:`~vectordb.index.base.VectorIndex`.

hnswlib holds the graph; this class adds what it lacks: which labels are alive, growth
by doubling (deleted slots are reused by later adds), and saving to a folder with the
record-log position (``seq``) it covers, the collection it belongs to and a checksum of
every file. A saved file is validated in full (:mod:`vectordb.index.hnsw_file`) before
hnswlib reads it, so a torn, corrupt or hostile file is rebuilt instead of crashing the
process. Search strategy and exact search are shared with any other implementation
(:mod:`vectordb.index.search`, :mod:`vectordb.index.exact`).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import weakref
import zlib
from typing import Any, Iterator, Optional, Tuple

import hnswlib
import numpy as np

from vectordb.index import search as strategy
from vectordb.index.base import IndexParams, SearchResult, VectorSource
from vectordb.index.exact import ExactVectors
from vectordb.index.hnsw_file import validate_index_file
from vectordb.persistence.files import fsync_dir, fsync_path, write_atomic

log = logging.getLogger("vectordb")

FORMAT = 1
FILES = ("index.bin", "alive.npy")
_UNUSABLE = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError, MemoryError)
"""What reading a bad index folder may raise: each means "rebuild it"."""


class HnswIndex:
    """A collection's vectors in an hnswlib graph, with the bookkeeping hnswlib lacks."""

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
        self._exact = ExactVectors(dim, _own_vectors_of(self))

    @property
    def matrix_source(self) -> Optional[VectorSource]:
        """Where exact search reads the vectors from (the store's records); None: from hnswlib."""
        return self._exact.source

    @matrix_source.setter
    def matrix_source(self, source: Optional[VectorSource]) -> None:
        self._exact.source = source

    @property
    def count(self) -> int:
        """How many live vectors the index holds."""
        return int(self._index.element_count) - self._deleted

    @property
    def deleted(self) -> int:
        """How many slots are marked deleted (reused by later adds)."""
        return self._deleted

    @property
    def label_bound(self) -> int:
        """One more than the largest label the index can hold without growing its alive mask."""
        return len(self._alive)

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
        self._exact.put(labels, vectors)

    def remove(self, labels: np.ndarray) -> None:
        """Mark ``labels`` deleted; labels not in the index are ignored."""
        labels = np.asarray(labels, dtype=np.int64)
        labels = labels[(labels >= 0) & (labels < len(self._alive))]
        labels = np.unique(labels[self._alive[labels]])
        for label in labels:
            self._index.mark_deleted(int(label))
        self._alive[labels] = False
        self._deleted += len(labels)

    def live_labels(self) -> np.ndarray:
        """Every live label, ascending."""
        return np.flatnonzero(self._alive)

    def holds(self, labels: np.ndarray) -> np.ndarray:
        """Whether each of ``labels`` is live in the index."""
        labels = np.asarray(labels, dtype=np.int64)
        out = np.zeros(len(labels), dtype=bool)
        inside = (labels >= 0) & (labels < len(self._alive))
        out[inside] = self._alive[labels[inside]]
        return out

    def stored_vectors(self, labels: np.ndarray) -> np.ndarray:
        """The vectors hnswlib holds for ``labels`` (normalised for cosine); about 20 µs a vector."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        return np.asarray(self._index.get_items(labels, return_type="numpy"), dtype=np.float32)

    def _own_vectors(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Every live vector from hnswlib, in chunks (exact search's source when the store is not set)."""
        live = self.live_labels()
        for start in range(0, len(live), 8192):
            chunk = live[start: start + 8192]
            yield chunk, self.stored_vectors(chunk)

    def compare_vectors(self, labels: np.ndarray, embeddings: np.ndarray) -> Optional[str]:
        """What differs between the copies of ``labels``'s vectors and ``embeddings``, or None."""
        expected = np.asarray(embeddings, dtype=np.float32)
        if self.params.space == "cosine":
            norms = np.linalg.norm(expected, axis=1, keepdims=True)
            expected_graph = expected / np.where(norms == 0, 1, norms)
        else:
            expected_graph = expected
        if not np.allclose(self.stored_vectors(labels), expected_graph, atol=1e-5):
            return "holds vectors that differ from the stored embeddings"
        if self._exact.differs(labels, expected):
            return "has an exact-search matrix that differs from the stored embeddings"
        return None

    def knn(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> Optional[SearchResult]:
        """hnswlib's k nearest live labels (restricted to the labels ``allowed`` marks), or None
        when hnswlib finds fewer than k for some query."""
        self._index.set_ef(max(self.params.search_ef, k))
        try:
            if allowed is None:
                labels, distances = self._index.knn_query(queries, k=k)
            else:
                labels, distances = self._index.knn_query(
                    queries, k=k, num_threads=1, filter=lambda x: bool(allowed[x])
                )
        except RuntimeError:
            return None
        return labels.astype(np.int64), distances

    def search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> SearchResult:
        """The k nearest live labels and distances per query (see :func:`vectordb.index.search.search`)."""
        self._exact.capacity = len(self._alive)
        return strategy.search(self, self.params.space, self._exact, queries, k, allowed)

    def save(self, folder: str, seq: int, collection_id: str) -> None:
        """Write the index atomically with the record-log position ``seq`` it covers."""
        os.makedirs(folder, exist_ok=True)
        index_tmp = os.path.join(folder, "index.bin.tmp")
        alive_tmp = os.path.join(folder, "alive.npy.tmp")
        self._index.save_index(index_tmp)
        with open(alive_tmp, "wb") as f:
            np.save(f, self._alive)
        meta = {
            "format": FORMAT,
            "collection": collection_id,
            "seq": seq,
            "dim": self.dim,
            "params": self.params.__dict__,
            "deleted": self._deleted,
            "count": self.count,
            "files": {name: _checksum(os.path.join(folder, name + ".tmp")) for name in FILES},
        }
        for name in FILES:
            fsync_path(os.path.join(folder, name + ".tmp"))
            os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))
        write_atomic(os.path.join(folder, "meta.json"), json.dumps(meta).encode())
        fsync_dir(folder)

    @classmethod
    def load(
        cls, folder: str, params: IndexParams, dim: int, collection_id: str
    ) -> Optional[Tuple["HnswIndex", int]]:
        """The saved index and its ``seq``, or None (with a warning) when missing, stale, damaged,
        hostile, built with other settings or another collection's."""
        meta_path = os.path.join(folder, "meta.json")
        if not os.path.exists(meta_path):
            return None
        try:
            return cls._load(folder, meta_path, params, dim, collection_id)
        except _UNUSABLE as exc:
            log.warning("index in %s is unusable (%s); rebuilding it from the records", folder, exc)
            return None

    @classmethod
    def _load(
        cls, folder: str, meta_path: str, params: IndexParams, dim: int, collection_id: str
    ) -> Tuple["HnswIndex", int]:
        with open(meta_path, "rb") as f:
            meta = json.loads(f.read())
        if not isinstance(meta, dict) or not isinstance(meta.get("files"), dict):
            raise ValueError("meta.json is not an index description")
        owner = meta.get("collection")
        if owner != collection_id:
            raise ValueError("it was saved by an older version, without its collection" if owner is None
                             else f"it belongs to another collection ({str(owner)[:40]!r})")
        built = {k: x for k, x in dict(meta.get("params") or {}).items() if k != "search_ef"}  # search-time only
        wanted = {k: x for k, x in params.__dict__.items() if k != "search_ef"}
        if meta.get("format") != FORMAT or meta.get("dim") != dim or built != wanted:
            raise ValueError("it was saved with other settings")
        alive_path = os.path.join(folder, "alive.npy")
        if _checksum(alive_path) != meta["files"]["alive.npy"]:
            raise ValueError("alive.npy does not match its checksum")
        alive = _read_mask(alive_path)
        index_path = os.path.join(folder, "index.bin")
        with open(index_path, "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            if [len(data), zlib.crc32(data)] != meta["files"]["index.bin"]:
                raise ValueError("index.bin does not match its checksum")
            found = validate_index_file(data, dim, params, alive)
        finally:
            _close(data)
        if int(meta["deleted"]) != found.deleted or int(meta["count"]) != found.elements - found.deleted:
            raise ValueError("its counts disagree")
        index = cls.__new__(cls)
        index.params, index.dim = params, dim
        index._alive, index._deleted = alive, found.deleted
        index._exact = ExactVectors(dim, _own_vectors_of(index))
        index._index = hnswlib.Index(space=params.space, dim=dim)
        index._index.load_index(index_path, allow_replace_deleted=True)
        if int(index._index.element_count) != found.elements:
            raise ValueError("hnswlib read another element count than the file's")
        return index, int(meta["seq"])


def _read_mask(path: str) -> np.ndarray:
    """The boolean mask saved in ``path`` (.npy), its header checked against the file size
    before anything is allocated."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(f)
        if dtype != np.bool_ or len(shape) != 1 or shape[0] != os.path.getsize(path) - f.tell():
            raise ValueError("alive.npy is not a mask of labels")
        return np.fromfile(f, dtype=np.bool_, count=shape[0])


def _own_vectors_of(index: HnswIndex) -> VectorSource:
    """``index``'s own vectors as exact search's fallback source, without a reference cycle
    (which would keep a dropped graph's memory until the garbage collector runs)."""
    ref = weakref.ref(index)

    def source() -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        target = ref()
        return iter(()) if target is None else target._own_vectors()

    return source


def _close(data: mmap.mmap) -> None:
    """Unmap ``data``; if numpy views of it are still referenced (an exception's traceback), the
    mapping is released when they are."""
    try:
        data.close()
    except BufferError:
        pass


def _checksum(path: str) -> Any:
    crc = 0
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            if not chunk:
                break
            crc = zlib.crc32(chunk, crc)
    return [os.path.getsize(path), crc]
