"""Records in Milvus: writes, deletes, counts and gets, and the reads that searches share.

:class:`Records` owns a backend's record operations (searches are
:mod:`vectordb.milvus.search`'s, built on :meth:`Records.select` and :meth:`Records.records`),
the write locks of this process and the insertion-order numbers it gives. Writes are planned
by the rules every backend applies (:func:`vectordb.planner.plan`); rows are encoded and
decoded by the data collection's :class:`vectordb.milvus.layout.Layout` only; filters are
narrowed by Milvus and decided exactly by :func:`vectordb.milvus.matching.matching`. Record
ids reach Milvus only inside ``id in [...]`` templates
(:func:`vectordb.milvus.expressions.one_of`), never through pymilvus's
``get``/``delete(ids=...)``, which splice ids into the expression unescaped.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from vectordb import validation as v
from vectordb.backend import CollectionInfo, Embed
from vectordb.embedding_functions.base import missing_function_error
from vectordb.errors import InvalidArgumentError
from vectordb.filters import Filter
from vectordb.milvus import expressions as x
from vectordb.milvus.calls import Calls
from vectordb.milvus.catalog import MissingData, data_name
from vectordb.milvus.layout import VARCHAR_BYTES
from vectordb.milvus.matching import matching
from vectordb.milvus.registry import Registry
from vectordb.planner import Stored, plan, texts_to_embed
from vectordb.requests import CollectionRef, Delete, Get, Write
from vectordb.results import Record, get_result
from vectordb.types import GetResult

log = logging.getLogger("vectordb")

WRITE_BATCH = 1000
"""Rows per Milvus upsert (a write of more rows is sent in several)."""
ID_BATCH = 4096
"""Ids per ``id in [...]`` lookup."""


def _check_sizes(write: Write) -> None:
    for record_id in write.ids:
        if len(record_id.encode("utf-8")) > VARCHAR_BYTES:
            raise InvalidArgumentError(f"ids: {record_id[:40]!r}... is longer than Milvus stores ({VARCHAR_BYTES} bytes)")
    for i, document in enumerate(write.documents or ()):
        if document is not None and len(document.encode("utf-8")) > VARCHAR_BYTES:
            raise InvalidArgumentError(f"documents[{i}]: longer than Milvus stores ({VARCHAR_BYTES} bytes)")


class Records:
    """The record operations of one backend (see the module docstring).

    Args:
        calls: how requests reach Milvus.
        registry: the collections' descriptions and layouts, and the errors for missing ones.
    """

    def __init__(self, calls: Calls, registry: Registry) -> None:
        self._calls = calls
        self._registry = registry
        self._lock = threading.Lock()
        self._last_seq = 0
        self._write_locks: Dict[str, threading.Lock] = {}

    def _write_lock(self, collection_id: str) -> threading.Lock:
        """The lock that runs this process's writes of one collection one at a time (each reads, then writes)."""
        with self._lock:
            return self._write_locks.setdefault(collection_id, threading.Lock())

    def _next_seq(self, n: int) -> int:
        """The first of ``n`` new insertion-order numbers (nanoseconds, increasing in this process)."""
        with self._lock:
            first = max(time.time_ns(), self._last_seq + 1)
            self._last_seq = first + n
            return first

    # -- lookups ------------------------------------------------------------

    def _fetch(self, name: str, ids: Sequence[str], fields: List[str]) -> Dict[str, Dict[str, Any]]:
        """The stored rows of ``ids`` (those that exist), by id."""
        found: Dict[str, Dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), ID_BATCH):
            chunk = unique[start:start + ID_BATCH]
            for row in self._calls.query_rows(name, x.one_of("id", chunk), fields):
                found[row["id"]] = row
        return found

    def select(self, info: CollectionInfo, ids: Optional[List[str]], filter: Optional[Filter]) -> List[str]:
        """Ids matching every given condition: by ``ids`` in their order, else in insertion order.

        Raises:
            MissingData: the collection's data collection is gone.
        """
        name = data_name(info.id)
        layout = self._registry.layout(name)
        fields = ["id", "seq"] + (layout.content_fields if filter is not None else [])
        if ids is not None:
            found = self._fetch(name, ids, fields)
            rows = [found[i] for i in dict.fromkeys(ids) if i in found]
        else:
            rows = self._calls.query_rows(name, x.narrowing(filter, self._registry.features.infix_like), fields)
            rows.sort(key=lambda r: r["seq"])
        if filter is not None and rows:
            keep = matching(filter, [layout.document(r) for r in rows], [layout.metadata(r) for r in rows])
            rows = [rows[i] for i in keep]
        return [r["id"] for r in rows]

    def records(self, info: CollectionInfo, ids: List[str], include: Sequence[str]) -> List[Record]:
        """The records of ``ids``, in their order (those that still exist: another process may
        delete a record between a selection and this); embeddings only if ``include`` has them.

        Raises:
            MissingData: the collection's data collection is gone.
        """
        name = data_name(info.id)
        layout = self._registry.layout(name)
        fields = ["id"] + layout.content_fields + (["vec"] if "embeddings" in include else [])
        found = self._fetch(name, ids, fields)
        out: List[Record] = []
        for record_id in ids:
            row = found.get(record_id)
            if row is not None:
                vector = np.asarray(row["vec"], dtype=np.float32) if "vec" in row else None
                out.append((record_id, layout.document(row), layout.metadata(row), vector))
        return out

    # -- writes -------------------------------------------------------------

    def write(self, ref: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        """Apply ``write`` (see :meth:`vectordb.backend.Backend.write`), in batches of :data:`WRITE_BATCH` rows."""
        _check_sizes(write)
        with self._write_lock(ref.id):
            return self._write(ref, write, embed)

    def _write(self, ref: CollectionRef, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        info = self._registry.resolve(ref)
        existing: Dict[str, int] = {}
        stored: Stored = {}
        if info.dimension is not None:
            try:
                layout = self._registry.layout(data_name(info.id))
                fields = ["id", "seq"] + ([] if write.mode == "add" else layout.content_fields + ["vec"])
                rows = self._fetch(data_name(info.id), write.ids, fields)
            except MissingData:
                raise self._registry.missing(ref) from None
            for record_id, row in rows.items():
                existing[record_id] = int(row["seq"])
                if write.mode != "add":
                    stored[int(row["seq"])] = (record_id, layout.document(row), layout.metadata(row),
                                               np.asarray(row["vec"], dtype=np.float32))
        texts = texts_to_embed(write, existing, stored)
        missing = list(dict.fromkeys(texts))
        embedded: Dict[str, np.ndarray] = {}
        if missing:
            if embed is None:
                raise missing_function_error(ref.name)
            embedded.update(zip(missing, embed(missing)))
        planned = plan(self._next_seq(len(write.ids)), write, existing, stored, embedded)
        if planned.skipped:
            what = "already exist and were left unchanged" if write.mode == "add" else "do not exist and were skipped"
            log.warning("%s %r: %d ids %s: %s", write.mode, ref.name, len(planned.skipped), what,
                        ", ".join(planned.skipped[:10]))
        batch = planned.batch
        if len(batch.labels) == 0:
            return info
        got = batch.embeddings.shape[1]
        if info.dimension is None:
            info = self._registry.fix_dimension(info, got)
        elif got != info.dimension:
            raise v.dimension_error(planned.source, got, info.dimension)
        target = data_name(info.id)
        try:
            layout = self._registry.layout(target)
            rows_out = [
                layout.row(record_id, int(label), vector.tolist(), document, metadata)
                for label, record_id, vector, document, metadata in zip(
                    batch.labels.tolist(), batch.ids, np.asarray(batch.embeddings, dtype=np.float32),
                    batch.documents, batch.metadatas)
            ]
            for start in range(0, len(rows_out), WRITE_BATCH):
                self._calls.write_call(target, self._calls.client.upsert, rows_out[start:start + WRITE_BATCH])
        except MissingData:
            raise self._registry.missing(ref) from None
        return info

    def delete(self, ref: CollectionRef, delete: Delete) -> int:
        """Remove the records ``delete`` names (in pieces of :data:`ID_BATCH` ids); how many."""
        def run(info: CollectionInfo) -> int:
            chosen = self.select(info, delete.ids, delete.filter)[:delete.limit]
            pieces = [x.one_of("id", chosen[start:start + ID_BATCH]) for start in range(0, len(chosen), ID_BATCH)]
            for piece in pieces:
                self._calls.delete_where(data_name(info.id), piece, settle=False)
            if pieces:
                self._calls.settle(data_name(info.id), pieces[-1])
            return len(chosen)

        with self._write_lock(ref.id):
            return self._registry.with_data(ref, run, 0)

    # -- reads --------------------------------------------------------------

    def count(self, ref: CollectionRef) -> int:
        """How many records the collection holds."""
        def run(info: CollectionInfo) -> int:
            rows = self._calls.data_call(data_name(info.id), self._calls.client.query, filter="",
                                         output_fields=["count(*)"], consistency_level=self._calls.read_level)
            return int(rows[0]["count(*)"])

        return self._registry.with_data(ref, run, 0)

    def get(self, ref: CollectionRef, get: Get) -> GetResult:
        """The records ``get`` asks for: by id in the order asked, or by filter in insertion order."""
        def run(info: CollectionInfo) -> List[Record]:
            chosen = self.select(info, get.ids, get.filter)[get.offset or 0:]
            if get.limit is not None:
                chosen = chosen[:get.limit]
            return self.records(info, chosen, get.include) if chosen else []

        return get_result(self._registry.with_data(ref, run, []), get.include)
