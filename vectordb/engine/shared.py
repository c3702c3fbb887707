"""One engine per store folder in a process, shared by every client of that folder.

Two ``PersistentClient(path)`` objects of one process get two :class:`SharedEngine`
handles over one :class:`~vectordb.engine.local.LocalBackend` (two engines would each
keep an index of their own, which would drift). Each handle counts as one reference:
closing a client closes its handle only (using it afterwards raises, as for any closed
client) and the others keep working; the engine saves its indexes and closes when the
last handle closes. A handle dropped without ``close()`` gives its reference back when
it is garbage-collected; an engine nobody holds is closed at exit, as always.

Every handle of one engine shares its mode: a read-only client of a folder that this
process has open for writing (or the reverse) raises
:class:`~vectordb.errors.StoreLockedError` (one engine has one mode; other processes may open
the store either way).
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Dict, Optional

from vectordb.backend import Backend
from vectordb.engine import registry
from vectordb.engine.local import LOCK_TIMEOUT_S, LocalBackend
from vectordb.errors import StoreLockedError, VectorDBError

_HANDLES: Dict[int, int] = {}  # id(engine) -> open handles (guarded by registry.LOCK)


def open_store(path: Any, read_only: bool = False, lock_timeout: float = LOCK_TIMEOUT_S) -> "SharedEngine":
    """A handle on the engine of the store under ``path``, opening the engine if this process has none
    (``lock_timeout``: see :class:`LocalBackend`; an engine already open keeps its own)."""
    folder = registry.store_folder(path, read_only)
    with registry.LOCK:
        engine = registry.open_engine(folder)
        if engine is None:
            engine = LocalBackend(folder, read_only, lock_timeout)
        elif engine.read_only != read_only:
            mode = "read-only" if engine.read_only else "for writing"
            raise StoreLockedError(
                f"the store at {folder} is already open {mode} in this process; open it the same way "
                f"(read_only={engine.read_only}), or close the other clients of it first"
            )
        _HANDLES[id(engine)] = _HANDLES.get(id(engine), 0) + 1
        return SharedEngine(engine)


def _give_back(engine: LocalBackend) -> bool:
    """Drop one handle's reference (the caller holds ``registry.LOCK``); True when it was the last."""
    left = _HANDLES.get(id(engine), 1) - 1
    if left > 0:
        _HANDLES[id(engine)] = left
        return False
    _HANDLES.pop(id(engine), None)
    return True


def _forget(engine: LocalBackend) -> None:
    """A handle garbage-collected without close(): its reference goes; the engine stays open
    (closed at exit, or reused by the next client of its folder)."""
    with registry.LOCK:
        _give_back(engine)


def _forward(name: str) -> Callable[..., Any]:
    """A method that calls the engine's ``name`` (raising "this client is closed" once the handle is)."""

    def call(self: "SharedEngine", *args: Any, **kwargs: Any) -> Any:
        return getattr(self.engine, name)(*args, **kwargs)

    call.__name__ = name
    call.__doc__ = getattr(Backend, name).__doc__
    return call


class SharedEngine(Backend):
    """One client's handle on a shared :class:`LocalBackend`: every call goes to the engine while open.

    Attributes the handle does not have (``path``, ``read_only``, the engine's internals)
    are read from the engine.
    """

    def __init__(self, engine: LocalBackend) -> None:
        self._engine: Optional[LocalBackend] = engine
        self.path = engine.path
        self.read_only = engine.read_only
        self._finalizer = weakref.finalize(self, _forget, engine)

    def __repr__(self) -> str:
        return f"SharedEngine({self._engine!r})"

    def __getattr__(self, name: str) -> Any:
        engine = self.__dict__.get("_engine")
        if engine is None:
            raise AttributeError(name)
        return getattr(engine, name)

    @property
    def engine(self) -> LocalBackend:
        """The engine, while this handle is open; VectorDBError once closed."""
        engine = self._engine
        if engine is None:
            raise VectorDBError("this client is closed")
        return engine

    def close(self) -> None:
        """Close this handle; the engine closes (saving its indexes) when no other handle holds it."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        self._finalizer.detach()
        with registry.LOCK:  # closed under the lock, so that no new client takes the engine as it closes
            if _give_back(engine):
                engine.close()

    # every other Backend method: the engine's, while this handle is open
    heartbeat = _forward("heartbeat")
    compact = _forward("compact")
    check = _forward("check")
    version = _forward("version")
    max_batch_size = _forward("max_batch_size")
    reset = _forward("reset")
    create_collection = _forward("create_collection")
    get_collection = _forward("get_collection")
    collection = _forward("collection")
    collection_by_id = _forward("collection_by_id")
    list_collections = _forward("list_collections")
    count_collections = _forward("count_collections")
    delete_collection = _forward("delete_collection")
    modify_collection = _forward("modify_collection")
    write = _forward("write")
    delete = _forward("delete")
    count = _forward("count")
    get = _forward("get")
    search = _forward("search")
