"""Giving space back after deletes: rebuilding an index from its live vectors and
copying the DuckDB file into a fresh one.

hnswlib keeps a deleted vector's slot (reused only by later adds) and DuckDB does not
shrink its file on DELETE. A compaction (run by :meth:`LocalBackend.compact
<vectordb.engine.local.LocalBackend.compact>`, which takes the engine's locks) rebuilds
a collection's index from the records (:func:`rebuild_index`) and, for a store on disk,
copies the database into ``vectordb.duckdb.compact``
(``COPY FROM DATABASE``), syncs it, and renames it over the old file before
reconnecting (:func:`compact_database`). A kill at any moment leaves either the old file
(plus a leftover copy, removed on the next open) or the complete new one; an index
rebuilt but not yet saved is caught up or rebuilt from the records on the next open.

A delete compacts its collection once :func:`compaction_due` says so: the deleted slots
of its index exceed ``AUTO_COMPACT_FRACTION`` of its live vectors and
``AUTO_COMPACT_MIN_DELETED``; that compaction's failure is logged and never fails the
delete. The store lock is held across the swap, so no other process can open the store
while the connection is closed.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import duckdb

from vectordb.errors import StorageError
from vectordb.index.base import VectorIndex
from vectordb.engine.indexes import IndexManager
from vectordb.persistence.database import storage_error
from vectordb.persistence.files import fsync_path
from vectordb.persistence.store import DB_FILE, CollectionRow, Store


log = logging.getLogger("vectordb")

AUTO_COMPACT_MIN_DELETED = 1000
AUTO_COMPACT_FRACTION = 0.5
COMPACT_SUFFIX = ".compact"
_COPY_ALIAS = "vectordb_compact"


def rebuild_index(indexes: IndexManager, row: CollectionRow) -> Optional[VectorIndex]:
    """Replace the collection's index by one built from its records, and save it."""
    if row.dimension is None:
        return None
    return indexes.rebuild(row)


def compaction_due(index: Optional[VectorIndex]) -> bool:
    """Whether an index has so many deleted slots that it should be rebuilt (after a delete)."""
    return index is not None and index.deleted > max(AUTO_COMPACT_MIN_DELETED, AUTO_COMPACT_FRACTION * index.count)


def compact_database(store: Store) -> None:
    """Copy the database into a fresh file and swap it in atomically, then reconnect.

    The store lock stays held throughout (see :meth:`Database.replace_file`). A failure
    before the swap removes the copy and leaves the store as it was; every failure is a
    typed StorageError.
    """
    db_path = os.path.join(store.path, DB_FILE)
    copy_path = db_path + COMPACT_SUFFIX
    try:
        with store.guard("compacting the database"):
            remove_leftovers(store.path)
            con = store.con
            con.execute("CHECKPOINT")
            name = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"ATTACH '{_quote(copy_path)}' AS {_COPY_ALIAS}")
            try:
                con.execute(f'COPY FROM DATABASE "{name}" TO {_COPY_ALIAS}')  # name: from our own file name
            except BaseException:
                try:
                    con.execute("DETACH " + _COPY_ALIAS)
                except duckdb.Error:
                    pass  # after a fatal error the connection refuses everything: the first error goes on up
                raise
            con.execute("DETACH " + _COPY_ALIAS)
            if _nonempty(copy_path + ".wal"):
                raise StorageError(f"compacting {store.path}: the copy was not fully checkpointed; the store is "
                                   "unchanged", path=store.path, cause="the copy kept a write-ahead log")
            fsync_path(copy_path)
    except BaseException:
        _remove_quietly(store.path)
        raise
    store.db.replace_file(copy_path)


def _remove_quietly(path: Optional[str]) -> None:
    """Remove the copy after a failed compaction (it only takes space); if that fails too, log it."""
    try:
        remove_leftovers(path)
    except StorageError as exc:
        log.warning("could not remove the copy left by a failed compaction: %s", exc)


def remove_leftovers(path: Optional[str]) -> None:
    """Delete a copy left by a compaction that was interrupted before its swap."""
    if path is None:
        return
    base = os.path.join(path, DB_FILE + COMPACT_SUFFIX)
    for leftover in (base, base + ".wal"):
        if os.path.exists(leftover):
            log.warning("removing %s, left by an interrupted compaction", leftover)
            try:
                os.remove(leftover)
            except OSError as exc:
                raise storage_error(exc, path, "removing the copy left by a compaction") from exc


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


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _nonempty(path: str) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 0
