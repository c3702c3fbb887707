"""The compiled top-k of :mod:`vectordb.text.topk` against Python's own ordering of
``(score, id)``, on ids built to defeat the 8-byte id keys: shared long prefixes, NUL
characters, prefixes of one another, non-ASCII and surrogate code points."""

from __future__ import annotations

from typing import List

import numpy as np
import pytest

from vectordb.text import topk


class Order:
    """Ids by label, with their keys (as the engine's record cache holds them)."""

    def __init__(self, ids: List[str]) -> None:
        self._ids = np.asarray(ids, dtype=object)
        self._keys = topk.id_keys(ids)

    def ids(self, labels: np.ndarray) -> List[str]:
        return self._ids[labels].tolist()

    def key_array(self) -> np.ndarray:
        return self._keys


def tricky_ids(rng: np.random.Generator, n: int) -> List[str]:
    stems = ["record-000", "record-00", "r", "", "é", "\u00ff\u00ff", "\ud800x", "a\x00", "a", "zzzzzzzzzz", "日本語"]
    out = set()
    while len(out) < n:
        stem = stems[rng.integers(len(stems))]
        out.add(stem + "".join(rng.choice(list("ab\x00é9"), rng.integers(0, 4))))
    return sorted(out, key=lambda s: rng.random())


def test_id_keys_never_contradict_string_order():
    ids = tricky_ids(np.random.default_rng(1), 400)
    keys = topk.id_keys(ids)
    for i in range(len(ids)):
        for j in range(0, len(ids), 7):
            if keys[i] < keys[j]:
                assert ids[i] < ids[j], (ids[i], ids[j])


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("higher_first", [True, False])
def test_best_equals_sorting_by_value_then_id(seed, higher_first):
    rng = np.random.default_rng(seed)
    ids = tricky_ids(rng, 300)
    order = Order(ids)
    labels = rng.permutation(len(ids))[: rng.integers(1, 300)]
    values = rng.choice([0.5, 1.25, 2.0, 3.0], len(labels)) if seed % 2 else rng.random(len(labels))
    sign = -1 if higher_first else 1
    expected = sorted(range(len(labels)), key=lambda i: (sign * values[i], ids[labels[i]]))
    for k in (1, 5, 37, len(labels), len(labels) + 3):
        got = topk.best(labels, values, k, order, higher_first)
        assert got.tolist() == expected[:k]


@pytest.mark.parametrize("values", ["equal", "two"])
def test_best_inside_one_shared_key(values):
    ids = [f"sharedprefix-{i:04d}" for i in range(200)]  # every key equal: strings decide
    order = Order(ids)
    labels = np.random.default_rng(2).permutation(200)
    scores = np.ones(200) if values == "equal" else (labels % 2).astype(np.float64)
    expected = sorted(range(200), key=lambda i: (-scores[i], ids[labels[i]]))
    for k in (1, 17, 100, 200):
        assert topk.best(labels, scores, k, order, higher_first=True).tolist() == expected[:k]


@pytest.mark.parametrize("higher_first", [True, False])
def test_ranked_keeps_a_ranking_and_reorders_anything_else(higher_first):
    rng = np.random.default_rng(4)
    ids = tricky_ids(rng, 120)
    order = Order(ids)
    labels = rng.permutation(len(ids))
    values = rng.choice([1.0, 2.0, 2.5], len(ids))
    sign = -1 if higher_first else 1
    want = sorted(range(len(labels)), key=lambda i: (sign * values[i], ids[labels[i]]))
    ranked_labels, ranked_values = labels[want], values[want]
    assert topk.ranked(ranked_labels, ranked_values, order, higher_first).tolist() == list(range(len(labels)))
    backwards = topk.ranked(ranked_labels[::-1], ranked_values[::-1], order, higher_first)
    assert ranked_labels[::-1][backwards].tolist() == ranked_labels.tolist()
    distinct = np.arange(len(labels), dtype=np.float64) * sign  # strictly in order: the no-tie fast path
    assert topk.ranked(labels, distinct, order, higher_first).tolist() == list(range(len(labels)))
