"""The store's DuckDB connection: opening it under the store lock, turning every failure
into a typed :class:`~vectordb.errors.StorageError`, and reopening after a fatal error.

- :class:`Database` takes the store's own lock (:mod:`vectordb.persistence.lock`)
  before DuckDB opens the file and keeps it until :meth:`Database.close`, across the
  file swap of a compaction (:meth:`Database.replace_file`).
- :meth:`Database.guard` is the one place where a ``duckdb.Error`` or an ``OSError``
  becomes a typed error (:func:`storage_error`): ``StorageFullError`` for a full disk,
  ``StoreCorruptedError`` for a damaged database, ``StorageError`` otherwise, each
  naming the path and the cause. The store wraps every DuckDB call in it.
- A ``duckdb.FatalException`` (for instance a checkpoint that ran out of disk space)
  invalidates DuckDB's database instance: every later statement on the connection
  would fail. The guard drops the connection, and the next use of :attr:`Database.con`
  opens the file again (DuckDB replays its write-ahead log), so the client carries on
  once the cause is gone; while reopening fails, each call raises a typed error that
  says so. Nothing a client keeps in memory needs to change: a transaction either
  committed (and stays committed after the reopen) or it did not.
- Threads: a DuckDB connection must not be used by two threads at once, so each
  thread gets its own cursor (``connection.cursor()``: another connection to the same
  database instance, DuckDB's documented way to use one database from several
  threads), made on the thread's first use and rebuilt after a reopen or a file swap.
  A transaction runs on one cursor from BEGIN to COMMIT (:meth:`Database.pinned`).
  DuckDB runs transactions of different cursors side by side (optimistic concurrency:
  changes to different rows never conflict; the engine's collection locks keep two
  changes of one row apart).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Optional

import duckdb

from vectordb.errors import (
    InvalidArgumentError,
    StorageError,
    StorageFullError,
    StoreCorruptedError,
    StoreLockedError,
    VectorDBError,
)
from vectordb.persistence.files import fsync_dir
from vectordb.persistence.lock import StoreLock

log = logging.getLogger("vectordb")

DB_FILE = "vectordb.duckdb"
REOPEN_ATTEMPTS = 3
"""Tries at reopening the file after a compaction swap before the compaction reports failure."""

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_FULL_WORDS = ("no space left on device", "disk quota exceeded", "file too large")
_DAMAGE_WORDS = (
    "not a valid duckdb database file",
    "corrupt",
    "checksum",
    "could not read enough bytes",
    "wal does not match",
    "replaying wal",
    "serialization error",
    "failed to deserialize",
)
_DURABLE_COMMIT = "commit succeeded and is durable"


def storage_error(exc: BaseException, path: Optional[str], action: str) -> StorageError:
    """The typed error for ``exc`` (a ``duckdb.Error`` or an ``OSError``) raised while ``action``."""
    cause = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename:
        cause = f"{exc.filename}: {exc.strerror or cause}"
    where = "the in-memory store" if path is None else f"the store at {path}"
    lowered = cause.lower()
    if (isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS) or any(w in lowered for w in _FULL_WORDS):
        return StorageFullError(
            f"{action} in {where} failed: the disk is full ({cause}); free some space and retry",
            path=path, cause=cause,
        )
    if isinstance(exc, duckdb.Error) and any(w in lowered for w in _DAMAGE_WORDS):
        return damaged(path, cause)
    return StorageError(f"{action} in {where} failed: {cause}", path=path, cause=cause)


def damaged(path: Optional[str], cause: str) -> StoreCorruptedError:
    """The error for a database file that cannot be read."""
    file = DB_FILE if path is None else os.path.join(path, DB_FILE)
    return StoreCorruptedError(
        f"the database file {file} is damaged ({cause}): restore it from a backup, or move the folder "
        "aside and start an empty store there (the index files alone cannot restore the records)",
        path=file, cause=cause,
    )


class Database:
    """The DuckDB connection of one store (a folder, or memory when ``path`` is None)."""

    def __init__(self, path: Optional[str], read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self.file = None if path is None else os.path.join(path, DB_FILE)
        self._con: Optional[duckdb.DuckDBPyConnection] = None
        """The connection that opened the database; threads use cursors of it (see :attr:`con`)."""
        self._local = threading.local()
        self._mutex = threading.Lock()  # guards replacing ``_con`` and making cursors of it
        self._lost: Optional[str] = None
        self._closed = False
        self._lock = None if path is None else StoreLock.acquire(path, shared=read_only)
        try:
            self._check_file_present()
            self._con = self._connect()
        except BaseException:
            self._release()
            raise

    # -- the connection -----------------------------------------------------

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor of the open connection (inside a transaction, the transaction's).

        The connection is reopened first if a fatal error dropped it; a cursor made
        before a reopen or a file swap is replaced by a new one.
        """
        local = self._local
        pinned = getattr(local, "pinned", None)
        if pinned is not None:
            return pinned
        con = self._con
        cursor = getattr(local, "cursor", None)
        if cursor is not None and con is not None and local.of is con:
            return cursor
        with self._mutex:
            con = self._con
            if con is None:
                con = self._reopen()
            cursor = con.cursor()
        local.cursor, local.of = cursor, con
        return cursor

    @contextmanager
    def pinned(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's cursor, used by every statement of the thread until the block ends.

        A transaction runs inside: were the connection reopened meanwhile (a fatal error
        on another thread), its later statements fail on the old cursor instead of
        running outside the transaction on a new one.
        """
        cursor = self.con
        self._local.pinned = cursor
        try:
            yield cursor
        finally:
            self._local.pinned = None

    @contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn a ``duckdb.Error`` or ``OSError`` raised inside into a typed StorageError.

        ``action`` says what was being done ("writing records"). A fatal DuckDB error
        also drops the connection, to be reopened on next use. Errors of vectordb's own
        and any other exception pass through unchanged.
        """
        try:
            yield
        except VectorDBError:
            raise
        except duckdb.FatalException as exc:
            self.invalidate(exc)
            raise storage_error(exc, self.path, action) from exc
        except (duckdb.Error, OSError) as exc:
            raise storage_error(exc, self.path, action) from exc

    def invalidate(self, exc: BaseException) -> None:
        """Drop a connection whose database instance a fatal error made unusable (and every cursor of it)."""
        with self._mutex:
            con, self._con = self._con, None
            self._lost = " ".join(str(exc).split())[:300]
        log.warning("the database of %s hit a fatal error and will be reopened on next use: %s",
                    self.path or "the in-memory store", self._lost)
        if con is not None:
            try:
                con.close()  # closes the cursors of every thread too
            except duckdb.Error:
                pass

    def commit_failed(self, exc: duckdb.FatalException) -> bool:
        """Take in a fatal error raised by COMMIT; True when DuckDB says the commit is durable all the same.

        DuckDB raises this after a commit whose automatic checkpoint failed (a full
        disk): the transaction is in the write-ahead log and survives the reopen.
        """
        self.invalidate(exc)
        return _DURABLE_COMMIT in str(exc).lower()

    def _reopen(self) -> duckdb.DuckDBPyConnection:
        """Open the file again after a fatal error (the caller holds ``_mutex``)."""
        if self._closed:
            raise VectorDBError(f"the store at {self.path} is closed")
        if self.file is None:
            raise StorageError(
                f"the in-memory store lost its database after a fatal error ({self._lost}); its data is gone",
                cause=self._lost,
            )
        try:
            self._check_file_present(reopening=True)
            self._con = self._connect()
        except StorageError as exc:
            raise type(exc)(
                f"the store at {self.path} must reopen its database (after: {self._lost}), and reopening "
                f"failed: {exc.message}. Each call tries again; or close() this client and open the store anew",
                path=self.path, cause=exc.cause,
            ) from exc
        log.warning("reopened the database of the store at %s", self.path)
        self._lost = None
        return self._con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        target = ":memory:" if self.file is None else self.file
        try:
            return duckdb.connect(target, read_only=self.read_only)
        except duckdb.Error as exc:
            if any(w in str(exc).lower() for w in ("could not set lock", "conflicting lock")):
                raise _lock_error(self.path, exc, self.read_only) from None
            error = storage_error(exc, self.path, "opening the database")
            raise error from None

    def _check_file_present(self, reopening: bool = False) -> None:
        """Refuse to make a fresh empty database where a store's database file has gone missing."""
        if self.file is None or os.path.exists(self.file):
            return
        if reopening:
            raise StoreCorruptedError(
                f"the database file {self.file} disappeared while the store was open: put it back (or restore it "
                "from a backup)", path=self.file, cause="file missing",
            )
        index = os.path.join(self.path, "index")
        saved = sorted(os.listdir(index)) if os.path.isdir(index) else []
        wal = os.path.exists(self.file + ".wal")
        if saved or wal:
            left = f"index files of {len(saved)} collections" if saved else "its write-ahead log"
            raise StoreCorruptedError(
                f"the database file {self.file} is missing, but {left} are still in {self.path}: the records "
                "are lost or were moved. Put the file back (or restore it from a backup); to start an empty "
                "store, empty the folder",
                path=self.file, cause="file missing",
            )
        if self.read_only:
            raise InvalidArgumentError(f"path: no store at {self.path} to open read-only")

    # -- the file -----------------------------------------------------------

    def replace_file(self, new_file: str) -> None:
        """Swap ``new_file`` (a complete, synced copy) in for the database file, and reopen it.

        The store lock is held throughout, so no other process can open the store while
        the connection is closed. If the reopen fails even after retries, raises a
        StorageError; the client stays usable (each later call retries the reopen).
        """
        assert self.file is not None and self.path is not None
        with self._mutex:
            con, self._con = self._con, None
        self._lost = "swapping in the compacted database file"
        with self.guard("compacting the database"):
            if con is not None:
                con.close()  # and every thread's cursor: DuckDB lets go of the file
            wal = self.file + ".wal"
            if os.path.exists(wal) and os.path.getsize(wal) > 0:
                raise StorageError(f"compacting the store at {self.path}: the database kept a write-ahead log; "
                                   "the store is unchanged", path=self.path, cause="write-ahead log not empty")
            if os.path.exists(wal):
                os.remove(wal)
            os.replace(new_file, self.file)
            fsync_dir(self.path)
        for attempt in range(REOPEN_ATTEMPTS):
            try:
                self._check_file_present(reopening=True)  # never let DuckDB make an empty database in its place
                with self._mutex:
                    self._con = self._connect()
                self._lost = None
                return
            except StorageError as exc:
                error = exc
                time.sleep(0.05 * (attempt + 1))
        raise type(error)(
            f"compacting the store at {self.path}: the compacted database file is in place, but reopening it "
            f"failed {REOPEN_ATTEMPTS} times ({error.message}). Each later call tries again; or close() this "
            "client and open the store anew",
            path=self.path, cause=error.cause,
        )

    def close(self) -> None:
        """Close the connection (DuckDB checkpoints) and release the store lock, even if closing fails."""
        if self._closed:
            return
        self._closed = True
        with self._mutex:
            con, self._con = self._con, None
        try:
            if con is not None:
                with self.guard("closing the database"):
                    con.close()  # and every thread's cursor
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()


def _lock_error(path: Optional[str], exc: Exception, read_only: bool = False) -> VectorDBError:
    """DuckDB's own lock refused the file (a process of an older vectordb, or DuckDB itself, holds it)."""
    message = str(exc)
    pid = re.search(r"PID (\d+)", message)
    holder = f"process {pid.group(1)}" if pid else "another process"
    if read_only:
        return StoreLockedError(
            f"the store at {path} is open for writing in {holder}, and DuckDB refuses read-only opens while "
            "a writer holds the file: close that process's client, or share the store through `vectordb serve`"
        )
    if "read-only mode" in message:
        return StoreLockedError(
            f"the store at {path} is open read-only in {holder}, so it cannot be opened for writing until that "
            "client closes: open it with read_only=True too, or share the store through `vectordb serve`"
        )
    return StoreLockedError(
        f"the store at {path} is open for writing in {holder}; one process writes a store at a time "
        "(and DuckDB refuses readers meanwhile): share it through `vectordb serve`"
    )
