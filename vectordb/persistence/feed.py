"""The change feed: what each committed change did, for the other processes of a store.

A process that shares a store keeps derived structures in memory (records, metadata,
vector and text indexes). When another process writes, it must learn what changed
without opening the database (which would take the turn from the writer, see
:mod:`vectordb.persistence.turns`). The writer, still holding its turn, appends each
committed change to ``<store>/vectordb.feed`` and then counts it in the header; a
reader that finds the count ahead of its own position reads the entries after it.

The feed is derived data like the indexes: the database stays the truth. Entries are
numbered by the header's ``changes`` count; the file starts with the number its first
entry follows (``base``). It is replaced by an empty one once it passes
:data:`MAX_BYTES` (or after a writer died mid-entry): a reader further behind than the
file's base reloads from the database instead. Each entry is ``number, length,
crc32`` then ``length`` bytes; a damaged entry reads as "not available", never as data.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import List, Optional, Tuple

FEED_FILE = "vectordb.feed"
MAX_BYTES = 64 << 20
"""Past this size the next writer starts a new feed file."""
_BASE = struct.Struct("<Q")
_ENTRY = struct.Struct("<QQI")


class Feed:
    """The feed file of the store in ``folder``: appended under the turn, read by anyone."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, FEED_FILE)
        self._reader: Optional[Tuple[int, int, int]] = None
        """(fd, offset of the next entry, number of the entry before it) of the last read."""

    def append(self, number: int, payload: bytes) -> None:
        """Add entry ``number`` (the caller holds the turn; the previous entry is ``number - 1``)."""
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            size = -1
        if size <= _BASE.size or size > MAX_BYTES:  # no entries yet: the first is ``number``
            self.restart(number - 1)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        try:
            data = _ENTRY.pack(number, len(payload), zlib.crc32(payload)) + payload
            if os.write(fd, data) != len(data):
                raise OSError("short write to the change feed")
        finally:
            os.close(fd)

    def skip(self, number: int) -> None:
        """Entry ``number`` is not written (no other process reads the feed now): keep the file empty,
        so that the next entry starts it afresh (under the turn)."""
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            size = -1
        if size != _BASE.size:
            self.restart(number)

    def restart(self, base: int) -> None:
        """Replace the file by an empty one whose first entry will be ``base + 1`` (under the turn)."""
        tmp = self.path + ".new"
        with open(tmp, "wb") as f:
            f.write(_BASE.pack(base))
        os.replace(tmp, self.path)

    def read(self, after: int, upto: int) -> Optional[List[Tuple[int, bytes]]]:
        """The payloads of entries ``after + 1 .. upto``, in order; None if the feed no longer
        holds them all (the reader then reloads from the database)."""
        if upto <= after:
            return []
        state = self._reader
        if state is not None and state[2] == after:
            entries = self._scan(state[0], state[1], after, upto)
            if entries is not None:
                return entries
        return self._read_fresh(after, upto)

    def _read_fresh(self, after: int, upto: int) -> Optional[List[Tuple[int, bytes]]]:
        self.close()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        head = os.pread(fd, _BASE.size, 0)
        if len(head) < _BASE.size or _BASE.unpack(head)[0] > after:
            os.close(fd)
            return None
        base = _BASE.unpack(head)[0]
        self._reader = (fd, _BASE.size, base)
        return self._scan(fd, _BASE.size, base, upto, skip_to=after)

    def _scan(self, fd: int, offset: int, last: int, upto: int, skip_to: Optional[int] = None
              ) -> Optional[List[Tuple[int, bytes]]]:
        """Read entries from ``offset`` (whose predecessor is ``last``) through ``upto``."""
        out: List[Tuple[int, bytes]] = []
        while last < upto:
            head = os.pread(fd, _ENTRY.size, offset)
            if len(head) < _ENTRY.size:
                return None  # not there (the file was replaced): read the new one, or reload
            number, length, crc = _ENTRY.unpack(head)
            payload = os.pread(fd, length, offset + _ENTRY.size) if number == last + 1 else b""
            if number != last + 1 or len(payload) != length or zlib.crc32(payload) != crc:
                return None
            offset += _ENTRY.size + length
            last = number
            if skip_to is None or number > skip_to:
                out.append((number, payload))
        self._reader = (fd, offset, last)
        return out

    def close(self) -> None:
        """Close the reading descriptor (reopened by the next read)."""
        state, self._reader = self._reader, None
        if state is not None:
            try:
                os.close(state[0])
            except OSError:
                pass
