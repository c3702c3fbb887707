"""The systems under test, by name. Each module has ``import_library()`` and a ``Store``.

A ``Store`` has ``create(path, dim, capacity)`` and ``open(path, dim)`` class methods and
``add(start, vectors, metadatas, documents)``, ``finish()`` (make it durable),
``prepare()`` (untimed set-up before queries), ``query(vector, k, category)`` (row
numbers, nearest first) and ``close()``. Modules import their library lazily, so that
the cold-open runner can time the import.
"""

from __future__ import annotations

from types import ModuleType

NAMES = ("vectordb", "vectordb-milvus", "vectordb-milvus-server", "hnswlib", "chromadb")


def load(name: str) -> ModuleType:
    """The runner module of system ``name``."""
    if name == "vectordb":
        from benchmarks import sys_vectordb as module
    elif name == "vectordb-milvus":
        from benchmarks import sys_vectordb_milvus as module
    elif name == "vectordb-milvus-server":
        from benchmarks import sys_vectordb_milvus_server as module
    elif name == "hnswlib":
        from benchmarks import sys_hnswlib as module
    elif name == "chromadb":
        from benchmarks import sys_chromadb as module
    else:
        raise ValueError(f"unknown system {name!r}; expected one of {', '.join(NAMES)}")
    return module
