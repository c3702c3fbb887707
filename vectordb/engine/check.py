"""Integrity check of a store: do the records, the metadata rows, the indexes and the
catalog agree?

:func:`check_store` looks, for every collection, at: duplicate ids or labels; ``seq``
and ``next_label`` against the records and tombstones; embedding lengths against the
dimension; the ``metadata`` rows against each record's metadata JSON; the saved index
(caught up from the records, as an open would) and the index in memory, whose live
labels must equal the record labels and whose vectors must equal the stored
embeddings for a sample. Store-wide it looks for rows and index folders of no
collection and for files left by an interrupted compaction. With ``repair=True`` it
fixes what it can: rebuilds indexes, rewrites metadata rows, raises ``seq`` and
``next_label``, drops orphans; duplicates and wrong-length embeddings are only reported.

A saved index that is missing (never saved before a crash) or unusable (a save cut
short) is the normal state after a crash, and opening rebuilds it from the records:
it is reported as a *note*, which leaves ``ok`` True (``repair=True`` rebuilds it now).
A database that cannot be read raises :class:`~vectordb.errors.StoreCorruptedError`.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, List, Optional, Set, Tuple

import numpy as np

from vectordb.index.base import VectorIndex
from vectordb.engine import maintenance
from vectordb.engine.indexes import IMPLEMENTATION, IndexManager, index_params
from vectordb.persistence.store import DB_FILE, METADATA_TABLES, CollectionRow, Store, split_lists, value_column
from vectordb.types import CheckReport, Problem


SAMPLE = 64


class _Checker:
    """Runs the checks of one store, collecting problems (and repairing when asked)."""

    def __init__(self, store: Store, indexes: IndexManager, repair: bool) -> None:
        self.store = store
        self.indexes = indexes
        self.repair = repair
        self.report = CheckReport()

    @property
    def con(self) -> Any:
        return self.store.con

    def add(self, collection: Optional[str], what: str, fix: Any = None, note: bool = False) -> None:
        repaired = False
        if self.repair and fix is not None:
            fix()
            repaired = True
        (self.report.notes if note else self.report.problems).append(Problem(collection, what, repaired))

    def scalar(self, sql: str, params: List[Any]) -> Any:
        return self.con.execute(sql, params).fetchone()[0]

    def run(self) -> CheckReport:
        rows = self.store.collections()
        self.check_store({row.id for row in rows})
        for row in rows:
            self.check_collection(row)
            self.report.collections_checked += 1
        return self.report

    def check_store(self, known: Set[str]) -> None:
        for table in ("records", *METADATA_TABLES, "tombstones"):
            n = self.scalar(f"SELECT count(*) FROM {table} WHERE collection_id NOT IN (SELECT id FROM collections)", [])
            if n:
                self.add(None, f"{n} rows of table {table} belong to no collection",
                         lambda t=table: self.con.execute(
                             f"DELETE FROM {t} WHERE collection_id NOT IN (SELECT id FROM collections)"))
        path = self.store.path
        if path is None:
            return
        folder = os.path.join(path, "index")
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name not in known:
                self.add(None, f"index folder {name} belongs to no collection",
                         lambda n=name: shutil.rmtree(os.path.join(folder, n), ignore_errors=True))
        leftover = os.path.join(path, DB_FILE + maintenance.COMPACT_SUFFIX)
        if os.path.exists(leftover):
            self.add(None, f"{leftover} was left by an interrupted compaction",
                     lambda: maintenance.remove_leftovers(path))

    def check_collection(self, row: CollectionRow) -> None:
        cid, name = row.id, row.name
        dup_ids = self.scalar("SELECT count(*) FROM (SELECT id FROM records WHERE collection_id = ? "
                              "GROUP BY id HAVING count(*) > 1)", [cid])
        if dup_ids:
            self.add(name, f"{dup_ids} ids are stored more than once (not repairable automatically)")
        dup_labels = self.scalar("SELECT count(*) FROM (SELECT label FROM records WHERE collection_id = ? "
                                 "GROUP BY label HAVING count(*) > 1)", [cid])
        if dup_labels:
            self.add(name, f"{dup_labels} labels are used by more than one record (not repairable automatically)")
        self.check_counters(row)
        if row.dimension is not None:
            bad = self.scalar("SELECT count(*) FROM records WHERE collection_id = ? AND octet_length(embedding) != ?",
                              [cid, 4 * row.dimension])
            if bad:
                self.add(name, f"{bad} embeddings do not have the collection's dimension {row.dimension} "
                               "(not repairable automatically)")
        self.check_metadata(row)
        row = self.store.collection_by_id(cid) or row
        self.check_indexes(row)

    def check_counters(self, row: CollectionRow) -> None:
        cid = row.id
        top_seq = max(self.scalar("SELECT coalesce(max(seq), 0) FROM records WHERE collection_id = ?", [cid]),
                      self.scalar("SELECT coalesce(max(seq), 0) FROM tombstones WHERE collection_id = ?", [cid]))
        if top_seq > row.seq:
            self.add(row.name, f"seq {row.seq} is behind the records' seq {top_seq}",
                     lambda: self.con.execute("UPDATE collections SET seq = ? WHERE id = ?", [top_seq, cid]))
        top_label = self.scalar("SELECT coalesce(max(label), -1) FROM records WHERE collection_id = ?", [cid])
        if top_label >= row.next_label:
            self.add(row.name, f"next_label {row.next_label} would reuse stored label {top_label}",
                     lambda: self.con.execute("UPDATE collections SET next_label = ? WHERE id = ?",
                                              [top_label + 1, cid]))

    def check_metadata(self, row: CollectionRow) -> None:
        records = self.con.execute("SELECT label, metadata FROM records WHERE collection_id = ? ORDER BY label",
                                   [row.id]).fetchall()
        labels = np.asarray([r[0] for r in records], dtype=np.int64)
        metas = [None if r[1] is None else json.loads(r[1]) for r in records]
        wrong = 0
        for table, (row_labels, row_metas) in zip(METADATA_TABLES, split_lists(labels, metas)):
            expected = _metadata_rows(row_labels, row_metas)
            stored = set(self.con.execute(
                f"SELECT label, key, str_value, int_value, float_value, bool_value FROM {table} WHERE collection_id = ?",
                [row.id]).fetchall())
            stored_count = self.scalar(f"SELECT count(*) FROM {table} WHERE collection_id = ?", [row.id])
            wrong += len(stored.symmetric_difference(expected)) + abs(stored_count - len(stored))
        if wrong:
            self.add(row.name, f"{wrong} metadata rows disagree with the records' metadata",
                     lambda: self.rewrite_metadata(row, labels, metas))

    def rewrite_metadata(self, row: CollectionRow, labels: np.ndarray, metas: List[Any]) -> None:
        store = self.store
        with store._transaction("repairing metadata rows"):
            for table in METADATA_TABLES:
                self.con.execute(f"DELETE FROM {table} WHERE collection_id = ?", [row.id])
            store.insert_metadata(row.id, labels, metas)

    def check_indexes(self, row: CollectionRow) -> None:
        indexes = self.indexes
        indexes.wait()
        labels = self.store.select_labels(row.id)

        def rebuild() -> None:
            maintenance.rebuild_index(indexes, row)

        if row.dimension is None:
            return
        folder = indexes._folder_of(row.id)
        # An index made in this session is first saved on close or once enough changes accumulate.
        unsaved_new = indexes._saved_seq.get(row.id, 0) < 0
        if folder is not None and len(labels) and not (unsaved_new and not os.path.exists(folder)):
            loaded = IMPLEMENTATION.load(folder, index_params(row), row.dimension, row.id)
            if loaded is None:
                state = "unusable (a save cut short, or a damaged file)" if os.path.exists(
                    os.path.join(folder, "meta.json")) else "missing (it was not saved before the process ended)"
                self.add(row.name, f"the saved index is {state}; it is rebuilt from the records when first used",
                         rebuild, note=True)
            elif loaded[1] > row.seq:
                self.add(row.name, f"the saved index is of seq {loaded[1]}, later than the store's {row.seq}",
                         rebuild)
            else:
                indexes._catch_up(loaded[0], row.id, loaded[1])
                self.compare(row, loaded[0], labels, "the saved index (caught up)", rebuild)
        live = indexes.loaded(row.id)
        if live is not None:
            self.compare(row, live, labels, "the index in memory", rebuild)

    def compare(self, row: CollectionRow, index: VectorIndex, labels: np.ndarray, what: str, rebuild: Any) -> None:
        live = index.live_labels()
        if not np.array_equal(live, labels):
            missing, extra = np.setdiff1d(labels, live).size, np.setdiff1d(live, labels).size
            self.add(row.name, f"{what} lacks {missing} records and holds {extra} labels of no record", rebuild)
            return
        sample = labels if len(labels) <= SAMPLE else np.random.default_rng(0).choice(labels, SAMPLE, replace=False)
        if not len(sample):
            return
        stored = self.store.fetch(row.id, sample, embeddings=True)
        differs = index.compare_vectors(sample, np.stack([stored[int(label)][3] for label in sample]))
        if differs is not None:
            self.add(row.name, f"{what} {differs}", rebuild)


_VALUE_SLOTS = ("str_value", "int_value", "float_value", "bool_value")


def _metadata_rows(labels: np.ndarray, metas: List[Any]) -> Set[Tuple]:
    """The rows ``(label, key, str, int, float, bool)`` the metadata table should hold."""
    rows = set()
    for label, meta in zip(labels.tolist(), metas):
        for key, value in (meta or {}).items():
            slots: List[Any] = [None] * len(_VALUE_SLOTS)
            slots[_VALUE_SLOTS.index(value_column(value))] = value
            rows.add((label, key, *slots))
    return rows


def check_store(store: Store, indexes: IndexManager, repair: bool = False) -> CheckReport:
    """Check (and with ``repair`` fix) a store and its indexes; the engine holds its lock.

    After repairs the engine must drop what it derived from the rows (catalog rows,
    record and metadata caches): the repairs may have rewritten them."""
    with store.guard("checking the store"):
        return _Checker(store, indexes, repair).run()
