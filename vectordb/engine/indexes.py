"""The vector indexes of one store: a registry of per-collection :class:`VectorIndexState` objects.

Each collection's index is loaded on first use, caught up with its records (in the
background, see :mod:`vectordb.engine.vectorindex` and :mod:`vectordb.engine.catchup`),
kept in step with every committed write and delete, and saved under the engine's
:class:`~vectordb.engine.structure.SavePolicy` and on close. Its files live under
``<path>/index/<collection id>/``.

Inserting a write's vectors into the graph is the costliest step of a write, so it
runs in the background: a write returns once its records are committed to DuckDB
(durable), while its vectors go into the index on a worker thread. The next write's
validation and commit overlap with that insertion; anything that reads or changes an
index first waits for it (:meth:`VectorIndexes.wait`), so every read sees every
acknowledged write. At most one such job runs per collection, and a read of one
collection waits only for that collection's job (``wait(collection_id)``).

Threads: the engine's locks (:mod:`vectordb.engine.locks`) keep the requests on one
collection apart (a change excludes everything else on it, and reads load and wait for
its index one at a time), so each collection's state is touched by one thread at a time;
a mutex shared by the states guards only their jobs. A catch-up
(:class:`~vectordb.engine.catchup.CatchUp`) takes turns with its worker by itself.
"""

from __future__ import annotations

import os
import shutil
import weakref
from dataclasses import replace
from typing import Callable, Dict, Optional

import numpy as np

from vectordb.engine.catchup import CatchUp
from vectordb.engine.indexopen import IMPLEMENTATION, IndexEnv, index_params, replay
from vectordb.engine.structure import DEFAULT_SAVE_POLICY, InsertPolicy, SavedStructures, SavePolicy
from vectordb.engine.vectorindex import Searcher, VectorIndexState
from vectordb.index.base import SearchPolicy, VectorIndex
from vectordb.persistence.store import CollectionRow, Store
from vectordb.persistence.turns import Turns

__all__ = ["IMPLEMENTATION", "VectorIndexes", "Searcher", "index_params"]


class VectorIndexes(SavedStructures[VectorIndexState]):
    """The vector indexes of one store's collections (beside :class:`~vectordb.engine.textindexes.TextIndexes`),
    and their files under ``<path>/index/<collection id>/``."""

    def __init__(self, store: Store, folder: Optional[str], read_only: bool = False,
                 turns: Optional[Turns] = None, policy: SavePolicy = DEFAULT_SAVE_POLICY) -> None:
        """``turns``: a store shared by processes saves files only inside this process's turn;
        ``policy``: when an index with unsaved changes is saved (also :attr:`policy`)."""
        super().__init__()
        self._env = IndexEnv(store, folder, read_only, turns, policy)
        # A dropped engine's workers stop (at exit, close() does that for the engines still open):
        # they would compete with a client that opens the store again, and save into its folder.
        weakref.finalize(self, _abandon, self._states).atexit = False

    @property
    def store(self) -> Store:
        return self._env.store

    @property
    def folder(self) -> Optional[str]:
        return self._env.folder

    @property
    def read_only(self) -> bool:
        return self._env.read_only

    @property
    def insertion(self) -> InsertPolicy:
        """How workers feed vectors into the graphs (applies to the work started after)."""
        return self._env.insertion

    @insertion.setter
    def insertion(self, policy: InsertPolicy) -> None:
        self._env.insertion = policy

    @property
    def search_policy(self) -> SearchPolicy:
        """When a search is exact (see :mod:`vectordb.index.search`): applies to every index, open or not."""
        return self._env.search_policy

    @search_policy.setter
    def search_policy(self, policy: SearchPolicy) -> None:
        self._env.search_policy = policy
        for _, state in self.states():
            if state.index is not None:
                state.index.search_policy = policy
            if state.catchup is not None:
                state.catchup.graph.search_policy = policy

    def folder_of(self, collection_id: str) -> Optional[str]:
        """The folder of a collection's index files (None for a store in memory)."""
        return self._env.folder_of(collection_id)

    def saved_position(self, collection_id: str) -> Optional[int]:
        """The ``seq`` the collection's saved index covers as far as this engine knows: -1 when it
        has not saved (nor loaded a usable) one; None when its index was never opened here."""
        state = self._states.get(collection_id)
        return None if state is None else state.saved_seq

    def catch_up(self, index: VectorIndex, collection_id: str, seq: int) -> int:
        """Catch a loaded ``index`` (covering the records up to ``seq``) up with the records, on
        this thread (for a check); the number of changes."""
        return replay(self.store, index, collection_id, seq)

    def remove_orphans(self, known_ids: set) -> None:
        """Delete index folders of collections no longer in the catalog."""
        if self.folder is None or self.read_only or not os.path.isdir(self.folder):
            return
        for name in os.listdir(self.folder):
            if name not in known_ids:
                shutil.rmtree(os.path.join(self.folder, name), ignore_errors=True)

    def _state_for(self, collection_id: str) -> VectorIndexState:
        state = self._states.get(collection_id)
        return state if state is not None else self._put(collection_id, VectorIndexState(self._env, collection_id))

    # -- background work ------------------------------------------------------------

    def wait(self, collection_id: Optional[str] = None) -> None:
        """Let the collection's background index work (a write's insertion, a catch-up) finish, and take
        in its outcome; without ``collection_id``, every collection's (for a check, or in tests)."""
        states = self._selected(collection_id)
        for state in states:
            state.join_job()
        for state in states:
            state.end_catch_up(finish=True)

    def pending(self, collection_id: str) -> int:
        """How many of the collection's vectors are not in its graph yet (its catch-up's tail)."""
        state = self._states.get(collection_id)
        return 0 if state is None else state.pending

    def catch_up_of(self, collection_id: str) -> Optional[CatchUp]:
        """The collection's catch-up under way (not yet taken in), if any."""
        state = self._states.get(collection_id)
        return None if state is None else state.catchup

    def unsaved(self, collection_id: str) -> int:
        """How many changes the collection's index holds that its saved files lack."""
        state = self._states.get(collection_id)
        return 0 if state is None else state.unsaved

    # -- the indexes ------------------------------------------------------------------

    def loaded(self, collection_id: str) -> Optional[VectorIndex]:
        """The collection's index if it is in memory (after any background insertion of a write),
        without loading it; it may still be catching up (its counts and settings are current)."""
        state = self._states.get(collection_id)
        return None if state is None else state.loaded()

    def get(self, row: CollectionRow) -> Optional[VectorIndex]:
        """The collection's index, with every record in it; None while it has no vectors."""
        index = self._load(row)
        state = self._states.get(row.id)
        if state is not None and state.catchup is not None:
            state.end_catch_up(finish=True)
            index = state.index
            if index is None:  # the catch-up failed: build it here, from the records
                index = self.rebuild(row)
        return index

    def searcher(self, row: CollectionRow) -> Optional[Searcher]:
        """What answers the collection's queries now, without waiting for a catch-up; None while it has no vectors."""
        if self._load(row) is None:
            return None
        state = self._states[row.id]
        return state.catchup or state.index

    def _load(self, row: CollectionRow) -> Optional[VectorIndex]:
        """The collection's index, loaded if needed (its tail possibly still pending)."""
        state = self._states.get(row.id)
        index = None if state is None else state.loaded()
        if index is None and row.dimension is not None:
            index = self._state_for(row.id).open(row)
        return index

    def rebuild(self, row: CollectionRow) -> VectorIndex:
        """Replace the collection's index by one built from its records (sized to them), and save it."""
        return self._state_for(row.id).rebuild(row)

    def create(self, row: CollectionRow) -> VectorIndex:
        """A new empty index, once the collection's dimension is known."""
        return self._state_for(row.id).create(row)

    # -- committed changes ---------------------------------------------------------------

    def add_after_commit(
        self,
        row: CollectionRow,
        dimension: int,
        labels: np.ndarray,
        vectors: np.ndarray,
        commit: Callable[[], CollectionRow],
    ) -> CollectionRow:
        """Run ``commit`` (the store's transaction for a write), then hand its vectors to the index.

        The commit overlaps with the previous write's insertion into the graph; this
        write's insertion starts in the background once that one is done (see the module
        docstring). If the commit raises, nothing reaches the index. Returns ``commit``'s
        result.
        """
        state = self._states.get(row.id)
        index = None if state is None else state.index
        if index is None and len(labels):
            # Load (and read the tail) before committing, so the new records are not replayed as well.
            index = self.create(replace(row, dimension=dimension)) if row.dimension is None else self._load(row)
        new_row = commit()
        state = self._states.get(row.id)
        if state is None:
            return new_row  # no index, and nothing to put in one
        return state.after_commit(new_row, index, labels, vectors)

    def applied(self, row: CollectionRow, labels: np.ndarray, vectors: np.ndarray) -> None:
        """Apply another process's committed write (``row``: the collection after it) to the index,
        if it is loaded (else it is loaded from the records on next use)."""
        state = self._states.get(row.id)
        if state is not None:
            state.apply_vectors(row, labels, vectors)

    def remove(self, row: CollectionRow, labels: np.ndarray) -> None:
        """Apply a committed delete to the index (if it is loaded)."""
        state = self._states.get(row.id)
        if state is not None:
            state.apply_delete(row, labels)

    # -- saving, forgetting ------------------------------------------------------------------

    def flush(self, rows: Dict[str, CollectionRow]) -> None:
        """Save every index with unsaved changes (on close).

        A catch-up still running is stopped after its chunk in progress, and its graph (if it
        gained enough) saved as covering the records it holds; the graph is then dropped from
        memory (see :meth:`VectorIndexState.flush_catch_up`).
        """
        states = self.states()
        for _, state in states:
            state.join_job()
        for collection_id, state in states:
            state.flush_catch_up(rows.get(collection_id))
        for collection_id, state in states:
            state.flush(rows.get(collection_id))

    def forget(self, collection_id: str) -> None:
        """Drop the collection's index from memory, keeping its files: it is loaded and caught
        up from the records on next use (after a failed commit, whose outcome is read back)."""
        state = self._states.get(collection_id)
        if state is not None:
            state.settle()
        super().forget(collection_id)

    def _remove_files(self, collection_id: str) -> None:
        folder = self.folder_of(collection_id)
        if folder is not None and os.path.isdir(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _abandon(states: Dict[str, VectorIndexState]) -> None:
    """Stop the background work of a manager that is gone (its engine was dropped without close())."""
    alive = list(states.values())
    for state in alive:  # every job is told to stop first (they stop on their own), then each catch-up
        if state.job is not None:
            state.job.cancel()
    for state in alive:
        state.abandon()
