"""The exact answer to a filter over records fetched from Milvus, by vectordb's own interpreters.

Milvus narrows (:func:`vectordb.milvus.expressions.narrowing`: a superset); this module
decides. ``where`` goes to :class:`vectordb.index.metadata.MetadataIndex`, the
interpreter the local engine answers filters with; a document tree of ``$contains`` /
``$not_contains`` is answered here (``text in document``, as DuckDB's ``contains``). What
neither can answer exactly (ints beyond ±2**53, more than 128 keys, a node these do not
know) is answered by the local engine itself: the candidates are loaded into an
in-memory :class:`vectordb.engine.local.LocalBackend` and filtered there by the same SQL
a local store runs. So the Milvus backend matches what a local store matches, always.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from vectordb.backend import Write
from vectordb.filters.tree import And, DocContains, Filter, Node, Or
from vectordb.index.metadata import MetadataIndex


def matching(filter: Filter, documents: Sequence[Optional[str]], metadatas: Sequence[Optional[Dict[str, Any]]]) -> np.ndarray:
    """Positions (ascending) of the records that ``filter`` matches exactly."""
    n = len(documents)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    mask = np.ones(n, dtype=bool)
    if filter.where is not None:
        index = MetadataIndex(n)
        index.put(np.arange(n), metadatas)
        labels = index.evaluate(filter.where)
        if labels is None:
            return _by_local_engine(filter, documents, metadatas)
        where_mask = np.zeros(n, dtype=bool)
        where_mask[labels] = True
        mask &= where_mask
    if filter.document is not None:
        doc_mask = _documents(filter.document, documents)
        if doc_mask is None:
            return _by_local_engine(filter, documents, metadatas)
        mask &= doc_mask
    return np.flatnonzero(mask).astype(np.int64)


def _documents(node: Node, documents: Sequence[Optional[str]]) -> Optional[np.ndarray]:
    """A mask of the documents ``node`` matches; None for a node not known here."""
    if isinstance(node, DocContains):
        hit = np.fromiter((d is not None and node.text in d for d in documents), dtype=bool, count=len(documents))
        return ~np.fromiter((d is not None for d in documents), dtype=bool, count=len(documents)) | ~hit \
            if node.negated else hit
    if isinstance(node, (And, Or)):
        masks = [_documents(child, documents) for child in node.children]
        if any(m is None for m in masks):
            return None
        return np.logical_and.reduce(masks) if isinstance(node, And) else np.logical_or.reduce(masks)
    return None


def _by_local_engine(filter: Filter, documents: Sequence[Optional[str]], metadatas: Sequence[Optional[Dict[str, Any]]]) -> np.ndarray:
    """The local engine's answer: the records loaded into an in-memory store, filtered by its SQL."""
    from vectordb.engine.local import LocalBackend  # only for the rare filters the fast paths cannot answer

    engine = LocalBackend(None)
    try:
        info = engine.create_collection("matching", None, None, None)
        ids: List[str] = [str(i) for i in range(len(documents))]
        write = Write("add", ids, np.zeros((len(ids), 1), dtype=np.float32), list(metadatas), list(documents))
        engine.write(info.id, info.name, write, None)
        found = engine.get(info.id, info.name, None, filter, None, None, [])["ids"]
        return np.sort(np.asarray([int(i) for i in found], dtype=np.int64))
    finally:
        engine.close()
