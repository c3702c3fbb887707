"""The DuckDB store: the catalog of collections and every record, the source of truth.

:class:`Store` is the one object the engine talks to. Each of its methods is one unit
of work on the database: a read, or a change made as one transaction, run inside
:meth:`Database.guard <vectordb.persistence.database.Database.guard>` so that a failure
of DuckDB or of the disk comes out as a typed ``StorageError``. The statements
themselves live in the modules of this package, one part each:

- :mod:`~vectordb.persistence.schema`: the tables (described there), the schema
  version, creating what an older store lacks;
- :mod:`~vectordb.persistence.catalog`: the ``collections`` rows (:class:`CollectionRow`);
- :mod:`~vectordb.persistence.records`: records, typed metadata rows and tombstones;
- :mod:`~vectordb.persistence.encoding`: how a :class:`RecordBatch` becomes rows (no SQL);
- :mod:`~vectordb.persistence.scan`: the embedding scan and its memory limit;
- :mod:`~vectordb.persistence.checks`: the integrity queries and repairs
  (:attr:`Store.integrity`, for :mod:`vectordb.engine.check`);
- :mod:`~vectordb.persistence.compaction`: copying the file into a fresh one.

What a Store method adds to them is the transaction (which statements commit
together, and how to tell whether a failed COMMIT landed: :mod:`~vectordb.persistence.transaction`),
the bookkeeping of ``seq`` and ``next_label``, and the error guard. All SQL is fixed
text; user values are parameters, and batches are passed to DuckDB as registered numpy
columns. The connection, the store lock and recovery from fatal errors live in
:mod:`vectordb.persistence.database`. Several threads may call one Store at once: each
runs its statements on a cursor of its own, and its transactions on that cursor.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

import duckdb
import numpy as np

from vectordb.persistence import catalog, compaction, records, scan, schema
from vectordb.persistence.catalog import CollectionRow
from vectordb.persistence.checks import Integrity
from vectordb.persistence.database import DB_FILE, Database
from vectordb.persistence.encoding import RecordBatch, record_columns, value_column
from vectordb.persistence.transaction import Transaction

__all__ = ["DB_FILE", "CollectionRow", "RecordBatch", "Store", "value_column"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _guarded(action: str) -> Callable[[_F], _F]:
    """Run the method inside the database's error guard (see :meth:`Database.guard`)."""

    def decorate(method: _F) -> _F:
        @functools.wraps(method)
        def guarded(self: "Store", *args: Any, **kwargs: Any) -> Any:
            with self.db.guard(action):
                return method(self, *args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


class Store:
    """One DuckDB database (a file under the store's path, or in memory).

    Opening takes the store lock (a second writer, or a reader beside a writer, gets
    StoreLockedError); a damaged file raises StoreCorruptedError.
    """

    def __init__(self, path: Optional[str], read_only: bool = False, gate: Optional[Callable[[], None]] = None) -> None:
        """``gate``: see :class:`~vectordb.persistence.database.Database` (a store shared by processes)."""
        self.path = path
        self.read_only = read_only
        self._scan_limit = scan.ScanLimit()  # threads scanning embeddings now (see records_since)
        self.db = Database(path, read_only, gate, on_connect=schema.session_tables if read_only else None)
        self.integrity = Integrity(self.db)
        """The integrity queries and repairs, for :func:`vectordb.engine.check.check_store`."""
        try:
            self._prepare()
        except BaseException:
            try:
                self.db.close()
            except Exception:
                pass  # the error of the open is the one to raise
            raise

    @_guarded("opening the database")
    def _prepare(self) -> None:
        schema.prepare(self.db, self.read_only)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (reopened first if a fatal error dropped it)."""
        return self.db.con

    def guard(self, action: str) -> Any:
        """``with store.guard("checking the store"):`` for several calls that make one piece of work."""
        return self.db.guard(action)

    def close(self) -> None:
        """Close the connection (checkpointing the database) and release the store lock, even if closing fails."""
        self.db.close()

    def compact(self) -> None:
        """Copy the database into a fresh file and swap it in (a store on disk; see :func:`compaction.compact`)."""
        compaction.compact(self.db)

    # -- catalog ------------------------------------------------------------

    @_guarded("reading the catalog")
    def collections(self) -> List[CollectionRow]:
        """Every collection, in creation order."""
        return catalog.all_rows(self.db)

    @_guarded("reading the catalog")
    def collection_by_name(self, name: str) -> Optional[CollectionRow]:
        """The collection called ``name``, or None."""
        return catalog.by_name(self.db, name)

    @_guarded("reading the catalog")
    def collection_by_id(self, collection_id: str) -> Optional[CollectionRow]:
        """The collection with this id, or None (it was deleted)."""
        return catalog.by_id(self.db, collection_id)

    @_guarded("creating a collection")
    def insert_collection(self, row: CollectionRow) -> CollectionRow:
        """Add ``row`` to the catalog, at the end of the creation order."""
        with Transaction(self.db, "creating a collection", catalog.count_is(row.id, 1)):
            return catalog.insert(self.db, row)

    @_guarded("changing a collection")
    def update_collection(self, row: CollectionRow) -> None:
        """Store a changed name or metadata."""
        with Transaction(self.db, "changing a collection", catalog.renamed(row)):
            catalog.rename(self.db, row)

    @_guarded("deleting a collection")
    def delete_collection(self, collection_id: str) -> None:
        """Remove a collection and all its records."""
        with Transaction(self.db, "deleting a collection", catalog.count_is(collection_id, 0)):
            catalog.delete(self.db, collection_id)

    # -- reads --------------------------------------------------------------

    @_guarded("counting records")
    def count(self, collection_id: str) -> int:
        """How many records the collection holds."""
        return records.count(self.db, collection_id)

    @_guarded("reading records")
    def labels_of(self, collection_id: str, ids: Sequence[str]) -> Dict[str, int]:
        """Map each stored id among ``ids`` to its label."""
        return records.labels_of(self.db, collection_id, ids)

    @_guarded("reading records")
    def select_labels(self, collection_id: str, condition: Optional[Tuple[str, List[Any]]] = None) -> np.ndarray:
        """Labels of the records matching ``condition`` (SQL over alias ``r``), in insertion order."""
        return records.select_labels(self.db, collection_id, condition)

    @_guarded("reading records")
    def fetch(self, collection_id: str, labels: np.ndarray, embeddings: bool) -> Dict[int, Tuple]:
        """``label -> (id, document, metadata, embedding or None)`` for the given labels."""
        return records.fetch(self.db, collection_id, labels, embeddings)

    @_guarded("reading records")
    def cached_columns(self, collection_id: str) -> Dict[str, np.ndarray]:
        """``label``, ``id``, ``document`` and ``metadata`` (JSON) of every record, for the record cache."""
        return records.cached_columns(self.db, collection_id)

    @_guarded("reading metadata")
    def metadata_columns(self, collection_id: str, max_keys: Optional[int] = None) -> Dict[str, Any]:
        """The ``live`` labels, the keys, every typed metadata value and the list items, for the
        metadata index; only the first two beyond ``max_keys`` keys (see :func:`records.metadata_index_columns`)."""
        return records.metadata_index_columns(self.db, collection_id, max_keys)

    @_guarded("reading documents")
    def documents_since(self, collection_id: str, seq: int) -> Tuple[np.ndarray, List[Optional[str]]]:
        """``(labels, documents)`` of the records written after ``seq`` (all: ``seq`` -1), for the text index."""
        return records.documents_since(self.db, collection_id, seq)

    @_guarded("counting documents")
    def count_documents(self, collection_id: str) -> int:
        """How many of the collection's records have a document."""
        return records.count_documents(self.db, collection_id)

    @_guarded("reading deletions")
    def tombstones_since(self, collection_id: str, seq: int) -> np.ndarray:
        """Labels deleted after ``seq``."""
        return records.tombstones_since(self.db, collection_id, seq)

    def vectors_since(self, collection_id: str, seq: int, chunk: int = 50_000) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """``(labels, vectors)`` chunks of the records written after ``seq`` (see :meth:`records_since`)."""
        for labels, _, vectors in self.records_since(collection_id, seq, chunk):
            yield labels, vectors

    def records_since(self, collection_id: str, seq: int, chunk: int = 50_000) -> Iterator[scan.Chunk]:
        """``(labels, seqs, vectors)`` chunks of the records written after ``seq``, ``seqs`` being
        the write that last touched each (what a saved index lacks, and since when).

        DuckDB's memory limit is lowered while the scan runs, so that the embeddings it
        reads leave no second copy in DuckDB's buffer pool (see :mod:`~vectordb.persistence.scan`).
        """
        return scan.records_since(self.db, self._scan_limit, collection_id, seq, chunk)

    # -- writes -------------------------------------------------------------

    @_guarded("writing records")
    def write(self, row: CollectionRow, batch: RecordBatch, replaced: np.ndarray, dimension: int) -> CollectionRow:
        """Insert the full rows of ``batch`` (replacing the labels in ``replaced``) as one transaction.

        Returns the collection row with its new ``seq``, ``next_label`` and ``dimension``.
        """
        seq = row.seq + 1
        next_label = max(row.next_label, int(batch.labels.max()) + 1) if len(batch.labels) else row.next_label
        columns = record_columns(batch)
        with Transaction(self.db, "writing records", catalog.seq_is(row.id, seq)):
            if len(replaced):
                records.delete_rows(self.db, row.id, replaced)
            records.insert_records(self.db, row.id, seq, columns)
            records.insert_metadata(self.db, row.id, batch.labels, batch.metadatas)
            catalog.set_written(self.db, row.id, seq, next_label, dimension)
        return replace(row, seq=seq, next_label=next_label, dimension=dimension)

    @_guarded("deleting records")
    def delete(self, row: CollectionRow, labels: np.ndarray) -> CollectionRow:
        """Delete the records with ``labels`` as one transaction, leaving tombstones for the index."""
        seq = row.seq + 1
        with Transaction(self.db, "deleting records", catalog.seq_is(row.id, seq)):
            records.delete_rows(self.db, row.id, labels)
            records.insert_tombstones(self.db, row.id, seq, labels)
            catalog.set_seq(self.db, row.id, seq)
        return replace(row, seq=seq)

    @_guarded("writing the deletion log")
    def forget_tombstones(self, collection_id: str, up_to_seq: int) -> None:
        """Drop tombstones that a saved index already covers."""
        with Transaction(self.db, "writing the deletion log", records.tombstones_forgotten(collection_id, up_to_seq)):
            records.forget_tombstones(self.db, collection_id, up_to_seq)
