"""A parsed filter written back in Chroma's dict syntax, to send it where it is parsed again.

:class:`vectordb.http_backend.HttpBackend` sends the tree as the canonical dicts of
:func:`to_dicts` (the server parses them with the same parser), so a filter is checked
once on the client and means the same on both ends: ``parse_filter(*to_dicts(f)) == f``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from vectordb.filters.tree import And, Compare, Contains, DocContains, DocRegex, Filter, Member, Node, Or


def node_dict(node: Node) -> Dict[str, Any]:
    """One node as a filter dict (nesting is bounded by the parser's MAX_DEPTH)."""
    if isinstance(node, Compare):
        return {node.key: {node.op: node.value}}
    if isinstance(node, Member):
        return {node.key: {"$nin" if node.negated else "$in": list(node.values)}}
    if isinstance(node, Contains):
        return {node.key: {"$not_contains" if node.negated else "$contains": node.value}}
    if isinstance(node, DocContains):
        return {"$not_contains" if node.negated else "$contains": node.text}
    if isinstance(node, DocRegex):
        return {"$not_regex" if node.negated else "$regex": node.pattern}
    word = "$and" if isinstance(node, And) else "$or"
    assert isinstance(node, (And, Or))
    return {word: [node_dict(child) for child in node.children]}


def to_dicts(filter: Optional[Filter]) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, Any]]]:
    """``(where, where_document)`` of a parsed filter (None where it has none)."""
    if filter is None:
        return None, None
    where = None if filter.where is None else node_dict(filter.where)
    document = None if filter.document is None else node_dict(filter.document)
    return where, document
