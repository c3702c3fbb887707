"""Reading every embedding of a collection: the scan that fills an index or the exact-search matrix.

This module owns the one read that is not a plain statement: it streams the records
written after a ``seq`` in chunks of :data:`SCAN_BATCH_ROWS` rows, on a cursor of its own,
and lowers DuckDB's memory limit while it runs.

It reads rows, not Arrow batches: Arrow was three times faster at 200,000 records (0.11 s
against 0.31, warm) but the first scan loaded pyarrow's libraries, 55 MiB of RSS that stay
for the life of the process (the first filtered query of a 200,000-record collection, which
fills the exact-search matrix with this scan, ended at 1,054 MiB through Arrow, 994 through
rows; its peak was 1,081 and 1,064 MiB).

DuckDB keeps every block it reads in its buffer pool until memory runs short, so a
scan of all embeddings would leave a second copy of the vectors in memory. The memory
limit (a setting of the whole database) is lowered while any thread scans
(:class:`ScanLimit`), which makes DuckDB drop blocks as it goes, and set back when the
last scan ends: to :data:`~vectordb.persistence.database.MEMORY_LIMIT` for a store on
disk, to DuckDB's default for one in memory.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator, Tuple

import duckdb
import numpy as np

from vectordb.persistence.database import MEMORY_LIMIT, Database

SCAN_MEMORY_LIMIT = "16MB"
"""DuckDB's memory limit while all of a collection's embeddings are read (see :func:`records_since`)."""
SCAN_BATCH_ROWS = 1024
"""Most rows fetched at a time, whatever chunk the caller asks for: a scan of 200,000 x 384
fetched 1,024 rows at a time added 41 MiB to the peak RSS (0.28-0.31 s), 4,096 at a time 64 MiB
(0.34-0.40 s), 8,192 at a time 94 MiB (0.33-0.46 s)."""

Chunk = Tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(labels, seqs, vectors)`` of some records."""


class ScanLimit:
    """Counts the threads scanning one database, to lower its memory limit (and DuckDB's thread
    count) while there are any."""

    def __init__(self) -> None:
        self._scans = 0
        self._lock = threading.Lock()

    def started(self, con: duckdb.DuckDBPyConnection) -> None:
        """Lower DuckDB's memory limit (a setting of the whole database) while any thread scans embeddings."""
        with self._lock:
            if not self._scans:
                con.execute(f"SET memory_limit = '{SCAN_MEMORY_LIMIT}'")  # a constant of this module
                con.execute("SET threads = 1")  # fewer chunks in flight
            self._scans += 1

    def ended(self, con: duckdb.DuckDBPyConnection, on_disk: bool = True) -> None:
        """Back to the database's resting limit once the last scan ends: :data:`MEMORY_LIMIT`
        for a store ``on_disk``, DuckDB's default for one in memory."""
        with self._lock:
            self._scans -= 1
            if not self._scans:
                try:
                    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'" if on_disk else "RESET memory_limit")
                    con.execute("RESET threads")
                except duckdb.Error:
                    pass  # the connection failed meanwhile; a reopened database starts at the default


def records_since(db: Database, limit: ScanLimit, collection_id: str, seq: int, chunk: int) -> Iterator[Chunk]:
    """``(labels, seqs, vectors)`` chunks of the records written after ``seq``, ``seqs`` being
    the write that last touched each; every DuckDB call runs inside the database's error guard."""
    def guard() -> Any:
        return db.guard("reading embeddings")

    with guard():
        con = db.con
        limit.started(con)
    try:
        with guard():
            cursor = con.cursor()
    except BaseException:
        limit.ended(con, db.file is not None)
        raise
    sql = "SELECT label, seq, embedding FROM records WHERE collection_id = ? AND seq > ?"
    try:
        with guard():
            cursor.execute(sql, [collection_id, seq])
        while True:
            with guard():
                rows = cursor.fetchmany(min(chunk, SCAN_BATCH_ROWS))
            if not rows:
                return
            labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            seqs = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
            yield labels, seqs, vectors
    finally:
        try:
            cursor.close()
        except duckdb.Error:
            pass  # the connection failed meanwhile (the error raised inside says why); it is reopened anew
        limit.ended(con, db.file is not None)
