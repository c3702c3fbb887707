"""CohereEmbeddingFunction: the real ``cohere`` SDK against a local Cohere-protocol server."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("cohere")

from providers._checks import (  # noqa: E402
    FAST,
    assert_import_leaves_out,
    assert_missing_sdk_named,
    assert_unreachable_is_reported,
    clear_env,
    embed_timed,
    failure_of,
    query_a_collection,
    rebuilt_from_config,
    unreachable_url,
)
from providers.cohere_server import MAX_TEXTS, CohereServer, fake_vector  # noqa: E402

from vectordb.embedding_functions.base import embed_texts  # noqa: E402
from vectordb.embedding_functions.cohere import CohereEmbeddingFunction  # noqa: E402
from vectordb.errors import InvalidArgumentError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:cohere")

KEY = "test-cohere-key"


@pytest.fixture
def server() -> Iterator[CohereServer]:
    with CohereServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch, ("CO_API_KEY", "COHERE_API_KEY", "CO_API_URL", "MY_COHERE_KEY"))


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
    vectors, elapsed = embed_timed(fn, ["hello"])
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
    err = failure_of(fn)
    assert (err.provider, err.status) == ("cohere", 503)
    assert "cohere" in str(err) and "HTTP 503" in str(err) and "service overloaded, try later" in str(err)
    assert len(server.requests) == FAST.max_attempts


def test_a_wrong_key_is_not_retried(server: CohereServer) -> None:
    err = failure_of(make(server, api_key="wrong"))
    assert err.status == 401
    assert "invalid api token" in str(err)
    assert len(server.requests) == 1


def test_403_is_not_retried(server: CohereServer) -> None:
    fn = make(server)
    server.fail_next(3, 403, "blocked")
    assert failure_of(fn).status == 403
    assert len(server.requests) == 1


def test_unreachable_server_is_retried_then_reported() -> None:
    assert_unreachable_is_reported(
        CohereEmbeddingFunction(api_key=KEY, api_base=unreachable_url(), retry_policy=FAST)
    )


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
    assert fn.get_config()["api_key_env_var"] == "MY_COHERE_KEY"
    rebuilt = rebuilt_from_config(fn, "cohere", KEY)
    np.testing.assert_allclose(rebuilt(["x"])[0], fake_vector("x", 384), rtol=1e-6)
    assert server.requests[-1].headers["authorization"] == f"Bearer {KEY}"


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_missing_sdk_named(monkeypatch, "cohere", lambda: CohereEmbeddingFunction(api_key=KEY), "cohere")


def test_importing_the_module_does_not_import_the_sdk() -> None:
    assert_import_leaves_out("vectordb.embedding_functions.cohere", ["cohere"])


def test_a_collection_embeds_documents_and_queries_with_the_right_input_type(server: CohereServer) -> None:
    query_a_collection(make(server), "cohere-docs")
    assert [r.body["input_type"] for r in server.embed_requests()] == ["search_document", "search_query"]
