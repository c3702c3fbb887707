"""Giving a deleting store's disk space back: copying the DuckDB file into a fresh one and swapping it in.

DuckDB does not shrink its file on DELETE. :func:`compact` copies the database into
``vectordb.duckdb.compact`` (``ATTACH``, then ``COPY FROM DATABASE``), syncs it, and
renames it over the old file before reconnecting (:meth:`Database.replace_file
<vectordb.persistence.database.Database.replace_file>`). A kill at any moment leaves
either the old file (plus a leftover copy, removed on the next open by
:func:`remove_leftovers`) or the complete new one. The store lock is held across the
swap, so no other process can open the store while the connection is closed. When to
compact, and the rebuilding of indexes that goes with it, are the engine's
(:mod:`vectordb.engine.maintenance`).
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import duckdb

from vectordb.errors import StorageError
from vectordb.persistence.database import DB_FILE, Database, storage_error
from vectordb.persistence.files import fsync_path

log = logging.getLogger("vectordb")

COMPACT_SUFFIX = ".compact"
"""Added to the database file's name for the copy a compaction makes."""
_COPY_ALIAS = "vectordb_compact"


def compact(db: Database) -> None:
    """Copy the database of a store on disk into a fresh file and swap it in atomically, then reconnect.

    The store lock stays held throughout (see :meth:`Database.replace_file`). A failure
    before the swap removes the copy and leaves the store as it was; every failure is a
    typed StorageError.
    """
    path = db.path
    assert path is not None
    copy_path = os.path.join(path, DB_FILE) + COMPACT_SUFFIX
    try:
        with db.guard("compacting the database"):
            remove_leftovers(path)
            con = db.con
            con.execute("CHECKPOINT")
            name = con.execute("SELECT current_database()").fetchone()[0]
            con.execute(f"ATTACH '{_quote(copy_path)}' AS {_COPY_ALIAS}")  # the store's own path, quoted
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
                raise StorageError(f"compacting {path}: the copy was not fully checkpointed; the store is "
                                   "unchanged", path=path, cause="the copy kept a write-ahead log")
            fsync_path(copy_path)
    except BaseException:
        _remove_quietly(path)
        raise
    db.replace_file(copy_path)


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


def leftover(path: Optional[str]) -> Optional[str]:
    """The copy an interrupted compaction left in the store at ``path``, if there is one."""
    if path is None:
        return None
    copy = os.path.join(path, DB_FILE + COMPACT_SUFFIX)
    return copy if os.path.exists(copy) else None


def _remove_quietly(path: Optional[str]) -> None:
    """Remove the copy after a failed compaction (it only takes space); if that fails too, log it."""
    try:
        remove_leftovers(path)
    except StorageError as exc:
        log.warning("could not remove the copy left by a failed compaction: %s", exc)


def _quote(text: str) -> str:
    return text.replace("'", "''")


def _nonempty(path: str) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 0
