"""Queries of the Milvus backend: exact nearest neighbours, filtered exactly, in one round trip when possible.

A query without a filter is one Milvus search that also returns each hit's document
and metadata. A filtered query first tries the same in one search narrowed by the
filter's superset expression (:func:`vectordb.milvus.expressions.narrowing`), and checks
every hit exactly (:mod:`vectordb.milvus.matching`): Milvus searches exactly (a FLAT
index), so when every one of the ``k`` hits matches, or fewer than ``k`` came back, the
hits that match are exactly the ``k`` nearest matching records. Otherwise (some hit
matched the expression but not the filter) the matching records are selected first
and searched among by id (:meth:`Records._select`), as a query restricted by ``ids`` is.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from vectordb import validation as v
from vectordb.backend import CollectionInfo
from vectordb.errors import TextSearchUnavailableError
from vectordb.filters import Filter
from vectordb.index import settings
from vectordb.milvus import expressions as x
from vectordb.milvus.catalog import data_name
from vectordb.milvus.layout import METRICS, Layout
from vectordb.milvus.matching import matching
from vectordb.types import QueryResult

MAX_TOP_K = 16384
"""The most results Milvus gives per query row."""
Hit = Tuple[str, float, Optional[str], Optional[dict]]
"""One result: ``(id, distance, document, metadata)`` (document and metadata None unless asked for)."""


def _to_distance(metric: str, score: float) -> float:
    """Milvus's score as the local store's distance: l2 is squared already; cosine and ip are similarities."""
    return float(score) if metric == "l2" else 1.0 - float(score)


class Search:
    """Query operations of the Milvus backend (a mixin; see the module docstring)."""

    def text_query(
        self,
        collection_id: str,
        name: str,
        texts: List[str],
        n_results: int,
        filter: Optional[Filter],
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        """Refused: this backend keeps no BM25 index (Milvus's own full-text search uses its
        analyzers and statistics, not the exact scores that ``mode="text"`` promises)."""
        self.collection(collection_id, name)  # type: ignore[attr-defined]  # a missing collection is still CollectionNotFoundError
        raise TextSearchUnavailableError(
            f"collection {name!r}: text and hybrid queries are not available on Milvus ({self.uri}); "  # type: ignore[attr-defined]
            "use mode='vector', or a local or HTTP client"
        )

    def query(
        self,
        collection_id: str,
        name: str,
        queries: np.ndarray,
        n_results: int,
        filter: Optional[Filter],
        include: Sequence[str],
        ids: Optional[List[str]] = None,
    ) -> QueryResult:
        content = any(f in include for f in ("metadatas", "documents"))

        def run(info: CollectionInfo) -> List[List[Hit]]:
            if queries.shape[1] != info.dimension:
                raise v.dimension_error("query_embeddings", queries.shape[1], info.dimension or 0)
            layout = self.layout(data_name(info.id))  # type: ignore[attr-defined]
            if ids is None and filter is not None:
                found = self._narrowed(info, layout, queries, n_results, filter)
                if found is not None:
                    return found
            within = None
            if ids is not None or filter is not None:
                allowed = self._select(info, ids, filter)  # type: ignore[attr-defined]
                if not allowed:
                    return [[] for _ in range(len(queries))]
                within = x.one_of("id", allowed)
            return self._search(info, layout, queries, n_results, within, content)

        found = self._with_data(collection_id, name, run, [[] for _ in range(len(queries))])  # type: ignore[attr-defined]
        found = [sorted(row, key=lambda hit: hit[1]) for row in found]
        vectors = {}
        wanted = list(dict.fromkeys(hit[0] for row in found for hit in row))
        if wanted and "embeddings" in include:
            vectors = {r[0]: r[3] for r in self._with_data(  # type: ignore[attr-defined]
                collection_id, name, lambda i: self._records(i, wanted, ["embeddings"]), [])}  # type: ignore[attr-defined]
            found = [[hit for hit in row if hit[0] in vectors] for row in found]  # deleted meanwhile by another process
        return QueryResult(
            ids=[[hit[0] for hit in row] for row in found],
            distances=[[hit[1] for hit in row] for row in found] if "distances" in include else None,
            embeddings=[np.stack([vectors[hit[0]] for hit in row]) if row
                        else np.empty((0, 0), dtype=np.float32) for row in found]
            if "embeddings" in include else None,
            metadatas=[[hit[3] for hit in row] for row in found] if "metadatas" in include else None,
            documents=[[hit[2] for hit in row] for row in found] if "documents" in include else None,
            included=list(include),
        )

    def _search(self, info: CollectionInfo, layout: Layout, queries: np.ndarray, n_results: int,
                expr: Optional[x.Expr], content: bool) -> List[List[Hit]]:
        """One Milvus search: the nearest ``n_results`` of each query among the rows ``expr`` matches."""
        metric = settings.metric_of(info.metadata, info.metric)
        args = self.filter_args(expr) if expr is not None else {}  # type: ignore[attr-defined]
        rows = self.data_call(data_name(info.id), self.client.search,  # type: ignore[attr-defined]
                              data=np.asarray(queries, dtype=np.float32).tolist(),
                              limit=min(n_results, MAX_TOP_K),
                              output_fields=["id"] + (layout.content_fields if content else []),
                              search_params={"metric_type": METRICS[metric]},
                              consistency_level=self.read_level, **args)  # type: ignore[attr-defined]
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
        expr = x.narrowing(filter, self.features.infix_like)  # type: ignore[attr-defined]
        rows = self._search(info, layout, queries, k, expr, content=True)
        out: List[List[Hit]] = []
        for hits in rows:
            keep = list(matching(filter, [h[2] for h in hits], [h[3] for h in hits])) if hits else []
            if len(keep) < len(hits) and len(hits) >= k:
                return None
            out.append([hits[i] for i in keep])
        return out
