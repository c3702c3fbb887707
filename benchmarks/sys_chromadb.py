"""chromadb 1.x, run under its own interpreter (numpy, chromadb and the standard library only).

Embeddings are always given and ``embedding_function=None`` (chromadb's default function
would download a model). The collection uses cosine space and vectordb's M/ef values.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

COLLECTION = "bench"
HNSW = {"space": "cosine", "max_neighbors": 16, "ef_construction": 100, "ef_search": 50}


def import_library() -> Any:
    """Import chromadb (timed by the cold-open runner)."""
    import chromadb

    return chromadb


def _client(path: str) -> Any:
    chromadb = import_library()
    from chromadb.config import Settings

    return chromadb.PersistentClient(path=path, settings=Settings(anonymized_telemetry=False))


class Store:
    """A chromadb ``PersistentClient`` and its ``bench`` collection."""

    def __init__(self, path: str, client: Any, collection: Any) -> None:
        self.path = path
        self.client = client
        self.collection = collection

    @classmethod
    def create(cls, path: str, dim: int, capacity: int) -> "Store":
        """A new store with an empty cosine collection."""
        client = _client(path)
        col = client.create_collection(COLLECTION, configuration={"hnsw": HNSW}, embedding_function=None)
        return cls(path, client, col)

    @classmethod
    def open(cls, path: str, dim: int) -> "Store":
        """Reopen the store and its collection."""
        client = _client(path)
        return cls(path, client, client.get_collection(COLLECTION, embedding_function=None))

    def add(self, start: int, vectors: np.ndarray, metadatas: Sequence[Dict[str, Any]],
            documents: Sequence[str]) -> None:
        """Add one batch with embeddings, metadata and documents."""
        self.collection.add(
            ids=[f"id{i}" for i in range(start, start + len(vectors))], embeddings=vectors,
            metadatas=list(metadatas), documents=list(documents),
        )

    def finish(self) -> None:
        """chromadb persists as it goes."""

    def prepare(self) -> None:
        """Nothing to precompute."""

    def query(self, vector: Any, k: int, category: Optional[int] = None) -> List[int]:
        """Rows of the ``k`` nearest, with chromadb's default ``include``."""
        where = None if category is None else {"category": category}
        result = self.collection.query(query_embeddings=[vector], n_results=k, where=where)
        return [int(i[2:]) for i in result["ids"][0]]

    def close(self) -> None:
        """chromadb's local client has nothing to close."""
