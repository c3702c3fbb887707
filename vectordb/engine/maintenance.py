"""Giving space back after deletes: rebuilding an index from its live vectors and
copying the DuckDB file into a fresh one.

hnswlib keeps a deleted vector's slot (reused only by later adds) and DuckDB does not
shrink its file on DELETE. A compaction (run by :meth:`LocalBackend.compact
<vectordb.engine.local.LocalBackend.compact>`, which takes the engine's locks) rebuilds
a collection's index from the records (:func:`rebuild_index`) and, for a store on disk,
has the store copy its database into a fresh file and swap it in
(:func:`compact_database`; the copy and the swap are :mod:`vectordb.persistence.compaction`'s).
A kill at any moment leaves either the old file (plus a leftover copy, removed on the
next open) or the complete new one; an index rebuilt but not yet saved is caught up or
rebuilt from the records on the next open.

A delete compacts its collection once :func:`compaction_due` says so: the deleted slots
of its index exceed ``AUTO_COMPACT_FRACTION`` of its live vectors and
``AUTO_COMPACT_MIN_DELETED``; that compaction's failure is logged and never fails the
delete.
"""

from __future__ import annotations

import os
from typing import Optional

from vectordb.index.base import VectorIndex
from vectordb.engine.indexes import VectorIndexes
from vectordb.persistence.compaction import COMPACT_SUFFIX, remove_leftovers
from vectordb.persistence.store import CollectionRow, Store

__all__ = [
    "AUTO_COMPACT_FRACTION", "AUTO_COMPACT_MIN_DELETED", "COMPACT_SUFFIX", "compact_database", "compaction_due",
    "disk_usage", "rebuild_index", "remove_leftovers",
]

AUTO_COMPACT_MIN_DELETED = 1000
AUTO_COMPACT_FRACTION = 0.5


def rebuild_index(indexes: VectorIndexes, row: CollectionRow) -> Optional[VectorIndex]:
    """Replace the collection's index by one built from its records, and save it."""
    if row.dimension is None:
        return None
    return indexes.rebuild(row)


def compaction_due(index: Optional[VectorIndex]) -> bool:
    """Whether an index has so many deleted slots that it should be rebuilt (after a delete)."""
    return index is not None and index.deleted > max(AUTO_COMPACT_MIN_DELETED, AUTO_COMPACT_FRACTION * index.count)


def compact_database(store: Store) -> None:
    """Copy the database into a fresh file and swap it in atomically, then reconnect (:meth:`Store.compact`).

    The store lock stays held throughout. A failure before the swap removes the copy and
    leaves the store as it was; every failure is a typed StorageError.
    """
    store.compact()


def disk_usage(path: Optional[str]) -> int:
    """Bytes under the store's folder (database, write-ahead log and index files)."""
    if path is None:
        return 0
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total
