"""OpenAIEmbeddingFunction: the real ``openai`` SDK against a local OpenAI-protocol server."""

from __future__ import annotations

import time
from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("openai")

from providers._checks import (  # noqa: E402
    FAST,
    assert_import_leaves_out,
    assert_missing_sdk_named,
    clear_env,
    failure_of,
    rebuilt_from_config,
)
from providers.openai_server import MAX_INPUTS, OpenAIServer, expected_vector  # noqa: E402

from vectordb.embedding_functions._hosted import RetryPolicy  # noqa: E402
from vectordb.embedding_functions.base import embed_texts  # noqa: E402
from vectordb.embedding_functions.openai import OpenAIEmbeddingFunction  # noqa: E402
from vectordb.errors import EmbeddingError, InvalidArgumentError  # noqa: E402

KEY = "sk-test-key"


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch, ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_BASE_URL", "MY_KEY"))


def make(server: OpenAIServer, **kwargs: Any) -> OpenAIEmbeddingFunction:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry_policy", FAST)
    return OpenAIEmbeddingFunction(api_base=f"{server.url}/v1", **kwargs)


def test_vectors_match_the_texts_and_auth_header_is_sent(server: OpenAIServer) -> None:
    fn = make(server, model_name="text-embedding-ada-002")
    texts = ["alpha", "beta", "gamma"]
    vectors = embed_texts(fn, texts)
    assert vectors.shape == (3, 1536)
    for text, vec in zip(texts, vectors):
        np.testing.assert_allclose(vec, expected_vector(text, "text-embedding-ada-002"), rtol=1e-6)
    (req,) = server.requests
    assert req.path == "/v1/embeddings"
    assert req.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-organization" not in req.headers
    assert req.body["model"] == "text-embedding-ada-002"
    assert req.body["input"] == texts
    assert req.body["encoding_format"] == "float"
    assert "dimensions" not in req.body


def test_organization_header(server: OpenAIServer) -> None:
    make(server, organization_id="org-123")(["x"])
    assert server.requests[0].headers["openai-organization"] == "org-123"


def test_batches_of_at_most_2048_keep_order(server: OpenAIServer) -> None:
    server.shuffle = True  # the server answers out of order; `index` must put it right
    fn = make(server, model_name="text-embedding-3-small", dimensions=8)
    texts = [f"document number {i}" for i in range(5000)]
    vectors = fn(texts)
    assert [len(r.body["input"]) for r in server.requests] == [2048, 2048, 904]
    assert [t for r in server.requests for t in r.body["input"]] == texts
    expected = np.stack([expected_vector(t, "text-embedding-3-small", 8) for t in texts])
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)


def test_server_enforces_the_batch_limit(server: OpenAIServer) -> None:
    """The limit the function respects is one the server really enforces."""
    import openai

    client = openai.OpenAI(api_key=KEY, base_url=f"{server.url}/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="text-embedding-3-small", input=["a"] * (MAX_INPUTS + 1))
    assert info.value.status_code == 400 and "maximum length 2048" in info.value.body["message"]
    # the SDK's own default (base64 float32) decodes to the same vectors the function gets
    response = client.embeddings.create(model="text-embedding-3-small", input=["b64"], dimensions=4)
    assert server.requests[-1].body["encoding_format"] == "base64"
    np.testing.assert_array_equal(response.data[0].embedding, expected_vector("b64", "text-embedding-3-small", 4))


def test_dimensions_sent_only_when_given(server: OpenAIServer) -> None:
    vectors = make(server, model_name="text-embedding-3-large", dimensions=256)(["short"])
    assert len(vectors[0]) == 256
    assert server.requests[-1].body["dimensions"] == 256
    make(server, model_name="text-embedding-3-large")(["short"])
    assert "dimensions" not in server.requests[-1].body
    with pytest.raises(InvalidArgumentError, match="dimensions"):
        OpenAIEmbeddingFunction(api_key=KEY, dimensions=0)


def test_azure_path_version_and_api_key_header(server: OpenAIServer) -> None:
    fn = OpenAIEmbeddingFunction(
        api_key="azure-test-key",
        api_type="azure",
        api_base=server.url,
        api_version="2024-02-01",
        deployment_id="my-embeddings",
        retry_policy=FAST,
    )
    vectors = fn(["hello", "world"])
    np.testing.assert_allclose(vectors[1], expected_vector("world", "text-embedding-ada-002"), rtol=1e-6)
    (req,) = server.requests
    assert req.path == "/openai/deployments/my-embeddings/embeddings"
    assert req.query == {"api-version": "2024-02-01"}
    assert req.headers["api-key"] == "azure-test-key"
    assert "authorization" not in req.headers


def test_azure_key_from_environment_and_bad_key_named(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "wrong")
    fn = OpenAIEmbeddingFunction(
        api_type="azure", api_base=server.url, api_version="2024-02-01", deployment_id="my-embeddings"
    )
    with pytest.raises(EmbeddingError, match="401.*Access denied") as info:
        fn(["x"])
    assert info.value.status == 401 and len(server.requests) == 1
    with pytest.raises(InvalidArgumentError, match="api_version"):
        OpenAIEmbeddingFunction(api_key="k", api_type="azure", api_base=server.url)


def test_429_waits_retry_after_then_succeeds(server: OpenAIServer) -> None:
    server.fail_next(2, 429, retry_after="0.2")
    vectors = make(server)(["retry me"])
    np.testing.assert_allclose(vectors[0], expected_vector("retry me", "text-embedding-ada-002"), rtol=1e-6)
    assert [r.status for r in server.requests] == [429, 429, 200]
    gaps = np.diff([r.received_at for r in server.requests])
    assert (gaps >= 0.2).all(), gaps


def test_500_is_retried(server: OpenAIServer) -> None:
    server.fail_next(1, 500)
    assert len(make(server)(["a", "b"])) == 2
    assert [r.status for r in server.requests] == [500, 200]


def test_persistent_503_gives_up_after_bounded_attempts(server: OpenAIServer) -> None:
    server.fail_next(100, 503, message="engine overloaded, come back later")
    err = failure_of(make(server))
    assert err.provider == "OpenAI" and err.status == 503
    assert "OpenAI" in str(err) and "503" in str(err) and "engine overloaded, come back later" in str(err)
    assert len(server.requests) == FAST.max_attempts


def test_401_is_not_retried(server: OpenAIServer) -> None:
    with pytest.raises(EmbeddingError, match="Incorrect API key provided") as info:
        make(server, api_key="sk-wrong-key-1234")(["a"])
    assert info.value.status == 401
    assert len(server.requests) == 1


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="OPENAI_API_KEY"):
        OpenAIEmbeddingFunction()
    with pytest.raises(InvalidArgumentError, match="MY_KEY"):
        OpenAIEmbeddingFunction(api_key_env_var="MY_KEY")


def test_key_from_named_env_var(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", KEY)
    make(server, api_key=None, api_key_env_var="MY_KEY")(["x"])
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_empty_and_non_string_inputs_rejected_before_any_request(server: OpenAIServer) -> None:
    fn = make(server)
    with pytest.raises(InvalidArgumentError, match="input 1 is an empty string"):
        fn(["ok", ""])
    with pytest.raises(InvalidArgumentError, match="int"):
        fn(["ok", 3])  # type: ignore[list-item]
    assert fn([]) == []
    assert server.requests == []


def test_config_has_no_key_and_round_trips(server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    fn = make(server, model_name="text-embedding-3-small", dimensions=32, organization_id="org-9", timeout=7.5)
    assert fn.name() == "openai"
    assert fn.get_config()["api_key_env_var"] == "OPENAI_API_KEY"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    rebuilt = rebuilt_from_config(fn, "openai", KEY)
    assert rebuilt.get_config() == fn.get_config()
    assert rebuilt.retry_policy == FAST
    np.testing.assert_allclose(rebuilt(["same"]), fn(["same"]))


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_missing_sdk_named(monkeypatch, "openai", lambda: OpenAIEmbeddingFunction(api_key=KEY), "openai")


def test_importing_vectordb_does_not_import_the_sdk() -> None:
    assert_import_leaves_out("vectordb.embedding_functions.openai", ["openai"])


def test_timeout_gives_embedding_error_after_bounded_attempts(server: OpenAIServer) -> None:
    server.delay = 1.0
    policy = RetryPolicy(max_attempts=2, initial_delay=0.01, max_delay=0.01, max_elapsed=10.0)
    fn = make(server, timeout=0.2, retry_policy=policy)
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match="timed out") as info:
        fn(["slow"])
    assert time.monotonic() - started < 1.5
    assert info.value.status is None and info.value.provider == "OpenAI"
    assert len(server.requests) == 2
