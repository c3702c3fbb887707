"""The DuckDB store: the catalog of collections and every record, the source of truth.

Tables:

- ``collections``: one row per collection (id, name, metadata, metric, dimension, the
  embedding function's name and config, the next free label, the last ``seq``).
- ``records``: one row per record: its integer ``label`` (its key in the vector index,
  never reused within a collection), id, the ``seq`` of the write that last touched it,
  the embedding as float32 bytes, document and metadata (JSON, for reading back).
  The embedding column is stored uncompressed: float bytes do not compress, and
  DuckDB's attempt to (at every checkpoint) cost more than half of a write's time.
- ``metadata``: one typed row per record and metadata key, for filtering.
- ``metadata_lists``: one typed row per distinct item of a record's list value (as
  ``metadata``), for ``$contains``. Stores made before list values get the table on their
  first open for writing; a read-only open of such a store gives it an empty one for the
  session (a temporary table), so filters read it alike.
- ``tombstones``: labels deleted after the index was last saved, so that an older
  index file can be caught up.
- ``store_info``: facts as keys and values: ``schema`` (the schema's version), and
  ``text_analyzer:<collection id>``, the text analyzer each collection was created with.
  Rows here rather than a column of ``collections`` (an older vectordb still inserts its
  ten values there) or a table of their own (a store would grow by a whole block for
  them). A collection without such a row was made before they were recorded, or by an
  older vectordb: it keeps the analyzer it was indexed with
  (:func:`vectordb.engine.textindexes.analyzer_name`).

Every write method runs as one transaction. All SQL is fixed text; user values are
parameters, and batches are passed to DuckDB as registered numpy columns. Every method
runs inside :meth:`Database.guard <vectordb.persistence.database.Database.guard>`, so
a failure of DuckDB or of the disk comes out as a typed ``StorageError``; the
connection, the store lock and recovery from fatal errors live in
:mod:`vectordb.persistence.database`. Several threads may call one Store at once: each
runs its statements on a cursor of its own, and its transactions on that cursor.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

import duckdb
import numpy as np

from vectordb.persistence.database import DB_FILE, Database, Landed
from vectordb.persistence.transaction import Transaction
from vectordb.validation import uniform_columns

_F = TypeVar("_F", bound=Callable[..., Any])

SCHEMA_VERSION = 1
SCAN_MEMORY_LIMIT = "32MB"
"""DuckDB's memory limit while all of a collection's embeddings are read (see :meth:`Store.vectors_since`)."""
__all__ = ["DB_FILE", "CollectionRow", "RecordBatch", "Store", "value_column"]

_LISTS_TABLE = """CREATE {temp}TABLE IF NOT EXISTS metadata_lists (
        collection_id VARCHAR, label BIGINT, key VARCHAR,
        str_value VARCHAR, int_value BIGINT, float_value DOUBLE, bool_value BOOLEAN)"""
_ANALYZER_KEY = "text_analyzer:"
"""The ``store_info`` key of a collection's text analyzer, before the collection's id."""
METADATA_TABLES = ("metadata", "metadata_lists")
"""The tables of typed metadata rows (scalars, list items), written and deleted together."""
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS store_info (key VARCHAR, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS collections (
        id VARCHAR, name VARCHAR, metadata VARCHAR, metric VARCHAR, dimension INTEGER,
        ef_name VARCHAR, ef_config VARCHAR, next_label BIGINT, seq BIGINT, position BIGINT)""",
    """CREATE TABLE IF NOT EXISTS records (
        collection_id VARCHAR, label BIGINT, id VARCHAR, seq BIGINT,
        embedding BLOB USING COMPRESSION uncompressed, document VARCHAR, metadata VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS metadata (
        collection_id VARCHAR, label BIGINT, key VARCHAR,
        str_value VARCHAR, int_value BIGINT, float_value DOUBLE, bool_value BOOLEAN)""",
    _LISTS_TABLE.format(temp=""),
    "CREATE TABLE IF NOT EXISTS tombstones (collection_id VARCHAR, label BIGINT, seq BIGINT)",
]


@dataclass(frozen=True)
class CollectionRow:
    """A collection as the catalog holds it."""

    id: str
    name: str
    metadata: Optional[Dict[str, Any]]
    metric: str
    dimension: Optional[int]
    ef_name: Optional[str]
    ef_config: Optional[Dict[str, Any]]
    next_label: int
    seq: int
    position: int
    text_analyzer: Optional[str] = None
    """The text analyzer recorded at creation; None for a collection made before analyzers
    were recorded, or by an older vectordb."""


@dataclass
class RecordBatch:
    """Full rows to write: one entry per record, aligned."""

    labels: np.ndarray
    ids: List[str]
    embeddings: np.ndarray
    documents: List[Optional[str]]
    metadatas: List[Optional[Dict[str, Any]]]

    @cached_property
    def metadata_json(self) -> List[Optional[str]]:
        """The metadata as the JSON text stored in ``records.metadata``."""
        encode = _ENCODER.encode
        return [None if m is None else encode(m) for m in self.metadatas]


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps with options builds one per call


def _json(value: Any) -> Optional[str]:
    return None if value is None else _ENCODER.encode(value)


def _unjson(text: Optional[str]) -> Any:
    return None if text is None else json.loads(text)


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
        self._scans = 0  # threads scanning embeddings now (see vectors_since)
        self._scans_lock = threading.Lock()
        self.db = Database(path, read_only, gate, on_connect=_session_tables if read_only else None)
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
        if not self.read_only:
            for statement in _SCHEMA:
                self.con.execute(statement)
            if not self.con.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchall():
                self.con.execute("INSERT INTO store_info VALUES ('schema', ?)", [str(SCHEMA_VERSION)])
        else:  # read what a writer's open reads, so that a damaged catalog shows here too
            self.con.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchall()
            self.con.execute("SELECT count(*) FROM collections").fetchall()

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (reopened first if a fatal error dropped it)."""
        return self.db.con

    def guard(self, action: str) -> Any:
        """``with store.guard("compacting"):`` for DuckDB calls made outside this class."""
        return self.db.guard(action)

    def close(self) -> None:
        """Close the connection (checkpointing the database) and release the store lock, even if closing fails."""
        self.db.close()

    # -- transactions -------------------------------------------------------

    def _transaction(self, action: str, landed: Optional[Landed] = None) -> Transaction:
        """A transaction; ``landed`` reads whether its changes are in the database, should COMMIT fail."""
        return Transaction(self.db, action, landed)

    @staticmethod
    def _seq_is(collection_id: str, seq: int) -> Landed:
        """Whether the collection's ``seq`` is ``seq``: every write and delete advances it in its transaction."""
        def landed(con: duckdb.DuckDBPyConnection) -> bool:
            rows = con.execute("SELECT seq FROM collections WHERE id = ?", [collection_id]).fetchall()
            return bool(rows) and int(rows[0][0]) == seq
        return landed

    @staticmethod
    def _collection_count_is(collection_id: str, count: int) -> Landed:
        """Whether the catalog holds the collection (``count`` 1) or not (0)."""
        def landed(con: duckdb.DuckDBPyConnection) -> bool:
            return con.execute("SELECT count(*) FROM collections WHERE id = ?", [collection_id]).fetchone()[0] == count
        return landed

    # -- catalog ------------------------------------------------------------

    @_guarded("reading the catalog")
    def collections(self) -> List[CollectionRow]:
        """Every collection, in creation order."""
        rows = self.con.execute(_CATALOG + " ORDER BY c.position").fetchall()
        return [_collection_row(r) for r in rows]

    @_guarded("reading the catalog")
    def collection_by_name(self, name: str) -> Optional[CollectionRow]:
        """The collection called ``name``, or None."""
        rows = self.con.execute(_CATALOG + " WHERE c.name = ?", [name]).fetchall()
        return _collection_row(rows[0]) if rows else None

    @_guarded("reading the catalog")
    def collection_by_id(self, collection_id: str) -> Optional[CollectionRow]:
        """The collection with this id, or None (it was deleted)."""
        rows = self.con.execute(_CATALOG + " WHERE c.id = ?", [collection_id]).fetchall()
        return _collection_row(rows[0]) if rows else None

    @_guarded("creating a collection")
    def insert_collection(self, row: CollectionRow) -> CollectionRow:
        """Add ``row`` to the catalog, at the end of the creation order."""
        with self._transaction("creating a collection", self._collection_count_is(row.id, 1)):
            position = self.con.execute("SELECT coalesce(max(position), -1) + 1 FROM collections").fetchone()[0]
            row = replace(row, position=int(position))
            self.con.execute(
                "INSERT INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [row.id, row.name, _json(row.metadata), row.metric, row.dimension, row.ef_name,
                 _json(row.ef_config), row.next_label, row.seq, row.position],
            )
            if row.text_analyzer is not None:
                self.con.execute("INSERT INTO store_info VALUES (?, ?)", [_ANALYZER_KEY + row.id, row.text_analyzer])
        return row

    @_guarded("changing a collection")
    def update_collection(self, row: CollectionRow) -> None:
        """Store a changed name or metadata."""
        def landed(con: duckdb.DuckDBPyConnection) -> bool:
            found = con.execute("SELECT name, metadata FROM collections WHERE id = ?", [row.id]).fetchall()
            return found == [(row.name, _json(row.metadata))]

        with self._transaction("changing a collection", landed):
            self.con.execute(
                "UPDATE collections SET name = ?, metadata = ? WHERE id = ?",
                [row.name, _json(row.metadata), row.id],
            )

    @_guarded("deleting a collection")
    def delete_collection(self, collection_id: str) -> None:
        """Remove a collection and all its records."""
        with self._transaction("deleting a collection", self._collection_count_is(collection_id, 0)):
            for table in ("records", *METADATA_TABLES, "tombstones"):
                self.con.execute(f"DELETE FROM {table} WHERE collection_id = ?", [collection_id])
            self.con.execute("DELETE FROM store_info WHERE key = ?", [_ANALYZER_KEY + collection_id])
            self.con.execute("DELETE FROM collections WHERE id = ?", [collection_id])

    # -- reads --------------------------------------------------------------

    @_guarded("counting records")
    def count(self, collection_id: str) -> int:
        """How many records the collection holds."""
        return int(self.con.execute("SELECT count(*) FROM records WHERE collection_id = ?", [collection_id]).fetchone()[0])

    @_guarded("reading records")
    def labels_of(self, collection_id: str, ids: Sequence[str]) -> Dict[str, int]:
        """Map each stored id among ``ids`` to its label."""
        rows = self.con.execute(
            "SELECT id, label FROM records WHERE collection_id = ? AND id IN (SELECT unnest(?::VARCHAR[]))",
            [collection_id, list(ids)],
        ).fetchall()
        return {i: int(label) for i, label in rows}

    @_guarded("reading records")
    def select_labels(
        self,
        collection_id: str,
        condition: Optional[Tuple[str, List[Any]]] = None,
    ) -> np.ndarray:
        """Labels of the records matching ``condition`` (SQL over alias ``r``), in insertion order."""
        sql = "SELECT r.label FROM records r WHERE r.collection_id = ?"
        params: List[Any] = [collection_id]
        if condition is not None:
            sql += " AND " + condition[0]
            params += condition[1]
        sql += " ORDER BY r.label"
        result = self.con.execute(sql, params).fetchnumpy()["label"]
        return np.asarray(result, dtype=np.int64)

    @_guarded("reading records")
    def fetch(self, collection_id: str, labels: np.ndarray, embeddings: bool) -> Dict[int, Tuple]:
        """``label -> (id, document, metadata, embedding or None)`` for the given labels."""
        columns = "label, id, document, metadata" + (", embedding" if embeddings else "")
        rows = self.con.execute(
            f"SELECT {columns} FROM records WHERE collection_id = ? AND label IN (SELECT unnest(?::BIGINT[]))",
            [collection_id, [int(x) for x in labels]],
        ).fetchall()
        out: Dict[int, Tuple] = {}
        for row in rows:
            vector = np.frombuffer(row[4], dtype="<f4") if embeddings else None
            out[int(row[0])] = (row[1], row[2], _unjson(row[3]), vector)
        return out

    @_guarded("reading records")
    def cached_columns(self, collection_id: str) -> Dict[str, np.ndarray]:
        """``label``, ``id``, ``document`` and ``metadata`` (JSON) of every record, for the record cache."""
        columns = self.con.execute(
            "SELECT label, id, document, metadata FROM records WHERE collection_id = ?", [collection_id]
        ).fetchnumpy()
        return {name: _unmask(column) for name, column in columns.items()}

    @_guarded("reading metadata")
    def metadata_columns(self, collection_id: str) -> Dict[str, np.ndarray]:
        """Every typed metadata row, the ``live`` labels and the list items (their columns named
        ``list_label``, ``list_key``, ...), for the metadata index (NULLs come as masked arrays)."""
        select = "SELECT label, key, str_value, int_value, float_value, bool_value FROM {} WHERE collection_id = ?"
        columns = self.con.execute(select.format("metadata"), [collection_id]).fetchnumpy()
        items = self.con.execute(select.format("metadata_lists"), [collection_id]).fetchnumpy()
        live = self.con.execute("SELECT label FROM records WHERE collection_id = ?", [collection_id]).fetchnumpy()
        return {**columns, **{f"list_{k}": v for k, v in items.items()}, "live": np.asarray(live["label"], dtype=np.int64)}

    @_guarded("reading documents")
    def documents_since(self, collection_id: str, seq: int) -> Tuple[np.ndarray, List[Optional[str]]]:
        """``(labels, documents)`` of the records written after ``seq`` (all: ``seq`` -1), for the text index."""
        columns = self.con.execute(
            "SELECT label, document FROM records WHERE collection_id = ? AND seq > ? ORDER BY label",
            [collection_id, seq],
        ).fetchnumpy()
        return np.asarray(columns["label"], dtype=np.int64), _unmask(columns["document"]).tolist()

    @_guarded("counting documents")
    def count_documents(self, collection_id: str) -> int:
        """How many of the collection's records have a document."""
        return int(self.con.execute(
            "SELECT count(document) FROM records WHERE collection_id = ?", [collection_id]).fetchone()[0])

    def vectors_since(self, collection_id: str, seq: int, chunk: int = 50_000) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """``(labels, vectors)`` chunks of the records written after ``seq`` (see :meth:`records_since`)."""
        for labels, _, vectors in self.records_since(collection_id, seq, chunk):
            yield labels, vectors

    def records_since(
        self, collection_id: str, seq: int, chunk: int = 50_000
    ) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(labels, seqs, vectors)`` chunks of the records written after ``seq``, ``seqs`` being
        the write that last touched each (what a saved index lacks, and since when).

        DuckDB keeps every block it reads in its buffer pool until memory runs short, so a
        scan of all embeddings (to fill an index or the exact-search matrix) would leave a
        second copy of the vectors in memory. The memory limit is lowered for the scan,
        which makes DuckDB drop blocks as it goes, and reset to DuckDB's default afterwards.
        """
        def guard() -> Any:
            return self.db.guard("reading embeddings")

        with guard():
            con = self.con
            self._scan_started(con)
        try:
            with guard():
                cursor = con.cursor()
        except BaseException:
            self._scan_ended(con)
            raise
        sql = "SELECT label, seq, embedding FROM records WHERE collection_id = ? AND seq > ?"
        try:
            if _pyarrow() is not None:  # a third of the cost: the vectors come as one buffer per chunk
                with guard():
                    batches = iter(cursor.sql(sql, params=[collection_id, seq]).to_arrow_reader(chunk))
                while True:
                    with guard():
                        batch = next(batches, None)
                    if batch is None:
                        return
                    if batch.num_rows:
                        yield _arrow_chunk(batch)
            with guard():
                cursor.execute(sql, [collection_id, seq])
            while True:
                with guard():
                    rows = cursor.fetchmany(chunk)
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
            self._scan_ended(con)

    def _scan_started(self, con: duckdb.DuckDBPyConnection) -> None:
        """Lower DuckDB's memory limit (a setting of the whole database) while any thread scans embeddings."""
        with self._scans_lock:
            if not self._scans:
                con.execute(f"SET memory_limit = '{SCAN_MEMORY_LIMIT}'")  # a constant of this module
            self._scans += 1

    def _scan_ended(self, con: duckdb.DuckDBPyConnection) -> None:
        """Back to DuckDB's default limit (vectordb sets no other) once the last scan ends."""
        with self._scans_lock:
            self._scans -= 1
            if not self._scans:
                try:
                    con.execute("RESET memory_limit")
                except duckdb.Error:
                    pass  # the connection failed meanwhile; a reopened database starts at the default

    @_guarded("reading deletions")
    def tombstones_since(self, collection_id: str, seq: int) -> np.ndarray:
        """Labels deleted after ``seq``."""
        result = self.con.execute(
            "SELECT label FROM tombstones WHERE collection_id = ? AND seq > ?", [collection_id, seq]
        ).fetchnumpy()["label"]
        return np.asarray(result, dtype=np.int64)

    # -- writes -------------------------------------------------------------

    @_guarded("writing records")
    def write(self, row: CollectionRow, batch: RecordBatch, replaced: np.ndarray, dimension: int) -> CollectionRow:
        """Insert the full rows of ``batch`` (replacing the labels in ``replaced``) as one transaction.

        Returns the collection row with its new ``seq``, ``next_label`` and ``dimension``.
        """
        seq = row.seq + 1
        next_label = max(row.next_label, int(batch.labels.max()) + 1) if len(batch.labels) else row.next_label
        records = {
            "label": np.asarray(batch.labels, dtype=np.int64),
            "id": np.asarray(batch.ids, dtype=object),
            "embedding": _blobs(batch.embeddings),
            "document": np.asarray(batch.documents, dtype=object),
            "metadata": np.asarray(batch.metadata_json, dtype=object),
        }
        with self._transaction("writing records", self._seq_is(row.id, seq)):
            if len(replaced):
                self._delete_rows(row.id, replaced)
            self._insert("records", records, {"collection_id": row.id, "seq": seq})
            self.insert_metadata(row.id, batch.labels, batch.metadatas)
            self.con.execute(
                "UPDATE collections SET seq = ?, next_label = ?, dimension = ? WHERE id = ?",
                [seq, next_label, dimension, row.id],
            )
        return replace(row, seq=seq, next_label=next_label, dimension=dimension)

    @_guarded("deleting records")
    def delete(self, row: CollectionRow, labels: np.ndarray) -> CollectionRow:
        """Delete the records with ``labels`` as one transaction, leaving tombstones for the index."""
        seq = row.seq + 1
        with self._transaction("deleting records", self._seq_is(row.id, seq)):
            self._delete_rows(row.id, labels)
            self._insert("tombstones", {"label": np.asarray(labels, dtype=np.int64)}, {"collection_id": row.id, "seq": seq})
            self.con.execute("UPDATE collections SET seq = ? WHERE id = ?", [seq, row.id])
        return replace(row, seq=seq)

    @_guarded("writing the deletion log")
    def forget_tombstones(self, collection_id: str, up_to_seq: int) -> None:
        """Drop tombstones that a saved index already covers."""
        def landed(con: duckdb.DuckDBPyConnection) -> bool:
            sql = "SELECT count(*) FROM tombstones WHERE collection_id = ? AND seq <= ?"
            return con.execute(sql, [collection_id, up_to_seq]).fetchone()[0] == 0

        with self._transaction("writing the deletion log", landed):
            self.con.execute("DELETE FROM tombstones WHERE collection_id = ? AND seq <= ?", [collection_id, up_to_seq])

    def insert_metadata(self, collection_id: str, labels: np.ndarray, metadatas: List[Optional[Dict[str, Any]]]) -> None:
        """Add the typed ``metadata`` and ``metadata_lists`` rows of these records (inside the caller's transaction)."""
        scalars, items = split_lists(labels, metadatas)
        for table, (row_labels, row_metadatas) in (("metadata", scalars), ("metadata_lists", items)):
            for value_column, key, columns in _metadata_columns(row_labels, row_metadatas):
                constants = {"collection_id": collection_id} if key is None else {"collection_id": collection_id, "key": key}
                self._insert(table, columns, constants, rename={"value": value_column})

    def _delete_rows(self, collection_id: str, labels: np.ndarray) -> None:
        label_list = [int(x) for x in labels]
        for table in ("records", *METADATA_TABLES):
            self.con.execute(
                f"DELETE FROM {table} WHERE collection_id = ? AND label IN (SELECT unnest(?::BIGINT[]))",
                [collection_id, label_list],
            )

    def _insert(
        self,
        table: str,
        columns: Dict[str, np.ndarray],
        constants: Dict[str, Any],
        rename: Optional[Dict[str, str]] = None,
    ) -> None:
        """Insert numpy ``columns`` plus ``constants`` (the same value on every row, passed as parameters).

        ``rename`` maps a batch column to the table column it fills. Table and column
        names are fixed strings of this module; only values travel as data.
        """
        rename = rename or {}
        targets = [rename.get(name, name) for name in columns] + list(constants)
        sources = list(columns) + ["?"] * len(constants)
        self.con.register("_vectordb_batch", columns)
        try:
            self.con.execute(
                f"INSERT INTO {table} ({', '.join(targets)}) SELECT {', '.join(sources)} FROM _vectordb_batch",
                list(constants.values()),
            )
        finally:
            try:
                self.con.unregister("_vectordb_batch")
            except duckdb.Error:
                pass  # an aborted transaction refuses this; the original error is the one to raise


USE_PYARROW = True
"""Read embeddings through Arrow when pyarrow (an optional dependency) is installed."""


def _session_tables(con: duckdb.DuckDBPyConnection) -> None:
    """On each read-only connection: a store made before list values gets an empty
    ``metadata_lists`` for the session (nothing to find in it), so filters read it alike."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "metadata_lists" not in tables:
        con.execute(_LISTS_TABLE.format(temp="TEMP "))


def _pyarrow() -> Any:
    """The pyarrow module, or None when it is not installed (or not to be used)."""
    if not USE_PYARROW:
        return None
    try:
        import pyarrow
    except ImportError:
        return None
    return pyarrow


def _arrow_chunk(batch: Any) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, seqs, vectors)`` of an Arrow record batch; the vectors are a view of its blob buffer."""
    labels = np.asarray(batch.column(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    seqs = np.asarray(batch.column(1).to_numpy(zero_copy_only=False), dtype=np.int64)
    blobs = batch.column(2)
    _, offsets, values = blobs.buffers()
    wide = str(blobs.type) == "large_binary"
    ends = np.frombuffer(offsets, dtype=np.int64 if wide else np.int32)[blobs.offset: blobs.offset + len(blobs) + 1]
    data = np.frombuffer(values, dtype=np.uint8)[int(ends[0]): int(ends[-1])]
    return labels, seqs, data.view("<f4").reshape(len(blobs), -1)


_CATALOG = (
    "SELECT c.id, c.name, c.metadata, c.metric, c.dimension, c.ef_name, c.ef_config, c.next_label, c.seq, "
    f"c.position, a.value FROM collections c LEFT JOIN store_info a ON a.key = '{_ANALYZER_KEY}' || c.id"
)
"""The catalog's rows, each with its collection's recorded analyzer (NULL when none)."""


def _collection_row(r: Tuple) -> CollectionRow:
    return CollectionRow(
        id=r[0], name=r[1], metadata=_unjson(r[2]), metric=r[3], dimension=r[4], ef_name=r[5],
        ef_config=_unjson(r[6]), next_label=int(r[7]), seq=int(r[8]), position=int(r[9]), text_analyzer=r[10],
    )


def _unmask(column: np.ndarray) -> np.ndarray:
    """DuckDB hands NULLs back as a masked array; turn them into None."""
    if not isinstance(column, np.ma.MaskedArray):
        return column
    plain = np.asarray(column.data, dtype=object).copy()
    plain[np.ma.getmaskarray(column)] = None
    return plain


def _blobs(vectors: np.ndarray) -> np.ndarray:
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    out = np.empty(len(vectors), dtype=object)
    out[:] = [row.tobytes() for row in vectors]
    return out


_VALUE_COLUMNS = {str: "str_value", int: "int_value", float: "float_value", bool: "bool_value"}
_VALUE_DTYPES = {"str_value": object, "int_value": np.int64, "float_value": np.float64, "bool_value": np.bool_}


def value_column(value: Any) -> str:
    """The ``metadata`` column that holds ``value`` (a checked str, int, float or bool)."""
    for kind in (bool, str, int, float):  # bool first: it is also an int
        if isinstance(value, kind):
            return _VALUE_COLUMNS[kind]
    raise TypeError(f"not a metadata value: {value!r}")


def split_lists(
    labels: np.ndarray, metadatas: List[Optional[Dict[str, Any]]]
) -> Tuple[Tuple[np.ndarray, List[Optional[Dict[str, Any]]]], Tuple[np.ndarray, List[Dict[str, Any]]]]:
    """``(labels, metadatas)`` of the scalar values and of the list items of a batch.

    A batch without list values is returned as it is. Each list value becomes one
    ``{key: item}`` entry per distinct item (a list holds an item or not: ``$contains``
    needs no repeats), under its record's label.
    """
    if not any(type(value) is list for meta in metadatas if meta for value in meta.values()):
        return (labels, metadatas), (np.empty(0, dtype=np.int64), [])
    scalars: List[Optional[Dict[str, Any]]] = []
    item_labels: List[int] = []
    items: List[Dict[str, Any]] = []
    for label, meta in zip(labels.tolist(), metadatas):
        plain = {}
        for key, value in (meta or {}).items():
            if type(value) is list:
                for item in dict.fromkeys(value):
                    item_labels.append(label)
                    items.append({key: item})
            else:
                plain[key] = value
        scalars.append(plain or None)
    return (labels, scalars), (np.asarray(item_labels, dtype=np.int64), items)


def _metadata_columns(
    labels: np.ndarray, metadatas: List[Optional[Dict[str, Any]]]
) -> List[Tuple[str, Optional[str], Dict[str, np.ndarray]]]:
    """The typed ``metadata`` rows of a batch, as ``(value column, key, columns)`` groups.

    Values are checked plain ``str``/``int``/``float``/``bool`` by validation; each group
    fills one of the table's value columns (the others stay NULL). When every record has
    the same keys and a key's values share one type (:func:`uniform_columns`), each key is
    one group with the key as a constant; otherwise rows are grouped by value type,
    each with its own ``key``.
    """
    uniform = uniform_columns(metadatas)
    if uniform is not None and all(kind in _VALUE_COLUMNS for _, kind, _ in uniform):
        out: List[Tuple[str, Optional[str], Dict[str, np.ndarray]]] = []
        for key, kind, values in uniform:
            column = _VALUE_COLUMNS[kind]
            out.append((column, key, {"label": labels, "value": np.asarray(values, dtype=_VALUE_DTYPES[column])}))
        return out
    groups: Dict[str, Tuple[List[int], List[str], List[Any]]] = {}
    for label, meta in zip(labels.tolist(), metadatas):
        if not meta:
            continue
        for key, value in meta.items():
            column = _VALUE_COLUMNS.get(type(value)) or value_column(value)
            group = groups.get(column)
            if group is None:
                group = groups[column] = ([], [], [])
            group[0].append(label)
            group[1].append(key)
            group[2].append(value)
    return [
        (
            column,
            None,
            {
                "label": np.asarray(group_labels, dtype=np.int64),
                "key": np.asarray(keys, dtype=object),
                "value": np.asarray(values, dtype=_VALUE_DTYPES[column]),
            },
        )
        for column, (group_labels, keys, values) in groups.items()
    ]
