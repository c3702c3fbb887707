"""The exact answer to a filter over records fetched from Milvus, by vectordb's own interpreters.

Milvus narrows (:func:`vectordb.milvus.expressions.narrowing`: a superset); this module
decides, with the interpreters the rest of vectordb answers filters with, never one of
its own. ``where`` goes to :class:`vectordb.filters.metadata_index.MetadataIndex` (the local
engine's, held equal to the store's SQL by a property test); where it declines (ints
beyond ±2**53, more than its key limit) each record is answered by
:func:`vectordb.filters.documents.metadata_matches`, the same semantics in exact Python
arithmetic. ``where_document`` (``$contains``, ``$regex`` and their negations) goes to
:func:`vectordb.filters.documents.document_matches`. So the Milvus backend matches what a
local store matches, always.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import numpy as np

from vectordb.filters.documents import document_matches, metadata_matches
from vectordb.filters.tree import Filter, Node
from vectordb.filters.metadata_index import MetadataIndex


def matching(filter: Filter, documents: Sequence[Optional[str]], metadatas: Sequence[Optional[Dict[str, Any]]]) -> np.ndarray:
    """Positions (ascending) of the records that ``filter`` matches exactly (``documents`` and
    ``metadatas`` aligned, one entry per record; None: the record has none)."""
    n = len(documents)
    mask = np.ones(n, dtype=bool)
    if n and filter.where is not None:
        mask &= _where(filter.where, metadatas)
    if n and filter.document is not None:
        node = filter.document
        mask &= np.fromiter((document_matches(node, d) for d in documents), dtype=bool, count=n)
    return np.flatnonzero(mask).astype(np.int64)


def _where(node: Node, metadatas: Sequence[Optional[Dict[str, Any]]]) -> np.ndarray:
    """A mask of the metadatas that ``node`` (a ``where`` tree) matches."""
    n = len(metadatas)
    index = MetadataIndex(n)
    index.put(range(n), metadatas)
    labels = index.evaluate(node)
    if labels is None:  # only exact arithmetic can answer: record by record
        return np.fromiter((metadata_matches(node, m) for m in metadatas), dtype=bool, count=n)
    mask = np.zeros(n, dtype=bool)
    mask[labels] = True
    return mask
