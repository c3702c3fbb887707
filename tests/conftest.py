"""Shared fixtures: one ``client`` fixture that runs each test in memory and on disk.

Core tests use ``embedding_function=None`` with explicit embeddings, or the small
deterministic :class:`CountingEmbedding` below; none of them loads a model.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np
import pytest

import vectordb


@pytest.fixture(params=["memory", "disk"])
def client(request, tmp_path):
    """A fresh client: ``vectordb.Client()`` or ``vectordb.PersistentClient(tmp_path)``."""
    if request.param == "memory":
        c = vectordb.Client()
    else:
        c = vectordb.PersistentClient(str(tmp_path / "db"))
    yield c
    c.close()


@pytest.fixture
def collection(client):
    """An empty collection that only takes explicit embeddings (l2)."""
    return client.create_collection("test-collection", embedding_function=None)


class CountingEmbedding:
    """A deterministic 4-d embedding of text that counts every text it embeds.

    Not registered and without ``get_config``: persisted as a custom function.
    """

    def __init__(self) -> None:
        self.calls: List[List[str]] = []
        self.query_calls: List[List[str]] = []

    @property
    def embedded(self) -> List[str]:
        """Every text embedded for storage, in order."""
        return [t for call in self.calls for t in call]

    def __call__(self, input: List[str]) -> List[List[float]]:
        self.calls.append(list(input))
        return [text_vector(t) for t in input]

    def embed_query(self, input: List[str]) -> List[List[float]]:
        self.query_calls.append(list(input))
        return [text_vector(t) for t in input]


def text_vector(text: str) -> List[float]:
    """A deterministic 4-d vector for ``text`` (same text, same vector)."""
    rng = np.random.default_rng(sum((i + 1) * ord(ch) for i, ch in enumerate(text)) + len(text))
    return rng.normal(size=4).astype(np.float32).tolist()


@pytest.fixture
def counting_ef() -> CountingEmbedding:
    return CountingEmbedding()


def snapshot(col) -> Dict:
    """Everything a collection holds, for before/after comparisons."""
    return {
        "count": col.count(),
        "get": col.get(include=["embeddings", "metadatas", "documents"]),
        "dimension": col.dimension,
    }
