"""Write a parsed :class:`~vectordb.filters.tree.Filter` as parameterised SQL for DuckDB.

:func:`to_sql` gives a boolean expression over the ``records`` table (alias ``r``) and
the parameters it uses. Nothing the user wrote is ever part of the SQL text: keys and
values travel as parameters, and only the node types and operators (fixed tables
here) choose the SQL. Metadata conditions read the typed ``metadata`` table (one row
per record and key) through ``r.label [NOT] IN (subquery)``, so ``$ne`` / ``$nin``
match records lacking the key; ``$contains`` / ``$not_contains`` read the
``metadata_lists`` table (one row per distinct item of a list value) the same way. ``$in`` / ``$nin`` pass their values as one list
parameter and test membership with ``IN (SELECT unnest(?))``, which DuckDB runs as a
hash join: linear in the number of values (one OR term per value was quadratic).
Numbers compare numerically whether stored as int or float; an int asked is compared
exactly with stored ints (BIGINT), and as a DOUBLE with stored floats. ``$regex`` runs
DuckDB's ``regexp_matches`` (RE2, a search anywhere in the document) with the pattern as
a parameter; a record without a document matches no pattern.
"""

from __future__ import annotations

from typing import Any, List, Sequence, Tuple

from vectordb.filters.tree import And, Compare, Contains, DocContains, DocRegex, Filter, Member, Node, Or, Scalar, kind

Params = List[Any]
SQL = Tuple[str, Params]

_SQL_OP = {"$eq": "=", "$ne": "=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_METADATA = "SELECT m.label FROM metadata m WHERE m.collection_id = ? AND m.key = ? AND "
_LIST_ITEMS = "SELECT m.label FROM metadata_lists m WHERE m.collection_id = ? AND m.key = ? AND "


def to_sql(filter: Filter, collection_id: str) -> SQL:
    """The SQL condition (over ``records r``) and its parameters for ``filter`` in one collection."""
    parts = [_node(node, collection_id) for node in (filter.where, filter.document) if node is not None]
    return _join(parts, "AND")


def _node(node: Node, collection_id: str) -> SQL:
    """One node's SQL (the parser bounds the depth, so this recursion stays shallow)."""
    if isinstance(node, (And, Or)):
        return _join([_node(child, collection_id) for child in node.children], "AND" if isinstance(node, And) else "OR")
    if isinstance(node, DocContains):
        if node.negated:
            return "(r.document IS NULL OR NOT contains(r.document, ?))", [node.text]
        return "(r.document IS NOT NULL AND contains(r.document, ?))", [node.text]
    if isinstance(node, DocRegex):
        if node.negated:
            return "(r.document IS NULL OR NOT regexp_matches(r.document, ?))", [node.pattern]
        return "(r.document IS NOT NULL AND regexp_matches(r.document, ?))", [node.pattern]
    table = _METADATA
    if isinstance(node, Compare):
        test, params = _typed_test(_SQL_OP[node.op], node.value)
        negated = node.op == "$ne"
    elif isinstance(node, Contains):
        test, params = _typed_test("=", node.value)
        negated, table = node.negated, _LIST_ITEMS
    elif isinstance(node, Member):
        test, params = _member_test(node.values)
        negated = node.negated
    else:
        raise TypeError(f"not a filter node: {type(node).__name__}")
    word = "NOT IN" if negated else "IN"
    return f"r.label {word} ({table}{test})", [collection_id, node.key, *params]


def _join(parts: List[SQL], word: str) -> SQL:
    if len(parts) == 1:
        return parts[0]
    params: Params = []
    for _, p in parts:
        params.extend(p)
    return "(" + f" {word} ".join(sql for sql, _ in parts) + ")", params


def _typed_test(sql_op: str, value: Scalar) -> SQL:
    """The comparison of one metadata row against ``value``, matching only rows of its kind."""
    if isinstance(value, bool):
        return f"m.bool_value {sql_op} ?", [value]
    if isinstance(value, str):
        return f"m.str_value {sql_op} ?", [value]
    if isinstance(value, int):
        return f"(m.int_value {sql_op} CAST(? AS BIGINT) OR m.float_value {sql_op} CAST(? AS DOUBLE))", [value, value]
    return f"(CAST(m.int_value AS DOUBLE) {sql_op} CAST(? AS DOUBLE) OR m.float_value {sql_op} CAST(? AS DOUBLE))", [value, value]


def _member_test(values: Sequence[Scalar]) -> SQL:
    """A metadata row equals one of ``values`` (all of one kind), as :func:`_typed_test` with ``=`` would
    for each value, with each list passed as one parameter."""
    if kind(values[0]) == "bool":
        return "m.bool_value IN (SELECT unnest(?::BOOLEAN[]))", [list(values)]
    if kind(values[0]) == "str":
        return "m.str_value IN (SELECT unnest(?::VARCHAR[]))", [list(values)]
    ints = [v for v in values if isinstance(v, int)]
    floats = [v for v in values if isinstance(v, float)]
    terms: List[str] = []
    params: Params = []
    if ints:  # exactly against stored ints, as DOUBLE against stored floats
        terms.append("m.int_value IN (SELECT unnest(?::BIGINT[]))")
        terms.append("m.float_value IN (SELECT CAST(unnest(?::BIGINT[]) AS DOUBLE))")
        params += [ints, ints]
    if floats:
        terms.append("CAST(m.int_value AS DOUBLE) IN (SELECT unnest(?::DOUBLE[]))")
        terms.append("m.float_value IN (SELECT unnest(?::DOUBLE[]))")
        params += [floats, floats]
    return "(" + " OR ".join(terms) + ")", params
