"""Several processes on one store: turns on the database, a feed of changes, and catching up.

The engine of each process keeps its derived structures in memory. Before each call it
reads the store's header (:mod:`vectordb.persistence.turns`, one ``pread``): if another
process published changes since this one's *position*, it reads them from the feed
(:mod:`vectordb.persistence.feed`) and applies them (:meth:`Applier.apply`), without
opening the database; if the feed cannot tell (the epoch moved, or the feed was
restarted past this position), it takes the turn and reloads from the database. A call
whose answer is not in memory (a first load, embeddings, a document filter) raises
:class:`TurnNeeded` where it touches the database, and runs again holding the turn;
a write holds the turn from the start, marks the header ``busy`` around its commit,
and publishes what it did before it returns.

So every call sees every change acknowledged before it started, in any process; a
process killed anywhere leaves its turn (the kernel drops the ``flock``) and, if it
died between commit and publication, a ``busy`` mark that makes the next holder bump
the epoch: everyone reloads from the database, which holds every acknowledged write.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
import weakref
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Protocol

import numpy as np

from vectordb.errors import StorageError
from vectordb.persistence.feed import Feed
from vectordb.persistence.store import CollectionRow, RecordBatch
from vectordb.persistence.turns import Header, Presence, TurnNeeded, Turns

__all__ = ["Change", "Sharing", "TurnNeeded"]

_LENGTH = struct.Struct("<I")
log = logging.getLogger("vectordb")


@dataclass
class Change:
    """One committed change, as the feed carries it.

    ``kind``: ``"row"`` (a collection created, renamed or given new metadata: ``row`` is
    it now), ``"drop"`` (a collection deleted), ``"write"`` (``batch`` written; the
    vectors of ``batch.labels[changed]`` changed) or ``"delete"`` (``labels`` deleted).
    ``row`` is the collection after the change (None for a drop).
    """

    kind: str
    collection_id: str
    row: Optional[CollectionRow] = None
    batch: Optional[RecordBatch] = None
    changed: Optional[np.ndarray] = None
    labels: Optional[np.ndarray] = None

    def encode(self) -> bytes:
        """JSON for the fields, then raw little-endian arrays: nothing that could run code when read."""
        head: Dict[str, Any] = {"kind": self.kind, "id": self.collection_id,
                                "row": None if self.row is None else asdict(self.row)}
        arrays: List[np.ndarray] = []
        if self.batch is not None:
            b = self.batch
            head.update(ids=list(b.ids), documents=list(b.documents), metadatas=list(b.metadata_json),
                        n=len(b.labels), d=int(b.embeddings.shape[1]) if b.embeddings.ndim == 2 else 0)
            changed = self.changed if self.changed is not None else np.arange(len(b.labels))
            head["changed"] = len(changed)
            arrays += [np.asarray(b.labels, "<i8"), np.asarray(b.embeddings, "<f4"), np.asarray(changed, "<i8")]
        if self.labels is not None:
            head["labels"] = len(self.labels)
            arrays.append(np.asarray(self.labels, "<i8"))
        text = json.dumps(head, ensure_ascii=False).encode()
        return b"".join([_LENGTH.pack(len(text)), text, *(np.ascontiguousarray(a).tobytes() for a in arrays)])

    @classmethod
    def decode(cls, data: bytes) -> "Change":
        """The change that :meth:`encode` wrote (ValueError for anything else)."""
        (length,) = _LENGTH.unpack_from(data, 0)
        head = json.loads(data[_LENGTH.size: _LENGTH.size + length])
        offset = _LENGTH.size + length

        def take(dtype: str, count: int) -> np.ndarray:
            nonlocal offset
            out = np.frombuffer(data, dtype=dtype, count=count, offset=offset).astype(dtype[1:], copy=True)
            offset += out.nbytes
            return out

        row = None if head["row"] is None else CollectionRow(**head["row"])
        change = cls(head["kind"], head["id"], row)
        if "n" in head:
            n, d = head["n"], head["d"]
            labels = take("<i8", n)
            embeddings = take("<f4", n * d).reshape(n, d)
            metadata_json = head["metadatas"]
            batch = RecordBatch(labels, head["ids"], embeddings, head["documents"],
                                [None if m is None else json.loads(m) for m in metadata_json])
            batch.__dict__["metadata_json"] = metadata_json  # the cached property, as the writer had it
            change.batch, change.changed = batch, take("<i8", head["changed"])
        if "labels" in head:
            change.labels = take("<i8", head["labels"])
        return change


class Applier(Protocol):
    """What the engine does for :class:`Sharing`."""

    def apply(self, changes: List[Change]) -> None:
        """Apply other processes' changes to what this process keeps in memory."""

    def reload(self) -> None:
        """Drop what this process keeps in memory and read the catalog again (under the turn)."""

    def park(self) -> None:
        """Close the database connection (the turn is being given back)."""


class Sharing:
    """This process's part in sharing the store in ``folder`` with other processes."""

    def __init__(self, folder: str, wait_s: float) -> None:
        self.turns = Turns(folder, wait_s)
        self.feed = Feed(folder)
        try:
            self.presence = Presence(folder)
        except BaseException:
            self.turns.close()
            raise
        self.position = 0
        self.epoch = 0
        self._engine: Optional["weakref.ReferenceType[Applier]"] = None
        self._sync_lock = threading.Lock()
        self._owed = False
        """A change was committed that the others could not be told of (see :meth:`invalidate`)."""
        self.turns.on_acquire = self._acquired
        self.turns.on_release = self._released

    def attach(self, engine: Applier) -> None:
        """Start applying changes to ``engine`` (opened under the turn, so current now); held weakly, so
        that an engine dropped without close() is collected."""
        self._engine = weakref.ref(engine)

    # -- catching up --------------------------------------------------------

    def sync(self) -> None:
        """Before a call: catch up with what other processes published (see the module docstring)."""
        if self.turns.held:
            return  # nobody else can write while this process holds the turn
        header = self.turns.header()
        if header.changes == self.position and header.epoch == self.epoch:
            return
        with self._sync_lock:
            if self.turns.held:
                return
            header = self.turns.header()
            if header.changes == self.position and header.epoch == self.epoch:
                return
            if header.epoch == self.epoch and self._from_feed(header.changes):
                return
        with self.turns.use():  # the feed cannot tell: reload, holding the turn (see _acquired)
            pass

    def _from_feed(self, upto: int) -> bool:
        engine = self._engine() if self._engine is not None else None
        entries = self.feed.read(self.position, upto)
        if entries is None or engine is None:
            return False
        try:
            changes = [Change.decode(payload) for _, payload in entries]
        except (ValueError, KeyError, TypeError):
            return False  # a damaged entry: reload instead
        engine.apply(changes)
        self.position = upto
        return True

    def _acquired(self, header: Header) -> None:
        """The turn was just taken: repair after a writer that died, then catch up."""
        with self._sync_lock:
            if header.busy:  # a writer died between its commit and its publication
                header = self.turns.put(busy=0, epoch=header.epoch + 1, changes=header.changes + 1)
                self.feed.restart(header.changes)
            engine = self._engine() if self._engine is not None else None
            if engine is not None and (header.epoch != self.epoch or not self._from_feed(header.changes)):
                engine.reload()
            self.position, self.epoch = header.changes, header.epoch

    def _released(self) -> None:
        self.feed.close()
        engine = self._engine() if self._engine is not None else None
        if engine is not None:
            engine.park()

    # -- publishing ---------------------------------------------------------

    @contextmanager
    def publishing(self) -> Iterator[Callable[[Optional[Change]], None]]:
        """Around a commit (the caller holds the turn): ``busy`` while it runs; the block calls
        ``publish(change)`` once the commit succeeded (None: it changed nothing others keep).
        Should the block raise before publishing, the commit's outcome is unknown to others:
        the epoch moves, so that every other process reloads from the database."""
        if self._owed:  # an earlier change could not be told: the others must reload first
            self.invalidate()
            if self._owed:
                raise StorageError(f"the store at {self.turns.folder} accepts no writes until the other processes "
                                   "can be told of a change (writing vectordb.changes failed)",
                                   path=self.turns.folder, cause="header not writable")
        self.turns.put(busy=os.getpid())
        done: List[bool] = []

        def publish(change: Optional[Change]) -> None:
            self._publish(change)
            done.append(True)

        try:
            yield publish
        except BaseException:
            if not done:
                self.invalidate()
            raise
        if not done:
            self.turns.put(busy=0)

    def _publish(self, change: Optional[Change]) -> None:
        """Tell the others what a commit changed. Never raises: the commit has landed, and this
        process goes on knowing it; should the files fail, the others are made to reload."""
        try:
            if change is None:
                self.turns.put(busy=0)
                return
            number = self.turns.header().changes + 1
            if self.presence.others():
                self.feed.append(number, change.encode())
            else:  # nobody to tell: a process that opens the store later reads it from the database
                self.feed.skip(number)
            self.turns.put(changes=number, busy=0)
            self.position = number
        except (OSError, StorageError) as exc:  # a full disk: the change is in the database, others reload it
            log.warning("telling the other processes of %s about a change failed (%s); they reload from the "
                        "database", self.turns.folder, exc)
            self.invalidate()

    def invalidate(self) -> None:
        """Make every other process reload from the database (this one is current; it holds the turn).
        Never raises: if the header cannot be written either, this process owes it, and accepts no
        write until it has paid (see :meth:`publishing`); ``busy`` stays set meanwhile, so that the
        next process to take the turn makes everyone reload."""
        try:
            header = self.turns.header()
            header = self.turns.put(busy=0, epoch=header.epoch + 1, changes=header.changes + 1)
        except (OSError, StorageError) as exc:
            log.error("marking the store at %s for the other processes to reload failed: %s", self.turns.folder, exc)
            self._owed = True
            return
        self._owed = False
        try:
            self.feed.restart(header.changes)
        except OSError:
            pass  # readers find the old feed lacks the entry, and reload all the same
        self.position, self.epoch = header.changes, header.epoch

    # -- the turn, for the engine ------------------------------------------

    def gate(self) -> None:
        """Raise TurnNeeded unless this thread may use the database now."""
        if not self.turns.mine():
            raise TurnNeeded()

    def close(self) -> None:
        """Give the turn back and close the files (a process closing alone empties the feed: nobody reads it)."""
        try:
            if self.turns.held and not self.presence.others():
                self.feed.restart(self.turns.header().changes)
        except OSError:
            pass
        self.turns.close()
        self.feed.close()
        self.presence.close()


def run_shared(sharing: Optional[Sharing], call: Callable[[], Any], write: bool = False) -> Any:
    """Run an engine call: writes inside the turn; reads after catching up, and again inside
    the turn should they need the database (TurnNeeded)."""
    if sharing is None:
        return call()
    if write:
        with sharing.turns.use():
            return call()
    sharing.sync()
    try:
        return call()
    except TurnNeeded:
        pass
    with sharing.turns.use():
        return call()
