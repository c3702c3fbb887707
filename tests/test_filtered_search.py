"""Filtered queries through the graph: over-fetching, hnswlib's filter, and exact search agree."""

import numpy as np
import pytest

import vectordb
from vectordb.index.search import SearchPolicy

N, DIM = 3000, 16


@pytest.fixture(scope="module")
def collection():
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((N, DIM)).astype(np.float32)
    col = vectordb.Client().create_collection("graph-filters", embedding_function=None)
    col.add(ids=[str(i) for i in range(N)], embeddings=vectors, metadatas=[{"bucket": i % 10} for i in range(N)])
    return col, vectors


def recall(col, vectors, where, allowed, queries, k=10):
    hits = 0
    for query in queries:
        got = col.query(query_embeddings=query, n_results=k, where=where, include=["distances"])
        ids = {int(i) for i in got["ids"][0]}
        assert ids <= set(allowed.tolist()), "a result outside the filter"
        assert got["distances"][0] == sorted(got["distances"][0])
        exact = allowed[np.argsort(((vectors[allowed] - query) ** 2).sum(1))[:k]]
        hits += len(ids & set(exact.tolist()))
    return hits / (k * len(queries))


@pytest.mark.parametrize("overfetch_max", [10_000, 0], ids=["over-fetch", "hnswlib-filter"])
def test_graph_paths_keep_recall_and_respect_the_filter(collection, overfetch_max):
    col, vectors = collection
    indexes = col.backend.engine.indexes
    indexes.search_policy = SearchPolicy(exact_search_max=50, exact_collection_max=0, overfetch_max=overfetch_max)
    try:
        queries = np.random.default_rng(8).standard_normal((20, DIM)).astype(np.float32)
        wide = {"bucket": {"$lt": 5}}
        allowed = np.flatnonzero(np.arange(N) % 10 < 5)
        assert recall(col, vectors, wide, allowed, queries) >= 0.9
        narrow = {"bucket": 3}
        allowed = np.flatnonzero(np.arange(N) % 10 == 3)
        assert recall(col, vectors, narrow, allowed, queries) >= 0.9
    finally:
        indexes.search_policy = SearchPolicy()  # the module's collection goes on with the defaults


def test_exact_path_is_exact(collection):
    col, vectors = collection
    queries = np.random.default_rng(9).standard_normal((10, DIM)).astype(np.float32)
    allowed = np.flatnonzero(np.arange(N) % 10 == 3)
    assert recall(col, vectors, {"bucket": 3}, allowed, queries) == 1.0
