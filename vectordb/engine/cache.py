"""An in-memory copy of each record's id, document and metadata, by label.

DuckDB answers a point lookup of ten rows in about a millisecond, several times the
cost of the whole nearest-neighbour search. Query results are therefore assembled from
this cache: object arrays indexed by label, loaded from the store with one scan on
first use and kept current by every committed write and delete of this client (the only
writer of the store). It is derived data, like the index: dropping it loses nothing.
Embeddings are not cached; asking for them reads the store. Each id's order key
(:func:`vectordb.text.topk.id_keys`) is kept beside it once a ranking first asks for them
(text and hybrid search order equal scores by id without comparing strings); a vector
query never needs them, so a cold open does not pay for them (0.17 s at 200,000 records).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vectordb.text.topk import id_keys

Row = Tuple[str, Optional[str], Optional[Dict[str, Any]]]


class RecordCache:
    """Ids, documents and metadata of one collection's records, indexed by label."""

    def __init__(self, capacity: int = 0) -> None:
        size = max(capacity, 16)
        self._ids = np.full(size, None, dtype=object)
        self._documents = np.full(size, None, dtype=object)
        self._metadatas = np.full(size, None, dtype=object)
        self._keys: Optional[np.ndarray] = None
        """Each label's id key (zero where none), made on first use by :meth:`key_array`."""
        self._live = np.zeros(size, dtype=bool)
        self._by_id: Optional[Dict[str, int]] = None
        """Each id's label, made on first use by :meth:`labels_of` (a write, a get by id): a query
        never needs it, so a cold open does not pay for it (0.03 s and 13 MiB at 200,000 records)."""

    @classmethod
    def load(cls, columns: Dict[str, np.ndarray], capacity: int) -> "RecordCache":
        """A cache filled from ``label``, ``id``, ``document`` and ``metadata`` (JSON) columns."""
        cache = cls(capacity)
        cache.put(columns["label"], columns["id"], columns["document"], columns["metadata"])
        return cache

    def _grow(self, max_label: int) -> None:
        if max_label < len(self._ids):
            return
        size = max(max_label + 1, 2 * len(self._ids))
        for name in ("_ids", "_documents", "_metadatas"):
            old = getattr(self, name)
            new = np.full(size, None, dtype=object)
            new[: len(old)] = old
            setattr(self, name, new)
        if self._keys is not None:
            keys = np.zeros(size, dtype=np.uint64)
            keys[: len(self._keys)] = self._keys
            self._keys = keys
        live = np.zeros(size, dtype=bool)
        live[: len(self._live)] = self._live
        self._live = live

    def put(
        self,
        labels: np.ndarray,
        ids: Sequence[str],
        documents: Sequence[Optional[str]],
        metadata_json: Sequence[Optional[str]],
    ) -> None:
        """Record (or replace) the given rows; metadata as the JSON text the store holds."""
        if len(labels) == 0:
            return
        labels = np.asarray(labels, dtype=np.int64)
        self._grow(int(np.max(labels)))
        self._ids[labels] = _objects(ids)
        self._documents[labels] = _objects(documents)
        self._metadatas[labels] = _objects(metadata_json)
        if self._keys is not None:
            self._keys[labels] = id_keys(ids)
        self._live[labels] = True
        if self._by_id is not None:
            self._by_id.update(zip(ids, labels.tolist()))

    def drop(self, labels: np.ndarray) -> None:
        """Forget deleted rows."""
        labels = np.asarray(labels, dtype=np.int64)
        labels = labels[(labels >= 0) & (labels < len(self._ids))]
        if self._by_id is not None:
            for record_id in self._ids[labels]:
                if record_id is not None:
                    self._by_id.pop(record_id, None)
        self._live[labels] = False
        self._ids[labels] = None
        self._documents[labels] = None
        self._metadatas[labels] = None

    def count(self) -> int:
        """How many records the collection holds (a count of the live mask: 30 µs at a million labels)."""
        return int(np.count_nonzero(self._live))

    def labels_of(self, ids: Sequence[str]) -> Dict[str, int]:
        """Each held id among ``ids``, with its label."""
        by_id = self._by_id
        if by_id is None:  # reads run beside each other: two first callers may both make it (the same one)
            live = np.flatnonzero(self._live)
            by_id = self._by_id = dict(zip(self._ids[live].tolist(), live.tolist()))
        return {i: by_id[i] for i in ids if i in by_id}

    def labels(self, limit: Optional[int] = None, offset: Optional[int] = None) -> np.ndarray:
        """Labels of the records held, ascending (insertion order), from ``offset``, at most ``limit``."""
        labels = np.flatnonzero(self._live)[offset or 0:]
        return (labels if limit is None else labels[:limit]).astype(np.int64)

    def ids(self, labels: np.ndarray) -> List[str]:
        """The ids of these labels, in order."""
        return self._ids[np.asarray(labels, dtype=np.int64)].tolist()

    def key_array(self) -> np.ndarray:
        """Every label's id key, indexed by label (zero past the highest label held); made on first use.

        Reads run beside each other: two first callers may both make the array (the same
        one); writes, which keep it current, run alone on their collection."""
        keys = self._keys
        if keys is None or len(keys) != len(self._ids):
            keys = np.zeros(len(self._ids), dtype=np.uint64)
            labels = np.flatnonzero(self._live)
            if len(labels):
                keys[labels] = id_keys(self._ids[labels].tolist())
            self._keys = keys
        return keys

    def rows(self, labels: Sequence[int], metadatas: bool = True) -> List[Row]:
        """``(id, document, metadata)`` for each label (metadata decoded afresh for each caller;
        None for every row unless ``metadatas``: decoding is most of the cost of a row)."""
        if not metadatas:
            return [(self._ids[label], self._documents[label], None) for label in labels]
        out = []
        for label in labels:
            metadata = self._metadatas[label]
            out.append((self._ids[label], self._documents[label], None if metadata is None else json.loads(metadata)))
        return out


def _objects(values: Sequence[Any]) -> np.ndarray:
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out
