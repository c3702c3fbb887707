"""The record half of :class:`vectordb.milvus.backend.MilvusBackend`: writes, deletes, counts and gets.

A mixin over the backend's helpers (``call``/``data_call``, ``query_rows``,
``resolve``, ``missing``, ``layout``): kept apart so each module stays small (queries
are in :mod:`vectordb.milvus.search`). Rows are encoded and decoded by the data
collection's :class:`vectordb.milvus.layout.Layout` only. Record ids reach
Milvus only inside ``id in [...]`` templates (:func:`vectordb.milvus.expressions.one_of`),
never through pymilvus's ``get``/``delete(ids=...)``, which splice ids into the
expression unescaped.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vectordb import validation as v
from vectordb.backend import CollectionInfo, Embed, Write
from vectordb.embedding_functions.base import missing_function_error
from vectordb.engine.writes import plan, texts_to_embed
from vectordb.errors import InvalidArgumentError
from vectordb.filters import Filter
from vectordb.milvus import expressions as x
from vectordb.milvus.catalog import MissingData, data_name
from vectordb.milvus.layout import VARCHAR_BYTES
from vectordb.milvus.matching import matching
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
    """Record operations of the Milvus backend (see the module docstring)."""

    # -- lookups ------------------------------------------------------------

    def _fetch(self, name: str, ids: Sequence[str], fields: List[str]) -> Dict[str, Dict[str, Any]]:
        """The stored rows of ``ids`` (those that exist), by id."""
        found: Dict[str, Dict[str, Any]] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), ID_BATCH):
            chunk = unique[start:start + ID_BATCH]
            for row in self.query_rows(name, x.one_of("id", chunk), fields):  # type: ignore[attr-defined]
                found[row["id"]] = row
        return found

    def _select(self, info: CollectionInfo, ids: Optional[List[str]], filter: Optional[Filter]) -> List[str]:
        """Ids matching every given condition: by ``ids`` in their order, else in insertion order."""
        name = data_name(info.id)
        layout = self.layout(name)  # type: ignore[attr-defined]
        fields = ["id", "seq"] + (layout.content_fields if filter is not None else [])
        if ids is not None:
            found = self._fetch(name, ids, fields)
            rows = [found[i] for i in dict.fromkeys(ids) if i in found]
        else:
            rows = self.query_rows(name, x.narrowing(filter, self.features.infix_like), fields)  # type: ignore[attr-defined]
            rows.sort(key=lambda r: r["seq"])
        if filter is not None and rows:
            keep = matching(filter, [layout.document(r) for r in rows], [layout.metadata(r) for r in rows])
            rows = [rows[i] for i in keep]
        return [r["id"] for r in rows]

    def _records(self, info: CollectionInfo, ids: List[str], include: Sequence[str]) -> List[Tuple]:
        """``(id, document, metadata, embedding or None)`` of ``ids``, in their order (those that
        still exist: another process may delete a record between a selection and this)."""
        name = data_name(info.id)
        layout = self.layout(name)  # type: ignore[attr-defined]
        fields = ["id"] + layout.content_fields + (["vec"] if "embeddings" in include else [])
        found = self._fetch(name, ids, fields)
        out = []
        for record_id in ids:
            row = found.get(record_id)
            if row is not None:
                vector = np.asarray(row["vec"], dtype=np.float32) if "vec" in row else None
                out.append((record_id, layout.document(row), layout.metadata(row), vector))
        return out

    def _with_data(self, collection_id: str, name: str, action: Any, empty: Any) -> Any:
        """``action(info)`` on a collection that has records; ``empty`` for one never written to."""
        info = self.resolve(collection_id, name)  # type: ignore[attr-defined]
        if info.dimension is None:
            return empty
        try:
            return action(info)
        except MissingData:
            raise self.missing(collection_id, name) from None  # type: ignore[attr-defined]

    # -- writes -------------------------------------------------------------

    def write(self, collection_id: str, name: str, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        _check_sizes(write)
        with self.write_lock(collection_id):  # type: ignore[attr-defined]
            return self._write(collection_id, name, write, embed)

    def _write(self, collection_id: str, name: str, write: Write, embed: Optional[Embed]) -> CollectionInfo:
        info = self.resolve(collection_id, name)  # type: ignore[attr-defined]
        existing: Dict[str, int] = {}
        stored: Dict[int, Tuple] = {}
        if info.dimension is not None:
            try:
                layout = self.layout(data_name(info.id))  # type: ignore[attr-defined]
                fields = ["id", "seq"] + ([] if write.mode == "add" else layout.content_fields + ["vec"])
                rows = self._fetch(data_name(info.id), write.ids, fields)
            except MissingData:
                raise self.missing(collection_id, name) from None  # type: ignore[attr-defined]
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
                raise missing_function_error(name)
            embedded.update(zip(missing, embed(missing)))
        planned = plan(self.next_seq(len(write.ids)), write, existing, stored, embedded)  # type: ignore[attr-defined]
        if planned.skipped:
            what = "already exist and were left unchanged" if write.mode == "add" else "do not exist and were skipped"
            log.warning("%s %r: %d ids %s: %s", write.mode, name, len(planned.skipped), what,
                        ", ".join(planned.skipped[:10]))
        batch = planned.batch
        if len(batch.labels) == 0:
            return info
        got = batch.embeddings.shape[1]
        if info.dimension is None:
            info = self.fix_dimension(info, got)  # type: ignore[attr-defined]
        elif got != info.dimension:
            raise v.dimension_error(planned.source, got, info.dimension)
        target = data_name(info.id)
        try:
            layout = self.layout(target)  # type: ignore[attr-defined]
            rows_out = [
                layout.row(record_id, int(label), vector.tolist(), document, metadata)
                for label, record_id, vector, document, metadata in zip(
                    batch.labels.tolist(), batch.ids, np.asarray(batch.embeddings, dtype=np.float32),
                    batch.documents, batch.metadatas)
            ]
            for start in range(0, len(rows_out), WRITE_BATCH):
                self.write_call(target, self.client.upsert, rows_out[start:start + WRITE_BATCH])  # type: ignore[attr-defined]
        except MissingData:
            raise self.missing(collection_id, name) from None  # type: ignore[attr-defined]
        return info

    def delete(
        self, collection_id: str, name: str, ids: Optional[List[str]], filter: Optional[Filter], limit: Optional[int] = None
    ) -> int:
        def run(info: CollectionInfo) -> int:
            chosen = self._select(info, ids, filter)[:limit]
            pieces = [x.one_of("id", chosen[start:start + ID_BATCH]) for start in range(0, len(chosen), ID_BATCH)]
            for piece in pieces:
                self.delete_where(data_name(info.id), piece, settle=False)  # type: ignore[attr-defined]
            if pieces:
                self.settle(data_name(info.id), pieces[-1])  # type: ignore[attr-defined]
            return len(chosen)

        with self.write_lock(collection_id):  # type: ignore[attr-defined]
            return self._with_data(collection_id, name, run, 0)

    # -- reads --------------------------------------------------------------

    def count(self, collection_id: str, name: str) -> int:
        def run(info: CollectionInfo) -> int:
            rows = self.data_call(data_name(info.id), self.client.query, filter="",  # type: ignore[attr-defined]
                                  output_fields=["count(*)"], consistency_level=self.read_level)  # type: ignore[attr-defined]
            return int(rows[0]["count(*)"])

        return self._with_data(collection_id, name, run, 0)

    def get(
        self,
        collection_id: str,
        name: str,
        ids: Optional[List[str]],
        filter: Optional[Filter],
        limit: Optional[int],
        offset: Optional[int],
        include: Sequence[str],
    ) -> GetResult:
        def run(info: CollectionInfo) -> List[Tuple]:
            chosen = self._select(info, ids, filter)[offset or 0:]
            if limit is not None:
                chosen = chosen[:limit]
            return self._records(info, chosen, include) if chosen else []

        records = self._with_data(collection_id, name, run, [])
        return GetResult(
            ids=[r[0] for r in records],
            embeddings=np.stack([r[3] for r in records]) if "embeddings" in include and records
            else (np.empty((0, 0), dtype=np.float32) if "embeddings" in include else None),
            metadatas=[r[2] for r in records] if "metadatas" in include else None,
            documents=[r[1] for r in records] if "documents" in include else None,
            included=list(include),
        )
