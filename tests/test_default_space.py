"""A new collection's distance metric follows its embedding function's ``default_space()``, as in Chroma 1.x.

Chroma 1.x gives a collection created with an embedding function that function's
``default_space()``: cosine for Sentence Transformers, OpenAI, Cohere, Google and
Instructor; l2 for ``DefaultEmbeddingFunction`` (checked against chromadb 1.5.9: its
own ``test_index_params`` expects l2 distances from a collection made with no
arguments). A ``hnsw:space`` in the metadata or a configuration space wins; no
function, or one without ``default_space``, keeps l2. The metric is fixed at creation:
the catalog's ``metric`` column holds it, so a collection made before (l2, whatever its
function) keeps l2 when reopened. No test here runs a model.
"""

from __future__ import annotations

import numpy as np
import pytest

import vectordb
from vectordb.client import default_space
from vectordb.embedding_functions import (
    CohereEmbeddingFunction,
    DefaultEmbeddingFunction,
    GoogleGenerativeAiEmbeddingFunction,
    GooglePalmEmbeddingFunction,
    InstructorEmbeddingFunction,
    OpenAIEmbeddingFunction,
    SentenceTransformerEmbeddingFunction,
)
from vectordb.embedding_functions.base import UnavailableEmbeddingFunction, register_embedding_function
from vectordb.errors import InvalidArgumentError

VECTORS = [[1.0, 0.0], [10.0, 10.0]]
QUERY = [2.0, 0.0]
COSINE = [0.0, 1 - 1 / np.sqrt(2)]  # x is at cosine distance 0 from a vector twice its length
L2 = [1.0, 164.0]  # squared l2, as Chroma reports it


class Declares:
    """A custom function that declares its default space, as Chroma's functions do."""

    def __init__(self, space: str = "cosine") -> None:
        self.space = space

    def __call__(self, input):
        return [[float(len(t)), 1.0] for t in input]

    def default_space(self) -> str:
        return self.space


@register_embedding_function
class Cosine:
    """A registered function that declares cosine, as the hosted ones do (a server knows it by name)."""

    def __call__(self, input):
        return [[float(len(t)), 1.0] for t in input]

    @staticmethod
    def name() -> str:
        return "test-default-space-cosine"

    @staticmethod
    def default_space() -> str:
        return "cosine"

    def get_config(self) -> dict:
        return {}

    @classmethod
    def build_from_config(cls, config: dict) -> "Cosine":
        return cls()


def distances(col) -> list:
    col.add(ids=["x", "y"], embeddings=VECTORS)
    return col.query(query_embeddings=[QUERY], n_results=2, include=["distances"])["distances"][0]


@pytest.mark.parametrize("cls", [SentenceTransformerEmbeddingFunction, OpenAIEmbeddingFunction, CohereEmbeddingFunction,
                                 GoogleGenerativeAiEmbeddingFunction, GooglePalmEmbeddingFunction,
                                 InstructorEmbeddingFunction])
def test_the_hosted_and_model_functions_declare_cosine(cls):
    assert cls.default_space() == "cosine"  # a staticmethod: known without building the function


def test_a_function_s_cosine_makes_a_cosine_collection(client):
    col = client.create_collection("docs", embedding_function=Cosine())
    assert col.metadata is None  # the space is not written into the metadata
    assert col.configuration["hnsw"]["space"] == "cosine"
    np.testing.assert_allclose(distances(col), COSINE, atol=1e-6)
    again = client.get_collection("docs", embedding_function=None)
    assert again.configuration["hnsw"]["space"] == "cosine" and again.metadata is None


def test_the_default_function_keeps_l2_as_chroma_s_does(client):
    assert DefaultEmbeddingFunction.default_space() == "l2"
    col = client.create_collection("plain")  # the default function, never called here
    assert col.metadata is None and col.configuration["hnsw"]["space"] == "l2"
    np.testing.assert_allclose(distances(col), L2, rtol=1e-6)


def test_a_custom_function_s_default_space_is_used(local_client):
    col = local_client.create_collection("inner", embedding_function=Declares("ip"))
    assert col.configuration["hnsw"]["space"] == "ip"
    np.testing.assert_allclose(distances(col), [1 - 20.0, 1 - 2.0], atol=1e-6)  # 1 - dot: y first


@pytest.mark.parametrize("kwargs", [
    dict(metadata={"hnsw:space": "l2"}),
    dict(configuration={"hnsw": {"space": "l2"}}),
    dict(embedding_function=None),
    dict(embedding_function=lambda input: [[1.0, 0.0] for _ in input]),  # declares no default space
])
def test_an_explicit_space_or_no_declared_space_keeps_l2(client, kwargs):
    col = client.create_collection("chosen", **kwargs)
    assert col.configuration["hnsw"]["space"] == "l2"
    np.testing.assert_allclose(distances(col), L2, rtol=1e-6)


def test_a_configuration_without_space_takes_the_function_s(client):
    col = client.create_collection("tuned", configuration={"hnsw": {"ef_search": 20}}, embedding_function=Cosine())
    hnsw = col.configuration["hnsw"]
    assert hnsw["space"] == "cosine" and hnsw["ef_search"] == 20


def test_get_or_create_keeps_an_existing_collection_s_metric(client):
    client.create_collection("kept", metadata={"hnsw:space": "l2"}, embedding_function=Cosine())
    col = client.get_or_create_collection("kept", embedding_function=Cosine())  # no metadata: found, not re-derived
    assert col.configuration["hnsw"]["space"] == "l2"


def test_a_collection_made_before_keeps_l2_when_reopened(tmp_path):
    with vectordb.PersistentClient(str(tmp_path)) as client:
        # what create_collection stored before functions had a default space: metric l2, the default function
        client.backend.create_collection("old", None, "default", {})
    with vectordb.PersistentClient(str(tmp_path)) as client:
        col = client.get_collection("old")
        assert isinstance(col.embedding_function, DefaultEmbeddingFunction)
        assert col.configuration["hnsw"]["space"] == "l2"
        np.testing.assert_allclose(distances(col), L2, rtol=1e-6)
        assert client.create_collection("new", embedding_function=Cosine()).configuration["hnsw"]["space"] == "cosine"


def test_modify_may_not_add_or_change_the_space(client):
    col = client.create_collection("implied", embedding_function=Cosine())
    with pytest.raises(InvalidArgumentError, match=r"hnsw:space.*cannot change .*not supported, as in Chroma; it is 'cosine'"):
        col.modify(metadata={"hnsw:space": "cosine"})  # as Chroma: the metadata holds no space to repeat
    col.modify(metadata={"k": "v"})
    assert col.metadata == {"k": "v"} and col.configuration["hnsw"]["space"] == "cosine"


def test_default_space_helper():
    assert default_space(None) == "l2"
    assert default_space(DefaultEmbeddingFunction()) == "l2"
    assert default_space(Cosine()) == "cosine"
    assert default_space(Declares("ip")) == "ip"
    with pytest.raises(InvalidArgumentError, match=r"default_space\(\) returned 'manhattan', expected one of"):
        default_space(Declares("manhattan"))


def test_a_server_s_stand_in_knows_a_registered_function_s_space():
    assert UnavailableEmbeddingFunction("default", {}, "stored").default_space() == "l2"
    assert UnavailableEmbeddingFunction("test-default-space-cosine", {}, "stored").default_space() == "cosine"
    assert UnavailableEmbeddingFunction("openai", {}, "stored").default_space() == "cosine"
    assert UnavailableEmbeddingFunction("custom:Mine", None, "stored").default_space() == "l2"
