"""query: results equal exact numpy brute force (ids and distances) for every metric."""

from __future__ import annotations

import numpy as np
import pytest

from vectordb.errors import InvalidArgumentError, InvalidDimensionError

METRICS = ["l2", "cosine", "ip"]


def brute_force(space, queries, vectors, k, allowed=None):
    """Exact (indices, distances) per query, nearest first, as API.md defines the distances."""
    queries = np.asarray(queries, dtype=np.float64)
    vectors = np.asarray(vectors, dtype=np.float64)
    if space == "l2":
        d = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
    elif space == "cosine":
        qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        vn = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        d = 1 - qn @ vn.T
    else:
        d = 1 - queries @ vectors.T
    if allowed is not None:
        d = np.where(np.asarray(allowed)[None, :], d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def make(client, space, n=60, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    if space == "ip":
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"v{i}" for i in range(n)]
    col = client.create_collection(f"q-{space}", metadata={"hnsw:space": space}, embedding_function=None)
    col.add(
        ids=ids,
        embeddings=vectors,
        metadatas=[{"i": i, "group": "even" if i % 2 == 0 else "odd"} for i in range(n)],
        documents=[f"doc {i}" for i in range(n)],
    )
    return col, ids, vectors, rng


def check_against_oracle(result, ids, space, queries, vectors, k, allowed=None):
    order, dist = brute_force(space, queries, vectors, k, allowed)
    expected_k = min(k, len(vectors) if allowed is None else int(np.sum(allowed)))
    for qi in range(len(queries)):
        assert result["ids"][qi] == [ids[j] for j in order[qi][:expected_k]]
        np.testing.assert_allclose(result["distances"][qi], dist[qi][:expected_k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("space", METRICS)
def test_query_equals_brute_force(client, space):
    col, ids, vectors, rng = make(client, space)
    queries = rng.normal(size=(5, 8)).astype(np.float32)
    result = col.query(query_embeddings=queries, n_results=7)
    check_against_oracle(result, ids, space, queries, vectors, 7)


@pytest.mark.parametrize("space", METRICS)
def test_query_with_filter_equals_brute_force(client, space):
    col, ids, vectors, rng = make(client, space)
    queries = rng.normal(size=(3, 8)).astype(np.float32)
    allowed = np.array([i % 2 == 1 and i >= 10 for i in range(len(ids))])
    result = col.query(query_embeddings=queries, n_results=5, where={"$and": [{"group": "odd"}, {"i": {"$gte": 10}}]})
    check_against_oracle(result, ids, space, queries, vectors, 5, allowed)


@pytest.mark.parametrize("space", METRICS)
def test_query_after_deletes_and_updates(client, space):
    col, ids, vectors, rng = make(client, space)
    col.delete(ids=ids[:10])
    new = rng.normal(size=(5, 8)).astype(np.float32)
    if space == "ip":
        new /= np.linalg.norm(new, axis=1, keepdims=True)
    col.update(ids=ids[10:15], embeddings=new)
    vectors = vectors.copy()
    vectors[10:15] = new
    queries = rng.normal(size=(4, 8)).astype(np.float32)
    result = col.query(query_embeddings=queries, n_results=60)
    check_against_oracle(result, ids[10:], space, queries, vectors[10:], 60)


def test_query_result_shape_and_fields(client):
    col, ids, vectors, _ = make(client, "l2", n=5)
    result = col.query(
        query_embeddings=vectors[2], n_results=2, include=["embeddings", "metadatas", "documents", "distances"]
    )
    assert set(result) == {"ids", "distances", "embeddings", "metadatas", "documents", "included", "uris", "data"}
    assert result["ids"][0][0] == "v2"
    assert result["distances"][0][0] == pytest.approx(0.0, abs=1e-5)
    assert result["metadatas"][0][0] == {"i": 2, "group": "even"}
    assert result["documents"][0][0] == "doc 2"
    np.testing.assert_array_equal(np.array(result["embeddings"][0][0], dtype=np.float32), vectors[2])
    assert len(result["ids"][0]) == 2


def test_query_default_include(client):
    col, *_ = make(client, "l2", n=5)
    result = col.query(query_embeddings=[0.0] * 8, n_results=1)
    assert result["included"] == ["metadatas", "documents", "distances"]
    assert result["embeddings"] is None
    assert result["metadatas"] is not None and result["distances"] is not None


@pytest.mark.parametrize("include", [[], ["distances"], ["embeddings"], ["documents", "metadatas"]])
def test_query_include(client, include):
    col, *_ = make(client, "l2", n=5)
    result = col.query(query_embeddings=[0.0] * 8, n_results=2, include=include)
    assert result["included"] == include
    for field in ("embeddings", "metadatas", "documents", "distances"):
        if field in include:
            assert len(result[field][0]) == 2
        else:
            assert result[field] is None
    assert len(result["ids"][0]) == 2


def test_query_bad_include(client):
    col, *_ = make(client, "l2", n=5)
    with pytest.raises(InvalidArgumentError, match="include"):
        col.query(query_embeddings=[0.0] * 8, include=["uris"])


@pytest.mark.parametrize("space", METRICS)
def test_n_results_larger_than_collection(client, space):
    col, ids, vectors, rng = make(client, space, n=6)
    result = col.query(query_embeddings=rng.normal(size=(2, 8)), n_results=100)
    assert [sorted(r) for r in result["ids"]] == [sorted(ids), sorted(ids)]
    assert all(d == sorted(d) for d in result["distances"])


def test_n_results_larger_than_filtered_matches(client):
    col, ids, vectors, _ = make(client, "l2", n=20)
    result = col.query(query_embeddings=vectors[0], n_results=10, where={"i": {"$lt": 3}})
    assert sorted(result["ids"][0]) == ["v0", "v1", "v2"]
    assert result["ids"][0][0] == "v0"


def test_query_no_match(client):
    col, *_ = make(client, "l2", n=5)
    result = col.query(query_embeddings=[[0.0] * 8, [1.0] * 8], n_results=3, where={"group": "none"})
    assert result["ids"] == [[], []]
    assert result["distances"] == [[], []]


def test_query_empty_collection(collection):
    result = collection.query(query_embeddings=[1.0, 2.0], n_results=3)
    assert result["ids"] == [[]]


@pytest.mark.parametrize("bad", [0, -1, 2.0, "5", None, True])
def test_n_results_must_be_positive_int(client, bad):
    col, *_ = make(client, "l2", n=5)
    with pytest.raises(InvalidArgumentError, match="n_results"):
        col.query(query_embeddings=[0.0] * 8, n_results=bad)


def test_n_results_numpy_int(client):
    col, *_ = make(client, "l2", n=5)
    assert len(col.query(query_embeddings=[0.0] * 8, n_results=np.int64(2))["ids"][0]) == 2


def test_query_wrong_dimension(client):
    col, *_ = make(client, "l2", n=5)
    with pytest.raises(InvalidDimensionError, match="query_embeddings: dimension 3 .* 8"):
        col.query(query_embeddings=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_query_nan_inf(client, bad):
    col, *_ = make(client, "l2", n=5)
    with pytest.raises(InvalidArgumentError, match=r"query_embeddings\[0\]\[3\]"):
        col.query(query_embeddings=[0.0, 0.0, 0.0, bad, 0.0, 0.0, 0.0, 0.0])


def test_query_needs_exactly_one_of_embeddings_and_texts(client):
    col, *_ = make(client, "l2", n=5)
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        col.query()
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        col.query(query_embeddings=[0.0] * 8, query_texts=["x"])


def test_query_texts_without_function(client):
    col, *_ = make(client, "l2", n=5)
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        col.query(query_texts="hello")


def test_query_texts_uses_embed_query(client, counting_ef):
    col = client.create_collection("docs", embedding_function=counting_ef)
    col.add(ids=["a", "b", "c"], documents=["cat", "dog", "fish"])
    result = col.query(query_texts="dog", n_results=1)
    assert result["ids"] == [["b"]]
    assert result["distances"][0][0] == pytest.approx(0.0, abs=1e-5)
    assert counting_ef.query_calls == [["dog"]]
    assert sorted(counting_ef.embedded) == ["cat", "dog", "fish"]  # not called again for the query
    result = col.query(query_texts=["fish", "cat"], n_results=1)
    assert result["ids"] == [["c"], ["a"]]
    assert counting_ef.query_calls[-1] == ["fish", "cat"]


def test_query_texts_without_embed_query_uses_call(client):
    calls = []

    def ef(input):
        calls.append(list(input))
        return [[float(len(t)), 1.0] for t in input]

    col = client.create_collection("docs", embedding_function=ef)
    col.add(ids=["a", "b"], documents=["x", "xxxx"])
    assert col.query(query_texts="xxx", n_results=1)["ids"] == [["b"]]
    assert calls[-1] == ["xxx"]


def test_query_single_embedding_and_numpy(client):
    col, ids, vectors, _ = make(client, "l2", n=10)
    single = col.query(query_embeddings=vectors[3].tolist(), n_results=1)
    batch = col.query(query_embeddings=vectors[[3, 4]], n_results=1)
    assert single["ids"] == [["v3"]]
    assert batch["ids"] == [["v3"], ["v4"]]


@pytest.mark.parametrize("space", METRICS)
def test_query_larger_collection_through_graph(client, space):
    """A few thousand vectors: the graph answers; recall@10 against brute force stays high."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    col = client.create_collection("big", metadata={"hnsw:space": space}, embedding_function=None)
    col.add(ids=[str(i) for i in range(2000)], embeddings=vectors)
    queries = rng.normal(size=(20, 16)).astype(np.float32)
    result = col.query(query_embeddings=queries, n_results=10)
    order, dist = brute_force(space, queries, vectors, 10)
    hits = sum(len(set(map(int, r)) & set(o)) for r, o in zip(result["ids"], order))
    assert hits / 200 >= 0.9
    for qi in range(20):  # every distance reported is that record's true distance
        got = np.array(result["distances"][qi])
        _, true = brute_force(space, queries[qi : qi + 1], vectors[[int(i) for i in result["ids"][qi]]], 10)
        np.testing.assert_allclose(np.sort(got), true[0], rtol=1e-4, atol=1e-4)
        assert list(got) == sorted(got)
