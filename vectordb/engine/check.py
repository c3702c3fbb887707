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

The statements behind each look, and the repairs of rows, are the store's
(:class:`~vectordb.persistence.checks.Integrity`, as ``store.integrity``): this module
decides what to check, what counts as a problem and how to report it.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, List, Optional, Set, Tuple

import numpy as np

from vectordb.index.base import VectorIndex
from vectordb.engine import maintenance
from vectordb.engine.indexes import IMPLEMENTATION, VectorIndexes, index_params
from vectordb.persistence import compaction
from vectordb.persistence.checks import Integrity
from vectordb.persistence.encoding import VALUE_COLUMNS, split_lists, value_column
from vectordb.persistence.schema import COLLECTION_TABLES, METADATA_TABLES
from vectordb.persistence.store import CollectionRow, Store
from vectordb.types import CheckReport, Problem


SAMPLE = 64


class _Checker:
    """Runs the checks of one store, collecting problems (and repairing when asked)."""

    def __init__(self, store: Store, indexes: VectorIndexes, repair: bool) -> None:
        self.store = store
        self.indexes = indexes
        self.repair = repair
        self.report = CheckReport()

    @property
    def integrity(self) -> Integrity:
        return self.store.integrity

    def add(self, collection: Optional[str], what: str, fix: Any = None, note: bool = False) -> None:
        repaired = False
        if self.repair and fix is not None:
            fix()
            repaired = True
        (self.report.notes if note else self.report.problems).append(Problem(collection, what, repaired))

    def run(self) -> CheckReport:
        rows = self.store.collections()
        self.check_store({row.id for row in rows})
        for row in rows:
            self.check_collection(row)
            self.report.collections_checked += 1
        return self.report

    def check_store(self, known: Set[str]) -> None:
        for table in COLLECTION_TABLES:
            n = self.integrity.orphan_rows(table)
            if n:
                self.add(None, f"{n} rows of table {table} belong to no collection",
                         lambda t=table: self.integrity.drop_orphans(t))
        path = self.store.path
        if path is None:
            return
        folder = os.path.join(path, "index")
        for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
            if name not in known:
                self.add(None, f"index folder {name} belongs to no collection",
                         lambda n=name: shutil.rmtree(os.path.join(folder, n), ignore_errors=True))
        leftover = compaction.leftover(path)
        if leftover is not None:
            self.add(None, f"{leftover} was left by an interrupted compaction",
                     lambda: compaction.remove_leftovers(path))

    def check_collection(self, row: CollectionRow) -> None:
        cid, name = row.id, row.name
        dup_ids = self.integrity.duplicate_ids(cid)
        if dup_ids:
            self.add(name, f"{dup_ids} ids are stored more than once (not repairable automatically)")
        dup_labels = self.integrity.duplicate_labels(cid)
        if dup_labels:
            self.add(name, f"{dup_labels} labels are used by more than one record (not repairable automatically)")
        self.check_counters(row)
        if row.dimension is not None:
            bad = self.integrity.wrong_length_embeddings(cid, row.dimension)
            if bad:
                self.add(name, f"{bad} embeddings do not have the collection's dimension {row.dimension} "
                               "(not repairable automatically)")
        self.check_metadata(row)
        row = self.store.collection_by_id(cid) or row
        self.check_indexes(row)

    def check_counters(self, row: CollectionRow) -> None:
        cid = row.id
        top_seq = self.integrity.last_seq(cid)
        if top_seq > row.seq:
            self.add(row.name, f"seq {row.seq} is behind the records' seq {top_seq}",
                     lambda: self.integrity.set_seq(cid, top_seq))
        top_label = self.integrity.last_label(cid)
        if top_label >= row.next_label:
            self.add(row.name, f"next_label {row.next_label} would reuse stored label {top_label}",
                     lambda: self.integrity.set_next_label(cid, top_label + 1))

    def check_metadata(self, row: CollectionRow) -> None:
        labels, metas = self.integrity.record_metadata(row.id)
        wrong = 0
        for table, (row_labels, row_metas) in zip(METADATA_TABLES, split_lists(labels, metas)):
            expected = _metadata_rows(row_labels, row_metas)
            stored, stored_count = self.integrity.metadata_rows(row.id, table)
            wrong += len(stored.symmetric_difference(expected)) + abs(stored_count - len(stored))
        if wrong:
            self.add(row.name, f"{wrong} metadata rows disagree with the records' metadata",
                     lambda: self.integrity.rewrite_metadata(row.id, labels, metas))

    def check_indexes(self, row: CollectionRow) -> None:
        indexes = self.indexes
        indexes.wait()
        labels = self.store.select_labels(row.id)

        def rebuild() -> None:
            maintenance.rebuild_index(indexes, row)

        if row.dimension is None:
            return
        folder = indexes.folder_of(row.id)
        # An index made in this session is first saved on close or once enough changes accumulate.
        unsaved_new = (indexes.saved_position(row.id) or 0) < 0
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
                indexes.catch_up(loaded[0], row.id, loaded[1])
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


def _metadata_rows(labels: np.ndarray, metas: List[Any]) -> Set[Tuple]:
    """The rows ``(label, key, str, int, float, bool)`` the metadata table should hold."""
    rows = set()
    for label, meta in zip(labels.tolist(), metas):
        for key, value in (meta or {}).items():
            slots: List[Any] = [None] * len(VALUE_COLUMNS)
            slots[VALUE_COLUMNS.index(value_column(value))] = value
            rows.add((label, key, *slots))
    return rows


def check_store(store: Store, indexes: VectorIndexes, repair: bool = False) -> CheckReport:
    """Check (and with ``repair`` fix) a store and its indexes; the engine holds its lock.

    After repairs the engine must drop what it derived from the rows (catalog rows,
    record and metadata caches): the repairs may have rewritten them."""
    with store.guard("checking the store"):
        return _Checker(store, indexes, repair).run()
