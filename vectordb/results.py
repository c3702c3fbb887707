"""Results, built in one place for every backend.

A backend reads records as :data:`Record` tuples ``(id, document, metadata, embedding)`` and
makes its answer with :func:`get_result` (a ``get``) or :func:`query_result` (a search, one
list of records per query, with its distances or its scores); the collection gives the user
Chroma 1.x's shape with :func:`for_user` (embeddings as float64 arrays, the ``uris`` and
``data`` keys). A field not in ``include`` is None; ``included`` lists the fields asked for.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from vectordb.types import GetResult, QueryResult

Record = Tuple[str, Optional[str], Optional[dict], Optional[np.ndarray]]
"""One record as a backend read it: ``(id, document, metadata, embedding or None)``."""


def get_result(records: Sequence[Record], include: Sequence[str]) -> GetResult:
    """The answer to a ``get``: the records' fields in ``include``, in the records' order."""
    return GetResult(  # type: ignore[typeddict-item]
        ids=[r[0] for r in records],
        embeddings=_vectors(records) if "embeddings" in include else None,
        metadatas=[r[2] for r in records] if "metadatas" in include else None,
        documents=[r[1] for r in records] if "documents" in include else None,
        included=list(include),
    )


def query_result(
    per_query: Sequence[Sequence[Record]], include: Sequence[str], distances: Optional[Sequence[Any]] = None,
    scores: Optional[Sequence[Any]] = None,
) -> QueryResult:
    """The answer to a search: for each query its records, best first, with their ``distances`` (a
    vector search) or their ``scores`` (a text or hybrid search, whose ``distances`` are None)."""
    out = QueryResult(  # type: ignore[typeddict-item]
        ids=[[r[0] for r in rs] for rs in per_query],
        distances=[[float(d) for d in ds] for ds in distances] if distances is not None and "distances" in include
        else None,
        embeddings=[_vectors(rs) for rs in per_query] if "embeddings" in include else None,
        metadatas=[[r[2] for r in rs] for rs in per_query] if "metadatas" in include else None,
        documents=[[r[1] for r in rs] for rs in per_query] if "documents" in include else None,
        included=list(include),
    )
    if scores is not None:
        out["scores"] = [[float(x) for x in s] for s in scores] if "scores" in include else None  # type: ignore[typeddict-unknown-key]
    return out


def for_user(result: Any, search: bool, ranked_by_text: bool = False) -> Any:
    """A backend's result as users get it (Chroma 1.x's shape): embeddings as float64 arrays (one
    per query for a ``search``), ``uris`` and ``data`` None; a text or hybrid search has no distances."""
    embeddings = result.get("embeddings")
    if embeddings is not None:
        result["embeddings"] = [matrix(rows) for rows in embeddings] if search else matrix(embeddings)
    if ranked_by_text:
        result["distances"] = None
    result.setdefault("uris", None)
    result.setdefault("data", None)
    return result


def matrix(rows: Any) -> np.ndarray:
    """Embeddings as Chroma 1.x returns them: a float64 array of shape (n, dimension), or (0,) for none."""
    out = np.asarray(rows, dtype=np.float64)
    return out if out.size else np.empty(0, dtype=np.float64)


def _vectors(records: Sequence[Record]) -> np.ndarray:
    """The embeddings of the records as one (n, d) matrix."""
    return np.stack([r[3] for r in records]) if records else np.empty((0, 0), dtype=np.float32)
