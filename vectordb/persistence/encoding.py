"""How a batch of records becomes the store's rows, and how stored values come back.

No SQL here: this module turns Python values into the columns that
:mod:`~vectordb.persistence.records` inserts (embeddings as float32 bytes, metadata
as JSON text and as typed ``metadata``/``metadata_lists`` rows) and back (JSON text,
NULLs). It is kept apart from the statements because the encoding is pure and is
tested on its own (and the integrity check recomputes the typed rows with it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from vectordb.validation import uniform_columns

__all__ = [
    "RecordBatch", "blobs", "from_json", "metadata_columns", "record_columns", "split_lists", "to_json", "unmask",
    "value_column",
]


@dataclass
class RecordBatch:
    """Full rows to write: one entry per record, aligned."""

    labels: np.ndarray
    ids: List[str]
    embeddings: np.ndarray
    documents: List[Optional[str]]
    metadatas: List[Optional[Dict[str, Any]]]

    @cached_property
    def metadata_json(self) -> List[Optional[str]]:
        """The metadata as the JSON text stored in ``records.metadata``."""
        encode = _ENCODER.encode
        return [None if m is None else encode(m) for m in self.metadatas]


def record_columns(batch: RecordBatch) -> Dict[str, np.ndarray]:
    """The ``records`` columns of a batch (but ``collection_id`` and ``seq``), as numpy arrays."""
    return {
        "label": np.asarray(batch.labels, dtype=np.int64),
        "id": np.asarray(batch.ids, dtype=object),
        "embedding": blobs(batch.embeddings),
        "document": np.asarray(batch.documents, dtype=object),
        "metadata": np.asarray(batch.metadata_json, dtype=object),
    }


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # one encoder: json.dumps with options builds one per call


def to_json(value: Any) -> Optional[str]:
    """``value`` as the JSON text the store keeps (None stays NULL)."""
    return None if value is None else _ENCODER.encode(value)


def from_json(text: Optional[str]) -> Any:
    """A stored JSON text back as a value (NULL is None)."""
    return None if text is None else json.loads(text)


def unmask(column: np.ndarray) -> np.ndarray:
    """DuckDB hands NULLs back as a masked array; turn them into None."""
    if not isinstance(column, np.ma.MaskedArray):
        return column
    plain = np.asarray(column.data, dtype=object).copy()
    plain[np.ma.getmaskarray(column)] = None
    return plain


def blobs(vectors: np.ndarray) -> np.ndarray:
    """Each vector as the little-endian float32 bytes of the ``embedding`` column."""
    vectors = np.ascontiguousarray(vectors, dtype="<f4")
    out = np.empty(len(vectors), dtype=object)
    out[:] = [row.tobytes() for row in vectors]
    return out


_VALUE_COLUMNS = {str: "str_value", int: "int_value", float: "float_value", bool: "bool_value"}
_VALUE_DTYPES = {"str_value": object, "int_value": np.int64, "float_value": np.float64, "bool_value": np.bool_}
VALUE_COLUMNS = tuple(_VALUE_DTYPES)
"""The typed value columns of ``metadata`` (and ``metadata_lists``), in the tables' order."""


def value_column(value: Any) -> str:
    """The ``metadata`` column that holds ``value`` (a checked str, int, float or bool)."""
    for kind in (bool, str, int, float):  # bool first: it is also an int
        if isinstance(value, kind):
            return _VALUE_COLUMNS[kind]
    raise TypeError(f"not a metadata value: {value!r}")


def split_lists(
    labels: np.ndarray, metadatas: List[Optional[Dict[str, Any]]]
) -> Tuple[Tuple[np.ndarray, List[Optional[Dict[str, Any]]]], Tuple[np.ndarray, List[Dict[str, Any]]]]:
    """``(labels, metadatas)`` of the scalar values and of the list items of a batch.

    A batch without list values is returned as it is. Each list value becomes one
    ``{key: item}`` entry per distinct item (a list holds an item or not: ``$contains``
    needs no repeats), under its record's label.
    """
    if not any(type(value) is list for meta in metadatas if meta for value in meta.values()):
        return (labels, metadatas), (np.empty(0, dtype=np.int64), [])
    scalars: List[Optional[Dict[str, Any]]] = []
    item_labels: List[int] = []
    items: List[Dict[str, Any]] = []
    for label, meta in zip(labels.tolist(), metadatas):
        plain = {}
        for key, value in (meta or {}).items():
            if type(value) is list:
                for item in dict.fromkeys(value):
                    item_labels.append(label)
                    items.append({key: item})
            else:
                plain[key] = value
        scalars.append(plain or None)
    return (labels, scalars), (np.asarray(item_labels, dtype=np.int64), items)


def metadata_columns(
    labels: np.ndarray, metadatas: List[Optional[Dict[str, Any]]]
) -> List[Tuple[str, Optional[str], Dict[str, np.ndarray]]]:
    """The typed ``metadata`` rows of a batch, as ``(value column, key, columns)`` groups.

    Values are checked plain ``str``/``int``/``float``/``bool`` by validation; each group
    fills one of the table's value columns (the others stay NULL). When every record has
    the same keys and a key's values share one type (:func:`uniform_columns`), each key is
    one group with the key as a constant; otherwise rows are grouped by value type,
    each with its own ``key``.
    """
    uniform = uniform_columns(metadatas)
    if uniform is not None and all(kind in _VALUE_COLUMNS for _, kind, _ in uniform):
        out: List[Tuple[str, Optional[str], Dict[str, np.ndarray]]] = []
        for key, kind, values in uniform:
            column = _VALUE_COLUMNS[kind]
            out.append((column, key, {"label": labels, "value": np.asarray(values, dtype=_VALUE_DTYPES[column])}))
        return out
    groups: Dict[str, Tuple[List[int], List[str], List[Any]]] = {}
    for label, meta in zip(labels.tolist(), metadatas):
        if not meta:
            continue
        for key, value in meta.items():
            column = _VALUE_COLUMNS.get(type(value)) or value_column(value)
            group = groups.get(column)
            if group is None:
                group = groups[column] = ([], [], [])
            group[0].append(label)
            group[1].append(key)
            group[2].append(value)
    return [
        (
            column,
            None,
            {
                "label": np.asarray(group_labels, dtype=np.int64),
                "key": np.asarray(keys, dtype=object),
                "value": np.asarray(values, dtype=_VALUE_DTYPES[column]),
            },
        )
        for column, (group_labels, keys, values) in groups.items()
    ]
