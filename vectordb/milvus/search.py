"""Searches of the Milvus backend: exact nearest neighbours, filtered exactly, in one round trip when possible.

:class:`Searcher` owns a backend's ``search``. Milvus keeps no BM25 index, so a text or
hybrid search is refused before any request is sent (:class:`TextSearchUnavailableError`).
A vector search without a filter is one Milvus search that also returns each hit's document
and metadata. A filtered search first tries the same in one search narrowed by the
filter's superset expression (:func:`vectordb.milvus.expressions.narrowing`), and checks
every hit exactly (:mod:`vectordb.milvus.matching`): Milvus searches exactly (a FLAT
index), so when every one of the ``k`` hits matches, or fewer than ``k`` came back, the
hits that match are exactly the ``k`` nearest matching records. Otherwise (some hit
matched the expression but not the filter) the matching records are selected first
and searched among by id (:meth:`vectordb.milvus.records.Records.select`), as a search
restricted by ``ids`` is.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

from vectordb import validation as v
from vectordb.backend import CollectionInfo
from vectordb.errors import TextSearchUnavailableError
from vectordb.filters import Filter
from vectordb.index import settings
from vectordb.milvus import expressions as x
from vectordb.milvus.calls import Calls
from vectordb.milvus.catalog import data_name
from vectordb.milvus.layout import METRICS, Layout
from vectordb.milvus.matching import matching
from vectordb.milvus.records import Records
from vectordb.milvus.registry import Registry
from vectordb.requests import CollectionRef, Search
from vectordb.results import Record, query_result
from vectordb.types import QueryResult

MAX_TOP_K = 16384
"""The most results Milvus gives per query row."""
Hit = Tuple[str, float, Optional[str], Optional[dict]]
"""One result: ``(id, distance, document, metadata)`` (document and metadata None unless asked for)."""


def _to_distance(metric: str, score: float) -> float:
    """Milvus's score as the local store's distance: l2 is squared already; cosine and ip are similarities."""
    return float(score) if metric == "l2" else 1.0 - float(score)


class Searcher:
    """The searches of one backend (see the module docstring).

    Args:
        calls: how requests reach Milvus.
        registry: the collections' descriptions and layouts, and the errors for missing ones.
        records: selects the records a filter or ``ids`` allow, and reads their embeddings.
    """

    def __init__(self, calls: Calls, registry: Registry, records: Records) -> None:
        self._calls = calls
        self._registry = registry
        self._records = records

    def search(self, ref: CollectionRef, search: Search) -> QueryResult:
        """The ``n_results`` nearest records of each query row, nearest first, with their distances.

        Raises:
            TextSearchUnavailableError: ``search.mode`` ranks by text (checked before any request:
                this backend keeps no BM25 index, and Milvus's own full-text search uses its
                analyzers and statistics, not the exact scores that ``mode="text"`` promises).
        """
        if search.ranks_text:
            raise TextSearchUnavailableError(
                f"collection {ref.name!r}: text and hybrid queries (mode={search.mode!r}) are not available on "
                f"Milvus ({self._calls.uri}); use mode='vector', or a local or HTTP client"
            )
        assert search.vectors is not None  # a vector search has them (Search checks)
        queries, n_results, filter, ids = search.vectors, search.n_results, search.filter, search.ids
        content = any(f in search.include for f in ("metadatas", "documents"))

        def run(info: CollectionInfo) -> List[List[Hit]]:
            if queries.shape[1] != info.dimension:
                raise v.dimension_error("query_embeddings", queries.shape[1], info.dimension or 0)
            layout = self._registry.layout(data_name(info.id))
            if ids is None and filter is not None:
                found = self._narrowed(info, layout, queries, n_results, filter)
                if found is not None:
                    return found
            within = None
            if ids is not None or filter is not None:
                allowed = self._records.select(info, ids, filter)
                if not allowed:
                    return [[] for _ in range(len(queries))]
                within = x.one_of("id", allowed)
            return self._search(info, layout, queries, n_results, within, content)

        none: List[List[Hit]] = [[] for _ in range(len(queries))]
        found = [sorted(row, key=lambda hit: hit[1]) for row in self._registry.with_data(ref, run, none)]
        vectors: Dict[str, Optional[np.ndarray]] = {}
        wanted = list(dict.fromkeys(hit[0] for row in found for hit in row))
        if wanted and "embeddings" in search.include:
            read: List[Record] = self._registry.with_data(
                ref, lambda info: self._records.records(info, wanted, ["embeddings"]), [])
            vectors = {r[0]: r[3] for r in read}
            found = [[hit for hit in row if hit[0] in vectors] for row in found]  # deleted meanwhile by another process
        per_query: List[List[Record]] = [[(hit[0], hit[2], hit[3], vectors.get(hit[0])) for hit in row] for row in found]
        return query_result(per_query, search.include, distances=[[hit[1] for hit in row] for row in found])

    def _search(self, info: CollectionInfo, layout: Layout, queries: np.ndarray, n_results: int,
                expr: Optional[x.Expr], content: bool) -> List[List[Hit]]:
        """One Milvus search: the nearest ``n_results`` of each query among the rows ``expr`` matches."""
        metric = settings.metric_of(info.metadata, info.metric)
        args = self._calls.filter_args(expr) if expr is not None else {}
        rows = self._calls.data_call(data_name(info.id), self._calls.client.search,
                              data=np.asarray(queries, dtype=np.float32).tolist(),
                              limit=min(n_results, MAX_TOP_K),
                              output_fields=["id"] + (layout.content_fields if content else []),
                              search_params={"metric_type": METRICS[metric]},
                              consistency_level=self._calls.read_level, **args)
        out = []
        for row in rows:
            hits = []
            for hit in row:
                entity = hit.get("entity") or {}
                hits.append((hit["id"], _to_distance(metric, hit["distance"]),
                             layout.document(entity) if content else None,
                             layout.metadata(entity) if content else None))
            out.append(hits)
        return out

    def _narrowed(self, info: CollectionInfo, layout: Layout, queries: np.ndarray, n_results: int,
                  filter: Filter) -> Optional[List[List[Hit]]]:
        """The filtered answer from one search narrowed by the filter's superset, or None when that
        search cannot tell (a hit outside the filter among a full ``k``): see the module docstring."""
        k = min(n_results, MAX_TOP_K)
        expr = x.narrowing(filter, self._registry.features.infix_like)
        rows = self._search(info, layout, queries, k, expr, content=True)
        out: List[List[Hit]] = []
        for hits in rows:
            keep = list(matching(filter, [h[2] for h in hits], [h[3] for h in hits])) if hits else []
            if len(keep) < len(hits) and len(hits) >= k:
                return None
            out.append([hits[i] for i in keep])
        return out
