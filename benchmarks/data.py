"""Synthetic data set and exact ground truth.

Vectors are a Gaussian mixture around 100 random centres on the unit sphere (uneven
cluster sizes and spreads, fixed seed): each cluster varies mostly along a 16-d subspace
of its own plus a little isotropic noise, and vectors are normalised like sentence
embeddings. Each record
has metadata ``{"category": 0..99, "year": int, "tag": str}`` (so ``{"category": c}``
selects 1%, independently of the cluster) and a short document. Ground truth is a
brute-force cosine top-k in numpy. Only numpy and the standard library are used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

N_CENTRES = 100
N_CATEGORIES = 100
TAGS = ("news", "blog", "paper", "forum", "wiki", "review", "note", "mail")
VOCAB = (
    "vector search index query cluster embedding model data store record graph node "
    "edge layer neighbour distance cosine metric filter range batch memory disk file "
    "cache page table column row value key field schema type text word token sentence "
    "paragraph topic theme story report market price stock trade bank loan credit risk "
    "energy solar wind power grid city road train plane ship port river lake mountain "
    "forest tree flower garden farm food bread coffee tea music song film book author "
    "reader school student teacher lesson science physics chemistry biology health doctor "
    "patient medicine sport football tennis race team player coach season game score"
).split()
QUERY_SEED_OFFSET = 1
DOC_WORDS = 10
SUBSPACE_DIM = 16
NOISE = 0.25


@dataclass
class Dataset:
    """Vectors, their records and the queries of one benchmark run."""

    vectors: np.ndarray
    metadatas: List[Dict[str, Any]]
    documents: List[str]
    queries: np.ndarray
    query_categories: np.ndarray

    @property
    def categories(self) -> np.ndarray:
        """The ``category`` of every record, as an int array."""
        return np.fromiter((m["category"] for m in self.metadatas), dtype=np.int64, count=len(self.metadatas))


@dataclass
class _Mixture:
    """Cluster centres, each with a low-rank subspace (real embeddings have a low intrinsic dimension)."""

    centres: np.ndarray
    bases: np.ndarray
    weights: np.ndarray
    spreads: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, dim: int) -> "_Mixture":
        centres = rng.standard_normal((N_CENTRES, dim)).astype(np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        bases = rng.standard_normal((N_CENTRES, SUBSPACE_DIM, dim)).astype(np.float32) / np.sqrt(dim)
        weights = rng.dirichlet(np.full(N_CENTRES, 2.0))
        spreads = rng.uniform(0.5, 1.0, N_CENTRES).astype(np.float32)
        return cls(centres, bases, weights, spreads)

    def sample(self, rng: np.random.Generator, count: int, chunk: int = 100_000) -> np.ndarray:
        """Draw ``count`` unit vectors, in chunks to bound memory."""
        dim = self.centres.shape[1]
        out = np.empty((count, dim), dtype=np.float32)
        for start in range(0, count, chunk):
            size = min(chunk, count - start)
            which = rng.choice(N_CENTRES, size=size, p=self.weights)
            block = rng.standard_normal((size, dim), dtype=np.float32) * np.float32(NOISE / np.sqrt(dim))
            latent = rng.standard_normal((size, SUBSPACE_DIM), dtype=np.float32)
            for c in np.unique(which):
                rows = np.flatnonzero(which == c)
                block[rows] += self.centres[c] + self.spreads[c] * (latent[rows] @ self.bases[c])
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start : start + size] = block
        return out


def make_dataset(n: int, dim: int, n_queries: int, seed: int = 42) -> Dataset:
    """Build ``n`` records and ``n_queries`` queries (query ``i`` filters on category ``i % 100``)."""
    rng = np.random.default_rng(seed)
    mixture = _Mixture.draw(rng, dim)
    vectors = mixture.sample(rng, n)
    categories = rng.integers(0, N_CATEGORIES, n)
    years = rng.integers(1990, 2025, n)
    tags = rng.integers(0, len(TAGS), n)
    words = rng.integers(0, len(VOCAB), (n, DOC_WORDS))
    metadatas = [
        {"category": int(c), "year": int(y), "tag": TAGS[t]}
        for c, y, t in zip(categories.tolist(), years.tolist(), tags.tolist())
    ]
    documents = [
        f"{TAGS[t]} {y}: " + " ".join(VOCAB[w] for w in row)
        for t, y, row in zip(tags.tolist(), years.tolist(), words.tolist())
    ]
    qrng = np.random.default_rng(seed + QUERY_SEED_OFFSET)
    queries = mixture.sample(qrng, n_queries)
    query_categories = np.arange(n_queries, dtype=np.int64) % N_CATEGORIES
    return Dataset(vectors, metadatas, documents, queries, query_categories)


def save(ds: Dataset, folder: Path) -> None:
    """Write the data set as ``.npy`` and ``.json`` files that any runner can read."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "vectors.npy", ds.vectors)
    np.save(folder / "queries.npy", ds.queries)
    np.save(folder / "query_categories.npy", ds.query_categories)
    with open(folder / "records.json", "w") as fh:
        json.dump({"metadatas": ds.metadatas, "documents": ds.documents}, fh)
    with open(folder / "cold_query.json", "w") as fh:
        json.dump(ds.queries[0].tolist(), fh)


def load(folder: Path) -> Dataset:
    """Read a data set written by :func:`save`."""
    with open(folder / "records.json") as fh:
        records = json.load(fh)
    return Dataset(
        vectors=np.load(folder / "vectors.npy"),
        metadatas=records["metadatas"],
        documents=records["documents"],
        queries=np.load(folder / "queries.npy"),
        query_categories=np.load(folder / "query_categories.npy"),
    )


def exact_topk(vectors: np.ndarray, queries: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    """Indices of the ``k`` most cosine-similar vectors (unit vectors assumed), best first."""
    k = min(k, len(vectors))
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        scores = queries[start : start + chunk] @ vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start : start + chunk] = np.take_along_axis(top, order, axis=1)
    return out


def filtered_topk(vectors: np.ndarray, categories: np.ndarray, queries: np.ndarray,
                  query_categories: np.ndarray, k: int) -> List[np.ndarray]:
    """Exact top-``k`` of each query among the records of its own category."""
    result: List[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(queries)
    for cat in np.unique(query_categories):
        members = np.flatnonzero(categories == cat)
        asking = np.flatnonzero(query_categories == cat)
        if len(members) == 0:
            continue
        local = exact_topk(vectors[members], queries[asking], k)
        for qi, row in zip(asking, local):
            result[qi] = members[row]
    return result


def recall_at_k(found: Sequence[Sequence[int]], truth: Sequence[np.ndarray], k: int) -> float:
    """Mean fraction of the true top-``k`` found; queries with no true neighbour are skipped."""
    scores = []
    for got, want in zip(found, truth):
        want_set = set(np.asarray(want)[:k].tolist())
        if want_set:
            scores.append(len(want_set.intersection(list(got)[:k])) / len(want_set))
    return float(np.mean(scores)) if scores else float("nan")
