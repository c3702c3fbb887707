"""The store's own inter-process lock: one writer, or any number of readers, per store.

DuckDB locks its database file only while a connection is open, and a compaction closes
the connection to swap a fresh file in: without a lock of its own a second process
could open the store in that window. :class:`StoreLock` is an ``flock`` on
``<path>/vectordb.lock``, taken before DuckDB opens the database and held for the
client's whole life: exclusive for a writer (which writes its PID into the file, for
the error message others get), shared for read-only clients. The file itself is never
deleted (deleting it would let a second locker in beside the first), so the database
file can be replaced or even deleted under an open writer without letting anyone in.

``flock`` locks belong to the open file, so the kernel drops them when the holder
dies, however it dies. On Linux the holders of a shared lock are found in
``/proc/locks`` so that a refused writer can name the readers; elsewhere the message
says "another process". Platforms without ``fcntl.flock`` (Windows) get a clear
:class:`StorageError`.
"""

from __future__ import annotations

import errno
import gc
import os
import weakref
from typing import List, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from vectordb.errors import StorageError, StoreLockedError

LOCK_FILE = "vectordb.lock"
_SERVE_HINT = "share it through `vectordb serve`"
_HELD: "weakref.WeakValueDictionary[str, StoreLock]" = weakref.WeakValueDictionary()
"""The locks this process holds, by lock-file path (see :meth:`StoreLock.acquire`)."""


class StoreLock:
    """An ``flock`` on ``<folder>/vectordb.lock``, held until :meth:`release`.

    Create one with :meth:`acquire`. ``fd`` is None when a read-only client could
    neither open nor create the file (a store on a read-only file system): no process
    can write such a store, and DuckDB's own lock still applies.
    """

    def __init__(self, path: str, fd: Optional[int], shared: bool) -> None:
        self.path = path
        self.fd = fd
        self.shared = shared

    @classmethod
    def acquire(cls, folder: str, shared: bool) -> "StoreLock":
        """Take the lock at once, or raise StoreLockedError naming the path and the holder.

        ``shared=False`` (a writer) fails while anyone holds the lock; ``shared=True``
        (a read-only client) fails only while a writer holds it.
        """
        if fcntl is None or not hasattr(fcntl, "flock"):
            raise StorageError(
                f"opening the store at {folder}: vectordb's store lock needs fcntl.flock, which this platform "
                "lacks (vectordb runs on Linux and macOS)",
                path=folder,
            )
        path = os.path.join(folder, LOCK_FILE)
        fd = _open(path, shared)
        if fd is None:
            return cls(path, None, shared)
        try:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            except BlockingIOError:
                if path not in _HELD:
                    raise
                # A client this process dropped without close() may still wait for the cycle collector.
                gc.collect()
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except OSError as exc:
            try:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise StorageError(f"locking the store at {folder} ({path}) failed: {exc.strerror or exc}",
                                       path=path, cause=str(exc)) from None
                raise _refusal(folder, fd, shared) from None
            finally:
                os.close(fd)
        lock = cls(path, fd, shared)
        if not shared:
            lock._write_pid()
        _HELD[path] = lock
        return lock

    def _write_pid(self) -> None:
        """Put this process's PID in the file, for the message a refused opener gets."""
        assert self.fd is not None
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, the message then says "another process"

    def release(self) -> None:
        """Drop the lock (a writer first empties the PID); calling it again does nothing."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if _HELD.get(self.path) is self:
            del _HELD[self.path]
        try:
            if not self.shared:
                try:
                    os.ftruncate(fd, 0)
                except OSError:
                    pass
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


    def __del__(self) -> None:
        # A client dropped without close(): its lock goes with it, as DuckDB's own does.
        try:
            self.release()
        except Exception:
            pass


def _open(path: str, shared: bool) -> Optional[int]:
    if not shared:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot open the lock file {path}: {exc.strerror or exc}",
                               path=path, cause=str(exc)) from None
    for flags in (os.O_RDONLY, os.O_RDONLY | os.O_CREAT):  # a store made before the lock file existed
        try:
            return os.open(path, flags | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return None
            raise StorageError(f"cannot open the lock file {path}: {exc.strerror or exc}",
                               path=path, cause=str(exc)) from None
    return None


def _refusal(folder: str, fd: int, shared: bool) -> StoreLockedError:
    """The error for a lock someone else holds: who holds it, and what to do."""
    writer_pid = _pid_in(fd)
    if shared:
        holder = f"process {writer_pid}" if writer_pid else "another process"
        return StoreLockedError(
            f"the store at {folder} is open for writing in {holder}, and a store cannot be opened read-only "
            f"while a writer holds it: close that process's client, or {_SERVE_HINT}"
        )
    try:  # only readers hold it if a shared lock is granted
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        readers = True
    except OSError:
        readers = False
    if readers:
        pids = _readers_of(fd)
        holder = ("process " + ", ".join(map(str, pids))) if pids else "another process"
        return StoreLockedError(
            f"the store at {folder} is open read-only in {holder}, so it cannot be opened for writing until "
            f"that client closes: open it with read_only=True too, or {_SERVE_HINT}"
        )
    holder = f"process {writer_pid}" if writer_pid else "another process"
    return StoreLockedError(
        f"the store at {folder} is open for writing in {holder}; one process writes a store at a time "
        f"(and readers wait for it to close): {_SERVE_HINT}"
    )


def _pid_in(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _readers_of(fd: int) -> List[int]:
    """PIDs holding a shared flock on the file (Linux ``/proc/locks``; empty elsewhere)."""
    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  READ 17107 fe:00:2179857 0 EOF" ("->" marks a blocked waiter)
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "READ" and fields[5] == key:
            if fields[4].isdigit():
                pids.append(int(fields[4]))
    return sorted(set(pids))
