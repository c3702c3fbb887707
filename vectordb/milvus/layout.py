"""How one vectordb collection's records sit in its Milvus collection, on every Milvus from 2.3 on.

Every data collection has ``id`` (VARCHAR primary key), ``seq`` (INT64: insertion
order, kept by updates) and ``vec`` (FLOAT_VECTOR, searched exactly: a FLAT index).
A record's document and metadata are stored in one of three encodings, chosen when the
collection is made and read back from its schema ever after (:func:`layout_of`):

- ``nullable`` (servers with nullable fields: Milvus 2.5+, Milvus Lite): ``doc`` is a
  nullable VARCHAR and ``metadata`` a nullable JSON; "none" is NULL.
- ``flagged`` (Milvus 2.3 and 2.4, which have no nullable fields): ``doc`` holds the
  document or ``""``, and ``has_doc`` (BOOL) says whether the record has a document, so
  a stored ``""`` and "no document" stay apart; ``metadata`` holds ``{}`` for none
  (vectordb never stores empty metadata: ``{}`` is read as None on every backend).
- ``strict``: a collection made by an older vectordb on a server that dropped the
  nullable flag: every record needs a document (a write without one is refused with
  an error that says so); it reads as the others do.

Users read back exactly what they wrote whichever encoding holds it: only
:meth:`Layout.row`, :meth:`Layout.document` and :meth:`Layout.metadata` know the difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from vectordb import validation as v
from vectordb.errors import BackendError, VectorDBError
from vectordb.milvus import expressions as x
from vectordb.milvus.catalog import create

if TYPE_CHECKING:
    from vectordb.milvus.calls import Calls

VARCHAR_BYTES = 65535
"""The longest id or document Milvus stores (VARCHAR fields hold at most 65,535 bytes)."""
METRICS = {"l2": "L2", "cosine": "COSINE", "ip": "IP"}
"""vectordb's ``hnsw:space`` names as Milvus metric types."""
NULLABLE, FLAGGED, STRICT = "nullable", "flagged", "strict"


@dataclass(frozen=True)
class Layout:
    """One data collection's encoding of documents and metadata (see the module docstring)."""

    kind: str

    @property
    def content_fields(self) -> List[str]:
        """The fields to ask for to read a record's document and metadata."""
        return ["doc", "metadata", "has_doc"] if self.kind == FLAGGED else ["doc", "metadata"]

    def row(self, record_id: str, seq: int, vector: List[float], document: Optional[str],
            metadata: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        """The Milvus row of one record."""
        stored = x.encode_metadata(metadata)
        out = {"id": record_id, "seq": seq, "vec": vector, "doc": document, "metadata": stored}
        if self.kind == NULLABLE:
            return out
        if document is None and self.kind == STRICT:
            raise BackendError(
                "this collection was made by an older vectordb on a Milvus server without nullable fields: "
                "each of its records needs a document (copy it with `vectordb copy` to a new collection, "
                "which stores records without one)"
            )
        out["doc"] = "" if document is None else document
        out["metadata"] = stored or {}
        if self.kind == FLAGGED:
            out["has_doc"] = document is not None
        return out

    def document(self, row: Dict[str, Any]) -> Optional[str]:
        """A record's document from its row (None for none)."""
        if self.kind == FLAGGED and not row.get("has_doc"):
            return None
        return row.get("doc")

    def metadata(self, row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """A record's metadata, keys decoded, from its row (None for none)."""
        return x.decode_metadata(row.get("metadata"))


def layout_of(fields: List[Dict[str, Any]]) -> Layout:
    """The layout of a data collection, from its described fields."""
    names = {f["name"]: f for f in fields}
    if "has_doc" in names:
        return Layout(FLAGGED)
    if names.get("doc", {}).get("nullable"):
        return Layout(NULLABLE)
    return Layout(STRICT)


def create_data_collection(calls: "Calls", name: str, dimension: int, metric: str, nullable: bool) -> Layout:
    """Make the Milvus collection of one vectordb collection (if no client made it meanwhile); its layout.

    ``calls`` sends the requests (:class:`vectordb.milvus.calls.Calls`); ``metric`` is the
    collection's distance metric (``l2``, ``cosine``, ``ip``); ``nullable``: the server keeps
    nullable fields (:mod:`vectordb.milvus.features`), so the ``nullable`` layout is used; else
    ``flagged``.

    Raises:
        InvalidArgumentError: another client's first write made it with another dimension.
    """
    from pymilvus import DataType

    client = calls.client
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=VARCHAR_BYTES)
    schema.add_field("seq", DataType.INT64)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dimension)
    if nullable:
        schema.add_field("doc", DataType.VARCHAR, max_length=VARCHAR_BYTES, nullable=True)
        schema.add_field("metadata", DataType.JSON, nullable=True)
    else:
        schema.add_field("doc", DataType.VARCHAR, max_length=VARCHAR_BYTES)
        schema.add_field("has_doc", DataType.BOOL)
        schema.add_field("metadata", DataType.JSON)
    index = client.prepare_index_params()
    index.add_index(field_name="vec", index_type="FLAT", metric_type=METRICS[metric])
    if not calls.call(client.has_collection, name):
        try:
            create(calls, name, schema, index)
        except VectorDBError:
            if not calls.call(client.has_collection, name):
                raise
    # made meanwhile by another client's first write, perhaps: its dimension and layout are the ones
    fields = calls.call(client.describe_collection, name)["fields"]
    stored = next(int(f["params"]["dim"]) for f in fields if f["name"] == "vec")
    if stored != dimension:
        raise v.dimension_error("embeddings", dimension, stored)
    return layout_of(fields)
