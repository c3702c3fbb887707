"""The hnswlib implementation of :class:`~vectordb.index.base.VectorIndex`.

hnswlib holds the graph; this class adds what it lacks: which labels are alive, growth
by doubling, a search breadth that meets the collection's recall target
(:mod:`vectordb.index.calibration`), and saving to a folder with the record-log position
(``seq``) it covers, the collection it belongs to and a checksum of every file. A saved
file is validated in full (:mod:`vectordb.index.hnsw_file`) before hnswlib reads it, so a
torn, corrupt or hostile file is rebuilt instead of crashing the process. Search strategy
and exact search are shared with any other implementation (:mod:`vectordb.index.search`,
:mod:`vectordb.index.exact`).

**Every vector is inserted, never patched.** A record's vector lives in the graph under a
*key* of its own (hnswlib's label; ``_key_of`` and ``_label_of`` map between keys and the
records' labels). A new vector for a record (an upsert that changes it) is inserted under a
new key and the old key is marked deleted, and a new record never takes over a deleted
slot: hnswlib's in-place update (``updatePoint``, also what ``replace_deleted`` uses) links
the moved vector to its new neighbours but none of them back to it, so after churn records
fell out of reach of the graph (measured: 115 of 12,400 live records not found by their
own vector at ef=50, against 5 this way and 27 in an index built once over them). Deleted
slots stay in the graph as waypoints (searches pass through them, answers skip them)
until they exceed :data:`COMPACT_FRACTION` of the live vectors: then the graph is built
again from its live vectors (:meth:`HnswIndex._compact`).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator, Optional, Tuple

import hnswlib
import numpy as np

from vectordb.index import calibration
from vectordb.index import search as strategy
from vectordb.index.base import DEFAULT_SEARCH_POLICY, IndexParams, SearchPolicy, SearchResult, VectorSource
from vectordb.index.exact import ExactFetch, ExactVectors
from vectordb.index.hnsw_file import checksum, matches, read_array, validate_index_file
from vectordb.persistence.files import fsync_dir, fsync_path, write_atomic

log = logging.getLogger("vectordb")

FORMAT = 2
FILES = ("index.bin", "alive.npy", "keys.npy")
"""The graph; a mask of the live labels; the label of each key (-1: a deleted or replaced vector)."""
COMPACT_FRACTION = 0.5
COMPACT_MIN = 1000
"""An add rebuilds the graph once its deleted slots exceed both ``COMPACT_FRACTION`` of the live
vectors and ``COMPACT_MIN`` (as a delete compacts the collection, :mod:`vectordb.engine.maintenance`)."""
BUILD_PARAMS = ("space", "M", "construction_ef")
"""The settings a saved graph must have been built with (the others are search-time only)."""
_UNUSABLE = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError, RuntimeError, MemoryError)
"""What reading a bad index folder may raise: each means "rebuild it"."""


class HnswIndex:
    """A collection's vectors in an hnswlib graph, with the bookkeeping hnswlib lacks."""

    search_policy: SearchPolicy = DEFAULT_SEARCH_POLICY
    """When a search is exact (see :mod:`vectordb.index.search`): set by the engine."""

    def __init__(self, params: IndexParams, dim: int, capacity: int = 1024) -> None:
        self.params = params
        self.dim = dim
        capacity = max(capacity, 16)
        self._index = _new_graph(params, dim, capacity)
        self._key_of = np.full(capacity, -1, dtype=np.int32)
        """By label: the key of its vector in the graph, -1 for none."""
        self._label_of = np.full(capacity, -1, dtype=np.int64)
        """By key: the label whose vector it holds, -1 for a deleted or replaced vector."""
        self._keys = 0
        self._live = 0
        self._exact = ExactVectors(dim, _own_vectors_of(self), exact=_stored_vectors_of(self))
        self._init_search()

    def _init_search(self, calibrated: Optional[calibration.Calibrated] = None) -> None:
        self.calibrated = calibrated
        """The last calibration of the search breadth (None: none yet, :func:`calibration.rule_ef` applies)."""
        self._changes = 0
        self._ef_lock = threading.Lock()
        self._calibrating = False

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
        return self._live

    @property
    def deleted(self) -> int:
        """How many slots of the graph hold deleted or replaced vectors (a rebuild gives them back)."""
        return self._keys - self._live

    @property
    def label_bound(self) -> int:
        """One more than the largest label the index can hold without growing its label map."""
        return len(self._key_of)

    @property
    def search_ef(self) -> int:
        """The search breadth queries use: ``hnsw:search_ef`` when given, else the calibrated one
        (scaled with growth since), else :func:`calibration.rule_ef` of the live count."""
        if self.params.search_ef > 0:
            return self.params.search_ef
        found = self.calibrated
        if found is not None and found.target == self.params.recall_target:
            return calibration.scaled_ef(found, self._live)
        return calibration.rule_ef(self._live)

    def _grow_labels(self, max_label: int) -> None:
        if max_label >= len(self._key_of):
            grown = np.full(max(max_label + 1, 2 * len(self._key_of)), -1, dtype=np.int32)
            grown[: len(self._key_of)] = self._key_of
            self._key_of = grown

    def _grow_keys(self, needed: int) -> None:
        if needed > self._index.get_max_elements():
            self._index.resize_index(max(needed, 2 * self._index.get_max_elements()))
        if needed > len(self._label_of):
            grown = np.full(max(needed, 2 * len(self._label_of)), -1, dtype=np.int64)
            grown[: len(self._label_of)] = self._label_of
            self._label_of = grown

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Insert the vectors of ``labels`` (new records, or new vectors for existing ones: each is
        inserted afresh under a new key, and a replaced vector's old key is marked deleted)."""
        if len(labels) == 0:
            return
        labels = np.asarray(labels, dtype=np.int64)
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(labels) > 1:
            labels, vectors = _last_of_each(labels, vectors)
        self._grow_labels(int(labels.max()))
        keys = np.arange(self._keys, self._keys + len(labels), dtype=np.int64)
        self._grow_keys(self._keys + len(labels))
        self._index.add_items(vectors, keys)  # first: if it fails, the index is as it was
        old = self._key_of[labels]
        for key in old[old >= 0]:
            self._index.mark_deleted(int(key))
        self._label_of[old[old >= 0]] = -1
        self._key_of[labels] = keys
        self._label_of[keys] = labels
        self._keys += len(labels)
        self._live += int((old < 0).sum())
        self._changes += len(labels)
        self._exact.put(labels, vectors)
        if self.deleted > max(COMPACT_MIN, COMPACT_FRACTION * self._live):
            self._compact()

    def remove(self, labels: np.ndarray) -> None:
        """Mark ``labels`` deleted; labels not in the index are ignored."""
        labels = np.asarray(labels, dtype=np.int64)
        labels = labels[(labels >= 0) & (labels < len(self._key_of))]
        labels = np.unique(labels[self._key_of[labels] >= 0])
        keys = self._key_of[labels]
        for key in keys:
            self._index.mark_deleted(int(key))
        self._label_of[keys] = -1
        self._key_of[labels] = -1
        self._live -= len(labels)
        self._changes += len(labels)

    def _compact(self) -> None:
        """Build the graph again from its live vectors (in key order), giving the deleted slots back."""
        live = self.live_labels()
        log.info("rebuilding an index graph with %d deleted slots for %d live vectors", self.deleted, len(live))
        graph = _new_graph(self.params, self.dim, max(len(live), 16))
        for start in range(0, len(live), 8192):
            chunk = live[start: start + 8192]
            graph.add_items(self.stored_vectors(chunk), np.arange(start, start + len(chunk)))
        self._index = graph
        self._key_of[live] = np.arange(len(live), dtype=np.int32)
        self._label_of = np.full(max(len(live), 16), -1, dtype=np.int64)
        self._label_of[: len(live)] = live
        self._keys = len(live)

    def live_labels(self) -> np.ndarray:
        """Every live label, ascending."""
        return np.flatnonzero(self._key_of >= 0)

    def holds(self, labels: np.ndarray) -> np.ndarray:
        """Whether each of ``labels`` is live in the index."""
        labels = np.asarray(labels, dtype=np.int64)
        out = np.zeros(len(labels), dtype=bool)
        inside = (labels >= 0) & (labels < len(self._key_of))
        out[inside] = self._key_of[labels[inside]] >= 0
        return out

    def stored_vectors(self, labels: np.ndarray) -> np.ndarray:
        """The vectors hnswlib holds for live ``labels`` (normalised for cosine); about 25 µs a 384-d vector."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        keys = self._key_of[labels].astype(np.int64)
        return np.asarray(self._index.get_items(keys, return_type="numpy"), dtype=np.float32)

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
        label_of = self._label_of
        try:
            if self._calibrating:  # a calibration sets its own ef meanwhile: take turns with it
                with self._ef_lock:
                    keys, distances = self._knn(queries, k, allowed, label_of)
            else:
                keys, distances = self._knn(queries, k, allowed, label_of)
        except RuntimeError:
            return None
        return label_of[keys], distances

    def _knn(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray], label_of: np.ndarray
             ) -> Tuple[np.ndarray, np.ndarray]:
        self._index.set_ef(max(self.search_ef, k))
        if allowed is None:
            return self._index.knn_query(queries, k=k)
        return self._index.knn_query(queries, k=k, num_threads=1, filter=lambda x: bool(allowed[label_of[x]]))

    def search(self, queries: np.ndarray, k: int, allowed: Optional[np.ndarray] = None) -> SearchResult:
        """The k nearest live labels and distances per query (see :func:`vectordb.index.search.search`)."""
        self._exact.capacity = len(self._key_of)
        return strategy.search(self, self.params.space, self._exact, queries, k, allowed, self.search_policy)

    def _calibrate(self, graph_file: str) -> None:
        """Choose the search breadth that meets the recall target, with exact neighbours read from
        ``graph_file`` (the graph as just saved; see :mod:`vectordb.index.calibration`)."""
        keys = self._key_of[calibration.sample(self.live_labels(), self._live)].astype(np.int64)
        vectors = np.asarray(self._index.get_items(keys, return_type="numpy"), dtype=np.float32)
        with self._ef_lock:
            self._index.set_ef(max(self.search_ef, 64))
            near, _ = self._index.knn_query(vectors, k=2)  # the nearest other vector: the second found
        nearest = np.where(near[:, 0] == keys, near[:, 1], near[:, 0]).astype(np.int64)
        neighbours = np.asarray(self._index.get_items(nearest, return_type="numpy"), dtype=np.float32)
        queries = calibration.perturb(self.params.space, vectors, neighbours, self._live)
        truth = calibration.exact_neighbours(
            self.params.space, queries, calibration.read_elements(graph_file, self.dim))

        def recall_at(ef: int) -> float:
            with self._ef_lock:
                self._index.set_ef(ef)
                found, _ = self._index.knn_query(queries, k=calibration.K)
            return calibration.recall(found.astype(np.int64), truth)

        start = self.search_ef
        self._calibrating = True
        try:
            ef, measured = calibration.choose_ef(recall_at, self.params.recall_target, start)
        finally:
            self._calibrating = False
        self.calibrated = calibration.Calibrated(ef, self._live, round(measured, 4), self.params.recall_target)
        self._changes = 0
        log.info("search ef %d (recall@10 %.3f measured with %d queries on %d vectors, target %.2f)",
                 ef, measured, len(queries), self._live, self.params.recall_target)

    def save(self, folder: str, seq: int, collection_id: str) -> None:
        """Write the index atomically with the record-log position ``seq`` it covers (calibrating
        its search breadth first from the file written, when that is due)."""
        os.makedirs(folder, exist_ok=True)
        index_tmp = os.path.join(folder, "index.bin.tmp")
        self._index.save_index(index_tmp)
        with open(os.path.join(folder, "alive.npy.tmp"), "wb") as f:
            np.save(f, self._key_of >= 0)
        with open(os.path.join(folder, "keys.npy.tmp"), "wb") as f:
            np.save(f, self._label_of[: self._keys])
        if self.params.search_ef == 0 and calibration.due(self.calibrated, self._live, self._changes,
                                                          self.params.recall_target):
            try:
                self._calibrate(index_tmp)
            except (OSError, ValueError, RuntimeError, MemoryError) as exc:  # the save goes on without it
                log.warning("calibrating the search breadth failed (%s); keeping ef %d", exc, self.search_ef)
        meta = {
            "format": FORMAT,
            "collection": collection_id,
            "seq": seq,
            "dim": self.dim,
            "params": self.params.__dict__,
            "deleted": self.deleted,
            "count": self.count,
            "calibrated": None if self.calibrated is None else self.calibrated.to_json(),
            "files": {name: checksum(os.path.join(folder, name + ".tmp")) for name in FILES},
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
        saved = dict(meta.get("params") or {})
        built = {k: saved.get(k) for k in BUILD_PARAMS}
        wanted = {k: getattr(params, k) for k in BUILD_PARAMS}
        if meta.get("format") != FORMAT or meta.get("dim") != dim or built != wanted:
            raise ValueError("it was saved with other settings")
        for name in ("alive.npy", "keys.npy"):
            if not matches(os.path.join(folder, name), meta["files"][name]):
                raise ValueError(f"{name} does not match its checksum")
        alive = read_array(os.path.join(folder, "alive.npy"), np.bool_)
        label_of = read_array(os.path.join(folder, "keys.npy"), np.dtype("<i8"))
        live = label_of[label_of >= 0]
        if int(label_of.min(initial=0)) < -1 or (len(live) and int(live.max()) >= len(alive)):
            raise ValueError("keys.npy has a label beyond the alive mask")
        held = np.zeros(len(alive), dtype=bool)
        held[live] = True  # each live label once, and exactly the alive ones
        if int(held.sum()) != len(live) or not np.array_equal(held, alive):
            raise ValueError("keys.npy disagrees with the alive mask")
        index_path = os.path.join(folder, "index.bin")
        # The checksum reads the file on a thread of its own (file reads and xxh3 let go of the GIL)
        # while the structure is checked, and both are done before hnswlib reads the file. The
        # check maps the file and unmaps it first, so its pages and hnswlib's copy are never
        # resident together (a mapped page counts in the RSS like any other).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vectordb-crc") as pool:
            intact = pool.submit(matches, index_path, meta["files"]["index.bin"])
            with open(index_path, "rb") as f:
                data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            try:
                found = validate_index_file(data, dim, params, label_of >= 0)
            finally:
                _close(data)
            if found.elements != len(label_of) or int(meta["deleted"]) != found.deleted \
                    or int(meta["count"]) != found.elements - found.deleted:
                raise ValueError("its counts disagree")
            if not intact.result():
                raise ValueError("index.bin does not match its checksum")
        graph = hnswlib.Index(space=params.space, dim=dim)
        graph.load_index(index_path, allow_replace_deleted=False)  # safe: the file was checked
        if int(graph.element_count) != found.elements:
            raise ValueError("hnswlib read another element count than the file's")
        index = cls.__new__(cls)
        index.params, index.dim = params, dim
        index._key_of = np.full(len(alive), -1, dtype=np.int32)
        index._key_of[live] = np.flatnonzero(label_of >= 0)
        index._label_of = label_of.copy()
        index._keys, index._live = len(label_of), len(live)
        index._exact = ExactVectors(dim, _own_vectors_of(index), exact=_stored_vectors_of(index))
        index._init_search(calibration.Calibrated.from_json(meta.get("calibrated")))
        index._index = graph
        return index, int(meta["seq"])


def _new_graph(params: IndexParams, dim: int, capacity: int) -> "hnswlib.Index":
    graph = hnswlib.Index(space=params.space, dim=dim)
    graph.init_index(max_elements=capacity, ef_construction=params.construction_ef, M=params.M)
    return graph


def _last_of_each(labels: np.ndarray, vectors: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``labels`` and ``vectors`` with only the last of any repeated label (as applying them in turn would leave)."""
    unique, first_from_end = np.unique(labels[::-1], return_index=True)
    if len(unique) == len(labels):
        return labels, vectors
    keep = np.sort(len(labels) - 1 - first_from_end)
    return labels[keep], vectors[keep]


def _own_vectors_of(index: HnswIndex) -> VectorSource:
    """``index``'s own vectors as exact search's fallback source (weakly held: no reference cycle)."""
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


def _stored_vectors_of(index: HnswIndex) -> ExactFetch:
    """The exact vectors of some labels, read from the graph (for exact search's re-ranking; weakly held)."""
    ref = weakref.ref(index)

    def fetch(labels: np.ndarray) -> np.ndarray:
        target = ref()
        if target is None:
            raise RuntimeError("the index is gone")
        return target.stored_vectors(labels)

    return fetch
