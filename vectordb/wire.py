"""What crosses HTTP between :class:`vectordb.http_backend.HttpBackend` and ``vectordb serve``.

Both sides use these functions, so the two ends cannot drift: a collection as JSON
(:func:`collection_json` / :func:`collection_info`), the results of ``compact`` and
``check``, and the one answer that is not an error for the caller:
:class:`EmbeddingsNeeded`, the server's way of asking the client to embed the documents
of a write that need a vector (new records, changed documents), so that over HTTP, as
locally, an unchanged document is never embedded again.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Dict, List

import numpy as np

from vectordb.backend import CollectionInfo
from vectordb.errors import InvalidArgumentError, VectorDBError
from vectordb.types import CheckReport, CompactResult, Problem

API_PREFIX = "/api/v1"
RECORD_BYTES = 32 * 1024
"""About what one record of 1,536 dimensions takes as JSON: the server's advised batch size
(``get_max_batch_size``) is its request-body limit divided by this."""


class EmbeddingsNeeded(VectorDBError):
    """A write needs vectors for these documents; the client embeds them and sends the write again."""

    code = "embeddings_needed"
    http_status = 409

    def __init__(self, texts: List[str]) -> None:
        super().__init__(
            f"the vectordb server does not embed texts: {len(texts)} documents need embeddings; send them as "
            "embeddings, or by text as document_embeddings (vectordb.HttpClient does)"
        )
        self.texts = texts


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(body: Any) -> bytes:
    """``body`` as JSON bytes (numpy arrays as lists); InvalidArgumentError if it cannot be."""
    try:
        return json.dumps(body, default=_encode).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"the arguments cannot be sent as JSON: {exc}") from None


def collection_json(info: CollectionInfo) -> Dict[str, Any]:
    """A collection as the server describes it."""
    spec = None if info.ef_name is None else {"name": info.ef_name, "config": info.ef_config}
    return {"id": info.id, "name": info.name, "metadata": info.metadata, "dimension": info.dimension,
            "embedding_function": spec, "metric": info.metric}


def collection_info(model: Dict[str, Any]) -> CollectionInfo:
    """The :class:`CollectionInfo` a server's description stands for."""
    spec = model.get("embedding_function") or {}
    return CollectionInfo(
        id=model["id"], name=model["name"], metadata=model.get("metadata"), dimension=model.get("dimension"),
        ef_name=spec.get("name"), ef_config=spec.get("config"), metric=model.get("metric"),
    )


def compact_json(result: CompactResult) -> Dict[str, Any]:
    return asdict(result)


def compact_result(body: Dict[str, Any]) -> CompactResult:
    return CompactResult(**body)


def check_json(report: CheckReport) -> Dict[str, Any]:
    return asdict(report)


def check_report(body: Dict[str, Any]) -> CheckReport:
    problems = [Problem(**p) for p in body.get("problems", [])]
    return CheckReport(**{**body, "problems": problems})
