"""The catalog: one ``collections`` row per collection, and its text analyzer in ``store_info``.

This module owns every statement on those rows: reading the catalog, adding, renaming
and removing a collection, advancing its ``seq``/``next_label``/``dimension`` after a
write, and the checks that tell whether such a change landed (:data:`Landed
<vectordb.persistence.database.Landed>`, read when a COMMIT fails). The functions run
single statements; transactions and the error guard are the :class:`Store
<vectordb.persistence.store.Store>`'s. All SQL is fixed text; values are parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional, Tuple

import duckdb

from vectordb.persistence.database import Database, Landed
from vectordb.persistence.encoding import from_json, to_json
from vectordb.persistence.schema import ANALYZER_KEY, COLLECTION_TABLES


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


_CATALOG = (
    "SELECT c.id, c.name, c.metadata, c.metric, c.dimension, c.ef_name, c.ef_config, c.next_label, c.seq, "
    f"c.position, a.value FROM collections c LEFT JOIN store_info a ON a.key = '{ANALYZER_KEY}' || c.id"
)
"""The catalog's rows, each with its collection's recorded analyzer (NULL when none)."""


def all_rows(db: Database) -> List[CollectionRow]:
    """Every collection, in creation order."""
    return [_collection_row(r) for r in db.con.execute(_CATALOG + " ORDER BY c.position").fetchall()]


def by_name(db: Database, name: str) -> Optional[CollectionRow]:
    """The collection called ``name``, or None."""
    found = db.con.execute(_CATALOG + " WHERE c.name = ?", [name]).fetchall()
    return _collection_row(found[0]) if found else None


def by_id(db: Database, collection_id: str) -> Optional[CollectionRow]:
    """The collection with this id, or None."""
    found = db.con.execute(_CATALOG + " WHERE c.id = ?", [collection_id]).fetchall()
    return _collection_row(found[0]) if found else None


def insert(db: Database, row: CollectionRow) -> CollectionRow:
    """Add ``row`` at the end of the creation order (inside the caller's transaction); returns it with its position."""
    position = db.con.execute("SELECT coalesce(max(position), -1) + 1 FROM collections").fetchone()[0]
    row = replace(row, position=int(position))
    db.con.execute(
        "INSERT INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [row.id, row.name, to_json(row.metadata), row.metric, row.dimension, row.ef_name,
         to_json(row.ef_config), row.next_label, row.seq, row.position],
    )
    if row.text_analyzer is not None:
        db.con.execute("INSERT INTO store_info VALUES (?, ?)", [ANALYZER_KEY + row.id, row.text_analyzer])
    return row


def rename(db: Database, row: CollectionRow) -> None:
    """Store ``row``'s name and metadata."""
    db.con.execute(
        "UPDATE collections SET name = ?, metadata = ? WHERE id = ?", [row.name, to_json(row.metadata), row.id]
    )


def renamed(row: CollectionRow) -> Landed:
    """Whether the catalog holds ``row``'s name and metadata (see :func:`rename`)."""
    def landed(con: duckdb.DuckDBPyConnection) -> bool:
        found = con.execute("SELECT name, metadata FROM collections WHERE id = ?", [row.id]).fetchall()
        return found == [(row.name, to_json(row.metadata))]
    return landed


def delete(db: Database, collection_id: str) -> None:
    """Remove a collection: all its rows, its analyzer and its catalog row (inside the caller's transaction)."""
    for table in COLLECTION_TABLES:
        db.con.execute(f"DELETE FROM {table} WHERE collection_id = ?", [collection_id])
    db.con.execute("DELETE FROM store_info WHERE key = ?", [ANALYZER_KEY + collection_id])
    db.con.execute("DELETE FROM collections WHERE id = ?", [collection_id])


def set_seq(db: Database, collection_id: str, seq: int) -> None:
    """Advance the collection's ``seq`` (every write and delete does, in its transaction)."""
    db.con.execute("UPDATE collections SET seq = ? WHERE id = ?", [seq, collection_id])


def set_written(db: Database, collection_id: str, seq: int, next_label: int, dimension: int) -> None:
    """Record a write: its ``seq``, the next free label and the dimension."""
    db.con.execute(
        "UPDATE collections SET seq = ?, next_label = ?, dimension = ? WHERE id = ?",
        [seq, next_label, dimension, collection_id],
    )


def set_next_label(db: Database, collection_id: str, next_label: int) -> None:
    """Raise the collection's next free label (a repair)."""
    db.con.execute("UPDATE collections SET next_label = ? WHERE id = ?", [next_label, collection_id])


def seq_is(collection_id: str, seq: int) -> Landed:
    """Whether the collection's ``seq`` is ``seq``: every write and delete advances it in its transaction."""
    def landed(con: duckdb.DuckDBPyConnection) -> bool:
        found = con.execute("SELECT seq FROM collections WHERE id = ?", [collection_id]).fetchall()
        return bool(found) and int(found[0][0]) == seq
    return landed


def count_is(collection_id: str, count: int) -> Landed:
    """Whether the catalog holds the collection (``count`` 1) or not (0)."""
    def landed(con: duckdb.DuckDBPyConnection) -> bool:
        return con.execute("SELECT count(*) FROM collections WHERE id = ?", [collection_id]).fetchone()[0] == count
    return landed


def _collection_row(r: Tuple) -> CollectionRow:
    return CollectionRow(
        id=r[0], name=r[1], metadata=from_json(r[2]), metric=r[3], dimension=r[4], ef_name=r[5],
        ef_config=from_json(r[6]), next_label=int(r[7]), seq=int(r[8]), position=int(r[9]), text_analyzer=r[10],
    )
