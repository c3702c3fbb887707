"""The metadata index's sorted views (a lone ``$eq`` / ``$in`` filter answered from a sorted
column once it has been asked often enough without a write) give exactly what a scan gives,
before and after writes and deletes, for numbers, strings and bools."""

from __future__ import annotations

import numpy as np

from vectordb.filters import parse_where
from vectordb.filters import metadata_index as mi
from vectordb.filters.metadata_index import MetadataIndex


def _metadatas(rng: np.random.Generator, n: int):
    out = []
    for i in range(n):
        meta = {"category": int(rng.integers(0, 7)), "tag": ["a", "b", "c"][int(rng.integers(0, 3))],
                "flag": bool(rng.integers(0, 2)), "score": float(rng.integers(0, 4)) / 2}
        if i % 5 == 0:
            del meta["category"]
        if i % 11 == 0:
            meta["category"] = -0.0 if i % 2 else 0.0
        out.append(meta)
    return out


FILTERS = [{"category": 3}, {"category": 0}, {"category": 0.0}, {"category": 99}, {"tag": "b"}, {"tag": "zz"},
           {"flag": True}, {"flag": False}, {"score": 0.5}, {"category": {"$in": [1, 2, 6]}},
           {"tag": {"$in": ["a", "c", "nope"]}}, {"flag": {"$in": [True]}}, {"score": {"$in": [0, 1.5]}},
           {"category": {"$nin": [1, 2]}}, {"category": {"$ne": 3}}]


def _answers(index: MetadataIndex, monkeypatch, sorted_after: int):
    monkeypatch.setattr(mi, "SORTED_AFTER", sorted_after)
    return [index.evaluate(parse_where(f)).tolist() for f in FILTERS for _ in range(2)]


def test_sorted_views_answer_as_the_scan_does(monkeypatch):
    rng = np.random.default_rng(1)
    index = MetadataIndex(16)
    index.put(np.arange(500), _metadatas(rng, 500))
    for step in range(4):
        scanned = _answers(index, monkeypatch, 10**9)
        viewed = _answers(index, monkeypatch, 1)
        assert viewed == scanned
        assert index._views  # the views were used
        if step == 0:
            index.drop(rng.choice(500, 60, replace=False))
        elif step == 1:
            labels = rng.choice(700, 100, replace=False)
            index.put(labels, _metadatas(rng, 100))
        else:
            index.put(np.arange(700, 720), _metadatas(rng, 20))
        assert not index._views  # a write drops them


def test_views_are_made_only_once_asked_often_without_writes(monkeypatch):
    monkeypatch.setattr(mi, "SORTED_AFTER", 3)
    rng = np.random.default_rng(2)
    index = MetadataIndex(16)
    index.put(np.arange(100), _metadatas(rng, 100))
    where = parse_where({"tag": "a"})
    index.evaluate(where)
    index.evaluate(where)
    assert not index._views
    index.put(np.arange(100, 110), _metadatas(rng, 10))  # a write starts the count again
    index.evaluate(where)
    index.evaluate(where)
    assert not index._views
    index.evaluate(where)
    assert ("tag", "code") in index._views
