"""Giving space back after deletes: rebuilding an index from its live vectors and
copying the DuckDB file into a fresh one.

hnswlib keeps a deleted vector's slot (reused only by later adds) and DuckDB does not
shrink its file on DELETE. :func:`compact` rebuilds a collection's index from the
records and, for a store on disk, copies the database into ``vectordb.duckdb.compact``
(``COPY FROM DATABASE``), syncs it, and renames it over the old file before
reconnecting. A kill at any moment leaves either the old file (plus a leftover copy,
removed on the next open) or the complete new one; an index rebuilt but not yet saved
is caught up or rebuilt from the records on the next open.

:func:`maybe_compact` runs after each delete and compacts once the deleted slots of an
index exceed ``AUTO_COMPACT_FRACTION`` of its live vectors and ``AUTO_COMPACT_MIN_DELETED``;
its failure is logged and never fails the delete. The store lock is held across the
swap, so no other process can open the store while the connection is closed.
"""

from __future__ import annotations

import logging
import os
from typing import List, Optional

import duckdb

from vectordb.errors import StorageError
from vectordb.index.base import VectorIndex
from vectordb.engine.indexes import IndexManager
from vectordb.persistence.database import storage_error
from vectordb.persistence.files import fsync_path
from vectordb.persistence.store import DB_FILE, CollectionRow, Store
from vectordb.types import CompactResult


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


def compact(store: Store, indexes: IndexManager, rows: List[CollectionRow]) -> CompactResult:
    """Rebuild the indexes of ``rows`` and shrink the database file (the engine holds its lock)."""
    before = disk_usage(store.path)
    rebuilt = sum(rebuild_index(indexes, row) is not None for row in rows)
    if store.path is not None:
        compact_database(store)
    after = disk_usage(store.path)
    log.info("compacted the store at %s: %d -> %d bytes", store.path, before, after)
    return CompactResult(before, after, rebuilt)


def maybe_compact(store: Store, indexes: IndexManager, row: CollectionRow) -> Optional[CompactResult]:
    """Compact when the collection's index has many deleted slots (after a delete).

    The delete that calls this has committed: a failure here (a full disk, say) is
    logged and never fails the delete; ``compact()`` gives the space back later.
    """
    index = indexes.loaded(row.id)
    if index is None or index.deleted <= max(AUTO_COMPACT_MIN_DELETED, AUTO_COMPACT_FRACTION * index.count):
        return None
    log.info("collection %r has %d deleted index slots for %d live vectors; compacting", row.name,
             index.deleted, index.count)
    try:
        return compact(store, indexes, [row])
    except Exception as exc:  # the delete's result stands whatever happens here
        log.warning("automatic compaction of collection %r after a delete failed (the delete stands; "
                    "compact() gives the space back later): %s", row.name, exc,
                    exc_info=not isinstance(exc, StorageError))
        return None


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
