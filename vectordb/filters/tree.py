"""The typed tree of a ``where`` / ``where_document`` filter, and the one parser that builds it.

A user's filter is a dict (Chroma's syntax). :func:`parse_filter` checks it once, in
full, and turns it into a small tree of frozen nodes (:class:`Compare`, :class:`Member`,
:class:`Contains`, :class:`And`, :class:`Or`, :class:`DocContains`, :class:`DocRegex`) held by a :class:`Filter`. Everything
that runs a filter takes the tree: :func:`vectordb.filters.sql.to_sql` writes it as
SQL, :meth:`vectordb.filters.metadata_index.MetadataIndex.evaluate` answers it in numpy. Neither
validates again; a tree built by the parser is known good (values are plain Python
str / int / float / bool, lists are non-empty and of one kind).

Syntax (as Chroma): ``{"k": v}`` is ``{"k": {"$eq": v}}``; several keys in one dict are
ANDed; ``$and`` / ``$or`` take lists of at least two filters, nested at most
:data:`MAX_DEPTH` deep (deeper raises InvalidArgumentError before anything recurses
far); ``$gt``-family operators take numbers only; ``$in`` / ``$nin`` take a non-empty
list of values of one kind (str, bool or number); ``$contains`` / ``$not_contains`` on a
metadata key take one value and ask whether the key's list value holds it. Semantics
(``$ne`` / ``$nin`` / ``$not_contains`` also match records lacking the key, ints and
floats compare numerically, a list value equals no scalar) are the interpreters'. Errors name the offending part by its path, e.g.
``where['$and'][1]['year']['$gt']``. ``where_document`` ``$regex`` / ``$not_regex`` patterns
are checked here against the dialect and cost bound of :mod:`vectordb.filters.regex`.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Tuple, Union

from vectordb.errors import InvalidArgumentError
from vectordb.filters.regex import check_pattern
from vectordb.validation import check_text, validate_metadata_value

MAX_DEPTH = 64  # the most levels of $and / $or nesting one filter may have

Scalar = Union[str, int, float, bool]

COMPARE_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")
_LIST_OPS = ("$in", "$nin")
_CONTAINS_OPS = ("$contains", "$not_contains")  # on a metadata list, or on the document
_REGEX_OPS = ("$regex", "$not_regex")  # on the document only
_DOC_OPS = _CONTAINS_OPS + _REGEX_OPS
_OPERATORS = COMPARE_OPS + _LIST_OPS + _CONTAINS_OPS
_LOGIC = ("$and", "$or")


@dataclass(frozen=True)
class Compare:
    """Metadata ``key`` compared with ``value`` by ``op`` (one of :data:`COMPARE_OPS`).

    ``$ne`` also matches records lacking the key; ordering operators hold numbers only.
    """

    key: str
    op: str
    value: Scalar


@dataclass(frozen=True)
class Member:
    """Metadata ``key`` is one of ``values`` (``$in``), or with ``negated`` is none of them
    (``$nin``, which also matches records lacking the key). ``values`` are of one kind."""

    key: str
    values: Tuple[Scalar, ...]
    negated: bool = False


@dataclass(frozen=True)
class Contains:
    """Metadata ``key`` holds a list with an item equal to ``value`` (``$contains``); with
    ``negated``, it does not (``$not_contains``, which also matches records lacking the key
    and records whose value is not a list). Items compare as ``$eq`` compares."""

    key: str
    value: Scalar
    negated: bool = False


@dataclass(frozen=True)
class And:
    """Every child holds (two or more children)."""

    children: Tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    """At least one child holds (two or more children)."""

    children: Tuple["Node", ...]


@dataclass(frozen=True)
class DocContains:
    """The document contains ``text`` (case-sensitive); with ``negated``, it does not
    (a record without a document does not contain anything)."""

    text: str
    negated: bool = False


@dataclass(frozen=True)
class DocRegex:
    """The RE2 ``pattern`` matches somewhere in the document (``$regex``); with ``negated``, it
    does not (``$not_regex``). A record without a document matches no pattern, not even one
    that matches the empty string, so ``$not_regex`` matches it, as ``$not_contains`` does.
    The parser has checked the pattern (:func:`vectordb.filters.regex.check_pattern`)."""

    pattern: str
    negated: bool = False


Node = Union[Compare, Member, Contains, And, Or, DocContains, DocRegex]


@dataclass(frozen=True)
class Filter:
    """One request's parsed filters: ``where`` over metadata, ``document`` over documents
    (either may be None; :func:`parse_filter` gives None rather than a Filter of two Nones)."""

    where: Optional[Node]
    document: Optional[Node]


def kind(value: Scalar) -> str:
    """A metadata value's kind as filters see it: "bool", "str" or "number" (bools are not numbers)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "str"
    return "number"


def parse_filter(where: Any, where_document: Any) -> Optional[Filter]:
    """Both filters of a request, checked; None when neither filters anything (None or ``{}``)."""
    where_node = parse_where(where)
    document_node = parse_where_document(where_document)
    if where_node is None and document_node is None:
        return None
    return Filter(where_node, document_node)


def parse_where(where: Any) -> Optional[Node]:
    """The tree of a metadata filter (None for None or ``{}``); raises InvalidArgumentError naming the bad part."""
    if _absent(where):
        return None
    return _where(where, "where", 0)


def parse_where_document(where_document: Any) -> Optional[Node]:
    """The tree of a document filter (None for None or ``{}``); raises InvalidArgumentError naming the bad part."""
    if _absent(where_document):
        return None
    return _document(where_document, "where_document", 0)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and not value)


_REPR = reprlib.Repr()  # bounded depth and length: a huge or deeply nested value cannot blow up a message
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


def _short(value: Any) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(where: Any, path: str, depth: int) -> Node:
    if not isinstance(where, dict):
        raise InvalidArgumentError(f"{path}: expected a dict, got {type(where).__name__}")
    if not where:
        raise InvalidArgumentError(f"{path}: empty filter (pass None for no filter)")
    parts: List[Node] = []
    for key, value in where.items():
        if not isinstance(key, str):
            raise InvalidArgumentError(f"{path}: keys must be strings, got {_short(key)}")
        check_text(key, f"{path}: key {key!r}")
        if key in _LOGIC:
            parts.append(_logic(key, value, _where, f"{path}[{key!r}]", depth, "where"))
        elif key.startswith("$"):
            raise InvalidArgumentError(
                f"{path}: {key!r} is not allowed here: use $and or $or, or a metadata key"
            )
        else:
            parts.append(_field(key, value, f"{path}[{key!r}]"))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _document(where_document: Any, path: str, depth: int) -> Node:
    if not isinstance(where_document, dict) or len(where_document) != 1:
        raise InvalidArgumentError(
            f"{path}: expected a dict with exactly one operator "
            f"({', '.join(_DOC_OPS + _LOGIC)}), got {_short(where_document)}"
        )
    (op, value), = where_document.items()
    if op in _LOGIC:
        return _logic(op, value, _document, f"{path}[{op!r}]", depth, "where_document")
    if op not in _DOC_OPS:
        raise InvalidArgumentError(
            f"{path}: unknown operator {_short(op)} (a where document takes one of {', '.join(_DOC_OPS + _LOGIC)})"
        )
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{path}[{op!r}]: expected a string, got {type(value).__name__} {_short(value)} (where document operators take text)"
        )
    check_text(value, f"{path}[{op!r}]")
    if op in _REGEX_OPS:
        return DocRegex(check_pattern(value, f"{path}[{op!r}]"), negated=op == "$not_regex")
    return DocContains(value, negated=op == "$not_contains")


def _logic(op: str, value: Any, parse_one: Callable[[Any, str, int], Node], path: str, depth: int, arg: str) -> Node:
    """``$and`` / ``$or``: the depth is checked before descending, so recursion stays within MAX_DEPTH levels."""
    if not isinstance(value, list) or len(value) < 2:
        raise InvalidArgumentError(f"{path}: expected a list of at least two filters, got {_short(value)}")
    if depth >= MAX_DEPTH:
        raise InvalidArgumentError(f"{arg}: $and / $or nested too deep (the limit is {MAX_DEPTH} levels)")
    children = tuple(parse_one(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    return And(children) if op == "$and" else Or(children)


def _field(key: str, condition: Any, path: str) -> Node:
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
        return Member(key, _list_operand(operand, where), negated=op == "$nin")
    value = validate_metadata_value(operand, where)
    if op in _CONTAINS_OPS:
        return Contains(key, value, negated=op == "$not_contains")
    if op not in ("$eq", "$ne") and isinstance(value, (str, bool)):
        raise InvalidArgumentError(f"{where}: expected an int or float, got {type(value).__name__}")
    return Compare(key, op, value)


def _list_operand(operand: Any, where: str) -> Tuple[Scalar, ...]:
    if not isinstance(operand, list) or not operand:
        raise InvalidArgumentError(f"{where}: expected a non-empty list, got {_short(operand)}")
    try:  # one pass without per-value paths: lists may hold 100k values
        values = tuple(validate_metadata_value(v, where) for v in operand)
    except InvalidArgumentError:
        for i, v in enumerate(operand):  # again, to name the bad value by its index
            validate_metadata_value(v, f"{where}[{i}]")
        raise
    types = set(map(type, values))
    kinds = {"bool" if issubclass(t, bool) else "str" if issubclass(t, str) else "number" for t in types}
    if len(kinds) > 1:
        raise InvalidArgumentError(f"{where}: all values must be of one type, got {', '.join(sorted(kinds))}")
    return values
