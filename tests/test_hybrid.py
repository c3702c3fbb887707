"""Hybrid search: reciprocal rank fusion of the vector and BM25 rankings, computed here
independently; the mode/argument errors; the same over HTTP, the REST API and the CLI."""

from __future__ import annotations

import json
import sys
from typing import Dict, List, Optional

import numpy as np
import pytest

import vectordb
from vectordb import cli
from vectordb.errors import InvalidArgumentError

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from server_helpers import HashEmbedding, embed_text  # noqa: E402
from bm25_oracle import oracle  # noqa: E402

DOCS = {f"d{k:03d}": " ".join(f"w{(k * j) % 23}" for j in range(1, 6 + k % 5)) for k in range(150)}
DOCS["d007"] = "the incident ERR_1042 was logged"
DOCS["d008"] = None


def vectors(n: int, dim: int = 6) -> np.ndarray:
    return np.random.default_rng(3).normal(size=(n, dim)).astype(np.float32)


def rrf_oracle(col, docs: Dict[str, Optional[str]], text: str, query: np.ndarray, n: int, stored: np.ndarray,
               where_ids: Optional[set] = None) -> List[tuple]:
    """RRF (k=60) of the exact l2 ranking and the oracle BM25 ranking, each cut at max(100, n), ties by id."""
    ids = list(docs)
    depth = max(100, n)
    dist = ((stored - query) ** 2).sum(axis=1)
    vec_rank = sorted((i for i in range(len(ids)) if where_ids is None or ids[i] in where_ids),
                      key=lambda i: (float(dist[i]), ids[i]))[:depth]
    text_rank = oracle(docs, text, where_ids)[:depth]
    fused: Dict[str, float] = {}
    for rank, i in enumerate(vec_rank, 1):
        fused[ids[i]] = fused.get(ids[i], 0.0) + 1 / (60 + rank)
    for rank, (record_id, _) in enumerate(text_rank, 1):
        fused[record_id] = fused.get(record_id, 0.0) + 1 / (60 + rank)
    return sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:n]


@pytest.fixture(params=["memory", "disk", "http"])
def hybrid_collection(request, clients):
    client = clients(request.param)
    name = "hybrid-col"
    try:
        client.delete_collection(name)
    except Exception:
        pass
    col = client.create_collection(name, embedding_function=None, metadata={"hnsw:search_ef": 400})
    stored = vectors(len(DOCS))
    col.add(ids=list(DOCS), embeddings=stored, documents=list(DOCS.values()),
            metadatas=[{"k": k, "even": k % 2 == 0} for k in range(len(DOCS))])
    return col, stored


@pytest.mark.parametrize("n", [1, 10, 120])
def test_hybrid_is_rrf_of_both_rankings(hybrid_collection, n):
    col, stored = hybrid_collection
    query = vectors(200)[170]
    for text in ("w3 w5", "err_1042", "w1 w1 w22 nothing"):
        result = col.query(query_embeddings=[query], query_texts=[text], n_results=n, mode="hybrid",
                           include=["documents", "metadatas", "scores", "embeddings"])
        want = rrf_oracle(col, DOCS, text, query, n, stored)
        assert result["ids"][0] == [i for i, _ in want]
        assert result["scores"][0] == pytest.approx([s for _, s in want], rel=1e-9)
        assert result["documents"][0] == [DOCS[i] for i in result["ids"][0]]
        assert [m["k"] for m in result["metadatas"][0]] == [list(DOCS).index(i) for i in result["ids"][0]]
        positions = [list(DOCS).index(i) for i in result["ids"][0]]
        assert np.allclose(result["embeddings"][0], stored[positions], atol=1e-6)
        assert result["distances"] is None


def test_hybrid_with_a_filter(hybrid_collection):
    col, stored = hybrid_collection
    query = vectors(200)[171]
    evens = {i for k, i in enumerate(DOCS) if k % 2 == 0}
    result = col.query(query_embeddings=query, query_texts="w2 w4", n_results=15, where={"even": True}, mode="hybrid")
    want = rrf_oracle(col, DOCS, "w2 w4", query, 15, stored, evens)
    assert result["ids"][0] == [i for i, _ in want]
    assert result["scores"][0] == pytest.approx([s for _, s in want], rel=1e-9)


def test_exact_identifier_found_by_text_and_hybrid(hybrid_collection):
    col, stored = hybrid_collection
    text = col.query(query_texts="ERR_1042", mode="text", n_results=3)
    assert text["ids"] == [["d007"]]
    hybrid = col.query(query_embeddings=stored[100], query_texts="ERR_1042", n_results=3, mode="hybrid")
    assert "d007" in hybrid["ids"][0]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"mode": "fuzzy", "query_texts": "x"}, "mode: expected one of vector, text, hybrid"),
    ({"mode": "text"}, "give query_texts"),
    ({"mode": "hybrid", "query_embeddings": [[0.0] * 6]}, "give query_texts (the text to rank by BM25) beside"),
    ({"mode": "text", "query_texts": "x", "query_embeddings": [[0.0] * 6]}, "query_embeddings are not used"),
    ({"mode": "text", "query_texts": "x", "include": ["distances"]}, "'distances' come with mode='vector'"),
    ({"mode": "text", "query_texts": "x", "include": ["bogus"]}, "include"),
    ({"mode": "text", "query_texts": [], "n_results": 1}, "query_texts"),
    ({"mode": "text", "query_texts": "x", "n_results": 0}, "n_results"),
    ({"mode": "hybrid", "query_texts": ["x", "y"], "query_embeddings": [[0.0] * 6]}, "1 query_embeddings for 2"),
    ({"mode": "hybrid", "query_texts": ["x"]}, "no embedding function"),
    ({"mode": "hybrid", "query_texts": ["x"], "query_embeddings": [[0.0] * 3]}, "dimension"),
    ({"query_texts": "x", "include": ["scores"]}, "include"),
    ({"mode": "hybrid", "query_texts": "x", "query_embeddings": [[0.0] * 6], "n_results": 2**22},
     "at most 4,194,303 for mode='hybrid'"),
])
def test_bad_mode_arguments_are_typed_errors(hybrid_collection, kwargs, fragment):
    col, _ = hybrid_collection
    with pytest.raises(InvalidArgumentError) as caught:
        col.query(**kwargs)
    assert fragment in str(caught.value)


def test_rest_api_text_and_hybrid(clients):
    import httpx

    client = clients("http")
    col = client.create_collection("rest-hybrid", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=["apple pie", "banana split"])
    from vectordb import wire

    url = f"{client.url}{wire.API_PREFIX}/collections/{col.id}/query"
    text = httpx.post(url, json={"query_texts": ["banana"], "mode": "text"}).json()
    assert text["ids"] == [["b"]] and text["scores"][0][0] > 0 and "distances" not in text["included"]
    hybrid = httpx.post(url, json={"query_texts": ["banana"], "query_embeddings": [[1.0, 0.0]],
                                   "mode": "hybrid", "include": ["scores"]}).json()
    assert hybrid["ids"] == [["b", "a"]]
    assert hybrid["scores"][0] == pytest.approx([1 / 61 + 1 / 62, 1 / 61])
    bad = httpx.post(url, json={"query_embeddings": [[1.0, 0.0]], "mode": "hybrid"})
    assert bad.status_code == 400 and "query_texts" in bad.json()["message"]


def test_cli_text_and_hybrid_modes(tmp_path, capsys):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("notes", embedding_function=HashEmbedding(8))
        texts = ["release notes for version 2", "error ERR_1042 when saving", "version control basics"]
        col.add(ids=["n1", "n2", "n3"], documents=texts)
    assert cli.main(["query", "notes", "ERR_1042", "--path", path, "--mode", "text", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ids"] == ["n2"] and result["scores"][0] > 0
    assert cli.main(["query", "notes", "version", "--path", path, "--mode", "hybrid", "-n", "3"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["#", "ID", "SCORE"] and len(table) == 4
    with vectordb.PersistentClient(path) as client:
        want = client.get_collection("notes").query(query_texts="version", mode="hybrid", n_results=3)
    assert [line.split()[1] for line in table[1:]] == want["ids"][0]
    assert cli.main(["query", "notes", "--path", path, "--mode", "text"]) != 0
    assert "give the query text" in capsys.readouterr().err
    assert embed_text("x")  # the helper's function is the collection's (persisted by name)


def test_text_and_hybrid_on_milvus_are_a_typed_refusal_that_changes_nothing(clients):
    """Milvus keeps no BM25 index: mode='text'/'hybrid' raise TextSearchUnavailableError
    naming the server; vector queries on the same collection still answer."""
    from vectordb.errors import TextSearchUnavailableError

    client = clients("milvus")
    col = client.create_collection("hybrid-milvus", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=vectors(2), documents=["ERR_1042 on save", "all fine"])
    with pytest.raises(TextSearchUnavailableError, match="not available on Milvus"):
        col.query(query_texts=["ERR_1042"], n_results=1, mode="text")
    with pytest.raises(TextSearchUnavailableError, match="not available on Milvus"):
        col.query(query_texts=["ERR_1042"], query_embeddings=vectors(1), n_results=1, mode="hybrid")
    assert col.count() == 2
    assert col.query(query_embeddings=vectors(2)[:1], n_results=1, include=[])["ids"] == [["a"]]
    client.delete_collection("hybrid-milvus")
