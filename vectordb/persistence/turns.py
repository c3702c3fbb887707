"""Processes take turns on one store: the exclusive ``flock`` and the open DuckDB connection.

DuckDB lets one process open a database file for writing, and then no other process
may open it at all (duckdb/duckdb #77). Several processes share a store by taking
*turns*: a turn is the exclusive ``flock`` on ``<store>/vectordb.lock``, and only the
process holding it has the database open. A process keeps its turn (and its
connection) while nobody else asks for it, so a lone process pays nothing; a process
that needs the database while another holds it says so in the header file and waits
(at most ``wait_s`` seconds, then :class:`~vectordb.errors.StoreBusyError` naming the
holder), and the holder hands the turn over as soon as no call of its own uses it, or
at its next call once it has held the turn for :data:`QUANTUM_S` (so two busy writers
alternate rather than one starving the other).

``<store>/vectordb.changes`` is the header every process reads before a call (one
``pread``): five little-endian u64 fields:

* ``changes``: how many changes were published to the feed (:mod:`vectordb.persistence.feed`);
* ``epoch``: bumped when the feed cannot tell what changed (a writer died between its
  commit and its publication, a repair rewrote rows): every process then reloads what it
  keeps from the database;
* ``busy``: the PID of a writer between its commit and its publication, else 0;
* ``want``: the PID of a process waiting for a turn, else 0;
* ``holder``: the PID holding the turn, else 0 (for the error message).

``flock`` locks belong to the open file, so the kernel drops a turn when its holder
dies, however it dies; the next holder finds ``busy`` set and bumps the epoch.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
import threading
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterator, Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from vectordb.errors import StorageError, StoreBusyError

LOCK_FILE = "vectordb.lock"
HEADER_FILE = "vectordb.changes"
PRESENCE_FILE = "vectordb.procs"
QUANTUM_S = 0.2
"""A holder that others wait for keeps its turn at least this long before handing it over at a call."""
POLL_S = 0.004
"""How often a holder looks whether another process waits (and a waiter tries the lock again)."""
_HEADER = struct.Struct("<5Q")


class TurnNeeded(BaseException):
    """Raised inside a call that touches the database without holding the turn; the engine then
    takes the turn and runs the call again. A BaseException, so that no ``except Exception`` of
    the layers in between swallows it."""


@dataclass(frozen=True)
class Header:
    """The fields of ``vectordb.changes`` (see the module docstring)."""

    changes: int = 0
    epoch: int = 0
    busy: int = 0
    want: int = 0
    holder: int = 0


class Turns:
    """This process's side of the turn-taking on the store in ``folder``.

    ``on_acquire(header)`` runs once the turn is taken (the engine catches up there), and
    ``on_release()`` before it is given back (the engine closes its connection there).
    """

    def __init__(self, folder: str, wait_s: float) -> None:
        if fcntl is None or not hasattr(fcntl, "flock"):
            raise StorageError(f"sharing the store at {folder} needs fcntl.flock, which this platform lacks "
                               "(vectordb runs on Linux and macOS)", path=folder)
        self.folder = folder
        self.wait_s = wait_s
        self._lock_fd = _open_file(os.path.join(folder, LOCK_FILE))
        self._header_fd = _open_file(os.path.join(folder, HEADER_FILE))
        self.on_acquire: Callable[[Header], None] = lambda header: None
        self.on_release: Callable[[], None] = lambda: None
        self.held = False
        self.generation = 0
        """Counts the turns taken: work started in one turn must not save files in a later one."""
        self.catching_up = False
        self._users = 0
        self._since = 0.0
        self._local = threading.local()
        self._mutex = threading.Lock()  # guards held, _users
        self._acquiring = threading.RLock()  # one thread takes or gives back the turn at a time
        self._closed = False
        self._files = weakref.finalize(self, _close_fds, self._lock_fd, self._header_fd)
        """Closes the files once (at close(), or when a client dropped without close() is collected)."""
        self._keeper = threading.Thread(target=_keep, args=(weakref.ref(self),), name="vectordb-turns", daemon=True)
        self._keeper.start()

    # -- the header ---------------------------------------------------------

    def header(self) -> Header:
        """The header as it is now (zeros for a new store)."""
        data = os.pread(self._header_fd, _HEADER.size, 0)
        return Header(*_HEADER.unpack(data)) if len(data) == _HEADER.size else Header()

    def put(self, **fields: int) -> Header:
        """Change some header fields (the caller holds the turn, or only says it wants one);
        StorageError if the file cannot be written."""
        current = self.header()
        values = {**current.__dict__, **fields}
        try:
            os.pwrite(self._header_fd, _HEADER.pack(*(values[k] for k in Header.__dataclass_fields__)), 0)
        except OSError as exc:
            path = os.path.join(self.folder, HEADER_FILE)
            raise StorageError(f"writing {path} failed: {exc.strerror or exc}", path=path, cause=str(exc)) from None
        return Header(**values)

    def _note(self, **fields: int) -> None:
        """Change informational header fields (``want``, ``holder``): a failure only costs a message."""
        try:
            self.put(**fields)
        except StorageError:
            pass

    # -- using the turn -----------------------------------------------------

    def mine(self) -> bool:
        """Whether this thread runs inside a turn of this process (it may use the database)."""
        return self.held and getattr(self._local, "depth", 0) > 0

    @contextmanager
    def use(self) -> Iterator[None]:
        """Run the block holding the turn: taken first (waiting for other processes) if not held."""
        local = self._local
        if getattr(local, "depth", 0) > 0 and self.held:
            local.depth += 1
            try:
                yield
            finally:
                local.depth -= 1
            return
        with self._acquiring:
            with self._mutex:
                hand_over = self.held and self._users == 0 and self._should_yield()
                joined = self.held and not hand_over
                if joined:
                    self._users += 1
            if not joined:
                if hand_over and self._give_back():  # another process has waited while this one kept it
                    self._let_waiter_in()
                if self.held:  # a save took it meanwhile: join
                    with self._mutex:
                        self._users += 1
                else:
                    self._take()
        local.depth = 1
        try:
            yield
        finally:
            local.depth = 0
            with self._mutex:
                self._users -= 1

    @contextmanager
    def saving(self, generation: Optional[int] = None) -> Iterator[bool]:
        """Whether files may be saved now (yields True while pinning the turn): only inside a turn
        this process holds (the one of ``generation``, if given), and not while it catches up."""
        with self._mutex:
            ok = self.held and not self.catching_up and (generation is None or generation == self.generation)
            if ok:
                self._users += 1
        if not ok:
            yield False
            return
        local = self._local
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            yield True
        finally:
            local.depth = depth
            with self._mutex:
                self._users -= 1

    def _should_yield(self) -> bool:
        want = self.header().want
        return want not in (0, os.getpid()) and time.monotonic() - self._since >= QUANTUM_S

    def _take(self) -> None:
        """Wait for the flock (saying so in ``want``), then run ``on_acquire`` (the caller holds _acquiring)."""
        deadline = time.monotonic() + self.wait_s
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    raise StorageError(f"locking the store at {self.folder} failed: {exc.strerror or exc}",
                                       path=self.folder, cause=str(exc)) from None
            header = self.header()
            if time.monotonic() >= deadline:
                holder = header.holder or _pid_in(self._lock_fd)
                raise StoreBusyError(
                    f"the store at {self.folder} is busy: {f'process {holder}' if holder else 'another process'} "
                    f"has held it for the whole {self.wait_s:g} s this call may wait (lock_timeout); try again, "
                    "or give lock_timeout a larger value", path=self.folder, holder=holder or None)
            if header.want != os.getpid():
                self._note(want=os.getpid())
            time.sleep(pause)
            pause = min(pause * 2, POLL_S)
        self._note(holder=os.getpid(), **({"want": 0} if self.header().want == os.getpid() else {}))
        header = self.header()
        _write_pid(self._lock_fd)
        with self._mutex:
            self.held = True
            self.generation += 1
            self._users += 1
            self._since = time.monotonic()
        local = self._local
        local.depth = 1
        self.catching_up = True
        try:
            self.on_acquire(header)
        except BaseException:
            local.depth = 0
            with self._mutex:
                self._users -= 1
            try:
                self._give_back()
            except Exception:
                pass  # the error of the catch-up is the one to raise
            raise
        finally:
            self.catching_up = False
            local.depth = 0

    def _give_back(self) -> bool:
        """Close the connection and drop the flock, unless a call (or a save) uses the turn; whether it
        was given back (the caller holds _acquiring)."""
        with self._mutex:
            if not self.held or self._users:
                return False
            self.held = False
        try:
            self.on_release()
        finally:
            try:
                if self.header().holder == os.getpid():
                    self._note(holder=0)
                os.ftruncate(self._lock_fd, 0)
            except OSError:
                pass
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        return True

    def _let_waiter_in(self) -> None:
        """After handing the turn over: give the waiting process a moment to take it."""
        end = time.monotonic() + 0.05
        while time.monotonic() < end and self.header().want not in (0, os.getpid()):
            time.sleep(POLL_S / 4)

    def keep(self) -> None:
        """One look of the keeper thread: hand the turn over if another process waits and no call uses it."""
        if not self.held or self._users:
            return
        try:
            want = self.header().want
        except OSError:
            return
        if want in (0, os.getpid()) or not self._acquiring.acquire(blocking=False):
            return
        try:
            self._give_back()
        except Exception:  # the next call of this process meets the problem, if any
            pass
        finally:
            self._acquiring.release()

    def close(self) -> None:
        """Give the turn back (if held) and close the files; the keeper thread ends."""
        self._closed = True
        with self._acquiring:
            try:
                self._give_back()
            finally:
                self._files()


class Presence:
    """Whether other processes have the store open: each holds a POSIX read lock on the first
    byte of ``vectordb.procs`` while it does, and ``F_GETLK`` reports another process's lock (a
    process's own locks never conflict with it) in one system call. The kernel drops the lock
    when its process dies. Only this object may open the file in a process (closing any
    descriptor of a file drops the process's POSIX locks on it)."""

    _FLOCK = "hhqqi"  # struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid

    def __init__(self, folder: str) -> None:
        self._fd = _open_file(os.path.join(folder, PRESENCE_FILE))
        fcntl.lockf(self._fd, fcntl.LOCK_SH, 1, 0)

    def others(self) -> bool:
        """Whether another process has the store open (True where this cannot be told cheaply)."""
        if not sys.platform.startswith("linux"):
            return True
        query = struct.pack(self._FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
        try:
            answer = fcntl.fcntl(self._fd, fcntl.F_GETLK, query)
        except OSError:
            return True
        return struct.unpack(self._FLOCK, answer)[0] != fcntl.F_UNLCK

    def close(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass


def _keep(ref: "weakref.ReferenceType[Turns]") -> None:
    """The keeper thread: holds its Turns weakly, so that a client dropped without close() is collected."""
    while True:
        time.sleep(POLL_S)
        turns = ref()
        if turns is None or turns._closed:
            return
        turns.keep()
        del turns


@contextmanager
def _always(generation: Optional[int] = None) -> Iterator[bool]:
    yield True


def save_gate(turns: Optional["Turns"]) -> Callable[..., "ContextManager[bool]"]:
    """``with gate(generation) as ok:``: whether files may be saved now (always, for a store
    not shared by processes; see :meth:`Turns.saving`)."""
    return _always if turns is None else turns.saving


def generation_of(turns: Optional["Turns"]) -> Optional[int]:
    """The current turn's generation, to pass to a later :func:`save_gate` (None: not shared)."""
    return None if turns is None else turns.generation


def _close_fds(*fds: int) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _open_file(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc.strerror or exc}", path=path, cause=str(exc)) from None


def _write_pid(fd: int) -> None:
    """The holder's PID in the lock file too (what older vectordb versions read)."""
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass


def _pid_in(fd: int) -> int:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return 0
    return int(text) if text.isdigit() else 0
