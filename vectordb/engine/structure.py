"""The one interface of the structures derived from a collection's records, and their one save policy.

DuckDB is the only source of truth. Everything else the engine keeps of a collection is
*derived* from its records and can be dropped at any moment: the vector index
(:mod:`vectordb.engine.vectorindex`), the full-text index (:mod:`vectordb.engine.textindexes`),
the record cache and the metadata index (:mod:`vectordb.engine.derived`). Each is one
object per collection, a :class:`DerivedStructure`, with one life cycle (as Chroma's
segments have, each with its own log watermark):

- **open at a position**: loaded from its saved file (which covers the record log up to
  a ``seq``), or from the records; its :attr:`~DerivedStructure.position` is the ``seq``
  whose records it answers for;
- **catch up**: what the records gained or lost after the saved ``seq`` is applied on open;
- **apply committed changes**: :meth:`~DerivedStructure.apply_write` and
  :meth:`~DerivedStructure.apply_delete`, called once a write or delete is committed, so a
  read sees every acknowledged change;
- **save when due**: :attr:`~DerivedStructure.unsaved` counts the changes since its last save
  (those a reopen would have to catch up with); :class:`SavePolicy` (the one place for the
  thresholds) says when they are worth a save;
- **drop** (forget it, and remove its files) and **rebuild** it from the records.

The registries that hold them (:class:`StructureRegistry` and its subclasses) are keyed by
collection id; they only look states up, create and forget them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Dict, Generic, List, Optional, Protocol, Tuple, TypeVar

import numpy as np

from vectordb.persistence.store import CollectionRow, RecordBatch


@dataclass(frozen=True)
class SavePolicy:
    """When a derived structure is worth saving: once its unsaved changes reach
    ``max(min_changes, fraction * its size)``, so that saves are amortised (a crash then costs
    a catch-up of at most that many changes). One policy for every structure that is saved;
    an engine's managers take one (``policy=``; tests pass small thresholds)."""

    min_changes: int = 50_000
    fraction: float = 0.5

    def due(self, unsaved: int, count: int) -> bool:
        """Whether a structure of ``count`` entries with ``unsaved`` changes since its last save should be saved."""
        return unsaved >= max(self.min_changes, self.fraction * count)


DEFAULT_SAVE_POLICY = SavePolicy()
"""The policy of an engine given none."""


@dataclass(frozen=True)
class InsertPolicy:
    """How a worker thread feeds vectors into a graph: ``catch_up_chunk`` vectors per turn of a
    catch-up (how long a query may wait for the chunk in progress), ``write_chunk`` per step of a
    write's insertion (how soon a dropped engine's job stops). Another process's writes wait
    until they pause for twice their recent interval, within ``defer_quiet_min_s`` and
    ``defer_quiet_max_s`` (a longer gap starts a new burst), or until they hold
    ``defer_max_bytes`` of vectors (about 43,000 of 384 dimensions, searched exactly in a few ms;
    see :mod:`vectordb.engine.catchup`). Tests make them small."""

    catch_up_chunk: int = 256
    write_chunk: int = 1024
    defer_quiet_min_s: float = 0.25
    defer_quiet_max_s: float = 5.0
    defer_max_bytes: int = 64 << 20


DEFAULT_INSERT_POLICY = InsertPolicy()


class DerivedStructure(ABC):
    """One collection's structure derived from its records (see the module docstring).

    ``position`` is the record-log ``seq`` it answers for (-1: none yet); ``unsaved`` the
    changes it holds that its saved file (if it has one) lacks. The engine applies a change
    only under the collection's write lock, so one thread at a time changes a structure.
    """

    collection_id: str
    position: int = -1
    unsaved: int = 0

    @property
    @abstractmethod
    def size(self) -> int:
        """How many entries it holds (what :meth:`SavePolicy.due` weighs the changes against)."""

    @abstractmethod
    def apply_write(self, row: CollectionRow, batch: RecordBatch) -> bool:
        """Apply a committed write of ``batch`` (``row``: the collection after it); False when that
        failed: the structure is then dropped (and loaded or rebuilt from the records on next use)."""

    @abstractmethod
    def apply_delete(self, row: CollectionRow, labels: np.ndarray) -> bool:
        """Apply a committed delete of ``labels`` (``row``: the collection after it); False as above."""

    def save_due(self, policy: SavePolicy) -> bool:
        """Whether its unsaved changes are worth a save now."""
        return policy.due(self.unsaved, self.size)

    def save(self, row: CollectionRow) -> None:
        """Write it to its file as covering ``row.seq``; a failure (a full disk) is only logged: it
        is caught up from the records later. A structure kept only in memory has nothing to save."""


S = TypeVar("S", bound=DerivedStructure)


class StructureRegistry(Generic[S]):
    """The per-collection states of one kind of derived structure, keyed by collection id."""

    def __init__(self) -> None:
        self._states: Dict[str, S] = {}

    def state(self, collection_id: str) -> Optional[S]:
        """The collection's state, if it has one (nothing is loaded)."""
        return self._states.get(collection_id)

    def states(self) -> List[Tuple[str, S]]:
        """Every collection's state (a copy: other collections may come and go meanwhile)."""
        return list(self._states.items())

    def _selected(self, collection_id: Optional[str]) -> List[S]:
        """The collection's state (none if it has none), or every state when ``collection_id`` is None."""
        if collection_id is None:
            return list(self._states.values())
        state = self._states.get(collection_id)
        return [] if state is None else [state]

    def _put(self, collection_id: str, state: S) -> S:
        self._states[collection_id] = state
        return state

    def forget(self, collection_id: str) -> None:
        """Drop the collection's state from memory, keeping its files: loaded again on next use."""
        self._states.pop(collection_id, None)

    def drop(self, collection_id: str) -> None:
        """Forget a deleted collection's state and remove its files (loaded or not)."""
        self.forget(collection_id)
        self._remove_files(collection_id)

    def _remove_files(self, collection_id: str) -> None:
        """Remove the collection's saved files; nothing for a structure kept only in memory."""

    def clear(self) -> None:
        """Forget every state (after a repair rewrote the rows they mirror)."""
        for collection_id in list(self._states):
            self.forget(collection_id)


class Saving(Protocol):
    """What a registry of saved structures keeps beside them: the policy they are saved under."""

    policy: SavePolicy


class SavedStructures(StructureRegistry[S]):
    """A registry whose structures are saved to files, under the one :class:`SavePolicy` its
    environment (``_env``, set by the subclass) holds."""

    _env: Saving

    @property
    def policy(self) -> SavePolicy:
        """When a structure with unsaved changes is saved (a new policy applies to the work started after)."""
        return self._env.policy

    @policy.setter
    def policy(self, policy: SavePolicy) -> None:
        self._env.policy = policy
