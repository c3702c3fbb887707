"""Filters: ``where`` (metadata) and ``where_document`` (documents), parsed once, run twice.

This package owns the filter language. :mod:`vectordb.filters.tree` checks a user's
filter dicts once per request and turns them into a small typed tree
(:func:`parse_filter` → :class:`Filter`), the only form anything downstream sees;
:mod:`vectordb.filters.sql` writes that tree as parameterised SQL for the store
(:func:`to_sql`), and :mod:`vectordb.filters.dicts` writes it back as dicts for a server
(:func:`to_dicts`); :mod:`vectordb.filters.regex` owns the ``$regex`` dialect and
:mod:`vectordb.filters.documents` answers document filters in Python with the same engine
(:func:`document_matches`). The other interpreter of the same tree is the in-memory
:class:`vectordb.filters.metadata_index.MetadataIndex`; a property test keeps the two equal.
"""

from vectordb.filters.dicts import to_dicts
from vectordb.filters.documents import document_matches
from vectordb.filters.sql import to_sql
from vectordb.filters.tree import (
    MAX_DEPTH,
    And,
    Compare,
    Contains,
    DocContains,
    DocRegex,
    Filter,
    Member,
    Node,
    Or,
    parse_filter,
    parse_where,
    parse_where_document,
)

__all__ = [
    "MAX_DEPTH",
    "And",
    "Compare",
    "Contains",
    "DocContains",
    "DocRegex",
    "Filter",
    "Member",
    "Node",
    "Or",
    "document_matches",
    "parse_filter",
    "parse_where",
    "parse_where_document",
    "to_dicts",
    "to_sql",
]
