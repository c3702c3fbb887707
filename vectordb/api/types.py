"""Chroma's ``chromadb.api.types`` import path: the domain's names, as vectordb defines them.

Each name is vectordb's own (from :mod:`vectordb.types` and
:mod:`vectordb.embedding_functions`), so that code typed against Chroma
(``from chromadb.api.types import Documents, Embeddings, EmbeddingFunction, QueryResult``)
runs with only its import changed. Two of Chroma's helpers that embedding-function code
calls are here too: :func:`normalize_embeddings` and :func:`validate_embeddings`.
"""

from __future__ import annotations

from typing import Any, List, Optional

import numpy as np

from vectordb.embedding_functions.base import EmbeddingFunction
from vectordb.embedding_functions import DefaultEmbeddingFunction
from vectordb.errors import InvalidArgumentError
from vectordb.types import (
    ID,
    URI,
    CollectionMetadata,
    DeleteResult,
    Document,
    Documents,
    Embeddable,
    Embedding,
    Embeddings,
    GetResult,
    IDs,
    Image,
    Images,
    Include,
    IncludeField,
    Metadata,
    Metadatas,
    MetadataValue,
    OneOrMany,
    QueryResult,
    ScalarValue,
    Space,
    UpdateMetadata,
    URIs,
    Where,
    WhereDocument,
)

LiteralValue = ScalarValue
"""Chroma's name for a scalar metadata value (str, int, float or bool)."""
UpdateCollectionMetadata = UpdateMetadata
TYPE_KEY = "#type"
SPARSE_VECTOR_TYPE_VALUE = "sparse_vector"
"""Chroma's tag for a sparse vector held in metadata (``{"#type": "sparse_vector", ...}``).
vectordb has no sparse vectors: the names exist so that modules importing them load."""

__all__ = [
    "CollectionMetadata",
    "DefaultEmbeddingFunction",
    "DeleteResult",
    "Document",
    "Documents",
    "Embeddable",
    "Embedding",
    "EmbeddingFunction",
    "Embeddings",
    "GetResult",
    "ID",
    "IDs",
    "Image",
    "Images",
    "Include",
    "IncludeField",
    "LiteralValue",
    "Metadata",
    "MetadataValue",
    "Metadatas",
    "OneOrMany",
    "QueryResult",
    "SPARSE_VECTOR_TYPE_VALUE",
    "Space",
    "TYPE_KEY",
    "URI",
    "URIs",
    "UpdateCollectionMetadata",
    "UpdateMetadata",
    "Where",
    "WhereDocument",
    "normalize_embeddings",
    "validate_embeddings",
]

_NUMBER_KINDS = "fiu"


def normalize_embeddings(target: Any) -> Optional[List[np.ndarray]]:
    """One embedding or many (lists of numbers, 1-D or 2-D arrays, a list of arrays) as a list of 1-D arrays.

    None stays None. Raises InvalidArgumentError (a ValueError) for anything else,
    an empty input included. Values are not checked here: see :func:`validate_embeddings`.
    """
    if target is None:
        return None
    if isinstance(target, np.ndarray) and target.ndim in (1, 2) and target.size:
        return [target] if target.ndim == 1 else list(target)
    if isinstance(target, (list, tuple)) and target:
        first = target[0]
        if _is_number(first):
            return [np.asarray(target, dtype=np.float32)] if all(map(_is_number, target)) else _not_embeddings(target)
        if isinstance(first, np.ndarray):
            return list(target)
        if isinstance(first, (list, tuple)) and first and _is_number(first[0]):
            return [np.asarray(row, dtype=np.float32) for row in target]
    return _not_embeddings(target)


def validate_embeddings(embeddings: Any) -> List[np.ndarray]:
    """``embeddings`` if it is a non-empty list of non-empty 1-D arrays of numbers; else InvalidArgumentError."""
    if not isinstance(embeddings, (list, np.ndarray)) or len(embeddings) == 0:
        raise InvalidArgumentError(f"embeddings: expected a non-empty list of numpy arrays, got {_short(embeddings)}")
    for i, row in enumerate(embeddings):
        if not isinstance(row, np.ndarray):
            raise InvalidArgumentError(f"embeddings[{i}]: expected a numpy array, got {type(row).__name__}")
        if row.ndim != 1 or row.size == 0:
            raise InvalidArgumentError(f"embeddings[{i}]: expected a 1-dimensional array with at least one value")
        if row.dtype.kind not in _NUMBER_KINDS or row.dtype == np.bool_:
            raise InvalidArgumentError(f"embeddings[{i}]: expected ints or floats, got an array of {row.dtype}")
    return list(embeddings)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))


def _not_embeddings(target: Any) -> List[np.ndarray]:
    raise InvalidArgumentError(
        "Expected embeddings to be a list of floats or ints, a list of lists, a numpy array, or a list of numpy "
        f"arrays, got {_short(target)}"
    )


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
