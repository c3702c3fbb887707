"""The rules of add, upsert and update, shared by every backend that plans its own writes.

A write is planned from what the store holds for its ids (their labels, and for
upsert/update their stored rows) into one :class:`RecordBatch` of full rows:

- ``add`` inserts new ids and leaves stored ones unchanged;
- ``update`` changes stored ids and skips unknown ones;
- ``upsert`` does both;
- a changed record keeps every field not given; its metadata is merged key by key and a
  key set to None is removed; a new record drops None values;
- a record needs a new vector when it is new or its document changed (embedded with
  the collection's function unless embeddings are given); an unchanged document is not
  embedded again.

These functions do no I/O: a backend (the local engine, Milvus) reads the stored
state, embeds :func:`texts_to_embed`, and commits the :class:`Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from vectordb.requests import Write
from vectordb.errors import InvalidArgumentError
from vectordb.persistence.store import RecordBatch

Stored = Dict[int, Tuple]
"""``label -> (id, document, metadata, embedding)`` of the stored records a write touches."""


@dataclass
class Plan:
    """Full rows to commit, and what the index must learn from them."""

    batch: RecordBatch
    replaced: np.ndarray
    """Labels whose stored rows the batch replaces."""
    changed: np.ndarray
    """Positions in the batch whose vectors are new (the index inserts only these)."""
    source: str
    """Where the vectors came from, for a dimension error."""
    skipped: List[str]
    """Ids left alone (add: already stored; update: unknown)."""


def texts_to_embed(write: Write, existing: Dict[str, int], stored: Stored) -> List[str]:
    """Documents that need a vector: new records' documents, and changed documents."""
    if write.embeddings is not None or write.documents is None:
        return []
    texts = []
    for i, record_id in enumerate(write.ids):
        document = write.documents[i]
        if document is None:
            continue
        label = existing.get(record_id)
        if label is None:
            if write.mode != "update":
                texts.append(document)
        elif write.mode != "add" and stored[label][1] != document:
            texts.append(document)
    return texts


def plan(next_label: int, write: Write, existing: Dict[str, int], stored: Stored, embedded: Dict[str, np.ndarray]) -> Plan:
    """The rows ``write`` produces, given the stored state and the vectors made for its documents.

    Raises InvalidArgumentError when a new id has neither an embedding nor a document.
    """
    if not existing and write.mode == "add" and write.embeddings is not None:
        return _all_new(next_label, write)
    labels: List[int] = []
    ids: List[str] = []
    vectors: List[np.ndarray] = []
    documents: List[Optional[str]] = []
    metadatas: List[Optional[Dict[str, Any]]] = []
    replaced: List[int] = []
    changed: List[int] = []
    skipped: List[str] = []
    for i, record_id in enumerate(write.ids):
        label = existing.get(record_id)
        vector = None if write.embeddings is None else write.embeddings[i]
        document = None if write.documents is None else write.documents[i]
        metadata = None if write.metadatas is None else write.metadatas[i]
        if label is None:
            if write.mode == "update":
                skipped.append(record_id)
                continue
            if vector is None:
                if document is None:
                    raise InvalidArgumentError(
                        f"{write.mode}: new id {record_id!r} needs an embedding or a document to embed"
                    )
                vector = embedded[document]
            label, next_label = next_label, next_label + 1
            metadata = ({k: x for k, x in metadata.items() if x is not None} or None) if metadata else None
            changed.append(len(labels))
        elif write.mode == "add":
            skipped.append(record_id)
            continue
        else:
            _, old_document, old_metadata, old_vector = stored[label]
            replaced.append(label)
            if vector is None and document is not None and document != old_document:
                vector = embedded[document]
            if vector is not None:
                changed.append(len(labels))
            else:
                vector = old_vector
            if document is None:
                document = old_document
            metadata = merge_metadata(old_metadata, metadata) if write.metadatas is not None else old_metadata
        labels.append(label)
        ids.append(record_id)
        vectors.append(vector)
        documents.append(document)
        metadatas.append(metadata)
    matrix = np.stack(vectors).astype(np.float32, copy=False) if vectors else np.empty((0, 0), dtype=np.float32)
    batch = RecordBatch(np.asarray(labels, dtype=np.int64), ids, matrix, documents, metadatas)
    source = "embeddings" if write.embeddings is not None else "embedding function output"
    return Plan(batch, np.asarray(replaced, dtype=np.int64), np.asarray(changed, dtype=np.int64), source, skipped)


def _all_new(next_label: int, write: Write) -> Plan:
    """The common bulk case: only new ids, embeddings given. Same result as the general path, no per-record loop."""
    assert write.embeddings is not None
    n = len(write.ids)
    labels = np.arange(next_label, next_label + n, dtype=np.int64)
    documents = write.documents if write.documents is not None else [None] * n
    metadatas = [m or None for m in write.metadatas] if write.metadatas is not None else [None] * n
    batch = RecordBatch(labels, write.ids, write.embeddings, documents, metadatas)
    return Plan(batch, np.empty(0, dtype=np.int64), np.arange(n), "embeddings", [])


def merge_metadata(old: Optional[Dict[str, Any]], new: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """``old`` updated key by key from ``new``; a None value removes the key."""
    merged = dict(old or {})
    for key, value in (new or {}).items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged or None
