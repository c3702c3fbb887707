"""A script written for chromadb 1.5.9's client (run by tests/test_chroma_dropin.py under Chroma and vectordb).

It is run as it is under ``/opt/chroma-venv/bin/python``, and under vectordb with only
its imports changed (``chromadb`` becomes ``vectordb``); both must print the same.
Its one argument is the folder of the store.
"""

import sys

import numpy as np

import chromadb
from chromadb import Documents, EmbeddingFunction, Embeddings
from chromadb.config import Settings
from chromadb.errors import NotFoundError
from chromadb.utils import embedding_functions


class LetterEmbedding(EmbeddingFunction):
    """A tiny deterministic embedding: counts of a few letters."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [np.array([t.count("a") + 1.0, t.count("e") + 0.5, t.count("o") + 0.25, len(t) / 10]) for t in input]


client = chromadb.PersistentClient(path=sys.argv[1], settings=Settings(anonymized_telemetry=False, allow_reset=True))
books = client.create_collection(
    "books",
    configuration={"hnsw": {"space": "cosine", "ef_construction": 64, "ef_search": 32, "max_neighbors": 8}},
    embedding_function=LetterEmbedding(),
)
hnsw = books.configuration["hnsw"]
print("configuration", {key: hnsw[key] for key in ("space", "ef_construction", "ef_search", "max_neighbors")})

books.add(
    ids=["dune", "emma", "odyssey"],
    documents=["a desert planet and a boy", "a clever young woman meddles", "a long voyage home over the sea"],
    metadatas=[{"tags": ["scifi", "classic"], "year": 1965}, {"tags": ["romance", "classic"], "year": 1815},
               {"tags": ["epic"], "year": -700}],
)
books.add(ids=["untitled"], embeddings=[[1.0, 1.0, 1.0, 1.0]], documents=[None], metadatas=[{"tags": [1, 2, 3]}])
print("count", books.count())

got = books.get(ids=["emma", "dune"], include=["embeddings", "documents", "metadatas"])
print("included", sorted(got["included"]))
print("embeddings", type(got["embeddings"]).__name__, got["embeddings"].shape, got["embeddings"].dtype)
print("records", sorted(zip(got["ids"], got["documents"], [m["year"] for m in got["metadatas"]])))
print("no document", books.get(ids=["untitled"])["documents"])

print("contains classic", sorted(books.get(where={"tags": {"$contains": "classic"}})["ids"]))
print("not_contains classic", sorted(books.get(where={"tags": {"$not_contains": "classic"}})["ids"]))
print("contains 2", books.get(where={"tags": {"$contains": 2}})["ids"])
print("eq on a list key", books.get(where={"tags": "epic"})["ids"])
print("contains and year", sorted(books.get(where={"$and": [{"tags": {"$contains": "classic"}}, {"year": {"$gt": 1900}}]})["ids"]))

found = books.query(query_texts=["a sea voyage"], n_results=2, ids=["emma", "odyssey", "dune"],
                    include=["distances", "embeddings"])
print("query ids", found["ids"], "included", sorted(found["included"]))
print("query embeddings", type(found["embeddings"]).__name__, [(e.shape, str(e.dtype)) for e in found["embeddings"]])
print("distances", [[round(d, 4) for d in row] for row in found["distances"]])
limited = books.query(query_embeddings=[[1.0, 1.0, 1.0, 1.0]], n_results=3, ids=["dune", "emma"],
                      where={"year": {"$lt": 1900}}, include=[])
print("query ids and where", limited["ids"])

books.update(ids=["odyssey"], metadatas=[{"tags": ["epic", "poem"], "lang": "greek"}])
print("merged", sorted(books.get(ids=["odyssey"])["metadatas"][0].items()))
print("delete", books.delete(ids=["untitled"]))
print("delete where", books.delete(where={"year": {"$lt": 0}}))
print("left", sorted(books.get()["ids"]))

plain = client.get_collection("books", embedding_function=None)
print("handle without a function", plain.query(query_embeddings=[[1.0, 0.5, 0.25, 0.1]], n_results=1, include=[])["ids"])
try:
    client.get_collection("missing")
except NotFoundError as error:
    print("missing", type(error).__name__ in ("NotFoundError", "CollectionNotFoundError"), str(error))
print("default function", callable(embedding_functions.DefaultEmbeddingFunction))
client.create_collection("shelf", embedding_function=None)
print("collections", sorted(c.name for c in client.list_collections()), client.count_collections())
print("reset", client.reset(), client.list_collections())
