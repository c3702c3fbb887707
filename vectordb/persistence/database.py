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
  says so.
- A COMMIT that fails is settled from the database itself (:meth:`Database.settle`),
  never from DuckDB's words: DuckDB may have left the transaction in its log (an fsync
  that failed, then a truncate-back that failed too) or a torn entry there (a write
  that failed half-way). So after any failed commit the log is not trusted: the commit
  is looked up in the (reopened) database, and a CHECKPOINT, which writes everything to
  the database file, syncs it and starts a new log, must succeed before the commit is
  acknowledged or any later write begins (:meth:`Database.trust_log`). Until one does,
  writes are refused with a typed error and nothing acknowledged depends on the log.
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
from typing import Callable, Dict, Iterator, List, Optional, Union

import duckdb

from vectordb.errors import (
    InvalidArgumentError,
    NotDurableError,
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
MEMORY_LIMIT = "64MB"
"""DuckDB's buffer-pool limit for a store on disk (DuckDB's own default is 80% of the machine's RAM).

vectordb answers reads from its own derived structures, so DuckDB's cache of blocks buys
little; without a limit DuckDB keeps every block a write or a scan touched (the whole
embedding column: 1.5 KB a record at 384 dimensions) until memory runs short. Sorts and
large results spill to ``vectordb.duckdb.tmp`` beyond the limit instead of failing
(checked with a million records: every statement the store runs, and a compaction's copy).
A store in memory keeps DuckDB's default: its data lives in the buffer pool."""
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
Landed = Callable[[duckdb.DuckDBPyConnection], bool]
"""Reads whether a transaction's changes are in the database (see :meth:`Database.settle`)."""


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

    def __init__(self, path: Optional[str], read_only: bool = False, gate: Optional[Callable[[], None]] = None,
                 on_connect: Optional[Callable[[duckdb.DuckDBPyConnection], None]] = None) -> None:
        """``gate`` (a store shared by processes, see :mod:`vectordb.engine.sharing`) is called before
        every use of the connection and raises while this thread may not use it; the turn-taking
        then replaces the store lock, and :meth:`park` closes the connection between turns.
        ``on_connect`` runs on each new cursor (a read-only store's session tables)."""
        self.path = path
        self.read_only = read_only
        self.file = None if path is None else os.path.join(path, DB_FILE)
        self._con: Optional[duckdb.DuckDBPyConnection] = None
        """The connection that opened the database; threads use cursors of it (see :attr:`con`)."""
        self._local = threading.local()
        self._mutex = threading.Lock()  # guards replacing ``_con`` and making cursors of it
        self._lost: Optional[str] = None
        self._suspect: Optional[str] = None
        """Why the write-ahead log is not trusted (a commit failed), until a checkpoint succeeds."""
        self._closed = False
        self._gate = gate
        self._on_connect = on_connect
        self._parked = False
        self._lock = None if path is None or gate is not None else StoreLock.acquire(path, shared=read_only)
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
        if self._gate is not None:
            self._gate()
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
            if con is None and self._parked and not self._closed:
                self._check_file_present(reopening=True)
                con = self._con = self._connect()
                self._parked = False
            elif con is None:
                con = self._reopen()
            cursor = con.cursor()
            if self._on_connect is not None:
                self._on_connect(cursor)  # per cursor: DuckDB's temporary tables belong to one connection
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

    def trust_log(self) -> None:
        """Before a write transaction: after a failed commit, checkpoint first.

        A failed commit may have left its transaction, or a torn entry, in the
        write-ahead log; a later commit appended after it could be lost in DuckDB's
        replay. A CHECKPOINT writes what is committed into the database file, syncs it
        and starts a new log. Raises StorageError (the write is refused, nothing
        changed) while it fails.
        """
        suspect = self._suspect
        if suspect is None:
            return
        try:
            with self.guard("checkpointing the database"):
                self.con.execute("CHECKPOINT")
        except StorageError as exc:
            raise type(exc)(
                f"the store at {self.path or 'in memory'} accepts no writes until a checkpoint succeeds: a commit "
                f"failed ({suspect}), so its write-ahead log is not trusted, and checkpointing failed: "
                f"{exc.message}", path=self.path, cause=exc.cause,
            ) from exc
        self._suspect = None
        log.warning("the store at %s checkpointed after a failed commit; it accepts writes again",
                    self.path or "in memory")

    def settle(self, error: duckdb.Error, landed: Optional[Landed], action: str) -> None:
        """After COMMIT raised ``error``: return when the commit is in the database and durable.

        ``landed`` reads whether the transaction's changes are there, from the database
        (reopened first if the error was fatal). Returns (the call succeeds) when they
        are and a checkpoint then succeeds. Raises the typed error of ``error`` when they
        are not (the call changed nothing), and NotDurableError when they are, or cannot
        be read back, but no checkpoint succeeded. ``landed`` None: a repair, redone by
        running it again; the typed error is raised once the log is trusted again.
        """
        cause = " ".join(str(error).split())[:300]
        self._suspect = cause
        if isinstance(error, duckdb.FatalException):
            self.invalidate(error)
        failed = storage_error(error, self.path, action)
        where = f"{action} in {'the in-memory store' if self.path is None else f'the store at {self.path}'}"
        try:
            with self.guard(action):
                there = landed is not None and landed(self.con)
        except StorageError as exc:
            raise NotDurableError(
                f"{where}: the commit failed ({cause}), and whether it reached the database cannot be told: "
                f"reading it back failed ({exc.cause}). It may be there once the database opens again",
                path=self.path, cause=cause, applied=None,
            ) from error
        try:
            self.trust_log()
        except StorageError as exc:
            if not there:
                raise failed from error
            raise NotDurableError(
                f"{where}: the commit failed ({cause}), yet the change is in the database and visible; it could "
                f"not be made durable, as checkpointing failed ({exc.cause}). It is kept once a checkpoint "
                "succeeds (the next write tries one, and writes are refused until one does) and may be lost if "
                "the machine stops first", path=self.path, cause=cause, applied=True,
            ) from error
        if not there:
            raise failed from error
        log.warning("a commit to %s raised (%s) but is in the database, and a checkpoint made it durable",
                    self.path or "the in-memory store", cause)

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

    def park(self) -> None:
        """Close the connection (DuckDB checkpoints) until the next use reopens it: between the turns
        of a shared store, when another process is to open the file."""
        with self._mutex:
            con, self._con = self._con, None
            self._parked = self._parked or con is not None
        if con is not None:
            with self.guard("closing the database"):
                con.close()  # and every thread's cursor

    def _connect(self) -> duckdb.DuckDBPyConnection:
        target = ":memory:" if self.file is None else self.file
        try:
            config: Dict[str, Union[str, bool, int, float, List[str]]] = \
                {} if self.file is None else {"memory_limit": MEMORY_LIMIT}
            return duckdb.connect(target, read_only=self.read_only, config=config)
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
