"""Records in files: read JSONL, CSV and Parquet rows into records; write records to JSONL or Parquet.

An exported row is ``{"id", "document", "metadata", "embedding"}``; in Parquet the
metadata is a JSON string (so values keep their exact types) and the embedding a
list of float32. Reading a row, the metadata is, in order of preference: the fields
named by ``metadata_fields``; else a ``metadata`` field (a dict or JSON text); else
every field that is not the id, the text or the embedding. CSV values are typed:
``true``/``false`` are bools, integers and decimals are numbers, empty cells are left out.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional

from vectordb.errors import InvalidArgumentError, MissingDependencyError

_INT = re.compile(r"^-?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^-?[0-9]*\.[0-9]+([eE][-+]?[0-9]+)?$|^-?[0-9]+[eE][-+]?[0-9]+$")


@dataclass
class Record:
    """One record read from a file."""

    id: str
    document: Optional[str]
    metadata: Optional[Dict[str, Any]]
    embedding: Optional[List[float]]


def guess_format(path: str, given: Optional[str]) -> str:
    """The file format: ``given``, else from the extension (.jsonl/.ndjson/.json, .csv, .parquet/.pq)."""
    if given:
        return given
    ext = os.path.splitext(path)[1].lower()
    found = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv",
             ".parquet": "parquet", ".pq": "parquet"}.get(ext)
    if found is None:
        raise InvalidArgumentError(f"{path}: cannot tell the format from {ext or 'no extension'!r}: pass --format")
    return found


def pyarrow_modules() -> Any:
    """``(pyarrow, pyarrow.parquet)``, or MissingDependencyError naming the ``parquet`` extra."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingDependencyError("pyarrow", "parquet", "Parquet import and export") from None
    return pyarrow, pyarrow.parquet


def read_rows(path: str, fmt: str) -> List[Dict[str, Any]]:
    """Every row of the file as a dict."""
    if fmt == "parquet":
        _, pq = pyarrow_modules()
        return pq.read_table(path).to_pylist()
    with open(path, newline="" if fmt == "csv" else None, encoding="utf-8") as f:
        if fmt == "csv":
            return [{k: x or None for k, x in row.items() if k is not None} for row in csv.DictReader(f)]
        rows = []
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InvalidArgumentError(f"{path}, line {number}: not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise InvalidArgumentError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
        return rows


def _csv_value(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    if text in ("true", "false"):
        return text == "true"
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def to_records(
    rows: List[Dict[str, Any]],
    id_field: str = "id",
    text_field: str = "document",
    metadata_fields: Optional[List[str]] = None,
    embedding_field: Optional[str] = None,
    typed_strings: bool = False,
) -> List[Record]:
    """Turn rows into records; ``embedding_field`` None means ``embedding`` when rows have it.

    ``typed_strings`` (for CSV) turns metadata strings that spell bools and numbers into them.
    """
    if embedding_field is None and rows and "embedding" in rows[0]:
        embedding_field = "embedding"
    taken = {id_field, text_field, embedding_field}
    records = []
    for number, row in enumerate(rows, 1):
        record_id = row.get(id_field)
        if isinstance(record_id, int) and not isinstance(record_id, bool):
            record_id = str(record_id)
        if not isinstance(record_id, str) or not record_id:
            raise InvalidArgumentError(f"row {number}: no id in the field {id_field!r} (pass --id-field)")
        document = row.get(text_field)
        if document is not None and not isinstance(document, str):
            raise InvalidArgumentError(f"row {number}: the text field {text_field!r} is not a string")
        embedding = None
        if embedding_field is not None:
            embedding = row.get(embedding_field)
            if embedding is None:
                raise InvalidArgumentError(f"row {number}: no embedding in the field {embedding_field!r}")
            if isinstance(embedding, str):
                embedding = _json_field(embedding, number, embedding_field)
        metadata = _metadata(row, number, taken, metadata_fields)
        if typed_strings and metadata:
            metadata = {k: _csv_value(x) for k, x in metadata.items()}
        records.append(Record(record_id, document, metadata, embedding))
    return records


def _metadata(row: Dict[str, Any], number: int, taken: set, fields: Optional[List[str]]) -> Optional[Dict[str, Any]]:
    if fields is not None:
        meta = {k: row[k] for k in fields if row.get(k) is not None}
    elif "metadata" in row and "metadata" not in taken:
        meta = row["metadata"]
        if isinstance(meta, str):
            meta = _json_field(meta, number, "metadata")
        if meta is not None and not isinstance(meta, dict):
            raise InvalidArgumentError(f"row {number}: the field 'metadata' is not an object")
    else:
        meta = {k: x for k, x in row.items() if k not in taken and x is not None}
    return meta or None


def _json_field(text: str, number: int, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"row {number}: the field {field!r} is not valid JSON ({exc})") from None


def export_rows(result: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Rows of a ``get`` result that included embeddings, metadatas and documents."""
    for i, record_id in enumerate(result["ids"]):
        yield {"id": record_id, "document": result["documents"][i],
               "metadata": result["metadatas"][i], "embedding": result["embeddings"][i].tolist()}


def write_rows(path: str, fmt: str, pages: Iterable[List[Dict[str, Any]]]) -> int:
    """Write pages of exported rows to ``path`` (JSONL or Parquet); returns the row count."""
    if fmt not in ("jsonl", "parquet"):
        raise InvalidArgumentError(f"export: cannot write {fmt!r}; use jsonl or parquet")
    if fmt == "jsonl":
        count = 0
        with open(path, "w", encoding="utf-8") as f:
            for page in pages:
                for row in page:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += len(page)
        return count
    return _write_parquet(path, pages)


def _write_parquet(path: str, pages: Iterable[List[Dict[str, Any]]]) -> int:
    pa, pq = pyarrow_modules()
    schema = pa.schema([("id", pa.string()), ("document", pa.string()), ("metadata", pa.string()),
                        ("embedding", pa.list_(pa.float32()))])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for page in pages:
            rows = [dict(r, metadata=None if r["metadata"] is None else json.dumps(r["metadata"], ensure_ascii=False))
                    for r in page]
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(page)
    return count
