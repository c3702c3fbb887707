"""vectordb's public API over a real Milvus server (``vectordb.MilvusClient("http://127.0.0.1:<port>")``).

The server is Milvus 2.3.5 standalone (the ``milvus`` PyPI package's binary, in a venv of
its own: ``tests/milvus_server_helpers.py``), started by :meth:`Store.create` on free
loopback ports with its data in the store's folder, so the disk figure is the server's.
It outlives the worker process (the cold-open runs and the queries of later processes
use it) and stops when the harness removes the store's folder. The same calls as
:mod:`benchmarks.sys_vectordb`; the figures include a gRPC hop to another process and
the server's own work (exact FLAT search, Session reads: :mod:`vectordb.milvus.calls`).
"""

from __future__ import annotations

import os

from benchmarks import sys_vectordb_milvus
from benchmarks.sys_vectordb import import_library

SERVER_DIR = "milvus-server"
URI_FILE = "milvus-uri.txt"


class Store(sys_vectordb_milvus.Store):
    """A ``MilvusClient`` of a Milvus 2.3 server started for the store, and its ``bench`` collection (cosine)."""

    @staticmethod
    def client_at(path: str):
        """The ``MilvusClient`` of the server started for the store in ``path`` (its URI is kept there)."""
        with open(os.path.join(path, URI_FILE)) as fh:
            return import_library().MilvusClient(fh.read().strip())

    @classmethod
    def create(cls, path: str, dim: int, capacity: int) -> "Store":
        from tests.milvus_server_helpers import MilvusServer

        os.makedirs(path, exist_ok=True)
        server = MilvusServer(os.path.join(path, SERVER_DIR), detached=True).start()
        with open(os.path.join(path, URI_FILE), "w") as fh:
            fh.write(server.uri)
        return super().create(path, dim, capacity)
