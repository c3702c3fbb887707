"""InstructorEmbeddingFunction: INSTRUCTOR's pooling reproduced, checked against transformers."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

pytest.importorskip("sentence_transformers")

from tiny_models import build_tiny_model  # noqa: E402

from vectordb.embedding_functions.base import build_from_config, describe, embed_texts  # noqa: E402
from vectordb.embedding_functions.instructor import (  # noqa: E402
    DOCUMENT_INSTRUCTION,
    QUERY_INSTRUCTION,
    InstructorEmbeddingFunction,
)
from vectordb.errors import MissingDependencyError  # noqa: E402

INSTRUCTION = "Represent the science title:"
TEXTS = [
    "3D ActionSLAM: a new study shows how cats sat on the mat",
    "Quantum physics",
    "  proteins fold  ",
    "the stock market fell and the stock market rose with a dog",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("instructor")))


@pytest.fixture(scope="module")
def oracle(model_dir: str):
    """INSTRUCTOR's embedding computed with transformers alone, one text at a time."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def embed(instruction: str, text: str, *, all_tokens: bool = False) -> np.ndarray:
        encoded = tokenizer(instruction + text.strip(), return_tensors="pt")
        # INSTRUCTOR's context mask: the instruction's own token count minus its trailing
        # [SEP], i.e. [CLS] plus the instruction tokens are left out of the mean.
        context = int(tokenizer(instruction, return_tensors="pt")["attention_mask"].sum()) - 1
        with torch.no_grad():
            tokens = model(**encoded).last_hidden_state[0]
        start = 0 if all_tokens or context <= 1 else context
        return tokens[start:].mean(dim=0).numpy()

    return embed


def test_vectors_are_instructor_mean_over_text_tokens(model_dir: str, oracle) -> None:
    fn = InstructorEmbeddingFunction(model_name=model_dir, instruction=INSTRUCTION)
    got = fn(TEXTS)
    expected = np.stack([oracle(INSTRUCTION, t) for t in TEXTS])
    assert got.shape == (len(TEXTS), 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    all_tokens = np.stack([oracle(INSTRUCTION, t, all_tokens=True) for t in TEXTS])
    assert np.abs(got - all_tokens).max() > 1e-2


def test_query_instruction_is_used_for_queries(model_dir: str, oracle) -> None:
    fn = InstructorEmbeddingFunction(
        model_name=model_dir, instruction=INSTRUCTION, query_instruction="Represent the science question:"
    )
    queries = ["how do proteins fold?"]
    expected = oracle("Represent the science question:", queries[0])
    np.testing.assert_allclose(embed_texts(fn, queries, query=True)[0], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(fn.embed_query(queries), fn(queries), atol=1e-3)


def test_instruction_alone_also_applies_to_queries(model_dir: str) -> None:
    fn = InstructorEmbeddingFunction(model_name=model_dir, instruction=INSTRUCTION)
    assert fn.query_instruction == INSTRUCTION
    np.testing.assert_allclose(fn.embed_query(TEXTS[:2]), fn(TEXTS[:2]), rtol=1e-5, atol=1e-6)


def test_default_instructions_follow_instructor_retrieval_convention(model_dir: str, oracle) -> None:
    fn = InstructorEmbeddingFunction(model_name=model_dir)
    text = TEXTS[0]
    np.testing.assert_allclose(fn([text])[0], oracle(DOCUMENT_INSTRUCTION, text), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fn.embed_query([text])[0], oracle(QUERY_INSTRUCTION, text), rtol=1e-4, atol=1e-5)


def test_empty_instruction_means_mean_over_all_tokens(model_dir: str, oracle) -> None:
    fn = InstructorEmbeddingFunction(model_name=model_dir, instruction="")
    expected = np.stack([oracle("", t, all_tokens=True) for t in TEXTS])
    np.testing.assert_allclose(fn(TEXTS), expected, rtol=1e-4, atol=1e-5)


def test_normalisation_follows_the_checkpoint(model_dir: str, tmp_path) -> None:
    plain = InstructorEmbeddingFunction(model_name=model_dir, instruction=INSTRUCTION)(TEXTS)
    assert not np.allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-3)
    normalized_dir = str(build_tiny_model(tmp_path, normalize=True))
    unit = InstructorEmbeddingFunction(model_name=normalized_dir, instruction=INSTRUCTION)(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit, plain / np.linalg.norm(plain, axis=1, keepdims=True), rtol=1e-4, atol=1e-5)


def test_model_is_loaded_once_with_prompt_excluded_from_pooling(model_dir: str) -> None:
    a = InstructorEmbeddingFunction(model_name=model_dir, instruction=INSTRUCTION)
    b = InstructorEmbeddingFunction(model_name=model_dir, instruction="Represent the title:")
    a(["cat"]), b(["cat"])
    assert a._model is b._model
    assert [m.include_prompt for m in a._model if hasattr(m, "include_prompt")] == [False]


def test_config_round_trip(model_dir: str) -> None:
    fn = InstructorEmbeddingFunction(model_name=model_dir, instruction=INSTRUCTION, query_instruction="Q:")
    name, config = describe(fn)
    assert name == "instructor"
    assert config == {"model_name": model_dir, "device": "cpu", "instruction": INSTRUCTION, "query_instruction": "Q:"}
    rebuilt = build_from_config(name, json.loads(json.dumps(config)))
    assert isinstance(rebuilt, InstructorEmbeddingFunction) and rebuilt.get_config() == config
    np.testing.assert_allclose(rebuilt(TEXTS), fn(TEXTS), rtol=1e-6)
    assert InstructorEmbeddingFunction().get_config()["instruction"] == DOCUMENT_INSTRUCTION


def test_empty_input_gives_no_vectors(model_dir: str) -> None:
    assert InstructorEmbeddingFunction(model_name=model_dir)([]).shape == (0, 32)


def test_missing_sentence_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(MissingDependencyError, match=r'vectordb\[instructor\]'):
        InstructorEmbeddingFunction()


def test_collection_embeds_queries_with_the_query_instruction(model_dir: str) -> None:
    import vectordb

    fn = InstructorEmbeddingFunction(model_name=model_dir, instruction=INSTRUCTION, query_instruction="Q:")
    collection = vectordb.Client().create_collection("titles", embedding_function=fn)
    assert collection.configuration["hnsw"]["space"] == "cosine"  # the function's default_space(), as in Chroma
    collection.add(ids=["a", "b"], documents=TEXTS[:2])
    result = collection.query(query_texts=["proteins fold"], n_results=2, include=["distances"])
    query, docs = fn.embed_query(["proteins fold"])[0], fn(TEXTS[:2])
    assert not np.allclose(query, fn(["proteins fold"])[0], atol=1e-3)

    def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
        return 1.0 - float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    expected = {id_: cosine_distance(query, docs[i]) for i, id_ in enumerate(["a", "b"])}
    for id_, distance in zip(result["ids"][0], result["distances"][0]):
        assert distance == pytest.approx(expected[id_], rel=1e-4)
