"""Compile ``where`` and ``where_document`` filters into parameterised SQL.

No I/O here: :func:`compile_where` and :func:`compile_where_document` turn a filter
tree into a SQL boolean expression over the ``records`` table (alias ``r``) plus the
list of parameters it uses. Nothing the user wrote is ever part of the SQL text:
keys and values travel as parameters, and only operators from fixed tables here
choose the SQL. Metadata conditions read the typed ``metadata`` table (one row per
record and key) through ``r.label IN (subquery)``.

Semantics (as Chroma): ``{"k": v}`` is ``{"k": {"$eq": v}}``; several keys in one
dict are ANDed; ``$ne`` and ``$nin`` also match records that lack the key; numbers
compare numerically whether stored as int or float; ``$gt``-family operators take
numbers only; ``$contains`` is a case-sensitive substring match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from vectordb.errors import InvalidArgumentError
from vectordb.validation import check_text, validate_metadata_value

Params = List[Any]
SQL = Tuple[str, Params]

_COMPARE = {"$eq": "=", "$ne": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_LIST_OPS = ("$in", "$nin")
_NEGATED = ("$ne", "$nin")
_OPERATORS = tuple(_COMPARE) + _LIST_OPS
_DOC_OPS = ("$contains", "$not_contains")
_LOGIC = ("$and", "$or")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def compile_where(where: Any, collection_id: str, path: str = "where") -> SQL:
    """SQL condition and parameters for a metadata filter; raises InvalidArgumentError naming the bad part."""
    if not isinstance(where, dict):
        raise InvalidArgumentError(f"{path}: expected a dict, got {type(where).__name__}")
    if not where:
        raise InvalidArgumentError(f"{path}: empty filter (pass None for no filter)")
    parts: List[SQL] = []
    for key, value in where.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{path}: keys must be strings, got {_short(key)}")
        check_text(key, f"{path}: key {key!r}")
        if key in _LOGIC:
            parts.append(_logic(key, value, lambda w, p: compile_where(w, collection_id, p), f"{path}[{key!r}]"))
        elif key.startswith("$"):
            raise InvalidArgumentError(
                f"{path}: {key!r} is not allowed here: use $and or $or, or a metadata key"
            )
        else:
            parts.append(_field(key, value, collection_id, f"{path}[{key!r}]"))
    return _join(parts, "AND")


def compile_where_document(where_document: Any, path: str = "where_document") -> SQL:
    """SQL condition and parameters for a document filter."""
    if not isinstance(where_document, dict) or len(where_document) != 1:
        raise InvalidArgumentError(
            f"{path}: expected a dict with exactly one operator "
            f"({', '.join(_DOC_OPS + _LOGIC)}), got {_short(where_document)}"
        )
    (op, value), = where_document.items()
    if op in _LOGIC:
        return _logic(op, value, compile_where_document, f"{path}[{op!r}]")
    if op not in _DOC_OPS:
        raise InvalidArgumentError(f"{path}: unknown operator {_short(op)} (expected one of {', '.join(_DOC_OPS + _LOGIC)})")
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{path}[{op!r}]: expected a string, got {type(value).__name__}")
    check_text(value, f"{path}[{op!r}]")
    if op == "$contains":
        return "(r.document IS NOT NULL AND contains(r.document, ?))", [value]
    return "(r.document IS NULL OR NOT contains(r.document, ?))", [value]


def _logic(op: str, value: Any, compile_one: Any, path: str) -> SQL:
    if not isinstance(value, list) or len(value) < 2:
        raise InvalidArgumentError(f"{path}: expected a list of at least two filters, got {_short(value)}")
    return _join([compile_one(item, f"{path}[{i}]") for i, item in enumerate(value)], "AND" if op == "$and" else "OR")


def _join(parts: List[SQL], word: str) -> SQL:
    if len(parts) == 1:
        return parts[0]
    params: Params = []
    for _, p in parts:
        params.extend(p)
    return "(" + f" {word} ".join(sql for sql, _ in parts) + ")", params


def _field(key: str, condition: Any, collection_id: str, path: str) -> SQL:
    if isinstance(condition, dict):
        if len(condition) != 1:
            raise InvalidArgumentError(f"{path}: expected exactly one operator, got {_short(condition)}")
        (op, operand), = condition.items()
    else:
        op, operand = "$eq", condition
    if op not in _OPERATORS:
        raise InvalidArgumentError(f"{path}: unknown operator {_short(op)} (expected one of {', '.join(_OPERATORS)})")
    where = f"{path}[{op!r}]"
    if op in _LIST_OPS:
        values = _list_operand(operand, where)
        tests = [_typed_test("=", v) for v in values]
        test = "(" + " OR ".join(sql for sql, _ in tests) + ")"
        test_params = [p for _, ps in tests for p in ps]
    else:
        value = validate_metadata_value(operand, where)
        if op not in ("$eq", "$ne") and (isinstance(value, (str, bool))):
            raise InvalidArgumentError(f"{where}: expected an int or float, got {type(value).__name__}")
        test, test_params = _typed_test(_COMPARE[op], value)
    subquery = "SELECT m.label FROM metadata m WHERE m.collection_id = ? AND m.key = ? AND " + test
    word = "NOT IN" if op in _NEGATED else "IN"
    return f"r.label {word} ({subquery})", [collection_id, key, *test_params]


def _list_operand(operand: Any, where: str) -> List[Any]:
    if not isinstance(operand, list) or not operand:
        raise InvalidArgumentError(f"{where}: expected a non-empty list, got {_short(operand)}")
    values = [validate_metadata_value(v, f"{where}[{i}]") for i, v in enumerate(operand)]
    kinds = {_kind(v) for v in values}
    if len(kinds) > 1:
        raise InvalidArgumentError(f"{where}: all values must be of one type, got {', '.join(sorted(kinds))}")
    return values


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    return "number"


def _typed_test(sql_op: str, value: Any) -> SQL:
    """The comparison of one metadata row against ``value``, matching only rows of its type."""
    if isinstance(value, bool):
        return f"m.bool_value {sql_op} ?", [value]
    if isinstance(value, str):
        return f"m.str_value {sql_op} ?", [value]
    if isinstance(value, int):
        return f"(m.int_value {sql_op} CAST(? AS BIGINT) OR m.float_value {sql_op} CAST(? AS DOUBLE))", [value, value]
    return f"(CAST(m.int_value AS DOUBLE) {sql_op} CAST(? AS DOUBLE) OR m.float_value {sql_op} CAST(? AS DOUBLE))", [value, value]


@dataclass(frozen=True)
class Filter:
    """A checked ``where`` / ``where_document`` pair (None where not given)."""

    where: Optional[Dict[str, Any]]
    document: Optional[Dict[str, Any]]


def parse_filter(where: Any, where_document: Any) -> Optional[Filter]:
    """The checked filter of a request, or None when it filters nothing; raises InvalidArgumentError."""
    w = None if where is None or where == {} else where
    d = None if where_document is None or where_document == {} else where_document
    if w is None and d is None:
        return None
    parsed = Filter(w, d)
    to_sql(parsed, "")
    return parsed


def to_sql(filter: Filter, collection_id: str) -> SQL:
    """The SQL condition (over ``records`` as ``r``) and parameters of a checked filter."""
    parts = []
    if filter.where is not None:
        parts.append(compile_where(filter.where, collection_id))
    if filter.document is not None:
        parts.append(compile_where_document(filter.document))
    return _join(parts, "AND")


def filter_json(filter: Optional[Filter]) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """``(where, where_document)`` as JSON-able dicts, to send a checked filter to a server."""
    if filter is None:
        return None, None
    return filter.where, filter.document
