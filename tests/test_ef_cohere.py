"""CohereEmbeddingFunction: the real ``cohere`` SDK against a local Cohere-protocol server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("cohere")

from providers.cohere_server import MAX_TEXTS, CohereServer, fake_vector  # noqa: E402

from vectordb.embedding_functions._hosted import RetryPolicy  # noqa: E402
from vectordb.embedding_functions.base import build_from_config, describe, embed_texts  # noqa: E402
from vectordb.embedding_functions.cohere import CohereEmbeddingFunction  # noqa: E402
from vectordb.errors import EmbeddingError, InvalidArgumentError, MissingDependencyError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:cohere")

KEY = "test-cohere-key"
FAST = RetryPolicy(max_attempts=4, initial_delay=0.01, max_delay=0.05, max_elapsed=10.0)


@pytest.fixture
def server() -> Iterator[CohereServer]:
    with CohereServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CO_API_KEY", "COHERE_API_KEY", "CO_API_URL", "MY_COHERE_KEY"):
        monkeypatch.delenv(name, raising=False)


def make(server: CohereServer, **kwargs: Any) -> CohereEmbeddingFunction:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry_policy", FAST)
    return CohereEmbeddingFunction(api_base=server.url, **kwargs)


def test_documents_use_search_document_and_the_bearer_key(server: CohereServer) -> None:
    fn = make(server)
    texts = ["alpha", "beta", "gamma"]
    vectors = embed_texts(fn, texts)
    assert vectors.shape == (3, 1024)
    for text, vec in zip(texts, vectors):
        np.testing.assert_allclose(vec, fake_vector(text, 1024), rtol=1e-6)
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", "/v1/embed")
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert req.body["texts"] == texts
    assert req.body["model"] == "embed-english-v3.0"
    assert req.body["input_type"] == "search_document"
    assert req.body["embedding_types"] == ["float"]


def test_queries_use_search_query(server: CohereServer) -> None:
    fn = make(server, model_name="embed-multilingual-v3.0")
    vectors = embed_texts(fn, ["wo ist der bahnhof"], query=True)
    np.testing.assert_allclose(vectors[0], fake_vector("wo ist der bahnhof", 1024), rtol=1e-6)
    (req,) = server.requests
    assert req.body["input_type"] == "search_query"
    assert req.body["model"] == "embed-multilingual-v3.0"


def test_v2_models_get_no_input_type(server: CohereServer) -> None:
    fn = make(server, model_name="embed-multilingual-v2.0")
    assert np.asarray(fn(["hola"])).shape == (1, 768)
    assert np.asarray(fn.embed_query(["hola"])).shape == (1, 768)
    for req in server.requests:
        assert "input_type" not in req.body
        assert "embedding_types" not in req.body


def test_many_texts_go_in_batches_of_96_in_order(server: CohereServer) -> None:
    fn = make(server, model_name="embed-english-light-v3.0")
    texts = [f"document number {i}" for i in range(250)]
    vectors = np.asarray(fn(texts))
    assert [len(r.body["texts"]) for r in server.embed_requests()] == [96, 96, 58]
    assert [t for r in server.embed_requests() for t in r.body["texts"]] == texts
    expected = np.asarray([fake_vector(t, 384) for t in texts])
    np.testing.assert_allclose(vectors, expected, rtol=1e-6)


def test_the_server_rejects_more_than_96_texts_like_cohere(server: CohereServer) -> None:
    import cohere

    client = cohere.Client(api_key=KEY, base_url=server.url, max_retries=0)
    with pytest.raises(cohere.core.ApiError) as info:
        client.embed(texts=["x"] * (MAX_TEXTS + 1), model="embed-english-v3.0",
                     input_type="search_document", batching=False)
    assert info.value.status_code == 400


def test_429_waits_for_retry_after_then_succeeds(server: CohereServer) -> None:
    fn = make(server)
    server.fail_next(1, 429, "too many requests", retry_after="0.2")
    started = time.monotonic()
    vectors = fn(["hello"])
    elapsed = time.monotonic() - started
    assert len(server.requests) == 2
    assert elapsed >= 0.2
    np.testing.assert_allclose(vectors[0], fake_vector("hello", 1024), rtol=1e-6)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(server: CohereServer, status: int) -> None:
    fn = make(server)
    server.fail_next(2, status)
    assert len(fn(["a", "b"])) == 2
    assert len(server.requests) == 3


def test_persistent_5xx_gives_up_with_a_clear_error(server: CohereServer) -> None:
    fn = make(server)
    server.fail_next(10, 503, "service overloaded, try later")
    with pytest.raises(EmbeddingError) as info:
        fn(["a"])
    err = info.value
    assert (err.provider, err.status) == ("cohere", 503)
    assert "cohere" in str(err) and "HTTP 503" in str(err) and "service overloaded, try later" in str(err)
    assert len(server.requests) == FAST.max_attempts


def test_a_wrong_key_is_not_retried(server: CohereServer) -> None:
    fn = make(server, api_key="wrong")
    with pytest.raises(EmbeddingError) as info:
        fn(["a"])
    assert info.value.status == 401
    assert "invalid api token" in str(info.value)
    assert len(server.requests) == 1


def test_403_is_not_retried(server: CohereServer) -> None:
    fn = make(server)
    server.fail_next(3, 403, "blocked")
    with pytest.raises(EmbeddingError) as info:
        fn(["a"])
    assert info.value.status == 403
    assert len(server.requests) == 1


def test_unreachable_server_is_retried_then_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fn = CohereEmbeddingFunction(api_key=KEY, api_base=f"http://127.0.0.1:{port}", retry_policy=FAST)
    with pytest.raises(EmbeddingError) as info:
        fn(["a"])
    assert info.value.status is None and "no response" in str(info.value)
    assert f"after {FAST.max_attempts} attempts" in str(info.value)


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="CO_API_KEY or COHERE_API_KEY"):
        CohereEmbeddingFunction(api_base="http://127.0.0.1:9")
    with pytest.raises(InvalidArgumentError, match="MY_COHERE_KEY"):
        CohereEmbeddingFunction(api_key_env_var="MY_COHERE_KEY")


@pytest.mark.parametrize("env_name", ["CO_API_KEY", "COHERE_API_KEY"])
def test_key_from_the_usual_variables(server: CohereServer, monkeypatch: pytest.MonkeyPatch, env_name: str) -> None:
    monkeypatch.setenv(env_name, KEY)
    CohereEmbeddingFunction(api_base=server.url, retry_policy=FAST)(["a"])
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_config_has_no_key_and_rebuilds(server: CohereServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_COHERE_KEY", KEY)
    fn = CohereEmbeddingFunction(model_name="embed-english-light-v3.0", api_base=server.url,
                                 api_key_env_var="MY_COHERE_KEY")
    name, config = describe(fn)
    assert name == "cohere"
    assert KEY not in json.dumps(config)
    assert config["api_key_env_var"] == "MY_COHERE_KEY"
    rebuilt = build_from_config(name, json.loads(json.dumps(config)))
    assert isinstance(rebuilt, CohereEmbeddingFunction)
    assert describe(rebuilt) == (name, config)
    np.testing.assert_allclose(rebuilt(["x"])[0], fake_vector("x", 384), rtol=1e-6)
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cohere", None)
    with pytest.raises(MissingDependencyError) as info:
        CohereEmbeddingFunction(api_key=KEY)
    assert info.value.extra == "cohere"
    assert 'pip install "vectordb[cohere]"' in str(info.value)


def test_importing_the_module_does_not_import_the_sdk() -> None:
    code = "import sys, vectordb.embedding_functions.cohere; assert 'cohere' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_collection_embeds_documents_and_queries_with_the_right_input_type(server: CohereServer) -> None:
    import vectordb

    if not hasattr(vectordb, "Client"):
        pytest.skip("vectordb.Client is not built yet")
    col = vectordb.Client().create_collection("cohere-docs", embedding_function=make(server))
    col.add(ids=["a", "b", "c"], documents=["red apples", "green pears", "blue plums"])
    result = col.query(query_texts=["green pears"], n_results=2)
    assert result["ids"][0][0] == "b"
    assert [r.body["input_type"] for r in server.embed_requests()] == ["search_document", "search_query"]
