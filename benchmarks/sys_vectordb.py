"""vectordb through its public, Chroma-shaped API, as a user would call it."""

from __future__ import annotations

import gc
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

COLLECTION = "bench"
COLLECTION_METADATA = {"hnsw:space": "cosine"}


def import_library() -> Any:
    """Import vectordb (timed by the cold-open runner)."""
    import vectordb

    return vectordb


def ids_for(start: int, count: int) -> List[str]:
    """String ids ``id<row>`` for rows ``start..start+count-1``."""
    return [f"id{i}" for i in range(start, start + count)]


def rows_of(ids: Sequence[str]) -> List[int]:
    """Back from ``id<row>`` to row numbers."""
    return [int(i[2:]) for i in ids]


class Store:
    """A ``PersistentClient`` and its ``bench`` collection (cosine, default M/ef)."""

    def __init__(self, path: str, client: Any, collection: Any) -> None:
        self.path = path
        self.client = client
        self.collection = collection
        self.closed = False

    @classmethod
    def create(cls, path: str, dim: int, capacity: int) -> "Store":
        """A new store with an empty collection that takes explicit embeddings only."""
        vectordb = import_library()
        client = vectordb.PersistentClient(path=path)
        col = client.create_collection(COLLECTION, metadata=COLLECTION_METADATA, embedding_function=None)
        return cls(path, client, col)

    @classmethod
    def open(cls, path: str, dim: int) -> "Store":
        """Reopen the store and its collection."""
        vectordb = import_library()
        client = vectordb.PersistentClient(path=path)
        return cls(path, client, client.get_collection(COLLECTION, embedding_function=None))

    def add(self, start: int, vectors: np.ndarray, metadatas: Sequence[Dict[str, Any]],
            documents: Sequence[str]) -> None:
        """Add one batch: embeddings as a numpy array, with metadata and documents."""
        self.collection.add(
            ids=ids_for(start, len(vectors)), embeddings=vectors,
            metadatas=list(metadatas), documents=list(documents),
        )

    def finish(self) -> None:
        """Close the client (it saves what it defers); the reopen for the queries is :meth:`prepare`'s."""
        if callable(getattr(self.client, "close", None)):
            self.client.close()
            self.closed = True

    def prepare(self) -> None:
        """Reopen the store closed by :meth:`finish` (not timed; the cold open is measured separately).

        The closed client is let go first, as an application that reopens a store would: a closed
        client still holds what its engine had loaded until it is dropped (its graph, caches), and
        holding it beside the new one counted both in the peak RSS."""
        if self.closed:
            self.client = self.collection = None
            gc.collect()
            reopened = Store.open(self.path, 0)
            self.client, self.collection, self.closed = reopened.client, reopened.collection, False

    def query(self, vector: Any, k: int, category: Optional[int] = None) -> List[int]:
        """Rows of the ``k`` nearest, with the default ``include`` (metadatas, documents, distances)."""
        where = None if category is None else {"category": category}
        result = self.collection.query(query_embeddings=[vector], n_results=k, where=where)
        return rows_of(result["ids"][0])

    def close(self) -> None:
        """Close the client if it can be closed."""
        if not self.closed and callable(getattr(self.client, "close", None)):
            self.client.close()
