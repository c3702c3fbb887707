"""A parsed filter tree answered in Python, for one record at a time.

The store answers filters in SQL (:func:`vectordb.filters.sql.to_sql`); this is the same
semantics without a database, for code that holds records in memory (the Milvus backend
decides what Milvus narrowed with it) and the property tests that keep the two equal.

Documents (:func:`document_matches`, ``tests/test_filter_equivalence.py``): ``$contains``
is a case-sensitive substring test, ``$regex`` an RE2 search with the engine and options
DuckDB uses (:mod:`vectordb.filters.regex`), and a record without a document (``None``)
contains nothing and matches no pattern, so only the negated forms match it.

Metadata (:func:`metadata_matches`): the SQL's rules in exact arithmetic, for what the
vectorised :class:`vectordb.filters.metadata_index.MetadataIndex` declines (ints beyond ±2**53,
too many keys). A condition holds only for values of its kind (bools are not numbers);
two ints compare exactly, an int and a float as doubles; a list value equals no scalar
and is what ``$contains`` looks into; ``$ne`` / ``$nin`` / ``$not_contains`` also match
a record lacking the key.
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Dict, Mapping, Optional

from vectordb.filters.regex import search
from vectordb.filters.tree import And, Compare, Contains, DocContains, DocRegex, Member, Node, Or, Scalar, kind

_OPS: Dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq, "$ne": operator.eq, "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt,
    "$lte": operator.le,
}  # $ne: the negation of $eq, as the SQL's NOT IN


def document_matches(node: Node, document: Optional[str]) -> bool:
    """Whether ``document`` (None: the record has none) satisfies the parsed ``where_document`` tree.

    Raises TypeError for a metadata node: a ``where_document`` tree holds none.
    """
    if isinstance(node, And):
        return all(document_matches(child, document) for child in node.children)
    if isinstance(node, Or):
        return any(document_matches(child, document) for child in node.children)
    if isinstance(node, DocContains):
        hit = document is not None and node.text in document
    elif isinstance(node, DocRegex):
        hit = document is not None and search(node.pattern, document)
    else:
        raise TypeError(f"not a document filter node: {type(node).__name__}")
    return hit != node.negated


def metadata_matches(node: Node, metadata: Optional[Mapping[str, Any]]) -> bool:
    """Whether ``metadata`` (None: the record has none) satisfies the parsed ``where`` tree.

    Raises TypeError for a document node: a ``where`` tree holds none.
    """
    if isinstance(node, And):
        return all(metadata_matches(child, metadata) for child in node.children)
    if isinstance(node, Or):
        return any(metadata_matches(child, metadata) for child in node.children)
    if not isinstance(node, (Compare, Member, Contains)):
        raise TypeError(f"not a metadata filter node: {type(node).__name__}")
    value = None if metadata is None else metadata.get(node.key)
    if isinstance(node, Compare):
        return _holds(_OPS[node.op], value, node.value) != (node.op == "$ne")
    if isinstance(node, Member):
        return any(_holds(operator.eq, value, asked) for asked in node.values) != node.negated
    hit = isinstance(value, list) and any(_holds(operator.eq, item, node.value) for item in value)
    return hit != node.negated


def _holds(test: Callable[[Any, Any], bool], stored: Any, asked: Scalar) -> bool:
    """``test(stored, asked)`` as the SQL runs it: false for no value, a list, or a value of another kind."""
    if stored is None or isinstance(stored, list) or kind(stored) != kind(asked):
        return False
    if kind(asked) == "number" and not (isinstance(stored, int) and isinstance(asked, int)):
        return test(float(stored), float(asked))  # an int beside a float: compared as DOUBLEs
    return test(stored, asked)
