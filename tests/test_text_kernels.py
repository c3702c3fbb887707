"""The BM25 and fusion steps (:mod:`vectordb.text.kernels`) against plain Python.

The engine's text index ranks through whole-array numpy steps (the terms' contributions
added up by label, the best chosen by a quickselect that copes with thousands of equal
scores, then sorted by score and id key), and hybrid queries fuse label rankings the
same way. Here both are checked against an independent computation: BM25 by Lucene's
formula in Python floats, rankings by Python's own sort of ``(score, id)``, on ids built
to defeat the 8-byte id keys (shared prefixes, NUL characters, non-ASCII), with filters,
after deletes and re-indexing, on few documents and on enough (thousands, tied) to take
the selection paths; scores bit for bit equal to adding every term into a dense zeroed
array in query term order (the compiled loops' arithmetic, which these replaced); and
fusion against the id-based :func:`vectordb.text.fusion.rrf` over :func:`~vectordb.text.fusion.ranks`. Also: nothing loads numba.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from typing import Dict, List, Optional

import numpy as np
import pytest

from tests.test_topk import Order, many_ids, tricky_ids
from vectordb.text import fusion, kernels
from vectordb.text.analyzer import analyzer
from vectordb.text.bm25 import TextIndex

WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma"]


def lucene_bm25(docs: Dict[int, List[str]], query: List[str]) -> Dict[int, float]:
    """Lucene 8 BM25 of every document holding a query term, in Python floats."""
    n = len(docs)
    avgdl = sum(len(t) for t in docs.values()) / n
    df = Counter(term for terms in docs.values() for term in set(terms))
    out: Dict[int, float] = {}
    for label, terms in docs.items():
        counts = Counter(terms)
        score, held = 0.0, False
        for term in query:
            tf = counts.get(term, 0)
            if tf:
                held = True
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * len(terms) / avgdl))
        if held:
            out[label] = score
    return out


def expected_top(scores: Dict[int, float], ids: List[str], k: int, allowed: Optional[set]) -> List[int]:
    labels = [label for label in scores if allowed is None or label in allowed]
    return sorted(labels, key=lambda label: (-round(scores[label], 9), ids[label]))[:k]


@pytest.mark.parametrize("seed", range(8))
def test_text_search_equals_python_bm25_and_sort(seed):
    rng = np.random.default_rng(seed)
    ids = tricky_ids(rng, 300)
    order = Order(ids)
    index = TextIndex(analyzer("default"))
    docs = {label: list(rng.choice(WORDS, rng.integers(1, 6))) for label in range(len(ids))}
    index.put(np.arange(len(ids)), [" ".join(t) for t in docs.values()])
    gone = rng.choice(len(ids), 40, replace=False)  # deleted, and some re-indexed with new text
    index.remove(gone)
    for label in gone.tolist():
        del docs[label]
    again = gone[:15]
    for label in again.tolist():
        docs[label] = list(rng.choice(WORDS, rng.integers(1, 4)))
    index.put(again, [" ".join(docs[label]) for label in again.tolist()])
    for _ in range(12):
        query = list(rng.choice(WORDS, rng.integers(1, 4)))
        want = lucene_bm25(docs, query)
        allowed = None if rng.random() < 0.5 else set(rng.choice(len(ids), 120, replace=False).tolist())
        allowed_arr = None if allowed is None else np.sort(np.fromiter(allowed, dtype=np.int64))
        for k in (1, 7, 50, 400):
            labels, scores = index.search(" ".join(query), k, allowed_arr, order)
            assert labels.tolist() == expected_top(want, ids, k, allowed), (query, k)
            np.testing.assert_allclose(scores, [want[label] for label in labels.tolist()], rtol=1e-9)


def test_ties_inside_one_shared_id_key_are_ordered_by_the_full_ids():
    ids = [f"chunk-0000-{i:05d}" for i in range(500)]  # all share their first 8 bytes
    rng = np.random.default_rng(3)
    ids = [ids[i] for i in rng.permutation(len(ids))]
    index = TextIndex(analyzer("default"))
    index.put(np.arange(len(ids)), ["same words here"] * len(ids))
    labels, _ = index.search("words", 25, None, Order(ids))
    assert [ids[label] for label in labels.tolist()] == sorted(ids)[:25]


def id_based_fusion(ids, v_labels, v_dist, t_labels, t_scores, n_results):
    """``(id, fused score)`` of the best ``n_results``, by the plain id-based rule of :mod:`vectordb.text.fusion`."""
    v_ids = [ids[i] for i in v_labels.tolist()]
    t_ids = [ids[i] for i in t_labels.tolist()]
    return fusion.rrf([fusion.ranks(v_ids, v_dist.tolist(), higher_first=False),
                       fusion.ranks(t_ids, t_scores.tolist(), higher_first=True)], n_results)


@pytest.mark.parametrize("seed", range(6))
def test_fused_labels_equal_the_id_based_fusion(seed):
    rng = np.random.default_rng(seed)
    ids = tricky_ids(rng, 250)
    order = Order(ids)
    for _ in range(10):
        v_labels = rng.choice(len(ids), rng.integers(0, 120), replace=False)
        t_labels = rng.choice(len(ids), rng.integers(0, 120), replace=False)
        v_dist = np.sort(rng.choice([0.1, 0.2, 0.3], len(v_labels)) if seed % 2 else rng.random(len(v_labels)))
        t_scores = np.sort(rng.choice([1.0, 2.0], len(t_labels)) if seed % 2 else rng.random(len(t_labels)))[::-1]
        for n_results in (1, 10, 300):
            labels, scores = fusion.fuse_labels((v_labels, v_dist), (t_labels, t_scores), n_results, order)
            want = id_based_fusion(ids, v_labels, v_dist, t_labels, t_scores, n_results)
            assert [(ids[label], score) for label, score in zip(labels.tolist(), scores.tolist())] == want


@pytest.mark.parametrize("seed", range(3))
def test_thousands_of_tied_documents_equal_python_bm25_and_sort(seed):
    """Enough matching documents (short, so their scores tie by the thousand) to go past the
    outright sort: the quickselect, the key cut among ties, the last term's own documents."""
    rng = np.random.default_rng(seed)
    ids = many_ids(rng, 3000)
    order = Order(ids)
    index = TextIndex(analyzer("default"))
    docs = {label: list(rng.choice(WORDS[:4], rng.integers(2, 5))) for label in range(len(ids))}
    index.put(np.arange(len(ids)), [" ".join(t) for t in docs.values()])
    for _ in range(6):
        query = list(rng.choice(WORDS[:5], rng.integers(1, 4)))
        want = lucene_bm25(docs, query)
        allowed = None if rng.random() < 0.5 else set(rng.choice(len(ids), 1500, replace=False).tolist())
        allowed_arr = None if allowed is None else np.sort(np.fromiter(allowed, dtype=np.int64))
        for k in (1, 10, 100, 1100, 5000):
            labels, scores = index.search(" ".join(query), k, allowed_arr, order)
            assert labels.tolist() == expected_top(want, ids, k, allowed), (query, k)
            np.testing.assert_allclose(scores, [want[label] for label in labels.tolist()], rtol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_scores_are_bit_for_bit_the_dense_sum_in_term_order(seed):
    """:func:`kernels.best_of_terms` against adding every term into a dense zeroed array in
    term order (the arithmetic of the compiled loops it replaced): same labels, same bits.
    One scratch serves every query, its stamp wrapping around once."""
    rng = np.random.default_rng(seed)
    n = 20_000
    keys = np.arange(n, dtype=np.uint64)[rng.permutation(n)]  # distinct keys: the key order is exact
    scratch = kernels.Slots(n)
    scratch.stamp = 2**62 - 3 * 2**32  # the slots are reset after the next few queries
    for _ in range(12):
        terms = []
        for _ in range(rng.integers(1, 5)):
            labels = np.sort(rng.choice(n, rng.integers(1, 6000), replace=False))
            values = rng.choice([0.3, 0.7, 1.1], len(labels)) if rng.random() < 0.5 else rng.random(len(labels))
            terms.append((labels, values * math.log(1 + rng.random() * 50)))
        dense = np.zeros(n)
        for labels, contributions in terms:
            dense[labels] += contributions
        touched = np.flatnonzero(dense)
        reference = touched[np.lexsort((keys[touched], -dense[touched]))]
        for k in (1, 10, 100, 3000, 30_000):
            copies = [(labels, contributions.copy()) for labels, contributions in terms]
            labels, scores, exact = kernels.best_of_terms(copies, scratch, keys, k)
            assert exact
            assert labels.tolist() == reference[:k].tolist()
            assert np.array_equal(scores, dense[reference[:k]])
    assert scratch.stamp < 2**40  # it wrapped: every slot was reset


@pytest.mark.parametrize("spread", ["distinct", "few", "one", "mostly-one", "ascending"])
def test_selection_finds_the_kth_value_and_every_candidate(spread):
    rng = np.random.default_rng(11)
    for m in (1, 7, 1024, 1025, 4000, 20_000):
        values = {
            "distinct": rng.random(m),
            "few": rng.choice([0.5, 1.5, 2.5], m),
            "one": np.ones(m),
            "mostly-one": np.where(rng.random(m) < 0.99, 1.0, rng.random(m) + 1.0),
            "ascending": np.arange(m, dtype=np.float64),
        }[spread]
        ordered = np.sort(values)
        for k in sorted(k for k in {1, 2, 10, 100, m // 2, m - 1, m} if 1 <= k <= m):
            assert kernels._kth(values, k, largest=True) == ordered[m - k]
            assert kernels._kth(values, k, largest=False) == ordered[k - 1]
            keys = values.astype(np.uint64)
            assert kernels._kth(keys, k, largest=False) == np.sort(keys)[k - 1]
            if k < m:
                candidates = kernels._candidates(values, k)
                assert len(candidates) >= k and len(set(candidates.tolist())) == len(candidates)
                assert set(np.flatnonzero(values >= ordered[m - k]).tolist()) <= set(candidates.tolist())


@pytest.mark.parametrize("seed", range(3))
def test_fused_long_rankings_equal_the_id_based_fusion(seed):
    """Rankings of thousands (hybrid queries asking for that many): fusion past the outright sort."""
    rng = np.random.default_rng(seed)
    ids = many_ids(rng, 5000)
    order = Order(ids)
    v_labels = rng.choice(len(ids), 2500, replace=False)
    t_labels = rng.choice(len(ids), 2000, replace=False)
    v_dist = np.sort(rng.choice([0.1, 0.2, 0.3], len(v_labels)))
    t_scores = np.sort(rng.choice([1.0, 2.0, 4.0], len(t_labels)))[::-1]
    for n_results in (10, 1500, 5000):
        labels, scores = fusion.fuse_labels((v_labels, v_dist), (t_labels, t_scores), n_results, order)
        want = id_based_fusion(ids, v_labels, v_dist, t_labels, t_scores, n_results)
        assert [(ids[label], score) for label, score in zip(labels.tolist(), scores.tolist())] == want


def test_text_and_hybrid_queries_never_load_numba():
    code = (
        "import sys, vectordb\n"
        "c = vectordb.Client()\n"
        "col = c.create_collection('plain', embedding_function=None)\n"
        "col.add(ids=['a', 'b'], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=['x', 'y'])\n"
        "col.query(query_embeddings=[[1.0, 0.0]], n_results=1)\n"
        "col.query(query_texts=['x'], n_results=1, mode='text')\n"
        "col.query(query_embeddings=[[1.0, 0.0]], query_texts=['x'], n_results=1, mode='hybrid')\n"
        "print(sorted(m for m in ('numba', 'llvmlite') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]"]
