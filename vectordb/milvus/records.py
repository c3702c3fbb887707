"""The record half of :class:`vectordb.milvus.backend.MilvusBackend`: writes, deletes, gets and searches.

A mixin over the backend's helpers (``call``/``data_call``, ``query_rows``,
``resolve``, ``missing``): kept apart so each module stays small. Record ids reach
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
from vectordb.errors import InvalidArgumentError, TextSearchUnavailableError, VectorDBError
from vectordb.filters import Filter
from vectordb.index import settings
from vectordb.milvus import expressions as x
from vectordb.milvus.catalog import MissingData, create, data_name
from vectordb.milvus.matching import matching
from vectordb.types import GetResult, QueryResult

log = logging.getLogger("vectordb")

WRITE_BATCH = 1000
"""Rows per Milvus upsert (a write of more rows is sent in several)."""
ID_BATCH = 4096
"""Ids per ``id in [...]`` lookup."""
MAX_TOP_K = 16384
"""The most results Milvus gives per query row."""
VARCHAR_BYTES = 65535
"""The longest id or document Milvus stores (VARCHAR fields hold at most 65,535 bytes)."""
_METRICS = {"l2": "L2", "cosine": "COSINE", "ip": "IP"}


def create_data_collection(backend: Any, name: str, dimension: int, metadata: Optional[Dict[str, Any]]) -> None:
    """The Milvus collection holding one vectordb collection's records (exact FLAT search, Strong reads)."""
    from pymilvus import DataType

    client = backend.client
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=VARCHAR_BYTES)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dimension)
    schema.add_field("doc", DataType.VARCHAR, max_length=VARCHAR_BYTES, nullable=True)
    schema.add_field("metadata", DataType.JSON, nullable=True)
    index = client.prepare_index_params()
    index.add_index(field_name="vec", index_type="FLAT", metric_type=_METRICS[settings.metric_of(metadata)])
    if not backend.call(client.has_collection, name):
        try:
            create(backend, name, schema, index)
        except VectorDBError:
            if not backend.call(client.has_collection, name):
                raise
    # made meanwhile by another client's first write, perhaps: its dimension is the one
    fields = backend.call(client.describe_collection, name)["fields"]
    stored = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vec")
    if stored != dimension:
        raise v.dimension_error("embeddings", dimension, stored)


def _to_distance(metric: str, score: float) -> float:
    """Milvus's score as the local store's distance: l2 is squared already; cosine and ip are similarities."""
    return float(score) if metric == "l2" else 1.0 - float(score)


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
        fields = ["id", "seq"] + (["doc", "metadata"] if filter is not None else [])
        if ids is not None:
            found = self._fetch(name, ids, fields)
            rows = [found[i] for i in dict.fromkeys(ids) if i in found]
        else:
            rows = self.query_rows(name, x.narrowing(filter), fields)  # type: ignore[attr-defined]
            rows.sort(key=lambda r: r["seq"])
        if filter is not None and rows:
            keep = matching(filter, [r["doc"] for r in rows], [x.decode_metadata(r["metadata"]) for r in rows])
            rows = [rows[i] for i in keep]
        return [r["id"] for r in rows]

    def _records(self, info: CollectionInfo, ids: List[str], include: Sequence[str]) -> List[Tuple]:
        """``(id, document, metadata, embedding or None)`` of ``ids``, in their order."""
        fields = ["id", "doc", "metadata"] + (["vec"] if "embeddings" in include else [])
        found = self._fetch(data_name(info.id), ids, fields)
        out = []
        for record_id in ids:
            row = found[record_id]
            vector = np.asarray(row["vec"], dtype=np.float32) if "vec" in row else None
            out.append((record_id, row["doc"], x.decode_metadata(row["metadata"]), vector))
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
            fields = ["id", "seq"] + ([] if write.mode == "add" else ["doc", "metadata", "vec"])
            try:
                rows = self._fetch(data_name(info.id), write.ids, fields)
            except MissingData:
                raise self.missing(collection_id, name) from None  # type: ignore[attr-defined]
            for record_id, row in rows.items():
                existing[record_id] = int(row["seq"])
                if write.mode != "add":
                    stored[int(row["seq"])] = (record_id, row["doc"], x.decode_metadata(row["metadata"]),
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
        rows_out = [
            {"id": record_id, "seq": int(label), "vec": vector.tolist(), "doc": document,
             "metadata": x.encode_metadata(metadata)}
            for label, record_id, vector, document, metadata in zip(
                batch.labels.tolist(), batch.ids, np.asarray(batch.embeddings, dtype=np.float32),
                batch.documents, batch.metadatas)
        ]
        target = data_name(info.id)
        try:
            for start in range(0, len(rows_out), WRITE_BATCH):
                self.data_call(target, self.client.upsert, rows_out[start:start + WRITE_BATCH])  # type: ignore[attr-defined]
        except MissingData:
            raise self.missing(collection_id, name) from None  # type: ignore[attr-defined]
        return info

    def delete(
        self, collection_id: str, name: str, ids: Optional[List[str]], filter: Optional[Filter], limit: Optional[int] = None
    ) -> int:
        def run(info: CollectionInfo) -> int:
            chosen = self._select(info, ids, filter)[:limit]
            for start in range(0, len(chosen), ID_BATCH):
                self.data_call(data_name(info.id), self.client.delete,  # type: ignore[attr-defined]
                               **self.filter_args(x.one_of("id", chosen[start:start + ID_BATCH])))  # type: ignore[attr-defined]
            return len(chosen)

        with self.write_lock(collection_id):  # type: ignore[attr-defined]
            return self._with_data(collection_id, name, run, 0)

    # -- reads --------------------------------------------------------------

    def count(self, collection_id: str, name: str) -> int:
        def run(info: CollectionInfo) -> int:
            rows = self.data_call(data_name(info.id), self.client.query, filter="",  # type: ignore[attr-defined]
                                  output_fields=["count(*)"], consistency_level="Strong")
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

    def text_query(
        self,
        collection_id: str,
        name: str,
        texts: List[str],
        n_results: int,
        filter: Optional[Filter],
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        """Refused: this backend keeps no BM25 index (Milvus's own full-text search uses its
        analyzers and statistics, not the exact scores that ``mode="text"`` promises)."""
        self.collection(collection_id, name)  # type: ignore[attr-defined]  # a missing collection is still CollectionNotFoundError
        raise TextSearchUnavailableError(
            f"collection {name!r}: text and hybrid queries are not available on Milvus ({self.uri}); "  # type: ignore[attr-defined]
            "use mode='vector', or a local or HTTP client"
        )

    def query(
        self,
        collection_id: str,
        name: str,
        queries: np.ndarray,
        n_results: int,
        filter: Optional[Filter],
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        def run(info: CollectionInfo) -> List[List[Tuple[str, float]]]:
            if queries.shape[1] != info.dimension:
                raise v.dimension_error("query_embeddings", queries.shape[1], info.dimension)
            within = None
            if ids is not None or filter is not None:
                allowed = self._select(info, ids, filter)
                if not allowed:
                    return [[] for _ in range(len(queries))]
                within = x.one_of("id", allowed)
            metric = settings.metric_of(info.metadata)
            args = self.filter_args(within) if within is not None else {}  # type: ignore[attr-defined]
            hits = self.data_call(data_name(info.id), self.client.search,  # type: ignore[attr-defined]
                                  data=np.asarray(queries, dtype=np.float32).tolist(),
                                  limit=min(n_results, MAX_TOP_K), output_fields=["id"],
                                  search_params={"metric_type": _METRICS[metric]},
                                  consistency_level="Strong", **args)
            return [[(hit["id"], _to_distance(metric, hit["distance"])) for hit in row] for row in hits]

        found = self._with_data(collection_id, name, run, [[] for _ in range(len(queries))])
        found = [sorted(row, key=lambda hit: hit[1]) for row in found]
        wanted = [hit[0] for row in found for hit in row]
        by_id = {}
        if wanted and any(f in include for f in ("embeddings", "metadatas", "documents")):
            by_id = {r[0]: r for r in self._with_data(
                collection_id, name, lambda i: self._records(i, list(dict.fromkeys(wanted)), include), [])}
        rows = [[by_id.get(hit[0], (hit[0], None, None, None)) for hit in row] for row in found]
        return QueryResult(
            ids=[[hit[0] for hit in row] for row in found],
            distances=[[hit[1] for hit in row] for row in found] if "distances" in include else None,
            embeddings=[np.stack([r[3] for r in rs]) if rs else np.empty((0, 0), dtype=np.float32) for rs in rows]
            if "embeddings" in include else None,
            metadatas=[[r[2] for r in rs] for rs in rows] if "metadatas" in include else None,
            documents=[[r[1] for r in rs] for rs in rows] if "documents" in include else None,
            included=list(include),
        )
