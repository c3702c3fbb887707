"""A parsed ``where_document`` tree answered in Python, for one document at a time.

The store answers document filters in SQL (:func:`vectordb.filters.sql.to_sql`); this is
the same semantics without a database, for code that holds documents in memory (and the
property test that keeps the two equal, ``tests/test_filter_equivalence.py``):
``$contains`` is a case-sensitive substring test, ``$regex`` an RE2 search with the engine
and options DuckDB uses (:mod:`vectordb.filters.regex`), and a record without a document
(``None``) contains nothing and matches no pattern, so only the negated forms match it.
"""

from __future__ import annotations

from typing import Optional

from vectordb.filters.regex import search
from vectordb.filters.tree import And, DocContains, DocRegex, Node, Or


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
