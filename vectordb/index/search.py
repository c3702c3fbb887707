"""The search strategy shared by every index implementation: exact or approximate, and how
a filter is applied.

* A collection of at most ``exact_collection_max`` live vectors is searched exactly
  (brute force costs no more than the graph there, and is exact).
* A filtered query matching at most ``exact_search_max`` records is searched exactly
  over those records, so filtered queries keep their recall.
* A wider filter over-fetches from the graph (up to ``overfetch_max`` neighbours) and
  keeps the allowed ones; queries that come up short are searched again with the
  index's own filter (:meth:`ApproximateIndex.knn` with a mask).
* When the graph cannot return k results, the query is answered exactly.

The three thresholds are a :class:`SearchPolicy`, which each index carries (the engine sets
its own on every index it opens: ``engine.indexes.search_policy``).
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from vectordb.index.base import DEFAULT_SEARCH_POLICY, ApproximateIndex, SearchPolicy, SearchResult
from vectordb.index.exact import ExactVectors, exact_search

log = logging.getLogger("vectordb")



def search(
    index: ApproximateIndex,
    space: str,
    vectors: ExactVectors,
    queries: np.ndarray,
    k: int,
    allowed: Optional[np.ndarray] = None,
    policy: SearchPolicy = DEFAULT_SEARCH_POLICY,
) -> SearchResult:
    """The k nearest live labels of ``index`` and their distances for each query row.

    ``vectors`` holds the index's vectors for exact search (filled on first use);
    ``allowed`` (ascending labels) restricts the candidates. Returns
    arrays of shape (queries, k') with k' = min(k, candidates).
    """
    candidates = index.count if allowed is None else len(allowed)
    k = min(k, candidates)
    if k == 0:
        return np.empty((len(queries), 0), dtype=np.int64), np.empty((len(queries), 0), dtype=np.float32)
    if allowed is None and index.count <= policy.exact_collection_max:
        return exact_search(space, queries, k, index.live_labels(), vectors)
    if allowed is not None and len(allowed) <= max(policy.exact_search_max, k):
        return exact_search(space, queries, k, allowed, vectors)
    if allowed is None:
        found = index.knn(queries, k)
        if found is None:
            log.debug("the graph found fewer than %d results; answering by exact search", k)
            return exact_search(space, queries, k, index.live_labels(), vectors)
        return found
    return _filtered_graph_search(index, space, vectors, queries, k, allowed, policy.overfetch_max)


def _filtered_graph_search(
    index: ApproximateIndex, space: str, vectors: ExactVectors, queries: np.ndarray, k: int, allowed: np.ndarray,
    overfetch_max: int,
) -> SearchResult:
    """Many allowed labels: over-fetch from the graph and keep the allowed ones (vectorised);
    rows that come up short are searched again with the index's own filter."""
    mask = np.zeros(index.label_bound, dtype=bool)
    mask[allowed] = True
    share = len(allowed) / max(index.count, 1)
    fetch = min(index.count, int(np.ceil(2 * k / share)) + 10)
    out_labels = np.empty((len(queries), k), dtype=np.int64)
    out_distances = np.empty((len(queries), k), dtype=np.float32)
    short = np.arange(len(queries))
    found = index.knn(queries, fetch) if fetch <= overfetch_max else None
    if found is not None:
        labels, distances = found
        keep = mask[labels]
        enough = keep.sum(axis=1) >= k
        for row in np.flatnonzero(enough):
            chosen = np.flatnonzero(keep[row])[:k]
            out_labels[row], out_distances[row] = labels[row, chosen], distances[row, chosen]
        short = np.flatnonzero(~enough)
    if len(short):
        again = index.knn(queries[short], k, allowed=mask)
        if again is None:
            again = exact_search(space, queries[short], k, allowed, vectors)
        out_labels[short], out_distances[short] = again
    return out_labels, out_distances
