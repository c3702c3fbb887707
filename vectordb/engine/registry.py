"""One engine per store folder in a process: the registry every open goes through.

Two engines of one folder in one process would each keep indexes of their own, which would
drift; so :class:`~vectordb.engine.core.Engine` claims its folder here when it opens
and gives it back when it closes, and :func:`vectordb.engine.local.open_store` (what
``PersistentClient`` calls) looks here for the engine a folder already has. An engine the
program dropped without ``close()`` is closed at exit (:func:`close_at_exit`).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import weakref
from typing import Any, Dict, Optional, Protocol

from vectordb.errors import InvalidArgumentError, StoreLockedError

log = logging.getLogger("vectordb")


class Engine(Protocol):
    """What the registry needs of an engine."""

    @property
    def closed(self) -> bool: ...

    def close(self) -> None: ...


_ENGINES: Dict[str, "weakref.ReferenceType[Any]"] = {}
LOCK = threading.RLock()
"""Guards the registry (and each engine's count of the clients holding it). Reentrant: a dropped
handle's finalizer may run in a garbage collection that starts while this thread holds it."""


def store_folder(path: Any, read_only: bool) -> str:
    """The store's folder as an absolute path, created for a writer."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidArgumentError(f"path: expected a folder path, got {type(path).__name__}")
    path = os.path.abspath(os.fspath(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise InvalidArgumentError(f"path: {path} exists and is not a folder")
    if not read_only:
        os.makedirs(path, exist_ok=True)
    elif not os.path.isdir(path):
        raise InvalidArgumentError(f"path: no store at {path} to open read-only")
    return path


def open_engine(folder: str) -> Optional[Any]:
    """The engine open on ``folder`` in this process, if any."""
    with LOCK:
        held = _ENGINES.get(folder)
        engine = held() if held is not None else None
        return None if engine is None or engine.closed else engine


def claim(folder: str, engine: Engine) -> None:
    """Register ``engine`` as ``folder``'s; StoreLockedError if another open engine has it."""
    with LOCK:
        held = _ENGINES.get(folder)
        if held is not None and held() is not None:
            gc.collect()  # a client the program dropped may only wait for the cycle collector
        other = held() if held is not None else None
        if other is not None and not other.closed:
            raise StoreLockedError(
                f"the store at {folder} is already open in this process (by another client object); "
                "use that client, or close() it first"
            )
        _ENGINES[folder] = weakref.ref(engine)


def release(folder: Optional[str], engine: Engine) -> None:
    """Give ``folder`` back (if ``engine`` holds it)."""
    with LOCK:
        held = _ENGINES.get(folder) if folder is not None else None
        if held is not None and held() is engine:
            del _ENGINES[folder]


def close_at_exit(ref: "weakref.ReferenceType[Any]") -> None:
    """Close an engine still open when the interpreter exits (registered with ``atexit``)."""
    engine = ref()
    if engine is not None:
        try:
            engine.close()
        except Exception:  # at exit, a failed save only means a catch-up on next open
            log.exception("closing the vectordb store at exit failed")
