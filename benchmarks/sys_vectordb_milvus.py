"""vectordb's public API over Milvus (``vectordb.MilvusClient`` on a Milvus Lite file in the store's folder).

The same calls as :mod:`benchmarks.sys_vectordb`; only the client differs, which is the
point: the figures show what moving an app from ``PersistentClient`` to ``MilvusClient``
costs on one machine (Milvus Lite searches exactly: a FLAT index).
"""

from __future__ import annotations

import os

from benchmarks import sys_vectordb
from benchmarks.sys_vectordb import COLLECTION, COLLECTION_METADATA, import_library

LITE_FILE = "milvus.db"


class Store(sys_vectordb.Store):
    """A ``MilvusClient`` and its ``bench`` collection (cosine); subclasses change only :meth:`client_at`."""

    @staticmethod
    def client_at(path: str):
        """The ``MilvusClient`` of the store in ``path``: a Milvus Lite file there."""
        vectordb = import_library()
        os.makedirs(path, exist_ok=True)
        return vectordb.MilvusClient(os.path.join(path, LITE_FILE))

    @classmethod
    def create(cls, path: str, dim: int, capacity: int) -> "Store":
        client = cls.client_at(path)
        col = client.create_collection(COLLECTION, metadata=COLLECTION_METADATA, embedding_function=None)
        return cls(path, client, col)

    @classmethod
    def open(cls, path: str, dim: int) -> "Store":
        client = cls.client_at(path)
        return cls(path, client, client.get_collection(COLLECTION, embedding_function=None))

    def prepare(self) -> None:
        if self.closed:
            reopened = self.open(self.path, 0)
            self.client, self.collection, self.closed = reopened.client, reopened.collection, False
