"""The records of a collection: reading and writing ``records``, its typed metadata rows and its tombstones.

This module owns every statement on those rows but the embedding scan
(:mod:`~vectordb.persistence.scan`, which needs its own cursor and memory handling).
Values are encoded by :mod:`~vectordb.persistence.encoding`; the functions run single
statements (a write's several inserts are put in one transaction, under the error
guard, by the :class:`Store <vectordb.persistence.store.Store>`). All SQL is fixed
text; user values are parameters, and batches go to DuckDB as registered numpy columns.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import duckdb
import numpy as np

from vectordb.persistence.database import Database, Landed
from vectordb.persistence.encoding import VALUE_COLUMNS, from_json, metadata_columns, split_lists, unmask
from vectordb.persistence.schema import METADATA_TABLES

# -- reads --------------------------------------------------------------------


def count(db: Database, collection_id: str) -> int:
    """How many records the collection holds."""
    return int(db.con.execute("SELECT count(*) FROM records WHERE collection_id = ?", [collection_id]).fetchone()[0])


def labels_of(db: Database, collection_id: str, ids: Sequence[str]) -> Dict[str, int]:
    """Map each stored id among ``ids`` to its label."""
    found = db.con.execute(
        "SELECT id, label FROM records WHERE collection_id = ? AND id IN (SELECT unnest(?::VARCHAR[]))",
        [collection_id, list(ids)],
    ).fetchall()
    return {i: int(label) for i, label in found}


def select_labels(db: Database, collection_id: str, condition: Optional[Tuple[str, List[Any]]] = None) -> np.ndarray:
    """Labels of the records matching ``condition`` (SQL over alias ``r``, with its parameters), in insertion order.

    ``condition`` is made by :func:`vectordb.filters.sql.to_sql`: fixed text whose values are parameters.
    """
    sql = "SELECT r.label FROM records r WHERE r.collection_id = ?"
    params: List[Any] = [collection_id]
    if condition is not None:
        sql += " AND " + condition[0]
        params += condition[1]
    sql += " ORDER BY r.label"
    result = db.con.execute(sql, params).fetchnumpy()["label"]
    return np.asarray(result, dtype=np.int64)


def fetch(db: Database, collection_id: str, labels: np.ndarray, embeddings: bool) -> Dict[int, Tuple]:
    """``label -> (id, document, metadata, embedding or None)`` for the given labels."""
    columns = "label, id, document, metadata" + (", embedding" if embeddings else "")
    found = db.con.execute(
        f"SELECT {columns} FROM records WHERE collection_id = ? AND label IN (SELECT unnest(?::BIGINT[]))",
        [collection_id, [int(x) for x in labels]],
    ).fetchall()
    out: Dict[int, Tuple] = {}
    for row in found:
        vector = np.frombuffer(row[4], dtype="<f4") if embeddings else None
        out[int(row[0])] = (row[1], row[2], from_json(row[3]), vector)
    return out


def cached_columns(db: Database, collection_id: str) -> Dict[str, np.ndarray]:
    """``label``, ``id``, ``document`` and ``metadata`` (JSON) of every record, for the record cache."""
    columns = db.con.execute(
        "SELECT label, id, document, metadata FROM records WHERE collection_id = ?", [collection_id]
    ).fetchnumpy()
    return {name: unmask(column) for name, column in columns.items()}


def metadata_index_columns(db: Database, collection_id: str, max_keys: Optional[int] = None) -> Dict[str, Any]:
    """What the metadata index loads: ``live`` (the records' labels), ``keys`` (every metadata key,
    sorted), ``scalars`` and the list items (columns ``list_label``, ``list_key``, ...; NULLs come
    as masked arrays). With more than ``max_keys`` keys, only ``live`` and ``keys`` are read.

    ``scalars`` holds one ``(key, column, labels, values, strings)`` group per key and value
    column present. Strings come as codes into ``strings`` (the key's distinct values, sorted),
    coded by DuckDB, so that no Python object is made per row: reading 200,000 records with
    three keys as whole columns (a string object for every key and string value) took 118 MiB
    at its peak and left 28 MiB with the allocators; coded, 27 MiB and 17.
    """
    counted = ", ".join(f"count({column})" for column in VALUE_COLUMNS)  # fixed names: the only text put in
    present = db.con.execute(
        f"SELECT key, {counted} FROM metadata WHERE collection_id = ? GROUP BY key ORDER BY key", [collection_id]
    ).fetchall()
    list_keys = db.con.execute(
        "SELECT DISTINCT key FROM metadata_lists WHERE collection_id = ?", [collection_id]).fetchall()
    live = db.con.execute("SELECT label FROM records WHERE collection_id = ?", [collection_id]).fetchnumpy()
    keys = sorted({str(row[0]) for row in present} | {str(row[0]) for row in list_keys})
    out: Dict[str, Any] = {"live": np.asarray(live["label"], dtype=np.int64), "keys": keys, "scalars": []}
    if max_keys is not None and len(keys) > max_keys:
        return out
    for key, *counts in present:
        for column, found in zip(VALUE_COLUMNS, counts):
            if found:
                out["scalars"].append((key, column, *_scalar_rows(db, collection_id, key, column)))
    if list_keys:
        select = "SELECT label, key, str_value, int_value, float_value, bool_value FROM metadata_lists WHERE collection_id = ?"
        items = db.con.execute(select, [collection_id]).fetchnumpy()
        out.update({f"list_{k}": v for k, v in items.items()})
    return out


def _scalar_rows(db: Database, collection_id: str, key: str, column: str
                 ) -> Tuple[np.ndarray, np.ndarray, Optional[List[str]]]:
    """``(labels, values, strings)`` of one key's values in ``column``; for strings, the values are
    codes into ``strings``, the distinct values in order (else ``strings`` is None)."""
    where = "collection_id = $1 AND key = $2"
    if column != "str_value":
        rows = db.con.execute(
            f"SELECT label, {column} AS value FROM metadata WHERE {where} AND {column} IS NOT NULL",
            [collection_id, key]).fetchnumpy()
        return np.asarray(rows["label"], dtype=np.int64), np.asarray(rows["value"]), None
    distinct = f"SELECT str_value FROM metadata WHERE {where} AND str_value IS NOT NULL GROUP BY str_value"
    strings = db.con.execute(f"{distinct} ORDER BY str_value", [collection_id, key]).fetchnumpy()["str_value"]
    rows = db.con.execute(
        f"WITH c AS (SELECT str_value, row_number() OVER (ORDER BY str_value) - 1 AS code FROM ({distinct})) "
        "SELECT m.label, c.code FROM metadata m JOIN c ON m.str_value = c.str_value "
        "WHERE m.collection_id = $1 AND m.key = $2",
        [collection_id, key]).fetchnumpy()
    return np.asarray(rows["label"], dtype=np.int64), np.asarray(rows["code"], dtype=np.int64), \
        [str(s) for s in np.asarray(strings, dtype=object).tolist()]


def documents_since(db: Database, collection_id: str, seq: int) -> Tuple[np.ndarray, List[Optional[str]]]:
    """``(labels, documents)`` of the records written after ``seq`` (all: ``seq`` -1), for the text index."""
    columns = db.con.execute(
        "SELECT label, document FROM records WHERE collection_id = ? AND seq > ? ORDER BY label",
        [collection_id, seq],
    ).fetchnumpy()
    return np.asarray(columns["label"], dtype=np.int64), unmask(columns["document"]).tolist()


def count_documents(db: Database, collection_id: str) -> int:
    """How many of the collection's records have a document."""
    return int(db.con.execute(
        "SELECT count(document) FROM records WHERE collection_id = ?", [collection_id]).fetchone()[0])


def tombstones_since(db: Database, collection_id: str, seq: int) -> np.ndarray:
    """Labels deleted after ``seq``."""
    result = db.con.execute(
        "SELECT label FROM tombstones WHERE collection_id = ? AND seq > ?", [collection_id, seq]
    ).fetchnumpy()["label"]
    return np.asarray(result, dtype=np.int64)


# -- writes (each inside the caller's transaction) ------------------------------


def insert_records(db: Database, collection_id: str, seq: int, columns: Dict[str, np.ndarray]) -> None:
    """Insert full record rows (:func:`record_columns <vectordb.persistence.encoding.record_columns>`) as
    written by the write ``seq``; their typed metadata rows go in by :func:`insert_metadata`."""
    insert_columns(db, "records", columns, {"collection_id": collection_id, "seq": seq})


def insert_metadata(
    db: Database, collection_id: str, labels: np.ndarray, metadatas: List[Optional[Dict[str, Any]]]
) -> None:
    """Add the typed ``metadata`` and ``metadata_lists`` rows of these records."""
    scalars, items = split_lists(labels, metadatas)
    for table, (row_labels, row_metadatas) in (("metadata", scalars), ("metadata_lists", items)):
        for value_column, key, columns in metadata_columns(row_labels, row_metadatas):
            constants = {"collection_id": collection_id} if key is None else {"collection_id": collection_id, "key": key}
            insert_columns(db, table, columns, constants, rename={"value": value_column})


def delete_metadata(db: Database, collection_id: str) -> None:
    """Remove every typed metadata row of the collection (to write them anew)."""
    for table in METADATA_TABLES:
        db.con.execute(f"DELETE FROM {table} WHERE collection_id = ?", [collection_id])


def delete_rows(db: Database, collection_id: str, labels: np.ndarray) -> None:
    """Remove the records with ``labels`` and their typed metadata rows."""
    label_list = [int(x) for x in labels]
    for table in ("records", *METADATA_TABLES):
        db.con.execute(
            f"DELETE FROM {table} WHERE collection_id = ? AND label IN (SELECT unnest(?::BIGINT[]))",
            [collection_id, label_list],
        )


def insert_tombstones(db: Database, collection_id: str, seq: int, labels: np.ndarray) -> None:
    """Record that the delete ``seq`` removed ``labels`` (for catching up an older index file)."""
    columns = {"label": np.asarray(labels, dtype=np.int64)}
    insert_columns(db, "tombstones", columns, {"collection_id": collection_id, "seq": seq})


def forget_tombstones(db: Database, collection_id: str, up_to_seq: int) -> None:
    """Drop the tombstones of deletes up to ``up_to_seq``."""
    db.con.execute("DELETE FROM tombstones WHERE collection_id = ? AND seq <= ?", [collection_id, up_to_seq])


def tombstones_forgotten(collection_id: str, up_to_seq: int) -> Landed:
    """Whether :func:`forget_tombstones` is in the database."""
    def landed(con: duckdb.DuckDBPyConnection) -> bool:
        sql = "SELECT count(*) FROM tombstones WHERE collection_id = ? AND seq <= ?"
        return con.execute(sql, [collection_id, up_to_seq]).fetchone()[0] == 0
    return landed


def insert_columns(
    db: Database,
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
    db.con.register("_vectordb_batch", columns)
    try:
        db.con.execute(
            f"INSERT INTO {table} ({', '.join(targets)}) SELECT {', '.join(sources)} FROM _vectordb_batch",
            list(constants.values()),
        )
    finally:
        try:
            db.con.unregister("_vectordb_batch")
        except duckdb.Error:
            pass  # an aborted transaction refuses this; the original error is the one to raise
