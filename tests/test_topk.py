"""The top-k of :mod:`vectordb.text.topk` against Python's own ordering of
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


def many_ids(rng: np.random.Generator, n: int) -> List[str]:
    """``n`` distinct ids, a third sharing their first 8 bytes ("chunk-00"), in random order."""
    ids = [("chunk-00" if i % 3 == 0 else "d") + f"{i:06d}" for i in range(n)]
    return [ids[i] for i in rng.permutation(n)]


@pytest.mark.parametrize("spread", ["distinct", "few", "one", "mostly-one"])
@pytest.mark.parametrize("higher_first", [True, False])
def test_best_of_thousands_equals_sorting_by_value_then_id(spread, higher_first):
    """Past the outright sort (over a thousand values): the quickselect and the key cut among ties."""
    rng = np.random.default_rng(7)
    ids = many_ids(rng, 6000)
    order = Order(ids)
    labels = rng.permutation(len(ids))[:5000]
    values = {
        "distinct": rng.random(5000),
        "few": rng.choice([0.5, 1.25, 2.0, 3.0, 3.5], 5000),
        "one": np.full(5000, 2.0),
        "mostly-one": np.where(rng.random(5000) < 0.97, 1.0, rng.random(5000) * 3),
    }[spread]
    sign = -1 if higher_first else 1
    expected = sorted(range(len(labels)), key=lambda i: (sign * values[i], ids[labels[i]]))
    for k in (1, 10, 100, 1500, 5000, 6000):
        assert topk.best(labels, values, k, order, higher_first).tolist() == expected[:k], k


@pytest.mark.parametrize("higher_first", [True, False])
def test_nan_values_are_ranked_last_not_lost(higher_first):
    ids = [f"id{i}" for i in range(2000)]
    order = Order(ids)
    labels = np.arange(2000)
    values = np.random.default_rng(1).random(2000)
    values[[5, 700, 1999]] = np.nan
    for k in (3, 1997, 2000):
        got = topk.best(labels, values, k, order, higher_first).tolist()
        assert len(got) == min(k, 2000) and not {5, 700, 1999} & set(got[:1997])
