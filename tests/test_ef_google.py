"""Google embedding functions: the real ``google-generativeai`` SDK against a local REST server."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pytest

pytest.importorskip("google.generativeai")

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
from providers.google_server import MAX_BATCH, TASK_TYPES, GoogleServer, fake_vector  # noqa: E402

from vectordb.embedding_functions.base import embed_texts  # noqa: E402
from vectordb.embedding_functions.google import (  # noqa: E402
    GoogleGenerativeAiEmbeddingFunction,
    GooglePalmEmbeddingFunction,
)
from vectordb.errors import InvalidArgumentError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

KEY = "test-google-key"
GEMINI = "models/text-embedding-004"
PALM = "models/embedding-gecko-001"


@pytest.fixture
def server() -> Iterator[GoogleServer]:
    with GoogleServer(api_key=KEY) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_ambient_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_env(monkeypatch, ("GOOGLE_API_KEY", "GEMINI_API_KEY", "MY_GOOGLE_KEY"))


def gemini(server: GoogleServer, **kwargs: Any) -> GoogleGenerativeAiEmbeddingFunction:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry_policy", FAST)
    return GoogleGenerativeAiEmbeddingFunction(api_base=server.url, **kwargs)


def palm(server: GoogleServer, **kwargs: Any) -> GooglePalmEmbeddingFunction:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("retry_policy", FAST)
    return GooglePalmEmbeddingFunction(api_base=server.url, **kwargs)


def task_name(value: Any) -> str:
    """The REST transport sends enums as numbers; the server accepts names too."""
    return TASK_TYPES[value] if isinstance(value, int) else value


def test_documents_use_retrieval_document_and_the_key_header(server: GoogleServer) -> None:
    fn = gemini(server)
    texts = ["alpha", "beta", "gamma"]
    vectors = embed_texts(fn, texts)
    assert vectors.shape == (3, 768)
    for text, vec in zip(texts, vectors):
        np.testing.assert_allclose(vec, fake_vector(text, 768), rtol=1e-6)
    (req,) = server.requests
    assert (req.method, req.path) == ("POST", f"/v1beta/{GEMINI}:batchEmbedContents")
    assert req.headers["x-goog-api-key"] == KEY
    assert "key" not in req.query
    assert [r["content"]["parts"] for r in req.body["requests"]] == [[{"text": t}] for t in texts]
    assert {r["model"] for r in req.body["requests"]} == {GEMINI}
    assert {task_name(r["taskType"]) for r in req.body["requests"]} == {"RETRIEVAL_DOCUMENT"}


def test_queries_use_retrieval_query(server: GoogleServer) -> None:
    fn = gemini(server)
    vectors = embed_texts(fn, ["where is the station"], query=True)
    np.testing.assert_allclose(vectors[0], fake_vector("where is the station", 768), rtol=1e-6)
    (req,) = server.requests
    assert task_name(req.body["requests"][0]["taskType"]) == "RETRIEVAL_QUERY"


def test_a_symmetric_task_type_is_used_for_queries_too(server: GoogleServer) -> None:
    fn = gemini(server, task_type="semantic_similarity", model_name="embedding-001")
    fn(["a"])
    fn.embed_query(["b"])
    assert [r.path for r in server.requests] == ["/v1beta/models/embedding-001:batchEmbedContents"] * 2
    assert [task_name(r.body["requests"][0]["taskType"]) for r in server.requests] == ["SEMANTIC_SIMILARITY"] * 2


def test_an_unknown_task_type_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match="task_type"):
        GoogleGenerativeAiEmbeddingFunction(api_key=KEY, task_type="RANKING")


def test_many_texts_go_in_batches_of_100_in_order(server: GoogleServer) -> None:
    texts = [f"document number {i}" for i in range(250)]
    vectors = np.asarray(gemini(server)(texts))
    sent = [[r["content"]["parts"][0]["text"] for r in q.body["requests"]] for q in server.embed_requests()]
    assert [len(s) for s in sent] == [100, 100, 50]
    assert [t for s in sent for t in s] == texts
    np.testing.assert_allclose(vectors, np.asarray([fake_vector(t, 768) for t in texts]), rtol=1e-6)


def test_palm_uses_batch_embed_text_in_batches_of_100(server: GoogleServer) -> None:
    texts = [f"palm text {i}" for i in range(150)]
    vectors = embed_texts(palm(server), texts)
    reqs = server.embed_requests()
    assert [r.path for r in reqs] == [f"/v1beta/{PALM}:batchEmbedText"] * 2
    assert [r.body["texts"] for r in reqs] == [texts[:100], texts[100:]]
    assert all(r.headers["x-goog-api-key"] == KEY for r in reqs)
    np.testing.assert_allclose(vectors, np.asarray([fake_vector(t, 768) for t in texts]), rtol=1e-6)


def test_the_server_rejects_more_than_100_like_google(server: GoogleServer) -> None:
    from google.ai import generativelanguage_v1beta as glm
    from google.api_core import client_options, exceptions

    client = glm.TextServiceClient(
        transport="rest", client_options=client_options.ClientOptions(api_key=KEY, api_endpoint=server.url)
    )
    with pytest.raises(exceptions.BadRequest):
        client.batch_embed_text(glm.BatchEmbedTextRequest(model=PALM, texts=["x"] * (MAX_BATCH + 1)), retry=None)


@pytest.mark.parametrize("how", ["retry_after", "retry_delay"])
def test_429_waits_as_told_then_succeeds(server: GoogleServer, how: str) -> None:
    fn = gemini(server)
    wait = {"retry_after": "0.2"} if how == "retry_after" else {"retry_delay": "0.2s"}
    server.fail_next(1, 429, "Resource has been exhausted (e.g. check quota).", **wait)
    vectors, elapsed = embed_timed(fn, ["hello"])
    assert len(server.requests) == 2
    assert elapsed >= 0.2
    np.testing.assert_allclose(vectors[0], fake_vector("hello", 768), rtol=1e-6)


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(server: GoogleServer, status: int) -> None:
    fn = palm(server)
    server.fail_next(2, status)
    assert len(fn(["a", "b"])) == 2
    assert len(server.requests) == 3


@pytest.mark.parametrize("make", [gemini, palm])
def test_persistent_5xx_gives_up_with_a_clear_error(server: GoogleServer, make: Any) -> None:
    server.fail_next(10, 503, "The model is overloaded. Please try again later.")
    err = failure_of(make(server))
    assert (err.provider, err.status) == ("google", 503)
    assert "google" in str(err) and "HTTP 503" in str(err)
    assert "The model is overloaded. Please try again later." in str(err)
    assert len(server.requests) == FAST.max_attempts


def test_a_wrong_key_is_not_retried(server: GoogleServer) -> None:
    err = failure_of(gemini(server, api_key="wrong"))
    assert err.status == 400
    assert "API key not valid" in str(err)
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried(server: GoogleServer, status: int) -> None:
    server.fail_next(3, status, "permission denied")
    assert failure_of(gemini(server)).status == status
    assert len(server.requests) == 1


def test_unreachable_server_is_retried_then_reported() -> None:
    assert_unreachable_is_reported(
        GooglePalmEmbeddingFunction(api_key=KEY, api_base=unreachable_url(), retry_policy=FAST)
    )


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgumentError, match="GOOGLE_API_KEY or GEMINI_API_KEY"):
        GoogleGenerativeAiEmbeddingFunction()
    with pytest.raises(InvalidArgumentError, match="MY_GOOGLE_KEY"):
        GooglePalmEmbeddingFunction(api_key_env_var="MY_GOOGLE_KEY")


@pytest.mark.parametrize("env_name", ["GOOGLE_API_KEY", "GEMINI_API_KEY"])
def test_key_from_the_usual_variables(server: GoogleServer, monkeypatch: pytest.MonkeyPatch, env_name: str) -> None:
    monkeypatch.setenv(env_name, KEY)
    GoogleGenerativeAiEmbeddingFunction(api_base=server.url, retry_policy=FAST)(["a"])
    assert server.requests[0].headers["x-goog-api-key"] == KEY


def test_instances_do_not_share_keys_or_endpoints() -> None:
    with GoogleServer(api_key="key-one") as one, GoogleServer(api_key="key-two") as two:
        first = GoogleGenerativeAiEmbeddingFunction(api_key="key-one", api_base=one.url, retry_policy=FAST)
        second = GoogleGenerativeAiEmbeddingFunction(api_key="key-two", api_base=two.url, retry_policy=FAST)
        first(["a"])
        second(["b"])
        first(["c"])
        assert [r.headers["x-goog-api-key"] for r in one.requests] == ["key-one", "key-one"]
        assert [r.headers["x-goog-api-key"] for r in two.requests] == ["key-two"]


@pytest.mark.parametrize("cls,name", [(GoogleGenerativeAiEmbeddingFunction, "google_generative_ai"),
                                      (GooglePalmEmbeddingFunction, "google_palm")])
def test_config_has_no_key_and_rebuilds(server: GoogleServer, monkeypatch: pytest.MonkeyPatch,
                                        cls: Any, name: str) -> None:
    monkeypatch.setenv("MY_GOOGLE_KEY", KEY)
    fn = cls(api_base=server.url, api_key_env_var="MY_GOOGLE_KEY")
    rebuilt = rebuilt_from_config(fn, name, KEY)
    assert isinstance(rebuilt, cls)
    np.testing.assert_allclose(rebuilt(["x"])[0], fake_vector("x", 768), rtol=1e-6)
    assert server.requests[-1].headers["x-goog-api-key"] == KEY


@pytest.mark.parametrize("module,cls", [("google.generativeai", GoogleGenerativeAiEmbeddingFunction),
                                        ("google.ai.generativelanguage_v1beta", GooglePalmEmbeddingFunction)])
def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch, module: str, cls: Any) -> None:
    assert_missing_sdk_named(monkeypatch, module, lambda: cls(api_key=KEY), "google")


def test_importing_the_module_does_not_import_the_sdk() -> None:
    assert_import_leaves_out(
        "vectordb.embedding_functions.google", ["google.generativeai", "google.ai", "google.api_core"]
    )


def test_a_collection_embeds_documents_and_queries_with_the_right_task_type(server: GoogleServer) -> None:
    query_a_collection(gemini(server), "google-docs")
    sent = [task_name(r.body["requests"][0]["taskType"]) for r in server.embed_requests()]
    assert sent == ["RETRIEVAL_DOCUMENT", "RETRIEVAL_QUERY"]
