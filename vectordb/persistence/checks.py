"""The integrity queries of a store, and the repairs of its rows, for :mod:`vectordb.engine.check`.

The check decides what to look at and what to report; the statements it needs (rows of
no collection, duplicate ids and labels, embeddings of the wrong length, the highest
``seq`` and label, the stored metadata rows) and the repairs it may make (dropping
orphan rows, raising ``seq`` and ``next_label``, rewriting the typed metadata rows)
live here, beside the schema they read. The caller holds the database's error guard
(:meth:`Store.guard <vectordb.persistence.store.Store.guard>`). Table names come from
:mod:`~vectordb.persistence.schema`; values are parameters.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from vectordb.persistence import catalog, records
from vectordb.persistence.database import Database
from vectordb.persistence.encoding import from_json
from vectordb.persistence.schema import COLLECTION_TABLES, METADATA_TABLES
from vectordb.persistence.transaction import Transaction


class Integrity:
    """The integrity queries and repairs of one store's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _scalar(self, sql: str, params: List[Any]) -> Any:
        return self.db.con.execute(sql, params).fetchone()[0]

    # -- store-wide ---------------------------------------------------------

    def orphan_rows(self, table: str) -> int:
        """How many rows of ``table`` (one of :data:`COLLECTION_TABLES`) belong to no collection."""
        assert table in COLLECTION_TABLES
        return self._scalar(f"SELECT count(*) FROM {table} WHERE collection_id NOT IN (SELECT id FROM collections)", [])

    def drop_orphans(self, table: str) -> None:
        """Delete the rows of ``table`` that belong to no collection."""
        assert table in COLLECTION_TABLES
        self.db.con.execute(f"DELETE FROM {table} WHERE collection_id NOT IN (SELECT id FROM collections)")

    # -- one collection -----------------------------------------------------

    def duplicate_ids(self, collection_id: str) -> int:
        """How many ids are stored more than once."""
        return self._scalar("SELECT count(*) FROM (SELECT id FROM records WHERE collection_id = ? "
                            "GROUP BY id HAVING count(*) > 1)", [collection_id])

    def duplicate_labels(self, collection_id: str) -> int:
        """How many labels are used by more than one record."""
        return self._scalar("SELECT count(*) FROM (SELECT label FROM records WHERE collection_id = ? "
                            "GROUP BY label HAVING count(*) > 1)", [collection_id])

    def wrong_length_embeddings(self, collection_id: str, dimension: int) -> int:
        """How many embeddings are not ``dimension`` float32 values long."""
        return self._scalar("SELECT count(*) FROM records WHERE collection_id = ? AND octet_length(embedding) != ?",
                            [collection_id, 4 * dimension])

    def last_seq(self, collection_id: str) -> int:
        """The highest ``seq`` of the collection's records and tombstones (0 when none)."""
        in_records = self._scalar("SELECT coalesce(max(seq), 0) FROM records WHERE collection_id = ?", [collection_id])
        in_tombstones = self._scalar("SELECT coalesce(max(seq), 0) FROM tombstones WHERE collection_id = ?",
                                     [collection_id])
        return max(in_records, in_tombstones)

    def last_label(self, collection_id: str) -> int:
        """The highest label of the collection's records (-1 when none)."""
        return self._scalar("SELECT coalesce(max(label), -1) FROM records WHERE collection_id = ?", [collection_id])

    def set_seq(self, collection_id: str, seq: int) -> None:
        """Raise the collection's ``seq`` (a repair)."""
        catalog.set_seq(self.db, collection_id, seq)

    def set_next_label(self, collection_id: str, next_label: int) -> None:
        """Raise the collection's next free label (a repair)."""
        catalog.set_next_label(self.db, collection_id, next_label)

    def record_metadata(self, collection_id: str) -> Tuple[np.ndarray, List[Optional[Dict[str, Any]]]]:
        """``(labels, metadatas)`` of every record, in label order, decoded from ``records.metadata``."""
        found = self.db.con.execute("SELECT label, metadata FROM records WHERE collection_id = ? ORDER BY label",
                                    [collection_id]).fetchall()
        return np.asarray([r[0] for r in found], dtype=np.int64), [from_json(r[1]) for r in found]

    def metadata_rows(self, collection_id: str, table: str) -> Tuple[Set[Tuple], int]:
        """The distinct ``(label, key, str, int, float, bool)`` rows of ``table`` (one of
        :data:`METADATA_TABLES`) for the collection, and how many rows it holds."""
        assert table in METADATA_TABLES
        stored = set(self.db.con.execute(
            f"SELECT label, key, str_value, int_value, float_value, bool_value FROM {table} WHERE collection_id = ?",
            [collection_id]).fetchall())
        return stored, self._scalar(f"SELECT count(*) FROM {table} WHERE collection_id = ?", [collection_id])

    def rewrite_metadata(self, collection_id: str, labels: np.ndarray, metadatas: List[Any]) -> None:
        """Replace the collection's typed metadata rows by those of ``metadatas``, in one transaction."""
        with Transaction(self.db, "repairing metadata rows", None):
            records.delete_metadata(self.db, collection_id)
            records.insert_metadata(self.db, collection_id, labels, metadatas)
