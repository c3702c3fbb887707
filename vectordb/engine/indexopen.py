"""Opening a collection's vector index at a log position: its files, its settings, its tail.

A saved index (:attr:`IMPLEMENTATION`'s files under ``<store>/index/<collection id>/``)
covers the record log up to its ``seq``. :func:`open_at_position` loads it, removes the
labels deleted since (from the tombstones) and reads the records written since (the
*tail*) from DuckDB; a missing, corrupt or inconsistent index is started afresh, with
every record as its tail. :func:`replay` catches an index up on the calling thread (a
check, a rebuild). :class:`IndexEnv` is what every collection's index state of one
store shares.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Dict, Iterator, Optional, Tuple

import numpy as np

from vectordb.engine.catchup import CatchUp, Pace, covers, read_tail
from vectordb.engine.structure import DEFAULT_INSERT_POLICY, InsertPolicy, SavePolicy
from vectordb.index import settings
from vectordb.index.base import DEFAULT_SEARCH_POLICY, IndexParams, SearchPolicy, VectorIndex
from vectordb.index.hnsw import HnswIndex
from vectordb.index.tail import Tail
from vectordb.persistence.store import CollectionRow, Store
from vectordb.persistence.turns import Turns, generation_of, save_gate

log = logging.getLogger("vectordb")

IMPLEMENTATION = HnswIndex
"""The :class:`VectorIndex` class new and saved indexes are made with."""


def index_params(row: CollectionRow) -> IndexParams:
    """The index settings of a collection (see :mod:`vectordb.index.settings`)."""
    return settings.index_params(row.metadata, row.metric)


@dataclass
class IndexEnv:
    """What every collection's index state of one store shares: the store, the folder of the
    index files (None: a store in memory), the save gate of a store shared by processes, and
    the save policy (replaced as a whole; a worker takes the one in force when it starts)."""

    store: Store
    folder: Optional[str]
    read_only: bool
    turns: Optional[Turns]
    policy: SavePolicy
    search_policy: SearchPolicy = DEFAULT_SEARCH_POLICY
    """The thresholds of exact search (see :mod:`vectordb.index.search`), set on every index opened."""
    insertion: InsertPolicy = DEFAULT_INSERT_POLICY
    """How workers feed vectors into the graphs (chunk sizes)."""
    saving: Callable[..., ContextManager[bool]] = field(init=False)
    """``with saving(generation) as allowed:`` whether files may be saved now (see :func:`save_gate`)."""
    jobs_lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    """Guards the job of every state (set by a write, taken in by whichever thread waits first)."""
    paces: Dict[str, Pace] = field(init=False, default_factory=dict)
    """When each collection's writes from other processes come (see :class:`Pace`), kept across catch-ups."""

    def __post_init__(self) -> None:
        self.saving = save_gate(self.turns)

    def folder_of(self, collection_id: str) -> Optional[str]:
        """The folder of a collection's index files (None for a store in memory)."""
        return None if self.folder is None else os.path.join(self.folder, collection_id)


def open_at_position(env: IndexEnv, row: CollectionRow) -> Tuple[VectorIndex, int, Tail, int]:
    """The collection's saved index with what was deleted since removed, the ``seq`` it covers,
    its tail (the records written since) and how many labels were removed; without a usable
    saved index, an empty one, -1, every record, 0."""
    assert row.dimension is not None
    store = env.store
    params = index_params(row)
    folder = env.folder_of(row.id)
    labels = store.select_labels(row.id)  # first: a read that must wait for its turn waits before the load
    loaded = IMPLEMENTATION.load(folder, params, row.dimension, row.id) if folder else None
    if loaded is not None:
        index, seq = loaded
        if seq <= row.seq:
            changed = seq < row.seq  # else nothing was written or deleted since: no scan (nor its imports)
            deleted = store.tombstones_since(row.id, seq) if changed else np.empty(0, dtype=np.int64)
            index.remove(deleted)
            tail = read_tail(store, row.id, row.dimension, seq) if changed else Tail(row.dimension)
            if covers(index.live_labels(), tail.labels(), labels):
                return index, seq, tail, len(deleted)
        log.warning("index of collection %r disagrees with its records; rebuilding it", row.name)
    elif folder is not None and len(labels):
        if _never_saved(folder):  # normal after a client that was not closed: nothing is wrong
            log.info("collection %r has no saved index (normal when its client was not closed); "
                     "building it from the records", row.name)
        else:
            log.warning("collection %r has no usable saved index; rebuilding it from the records", row.name)
    fresh = IMPLEMENTATION(params, row.dimension, capacity=max(len(labels), 16))
    fresh.search_policy = env.search_policy
    return fresh, -1, read_tail(store, row.id, row.dimension, -1), 0


def new_catch_up(env: IndexEnv, row: CollectionRow, index: VectorIndex, tail: Tail, unsaved: int, fresh: bool,
                 chunk: Optional[int] = None, defer: Optional[bool] = None) -> CatchUp:
    """A :class:`CatchUp` that inserts ``tail`` into ``index`` (``unsaved``: the changes its saved
    files lack besides the tail), ``chunk`` vectors at a time, then saves it if that is due (or if
    it is ``fresh``: there was no usable saved index). Its worker holds neither the store nor
    ``env``: only the index, its folder, the save gate and the policy in force now.

    ``defer``: whether ``tail`` is another process's write, whose insertion (and that of the
    writes appended after it) waits while such writes keep coming (see :mod:`~vectordb.engine.catchup`);
    None: when a ``chunk`` is given, which only :meth:`VectorIndexState.apply_vectors` does."""
    folder = None if env.read_only else env.folder_of(row.id)
    collection_id = row.id
    generation = generation_of(env.turns)
    saving = env.saving
    policy = env.policy

    def save(seq: int) -> bool:
        assert folder is not None
        with saving(generation) as allowed:
            if allowed:
                index.save(folder, seq, collection_id)
            return allowed

    def due(count_unsaved: int, count: int) -> bool:
        return fresh or policy.due(count_unsaved, count)

    pace: Optional[Pace] = None
    if chunk is not None if defer is None else defer:
        pace = env.paces.get(collection_id)
        if pace is None or pace.policy is not env.insertion:
            pace = env.paces[collection_id] = Pace(env.insertion)
        pace.note()  # this write came now
    return CatchUp(
        index, tail, row.seq, unsaved + tail.count, save if folder is not None else None, due,
        backlog_max=max(tail.count, policy.min_changes), chunk=chunk or env.insertion.catch_up_chunk, pace=pace,
    )


def matrix_source(store: Store, collection_id: str) -> Callable[[], Iterator[Tuple[np.ndarray, np.ndarray]]]:
    """What fills an index's exact-search matrix: the collection's vectors, read from the store."""
    # Weakly: the index (which a worker thread may hold) must keep neither its manager nor the
    # store alive, so that a client dropped without close() is collected and frees the store lock.
    ref = weakref.ref(store)

    def source() -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        alive = ref()
        return iter(()) if alive is None else alive.vectors_since(collection_id, -1, chunk=8192)

    return source


def replay(store: Store, index: VectorIndex, collection_id: str, seq: int) -> int:
    """Catch ``index`` (covering the records up to ``seq``) up with the records on this thread:
    remove what was deleted since, add what was written since; the number of changes."""
    deleted = store.tombstones_since(collection_id, seq)
    index.remove(deleted)
    changed = len(deleted)
    for labels, vectors in store.vectors_since(collection_id, seq):
        index.add(labels, vectors)
        changed += len(labels)
    return changed


def _never_saved(folder: str) -> bool:
    """Whether the index folder holds no saved file at all (absent, empty, or only the ``.tmp``
    files of a first save cut short before its renames): the index was never saved, which is
    normal, not damage. A saved file that is unusable makes :meth:`VectorIndex.load` warn."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return all(name.endswith(".tmp") for name in names)
