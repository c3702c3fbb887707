"""vectordb: a lightweight, local, persistent vector database with built-in embedding functions.

    import vectordb
    client = vectordb.PersistentClient(path="./db")
    col = client.create_collection("notes")
    col.add(ids=["a"], documents=["the cat sat"])
    col.query(query_texts=["kitten"], n_results=1)

The names ``chromadb`` exports at its top level that apply here are exported too
(``Settings``, ``EmbeddingFunction``, ``Documents``, ``Embeddings``, ``Metadata``, ...),
so that a Chroma app moves over by changing its import.
"""

from vectordb import api, embedding_functions, errors, utils
from vectordb.client import Client, EphemeralClient, PersistentClient
from vectordb.collection import Collection
from vectordb.config import DEFAULT_DATABASE, DEFAULT_TENANT, Settings
from vectordb.embedding_functions import EmbeddingFunction
from vectordb.http_backend import HttpClient
from vectordb.milvus import MilvusClient
from vectordb.types import (
    DeleteResult,
    Documents,
    Embeddings,
    GetResult,
    IDs,
    Include,
    Metadata,
    Metadatas,
    QueryResult,
    Where,
    WhereDocument,
)
from vectordb.version import __version__

__all__ = [
    "Client",
    "Collection",
    "DEFAULT_DATABASE",
    "DEFAULT_TENANT",
    "DeleteResult",
    "Documents",
    "EmbeddingFunction",
    "Embeddings",
    "EphemeralClient",
    "GetResult",
    "HttpClient",
    "IDs",
    "Include",
    "Metadata",
    "Metadatas",
    "MilvusClient",
    "PersistentClient",
    "QueryResult",
    "Settings",
    "Where",
    "WhereDocument",
    "api",
    "embedding_functions",
    "errors",
    "utils",
    "__version__",
]
