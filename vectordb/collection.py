"""A collection: records (id, embedding, document, metadata) and their nearest-neighbour search.

Data flows one way: arguments are checked (:mod:`vectordb.validation`,
:mod:`vectordb.filters`), documents are embedded with the collection's function, the
records are written to the store in one transaction, then the index is updated.
Nothing is written until every argument has been checked and every embedding made,
so a call that raises changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np

from vectordb import validation as v
from vectordb.embedding_functions.base import embed_texts
from vectordb.errors import InvalidArgumentError, InvalidDimensionError
from vectordb.filters import Filter, parse_filter, to_sql
from vectordb.engine import maintenance
from vectordb.engine.maintenance import CompactResult
from vectordb.persistence.store import CollectionRow, RecordBatch
from vectordb.types import GetResult, QueryResult

if TYPE_CHECKING:  # pragma: no cover
    from vectordb.client import Client

log = logging.getLogger("vectordb")

DEFAULT_GET_INCLUDE = ["metadatas", "documents"]
DEFAULT_QUERY_INCLUDE = ["metadatas", "documents", "distances"]


@dataclass
class _Request:
    """A checked add/upsert/update call."""

    mode: str
    ids: List[str]
    embeddings: Optional[np.ndarray]
    metadatas: Optional[List[Optional[Dict[str, Any]]]]
    documents: Optional[List[str]]


class Collection:
    """A named set of records with one embedding function and one distance metric."""

    def __init__(self, client: "Client", row: CollectionRow, embedding_function: Any) -> None:
        self._client = client
        self._row = row
        self.embedding_function = embedding_function

    # -- attributes ---------------------------------------------------------

    @property
    def name(self) -> str:
        """The collection's name (changed by :meth:`modify`)."""
        return self._row.name

    @property
    def id(self) -> str:
        """A UUID, fixed at creation."""
        return self._row.id

    @property
    def metadata(self) -> Optional[Dict[str, Any]]:
        """The collection's metadata, ``hnsw:*`` settings included."""
        return self._row.metadata

    @property
    def dimension(self) -> Optional[int]:
        """The embeddings' dimension, fixed by the first add (None before)."""
        return self._row.dimension

    def __repr__(self) -> str:
        return f"Collection(name={self.name!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collection) and other.id == self.id and other._client is self._client

    def __hash__(self) -> int:
        return hash(self.id)

    def _refresh(self) -> CollectionRow:
        """The current catalog row (raises CollectionNotFoundError once deleted)."""
        self._row = self._client._row(self._row.id, self._row.name)
        return self._row

    # -- writes -------------------------------------------------------------

    def add(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Insert records. Ids already stored are left unchanged (and logged as a warning).

        Raises:
            DuplicateIDError: an id is repeated in ``ids``.
            InvalidArgumentError, InvalidDimensionError: a malformed argument.
        """
        self._write(self._check("add", ids, embeddings, metadatas, documents))

    def upsert(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Insert new ids and update existing ones (metadata merged key by key, as ``update``)."""
        self._write(self._check("upsert", ids, embeddings, metadatas, documents))

    def update(self, ids: Any, embeddings: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        """Change existing records; unknown ids are logged and skipped.

        Metadata is merged key by key and a key set to None is removed; fields not
        given are left as they are. A changed document is embedded again unless
        ``embeddings`` are given.
        """
        self._write(self._check("update", ids, embeddings, metadatas, documents))

    def _check(self, mode: str, ids: Any, embeddings: Any, metadatas: Any, documents: Any) -> _Request:
        id_list = v.validate_ids(ids)
        n = len(id_list)
        vectors = None
        if embeddings is not None:
            vectors = v.validate_embeddings(embeddings)
            if len(vectors) != n:
                raise InvalidArgumentError(f"embeddings: expected {n} items (one per id), got {len(vectors)}")
        metas = None if metadatas is None else v.validate_metadatas(metadatas, n, allow_none_values=mode != "add")
        docs = None if documents is None else v.validate_documents(documents, n)
        if mode == "add" and vectors is None and docs is None:
            raise InvalidArgumentError("add: give embeddings or documents (to embed) for the records")
        if vectors is not None and self._row.dimension is not None and vectors.shape[1] != self._row.dimension:
            raise _dimension_error("embeddings", vectors.shape[1], self._row.dimension)
        return _Request(mode, id_list, vectors, metas, docs)

    def _write(self, req: _Request) -> None:
        embedded: Dict[str, np.ndarray] = {}
        while True:
            with self._client._lock:
                self._client._check_writable()
                row = self._refresh()
                existing = self._client._store.labels_of(row.id, req.ids)
                stored = self._stored_rows(row, req, existing)
                texts = self._texts_to_embed(req, existing, stored)
            missing = sorted({t for t in texts if t not in embedded})
            if missing:
                vectors = embed_texts(self._require_function(), missing)
                embedded.update(zip(missing, vectors))
            with self._client._lock:
                if self._refresh().seq != row.seq:
                    continue  # another thread wrote meanwhile: plan again with what it wrote
                self._apply(row, req, existing, stored, embedded)
                return

    def _stored_rows(self, row: CollectionRow, req: _Request, existing: Dict[str, int]) -> Dict[int, Tuple]:
        if req.mode == "add" or not existing:
            return {}
        labels = np.fromiter(existing.values(), dtype=np.int64)
        return self._client._store.fetch(row.id, labels, embeddings=True)

    def _texts_to_embed(self, req: _Request, existing: Dict[str, int], stored: Dict[int, Tuple]) -> List[str]:
        """Documents that need a vector: new records' documents, and changed documents."""
        if req.embeddings is not None or req.documents is None:
            return []
        texts = []
        for i, record_id in enumerate(req.ids):
            label = existing.get(record_id)
            if label is None:
                if req.mode != "update":
                    texts.append(req.documents[i])
            elif req.mode != "add" and stored[label][1] != req.documents[i]:
                texts.append(req.documents[i])
        return texts

    def _require_function(self) -> Any:
        if self.embedding_function is None:
            raise InvalidArgumentError(
                f"collection {self.name!r} has no embedding function: pass embeddings=..., "
                "or create it with an embedding_function"
            )
        return self.embedding_function

    def _apply(
        self,
        row: CollectionRow,
        req: _Request,
        existing: Dict[str, int],
        stored: Dict[int, Tuple],
        embedded: Dict[str, np.ndarray],
    ) -> None:
        if not existing and req.mode == "add" and req.embeddings is not None:
            self._add_new(row, req)
            return
        labels: List[int] = []
        ids: List[str] = []
        vectors: List[np.ndarray] = []
        documents: List[Optional[str]] = []
        metadatas: List[Optional[Dict[str, Any]]] = []
        replaced: List[int] = []
        changed: List[int] = []
        skipped: List[str] = []
        next_label = row.next_label
        for i, record_id in enumerate(req.ids):
            label = existing.get(record_id)
            given_vector = None if req.embeddings is None else req.embeddings[i]
            document = None if req.documents is None else req.documents[i]
            metadata = None if req.metadatas is None else req.metadatas[i]
            if label is None:
                if req.mode == "update":
                    skipped.append(record_id)
                    continue
                if given_vector is None:
                    if document is None:
                        raise InvalidArgumentError(
                            f"{req.mode}: new id {record_id!r} needs an embedding or a document to embed"
                        )
                    given_vector = embedded[document]
                label, next_label = next_label, next_label + 1
                metadata = ({k: x for k, x in metadata.items() if x is not None} or None) if metadata else None
                changed.append(len(labels))
            elif req.mode == "add":
                skipped.append(record_id)
                continue
            else:
                _, old_document, old_metadata, old_vector = stored[label]
                replaced.append(label)
                if given_vector is None and document is not None and document != old_document:
                    given_vector = embedded[document]
                if given_vector is not None:
                    changed.append(len(labels))
                else:
                    given_vector = old_vector
                if document is None:
                    document = old_document
                metadata = _merge(old_metadata, metadata) if req.metadatas is not None else old_metadata
            labels.append(label)
            ids.append(record_id)
            vectors.append(given_vector)
            documents.append(document)
            metadatas.append(metadata)
        if skipped:
            what = "already exist and were left unchanged" if req.mode == "add" else "do not exist and were skipped"
            log.warning("%s %r: %d ids %s: %s", req.mode, self.name, len(skipped), what, ", ".join(skipped[:10]))
        if not labels:
            return
        matrix = np.stack(vectors).astype(np.float32, copy=False)
        batch = RecordBatch(np.asarray(labels, dtype=np.int64), ids, matrix, documents, metadatas)
        source = "embeddings" if req.embeddings is not None else "embedding function output"
        self._commit(row, batch, np.asarray(replaced, dtype=np.int64), np.asarray(changed, dtype=np.int64), source)

    def _add_new(self, row: CollectionRow, req: _Request) -> None:
        """The common bulk case: only new ids, embeddings given. Same result as the general path, no per-record loop."""
        assert req.embeddings is not None
        n = len(req.ids)
        labels = np.arange(row.next_label, row.next_label + n, dtype=np.int64)
        documents = req.documents if req.documents is not None else [None] * n
        metadatas = [m or None for m in req.metadatas] if req.metadatas is not None else [None] * n
        batch = RecordBatch(labels, req.ids, req.embeddings, documents, metadatas)
        self._commit(row, batch, np.empty(0, dtype=np.int64), np.arange(n), "embeddings")

    def _commit(
        self, row: CollectionRow, batch: RecordBatch, replaced: np.ndarray, changed: np.ndarray, source: str
    ) -> None:
        """Write ``batch`` to the store and its ``changed`` rows' vectors to the index.

        ``row`` is the current catalog row: the dimension is checked against it here, as
        another handle may have fixed it since the arguments were checked.
        """
        dimension = row.dimension if row.dimension is not None else batch.embeddings.shape[1]
        if batch.embeddings.shape[1] != dimension:
            raise _dimension_error(source, batch.embeddings.shape[1], dimension)
        new_row = self._client._indexes.add_after_commit(
            row,
            dimension,
            batch.labels[changed],
            batch.embeddings[changed],
            lambda: self._client._store.write(row, batch, replaced, dimension),
        )
        self._row = new_row
        self._client._written(new_row, batch)

    def delete(self, ids: Any = None, where: Any = None, where_document: Any = None) -> None:
        """Remove the records that match ``ids`` and the filters (all given conditions must hold).

        Raises InvalidArgumentError when no condition is given: that would delete everything.
        """
        flt = parse_filter(where, where_document)
        if ids is None and flt is None:  # {} filters nothing
            raise InvalidArgumentError("delete: give ids, where or where_document (deleting everything is refused)")
        id_list = None if ids is None else v.validate_ids(ids)
        with self._client._lock:
            self._client._check_writable()
            row = self._refresh()
            labels = self._select(row, id_list, flt)
            if len(labels) == 0:
                return
            new_row = self._client._store.delete(row, labels)
            self._row = new_row
            self._client._deleted(new_row, labels)
            self._client._indexes.remove(new_row, labels)
            maintenance.maybe_compact(self._client, new_row)

    def compact(self) -> CompactResult:
        """Give back the space of deleted records: rebuild the index and shrink the database file.

        Runs by itself after a delete once deleted index slots exceed half the live
        vectors (and 1000). Returns the store's bytes on disk before and after.
        """
        with self._client._lock:
            self._client._check_writable()
            return maintenance.compact(self._client, [self._refresh()])

    # -- reads --------------------------------------------------------------

    def count(self) -> int:
        """How many records the collection holds."""
        with self._client._lock:
            return self._client._store.count(self._refresh().id)

    def get(
        self,
        ids: Any = None,
        where: Any = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        where_document: Any = None,
        include: Any = DEFAULT_GET_INCLUDE,
    ) -> GetResult:
        """Records by id (in the order asked, missing ids left out) or by filter (in insertion order)."""
        fields = v.validate_include(include, v.GET_INCLUDE)
        limit = v.validate_optional_count(limit, "limit")
        offset = v.validate_optional_count(offset, "offset")
        id_list = None if ids is None else v.validate_ids(ids, unique=False)
        flt = parse_filter(where, where_document)
        with self._client._lock:
            row = self._refresh()
            if id_list is None:
                labels = self._select(row, None, flt, limit, offset)
            else:
                labels = self._select(row, id_list, flt)
                labels = labels[offset or 0 :]
                if limit is not None:
                    labels = labels[:limit]
            records = self._read(row, labels, "embeddings" in fields)
        return GetResult(
            ids=[r[0] for r in records],
            embeddings=[r[3].tolist() for r in records] if "embeddings" in fields else None,
            metadatas=[r[2] for r in records] if "metadatas" in fields else None,
            documents=[r[1] for r in records] if "documents" in fields else None,
            include=list(fields),
        )

    def _read(self, row: CollectionRow, labels: np.ndarray, embeddings: bool) -> List[Tuple]:
        """``(id, document, metadata, embedding or None)`` for each label, in order.

        Served from the client's record cache unless embeddings are wanted.
        """
        if embeddings:
            found = self._client._store.fetch(row.id, np.unique(labels), True)
            return [found[int(label)] for label in labels]
        return [(*r, None) for r in self._client._record_cache(row).rows(labels)]

    def peek(self, limit: int = 10) -> GetResult:
        """The first ``limit`` records, with embeddings."""
        return self.get(limit=v.validate_positive_int(limit, "limit"), include=["embeddings", "metadatas", "documents"])

    def _select(
        self,
        row: CollectionRow,
        ids: Optional[List[str]],
        flt: Optional[Filter],
        limit: Optional[int] = None,
        offset: Optional[int] = None,
    ) -> np.ndarray:
        """Labels of the records matching every given condition (by ids: in the order of ``ids``)."""
        store = self._client._store
        if ids is None:
            if flt is None:
                return store.select_labels(row.id, None, limit, offset)
            labels = self._matching(row, flt)[offset or 0 :]
            return labels if limit is None else labels[:limit]
        by_id = store.labels_of(row.id, ids)
        labels = np.asarray(list(dict.fromkeys(by_id[i] for i in ids if i in by_id)), dtype=np.int64)
        if flt is None or len(labels) == 0:
            return labels
        return labels[np.isin(labels, self._matching(row, flt))]

    def _matching(self, row: CollectionRow, flt: Filter) -> np.ndarray:
        """Labels matching the filters, ascending: from the in-memory metadata index when it
        can answer (``where`` alone), else from the store's SQL."""
        if flt.document is None and flt.where is not None:
            labels = self._client._metadata_index(row).evaluate(flt.where)
            if labels is not None:
                return labels
        return self._client._store.select_labels(row.id, to_sql(flt, row.id))

    def query(
        self,
        query_embeddings: Any = None,
        query_texts: Any = None,
        n_results: int = 10,
        where: Any = None,
        where_document: Any = None,
        include: Any = DEFAULT_QUERY_INCLUDE,
    ) -> QueryResult:
        """The ``n_results`` nearest records to each query, nearest first, one list per query.

        Give exactly one of ``query_embeddings`` and ``query_texts`` (embedded with the
        collection's function). Filters restrict the candidates; when few records match,
        they are searched exactly, so filtered queries keep their recall.
        """
        fields = v.validate_include(include, v.QUERY_INCLUDE)
        n_results = v.validate_positive_int(n_results, "n_results")
        if (query_embeddings is None) == (query_texts is None):
            raise InvalidArgumentError("query: give exactly one of query_embeddings and query_texts")
        flt = parse_filter(where, where_document)
        if query_embeddings is not None:
            queries = v.validate_embeddings(query_embeddings, "query_embeddings")
        else:
            texts = v.as_list(query_texts, "query_texts", (str,))
            if not texts or not all(isinstance(t, str) for t in texts):
                raise InvalidArgumentError("query_texts: expected a string or a non-empty list of strings")
            queries = embed_texts(self._require_function(), texts, query=True)
        with self._client._lock:
            row = self._refresh()
            if row.dimension is not None and queries.shape[1] != row.dimension:
                arg = "query_embeddings" if query_embeddings is not None else "query_texts (embedded)"
                raise _dimension_error(arg, queries.shape[1], row.dimension)
            index = self._client._indexes.get(row)
            allowed = None if flt is None else self._matching(row, flt)
            if index is None:
                labels = np.empty((len(queries), 0), dtype=np.int64)
                distances = np.empty((len(queries), 0), dtype=np.float32)
            else:
                labels, distances = index.search(queries, n_results, allowed)
            wanted = "embeddings" in fields
            rows = [self._read(row, query_labels, wanted) for query_labels in labels]
        return QueryResult(
            ids=[[r[0] for r in rs] for rs in rows],
            distances=[[float(d) for d in ds] for ds in distances] if "distances" in fields else None,
            embeddings=[[r[3].tolist() for r in rs] for rs in rows] if wanted else None,
            metadatas=[[r[2] for r in rs] for rs in rows] if "metadatas" in fields else None,
            documents=[[r[1] for r in rs] for rs in rows] if "documents" in fields else None,
            include=list(fields),
        )

    # -- the collection itself ------------------------------------------------

    def modify(self, name: Optional[str] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        """Rename the collection and/or replace its metadata (the metric and graph settings stay)."""
        self._client._modify(self, name, metadata)


def _merge(old: Optional[Dict[str, Any]], new: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    merged = dict(old or {})
    for key, value in (new or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged or None


def _dimension_error(arg: str, got: int, expected: int) -> InvalidDimensionError:
    return InvalidDimensionError(f"{arg}: dimension {got} does not match the collection's dimension {expected}")
