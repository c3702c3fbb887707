"""vectordb: a lightweight, local, persistent vector database with built-in embedding functions.

    import vectordb
    client = vectordb.PersistentClient(path="./db")
    col = client.create_collection("notes")
    col.add(ids=["a"], documents=["the cat sat"])
    col.query(query_texts=["kitten"], n_results=1)
"""

from vectordb import embedding_functions, errors
from vectordb.client import Client, EphemeralClient, PersistentClient
from vectordb.collection import Collection
from vectordb.http_backend import HttpClient
from vectordb.types import GetResult, QueryResult

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Collection",
    "EphemeralClient",
    "GetResult",
    "HttpClient",
    "PersistentClient",
    "QueryResult",
    "embedding_functions",
    "errors",
    "__version__",
]
