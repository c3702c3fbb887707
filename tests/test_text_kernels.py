"""The compiled BM25 and fusion loops (:mod:`vectordb.text.kernels`) against plain Python.

The engine's text index ranks through numba-compiled loops over a dense score array, and
hybrid queries fuse label rankings in compiled code. Here both are checked against an
independent computation: BM25 by Lucene's formula in Python floats, rankings by Python's
own sort of ``(score, id)``, on ids built to defeat the 8-byte id keys (shared prefixes,
NUL characters, non-ASCII), with filters, after deletes and re-indexing; and fusion
against the id-based :func:`vectordb.text.fusion.fuse`. Also: ``import vectordb`` and
vector queries never load numba.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from typing import Dict, List, Optional

import numpy as np
import pytest

from tests.test_topk import Order, tricky_ids
from vectordb.text import fusion
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
        vector = {"ids": [[ids[i] for i in v_labels.tolist()]], "distances": [v_dist.tolist()]}
        text = {"ids": [[ids[i] for i in t_labels.tolist()]], "scores": [t_scores.tolist()]}
        for n_results in (1, 10, 300):
            labels, scores = fusion.fuse_labels((v_labels, v_dist), (t_labels, t_scores), n_results, order)
            want = fusion.fuse(vector, text, n_results, ["scores"])  # type: ignore[arg-type]
            assert [ids[label] for label in labels.tolist()] == want["ids"][0]
            assert scores.tolist() == want["scores"][0]


def test_import_and_vector_queries_do_not_load_numba(tmp_path):
    code = (
        "import sys, vectordb\n"
        "c = vectordb.Client()\n"
        "col = c.create_collection('plain', embedding_function=None)\n"
        "col.add(ids=['a', 'b'], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=['x', 'y'])\n"
        "col.query(query_embeddings=[[1.0, 0.0]], n_results=1)\n"
        "print('numba' in sys.modules)\n"
        "col.query(query_texts=['x'], n_results=1, mode='text')\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_an_unusable_machine_code_cache_is_compiled_afresh_not_a_failed_query(tmp_path):
    """numba caches each loop's machine code by source file; an entry it cannot load (here:
    written while the file was loaded under another module name, as a tool might) makes the
    loop's first call raise. The module's warm-up drops such entries and compiles again."""
    import vectordb.text.kernels as kernels

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    poison = (
        "import importlib.util, numpy as np\n"
        f"spec = importlib.util.spec_from_file_location('elsewhere', {kernels.__file__!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
    )
    first = subprocess.run([sys.executable, "-c", poison], capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr
    query = (
        "import vectordb\n"
        "col = vectordb.Client().create_collection('fox', embedding_function=None)\n"
        "col.add(ids=['a', 'b'], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=['red fox', 'blue fox'])\n"
        "print(col.query(query_texts=['red'], n_results=1, mode='text', include=[])['ids'])\n"
    )
    second = subprocess.run([sys.executable, "-c", query], capture_output=True, text=True, timeout=300, env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.split() == ["[['a']]"]
