"""Keeps each collection's full-text (BM25) index in step with the store: load, catch up, save, check.

The text index (:class:`vectordb.text.bm25.TextIndex`) is derived from the records'
documents like the vector index is from their embeddings: DuckDB stays the only
source of truth. Its life cycle:

- **loaded on first use** (a text or hybrid query): from ``<store>/text/<id>.npz``
  (:mod:`vectordb.text.textfile`), which covers the record log up to its ``seq``, then
  caught up exactly without tombstones: documents no longer in the store are taken out
  (deleted since), and every record written after ``seq`` (new or changed since) is
  read from DuckDB and indexed again. A missing, damaged, hostile or inconsistent file
  (its document count then disagrees with the store) is replaced by an index built
  from every document;
- **kept in step**: every committed write and delete of this engine (the store's only
  writer) is applied at once, under the collection's write lock, so a query always sees
  every acknowledged write; until the index is loaded, writes leave it alone (the
  catch-up picks them up);
- **saved** atomically once the changes since the last save reach a share of its size
  (as the vector index), after a build from the records, on close, and by ``compact()``
  (which rebuilds it); a store in memory or opened read-only never saves;
- **checked** by :meth:`TextIndexes.check` (``client.check()``): the saved file (caught
  up as an open would) and the index in memory are compared, term by term, with the
  documents analysed afresh; ``repair=True`` rebuilds and saves.

A kill at any moment loses nothing: the file on disk is the old or the new one, and
whatever the file lacks is in DuckDB with a later ``seq``.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Dict, Iterable, List, Optional

import numpy as np

from vectordb.engine.structure import DEFAULT_SAVE_POLICY, DerivedStructure, SavedStructures, SavePolicy
from vectordb.persistence.store import CollectionRow, RecordBatch, Store
from vectordb.persistence.turns import Turns, save_gate
from vectordb.text import textfile
from vectordb.text.analyzer import analyzer
from vectordb.text.bm25 import TextIndex
from vectordb.types import CheckReport, Problem
from vectordb.validation import DEFAULT_TEXT_ANALYZER, LEGACY_TEXT_ANALYZER, TEXT_ANALYZER_KEY, TEXT_INDEX_KEY

log = logging.getLogger("vectordb")


def text_enabled(row: CollectionRow) -> bool:
    """Whether the collection keeps a text index (``text:index``, default True)."""
    return bool((row.metadata or {}).get(TEXT_INDEX_KEY, True))


def analyzer_name(row: CollectionRow) -> str:
    """The collection's analyzer: the one the catalog recorded at its creation, else (a
    collection made before the catalog recorded analyzers) its ``text:analyzer``, else
    ``default``, the analyzer it has always been indexed with."""
    if row.text_analyzer is not None:
        return row.text_analyzer
    return str((row.metadata or {}).get(TEXT_ANALYZER_KEY, LEGACY_TEXT_ANALYZER))


def new_analyzer_name(metadata: Optional[Dict[str, Any]]) -> str:
    """The analyzer a collection created with ``metadata`` gets, for the catalog to record:
    its ``text:analyzer``, else :data:`~vectordb.validation.DEFAULT_TEXT_ANALYZER`.

    Raises MissingDependencyError when the collection keeps a text index and the analyzer
    needs a package that is not installed (``english``: PyStemmer), so that no collection is
    created whose text queries could only fail.
    """
    meta = metadata or {}
    name = str(meta.get(TEXT_ANALYZER_KEY, DEFAULT_TEXT_ANALYZER))
    if meta.get(TEXT_INDEX_KEY, True):
        analyzer(name)
    return name


@dataclass
class TextEnv:
    """What every collection's text index state of one store shares: where the files go (None:
    a store in memory), whether they may be written, the save gate and the save policy."""

    folder: Optional[str]
    read_only: bool
    saving: Callable[..., ContextManager[bool]]
    policy: SavePolicy

    def path_of(self, collection_id: str) -> Optional[str]:
        """The file of a collection's saved text index (None for a store in memory)."""
        return None if self.folder is None else os.path.join(self.folder, collection_id + ".npz")


class TextIndexState(DerivedStructure):
    """One collection's text index in memory: the index, the ``seq`` it reflects, its unsaved changes."""

    def __init__(self, env: TextEnv, collection_id: str, index: TextIndex, position: int, unsaved: int) -> None:
        self.env = env
        self.collection_id = collection_id
        self.index = index
        self.position = position
        self.unsaved = unsaved

    @property
    def size(self) -> int:
        return self.index.count

    def apply_write(self, row: CollectionRow, batch: RecordBatch) -> bool:
        return self.put(row, batch.labels, batch.documents)

    def put(self, row: CollectionRow, labels: np.ndarray, documents: List[Optional[str]]) -> bool:
        """Index (again) the documents of a committed write; False if that failed (see :meth:`apply_write`)."""
        index = self.index
        return self._change(row, lambda: index.put(labels, documents), len(labels))

    def apply_delete(self, row: CollectionRow, labels: np.ndarray) -> bool:
        index = self.index
        return self._change(row, lambda: index.remove(labels), len(labels))

    def _change(self, row: CollectionRow, change: Callable[[], None], n: int) -> bool:
        try:
            change()
        except Exception:  # the index is a cache: forgotten, it is caught up or rebuilt on next use
            log.exception("text index update of %r failed; it will be rebuilt from the records", row.name)
            return False
        self.position = row.seq
        self.unsaved += n
        if self.save_due(self.env.policy):
            self.save(row)
        return True

    def save(self, row: Optional[CollectionRow] = None) -> None:
        """Save the index as of the position it reflects; a failure (a full disk) is only logged."""
        path = self.env.path_of(self.collection_id)
        if path is None or self.env.read_only:
            return
        with self.env.saving() as allowed:
            if not allowed:
                return  # another process's turn, or catching up: saved later, inside a turn
            try:
                textfile.save(self.index, path, self.position, self.collection_id)
            except OSError as exc:
                log.warning("saving the text index of %s failed (%s); it is caught up from the records later",
                            self.collection_id, exc)
                return
        self.unsaved = 0


class TextIndexes(SavedStructures[TextIndexState]):
    """The text indexes of one store, and their files under ``<path>/text/``."""

    def __init__(self, store: Store, folder: Optional[str], read_only: bool = False,
                 turns: Optional[Turns] = None, policy: SavePolicy = DEFAULT_SAVE_POLICY) -> None:
        """``turns``: a store shared by processes saves files only inside this process's turn;
        ``policy``: when an index with unsaved changes is saved (also :attr:`policy`)."""
        super().__init__()
        self.store = store
        self.folder = folder
        self.read_only = read_only
        self._env = TextEnv(folder, read_only, save_gate(turns), policy)
        self._loading = threading.Lock()

    def path_of(self, collection_id: str) -> Optional[str]:
        """The file of a collection's saved text index (None for a store in memory)."""
        return self._env.path_of(collection_id)

    def remove_orphans(self, known_ids: Iterable[str]) -> None:
        """Delete the files of collections no longer in the catalog (and temporary files)."""
        if self.folder is None or self.read_only or not os.path.isdir(self.folder):
            return
        keep = {cid + ".npz" for cid in known_ids}
        for name in os.listdir(self.folder):
            if name not in keep:
                try:
                    os.remove(os.path.join(self.folder, name))
                except OSError:
                    pass  # removed again on a later open

    # -- the life cycle ----------------------------------------------------------

    def loaded(self, collection_id: str) -> Optional[TextIndex]:
        """The collection's index if it is in memory."""
        state = self._states.get(collection_id)
        return None if state is None else state.index

    def get(self, row: CollectionRow) -> TextIndex:
        """The collection's index, loaded and caught up (or built) on first use; the caller
        holds the collection's read lock, so no write runs meanwhile."""
        state = self._states.get(row.id)
        if state is None:
            with self._loading:
                state = self._states.get(row.id)
                if state is None:
                    state = self._open(row)
        return state.index

    def _open(self, row: CollectionRow) -> TextIndexState:
        """Load the saved index and catch it up with the records (or build it from them)."""
        path = self.path_of(row.id)
        chosen = analyzer(analyzer_name(row))
        loaded = textfile.load(path, chosen, row.id) if path is not None else None
        index: Optional[TextIndex] = None
        changes = 0
        if loaded is not None and loaded[1] <= row.seq:
            index, seq = loaded
            changes = catch_up(self.store, index, row.id, seq)
            if index.count != self.store.count_documents(row.id):
                log.warning("text index of collection %r disagrees with its records; rebuilding it", row.name)
                index = None
        elif loaded is not None:
            log.warning("text index of collection %r is later than its records; rebuilding it", row.name)
        if index is None:
            index = self.build(row)
            changes = -1
        state = self._put(row.id, TextIndexState(self._env, row.id, index, row.seq, max(changes, 0)))
        if changes < 0 or state.save_due(self.policy):
            state.save(row)
        return state

    def build(self, row: CollectionRow) -> TextIndex:
        """A new index of every document of the collection, read from the store."""
        index = TextIndex(analyzer(analyzer_name(row)))
        labels, documents = self.store.documents_since(row.id, -1)
        for start in range(0, len(labels), 10_000):
            index.put(labels[start: start + 10_000], documents[start: start + 10_000])
        return index

    def rebuild(self, row: CollectionRow) -> None:
        """Replace the collection's index by one built from its records, and save it (``compact()``)."""
        if not text_enabled(row):
            return
        state = self._put(row.id, TextIndexState(self._env, row.id, self.build(row), row.seq, 0))
        state.save(row)

    def written(self, row: CollectionRow, labels: np.ndarray, documents: List[Optional[str]]) -> None:
        """Apply a committed write (``row`` is the collection after it) to the loaded index."""
        state = self._states.get(row.id)
        if state is not None and not state.put(row, labels, documents):
            self.forget(row.id)

    def deleted(self, row: CollectionRow, labels: np.ndarray) -> None:
        """Apply a committed delete (``row`` is the collection after it) to the loaded index."""
        state = self._states.get(row.id)
        if state is not None and not state.apply_delete(row, labels):
            self.forget(row.id)

    def flush(self) -> None:
        """Save every index with unsaved changes (on close)."""
        for _, state in self.states():
            if state.unsaved:
                state.save()

    def _remove_files(self, collection_id: str) -> None:
        path = self.path_of(collection_id)
        if path is not None and not self.read_only and os.path.exists(path):
            os.remove(path)

    # -- checking -----------------------------------------------------------------

    def check(self, rows: Iterable[CollectionRow], report: CheckReport, repair: bool) -> None:
        """Compare each collection's saved and in-memory text index with its documents analysed
        afresh; add what disagrees to ``report`` (and with ``repair``, rebuild and save)."""
        for row in rows:
            if not text_enabled(row):
                continue
            expected = self.build(row)
            path = self.path_of(row.id)
            problems = []
            if path is not None and os.path.exists(path):
                loaded = textfile.load(path, expected.analyzer, row.id)
                if loaded is None:
                    report_note = "the saved text index is unusable (a damaged file); it is rebuilt when first used"
                    report.notes.append(Problem(row.name, report_note, repaired=repair))
                    if repair:
                        self.rebuild(row)
                elif loaded[1] > row.seq:
                    problems.append(f"the saved text index is of seq {loaded[1]}, later than the store's {row.seq}")
                else:
                    saved, seq = loaded
                    saved.remove(np.setdiff1d(saved.live_labels(), self.store.select_labels(row.id)))
                    saved.put(*self.store.documents_since(row.id, seq))
                    differs = difference(saved, expected)
                    if differs:
                        problems.append(f"the saved text index (caught up) {differs}")
            live = self.loaded(row.id)
            if live is not None:
                differs = difference(live, expected)
                if differs:
                    problems.append(f"the text index in memory {differs}")
            for what in problems:
                report.problems.append(Problem(row.name, what, repaired=repair))
            if problems and repair:
                self.rebuild(row)


def catch_up(store: Store, index: TextIndex, collection_id: str, seq: int) -> int:
    """Catch a saved ``index`` (covering the records up to ``seq``) up with the records, exactly
    and without tombstones: take out the documents no longer stored, index again every record
    written after ``seq``; the number of changes."""
    gone = np.setdiff1d(index.live_labels(), store.select_labels(collection_id), assume_unique=True)
    index.remove(gone)
    labels, documents = store.documents_since(collection_id, seq)
    index.put(labels, documents)
    return len(gone) + len(labels)


def difference(index: TextIndex, expected: TextIndex) -> Optional[str]:
    """How ``index`` differs from ``expected`` (documents, their lengths and term counts), or None."""
    mine, theirs = index.live_labels(), expected.live_labels()
    if not np.array_equal(mine, theirs):
        missing, extra = np.setdiff1d(theirs, mine).size, np.setdiff1d(mine, theirs).size
        return f"lacks {missing} documents and holds {extra} of no record"
    wrong = sum(1 for a, b in zip(index.documents(), expected.documents()) if a != b)
    if wrong or index.total_length != expected.total_length:
        return f"disagrees with {wrong} documents' terms"
    return None

