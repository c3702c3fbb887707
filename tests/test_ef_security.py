"""A stored or received embedding-function config never makes the process load or run code.

Done for real: a tiny local model whose config needs remote code (``auto_map`` naming a
``modeling_marker.py`` that writes a marker file when imported), a catalog tampered with
DuckDB itself, a new process reopening it, and ``vectordb serve`` sending the tampered
config to an ``HttpClient``. The marker file says whether the model's code ever ran.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Dict

import duckdb
import pytest
from conftest import in_new_process

import vectordb
from vectordb.embedding_functions import build_from_config, describe
from vectordb.embedding_functions.base import UnavailableEmbeddingFunction
from vectordb.embedding_functions.identity import rebuild_function, same_function
from vectordb.errors import EmbeddingFunctionConflictError, RefusedConfigError

st = pytest.importorskip("sentence_transformers")

from server_helpers import running_server  # noqa: E402
from tiny_models import build_custom_module_model, build_remote_code_model  # noqa: E402

from vectordb.embedding_functions import SentenceTransformerEmbeddingFunction  # noqa: E402

DIM = 32  # the tiny model's dimension


@pytest.fixture(scope="module")
def remote_model(tmp_path_factory) -> Dict[str, Path]:
    """The remote-code model folder and the marker its code writes when imported."""
    base = tmp_path_factory.mktemp("remote-code")
    marker = base / "marker"
    return {"model": build_remote_code_model(base / "model", marker), "marker": marker}


@pytest.fixture
def model(remote_model, tmp_path, monkeypatch) -> Dict[str, Path]:
    """``remote_model`` with no marker yet, and child processes keeping imported model code under tmp_path."""
    remote_model["marker"].unlink(missing_ok=True)
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    monkeypatch.setenv("VECTORDB_PROGRESS", "0")
    return remote_model


def stored_config(path: Path, name: str) -> Any:
    """The ``ef_config`` of collection ``name``, read from the store's DuckDB file itself."""
    con = duckdb.connect(str(path / "vectordb.duckdb"), read_only=True)
    try:
        (text,) = con.execute("SELECT ef_config FROM collections WHERE name = ?", [name]).fetchone()
    finally:
        con.close()
    return json.loads(text)


def tamper(path: Path, name: str, config: Dict[str, Any]) -> None:
    """Write ``config`` into the catalog of a closed store, as an attacker handing over a folder would."""
    con = duckdb.connect(str(path / "vectordb.duckdb"))
    try:
        con.execute("UPDATE collections SET ef_config = ? WHERE name = ?", [json.dumps(config), name])
    finally:
        con.close()


def make_store(path: Path, model_dir: Path, config_kwargs: Dict[str, Any]) -> None:
    """A store with collection "docs" (tiny-model function, two records), its config then tampered."""
    with vectordb.PersistentClient(str(path)) as client:
        col = client.create_collection("docs", embedding_function=SentenceTransformerEmbeddingFunction(str(model_dir)))
        col.add(ids=["a", "b"], embeddings=[[1.0] * DIM, [0.0] * (DIM - 1) + [1.0]], documents=["a cat", "a dog"])
    config = stored_config(path, "docs")
    assert "trust_remote_code" not in json.dumps(config)
    tamper(path, "docs", {**config, "kwargs": config_kwargs})


REOPEN_AND_USE = """
    import json, os, sys
    import vectordb
    from vectordb.errors import RefusedConfigError
    from vectordb.embedding_functions import SentenceTransformerEmbeddingFunction

    out = {{}}
    client = {client}
    col = client.get_collection("docs")
    out["function"] = type(col.embedding_function).__name__
    try:
        col.query(query_texts=["a cat"], n_results=1)
        out["error"] = None
    except RefusedConfigError as exc:
        out["error"], out["options"] = str(exc), exc.options
    out["marker_after_refusal"] = os.path.exists({marker!r})
    out["imported"] = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)

    # (e) the caller opts in by passing the function itself: no conflict, and its code runs
    ef = SentenceTransformerEmbeddingFunction(model_name={model!r}, trust_remote_code=True)
    col = client.get_collection("docs", embedding_function=ef)
    out["ids"] = col.query(query_texts=["a cat"], n_results=1)["ids"]
    out["marker_after_opt_in"] = os.path.exists({marker!r})
    out["model_class"] = type(ef._load()[0].auto_model).__name__
    client.close()
    print(json.dumps(out))
"""

TAMPERINGS = {
    "trust_remote_code": {"trust_remote_code": True},
    "model_kwargs.trust_remote_code": {"model_kwargs": {"trust_remote_code": True, "code_revision": "main"}},
}


def assert_refused_then_opted_in(out: Dict[str, Any], option: str) -> None:
    assert out["marker_after_refusal"] is False, out
    assert out["function"] == "UnavailableEmbeddingFunction"
    assert out["error"] is not None, "the tampered config was honoured"
    assert f"kwargs.{option}=true" in out["error"]
    assert "get_collection('docs', embedding_function=SentenceTransformerEmbeddingFunction(...))" in out["error"]
    assert f"kwargs.{option}=true" in out["options"]
    assert out["marker_after_refusal"] is False
    assert out["imported"] == []  # not even torch: nothing of the model was touched
    assert out["ids"] == [["a"]] or out["ids"] == [["b"]]
    assert out["marker_after_opt_in"] is True and out["model_class"] == "MarkerModel"


@pytest.mark.parametrize("option", sorted(TAMPERINGS))
def test_tampered_catalog_is_refused_in_a_new_process(tmp_path, model, option):
    path = tmp_path / "db"
    make_store(path, model["model"], TAMPERINGS[option])
    code = REOPEN_AND_USE.format(
        client=f"vectordb.PersistentClient({str(path)!r})", marker=str(model["marker"]), model=str(model["model"])
    )
    assert_refused_then_opted_in(in_new_process(code), option)


def test_tampered_config_from_a_server_is_refused_by_http_client(tmp_path, model):
    path = tmp_path / "db"
    make_store(path, model["model"], TAMPERINGS["trust_remote_code"])
    with running_server(str(path)) as server:
        code = REOPEN_AND_USE.format(
            client=f"vectordb.HttpClient({server.url!r})", marker=str(model["marker"]), model=str(model["model"])
        )
        out = in_new_process(code)
        log = server.log()
    assert_refused_then_opted_in(out, "trust_remote_code")
    assert "modeling_marker" not in log


def test_caller_passed_trust_remote_code_is_used_but_never_stored(tmp_path, model, caplog):
    path = tmp_path / "db"
    code = f"""
        import json, os
        import vectordb
        from vectordb.embedding_functions import SentenceTransformerEmbeddingFunction
        ef = SentenceTransformerEmbeddingFunction(model_name={str(model["model"])!r}, trust_remote_code=True)
        with vectordb.PersistentClient({str(path)!r}) as client:
            col = client.create_collection("docs", embedding_function=ef)
            col.add(ids=["a", "b"], documents=["a cat", "stock market fell"])
            ids = col.query(query_texts=["a cat"], n_results=1)["ids"]
        print(json.dumps({{"ids": ids, "marker": os.path.exists({str(model["marker"])!r}),
                          "model_class": type(ef._load()[0].auto_model).__name__}}))
    """
    out = in_new_process(code)
    assert out == {"ids": [["a"]], "marker": True, "model_class": "MarkerModel"}
    config = stored_config(path, "docs")
    assert config == {"model_name": str(model["model"]), "device": "cpu", "normalize_embeddings": False, "kwargs": {}}
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        SentenceTransformerEmbeddingFunction(str(model["model"]), trust_remote_code=True)
    assert "kwargs.trust_remote_code=true will not be stored" in caplog.text


def test_passing_the_function_is_accepted_in_process(tmp_path, model):
    """(e) without loading anything: an old store holding the option and a new one without it both accept it."""
    path = tmp_path / "db"
    make_store(path, model["model"], {"trust_remote_code": True, "truncate_dim": 16})
    opted_in = SentenceTransformerEmbeddingFunction(str(model["model"]), trust_remote_code=True, truncate_dim=16)
    with vectordb.PersistentClient(str(path)) as client:
        assert isinstance(client.get_collection("docs").embedding_function, UnavailableEmbeddingFunction)
        assert client.get_collection("docs", embedding_function=opted_in).embedding_function is opted_in
        client.create_collection("fresh", embedding_function=opted_in)
        assert client.get_collection("fresh", embedding_function=opted_in).embedding_function is opted_in
        assert isinstance(client.get_collection("fresh").embedding_function, SentenceTransformerEmbeddingFunction)
        # a different model is still a different function
        other = SentenceTransformerEmbeddingFunction("elsewhere", trust_remote_code=True, truncate_dim=16)
        with pytest.raises(EmbeddingFunctionConflictError):
            client.get_collection("docs", embedding_function=other)
        without_truncation = SentenceTransformerEmbeddingFunction(str(model["model"]), trust_remote_code=True)
        with pytest.raises(EmbeddingFunctionConflictError):
            client.get_collection("docs", embedding_function=without_truncation)
    assert not model["marker"].exists()


def test_local_folder_naming_custom_module_classes_is_refused_from_a_config(tmp_path):
    marker = tmp_path / "marker"
    model_dir = build_custom_module_model(tmp_path / "custom", marker)
    fn = build_from_config("sentence_transformer", {"model_name": str(model_dir), "device": "cpu", "kwargs": {}})
    with pytest.raises(RefusedConfigError, match=r"modeling_marker\.MarkerModel") as info:
        fn(["a cat"])
    assert "pass it" in str(info.value) and info.value.options == [f"model_name={model_dir}"]
    assert not marker.exists()


# -- every provider: what build_from_config refuses ----------------------------------------

ST_BASE = {"model_name": "some/model", "device": "cpu", "normalize_embeddings": False}
ENDPOINT = {"model_name": "m", "api_base": None, "api_key_env_var": None, "timeout": 60.0}
BASES = {
    "default": {},
    "sentence_transformer": {**ST_BASE, "kwargs": {}},
    "instructor": {"model_name": "hkunlp/instructor-base", "device": "cpu",
                   "instruction": "x", "query_instruction": "y"},
    "openai": {**ENDPOINT, "api_key_env_var": "OPENAI_API_KEY", "organization_id": None, "api_type": None,
               "api_version": None, "deployment_id": None, "dimensions": None,
               "retry_policy": {"max_attempts": 2, "initial_delay": 0.1, "max_delay": 1.0, "max_elapsed": 5.0}},
    "cohere": ENDPOINT,
    "google_generative_ai": {**ENDPOINT, "model_name": "models/m", "task_type": "RETRIEVAL_DOCUMENT"},
    "google_palm": {**ENDPOINT, "model_name": "models/m"},
}


def st_kwargs(**kwargs: Any) -> Dict[str, Any]:
    return {**ST_BASE, "kwargs": kwargs}


REFUSED = [
    # (function name, config, the refused option as the error names it)
    ("default", {"trust_remote_code": True}, "trust_remote_code=true"),
    ("sentence_transformer", st_kwargs(trust_remote_code=True), "kwargs.trust_remote_code=true"),
    *[
        ("sentence_transformer", st_kwargs(**{inner: {"trust_remote_code": True}}),
         f"kwargs.{inner}.trust_remote_code=true")
        for inner in ("model_kwargs", "tokenizer_kwargs", "processor_kwargs")
    ],
    ("sentence_transformer", st_kwargs(config_kwargs={"trust_remote_code": True}), "kwargs.config_kwargs="),
    ("sentence_transformer", st_kwargs(model_kwargs={"code_revision": "abc"}), "kwargs.model_kwargs.code_revision="),
    ("sentence_transformer", st_kwargs(model_kwargs={"weights_only": False}), "kwargs.model_kwargs.weights_only=false"),
    ("sentence_transformer", st_kwargs(model_kwargs={"attn_implementation": "kernels-community/flash-attn"}),
     "kwargs.model_kwargs.attn_implementation="),
    ("sentence_transformer", st_kwargs(model_kwargs={"quantization_config": {"load_in_8bit": True}}),
     "kwargs.model_kwargs.quantization_config="),
    ("sentence_transformer", st_kwargs(model_kwargs={"gguf_file": "x.gguf"}), "kwargs.model_kwargs.gguf_file="),
    ("sentence_transformer", st_kwargs(model_kwargs="not a dict"), "kwargs.model_kwargs="),
    ("sentence_transformer", st_kwargs(backend="onnx"), 'kwargs.backend="onnx"'),
    ("sentence_transformer", st_kwargs(backend="openvino", model_kwargs={"file_name": "evil.xml"}),
     'kwargs.backend="openvino"'),
    ("sentence_transformer", st_kwargs(cache_folder="/tmp/elsewhere"), "kwargs.cache_folder="),
    ("sentence_transformer", st_kwargs(token="hf_secret"), "kwargs.token="),
    ("sentence_transformer", {**ST_BASE, "trust_remote_code": True, "kwargs": {}}, "trust_remote_code=true"),
    ("sentence_transformer", {**ST_BASE, "kwargs": ["trust_remote_code"]}, "kwargs="),
    ("instructor", {**BASES["instructor"], "trust_remote_code": True}, "trust_remote_code=true"),
    ("instructor", {**BASES["instructor"], "model_kwargs": {"trust_remote_code": True}}, "model_kwargs="),
    ("openai", {**BASES["openai"], "default_headers": {"X": "y"}}, "default_headers="),
    ("openai", {**BASES["openai"], "http_client": "httpx.Client"}, "http_client="),
    ("openai", {**BASES["openai"], "api_key": "sk-stolen"}, "api_key="),
    ("openai", {**BASES["openai"], "api_type": "custom"}, 'api_type="custom"'),
    ("openai", {**BASES["openai"], "retry_policy": {"max_attempts": 2, "sleep": "os.system"}}, "retry_policy.sleep="),
    ("cohere", {**ENDPOINT, "http_client": "httpx.Client"}, "http_client="),
    ("cohere", {**ENDPOINT, "client_name": "x"}, "client_name="),
    ("google_generative_ai", {**BASES["google_generative_ai"], "transport": "grpc"}, 'transport="grpc"'),
    ("google_generative_ai", {**BASES["google_generative_ai"], "client_options": {"x": 1}}, "client_options="),
    ("google_palm", {**BASES["google_palm"], "credentials": "file.json"}, "credentials="),
]


@pytest.mark.parametrize("name, config, option", REFUSED, ids=[f"{n}:{o}" for n, _, o in REFUSED])
def test_build_from_config_refuses(name, config, option):
    with pytest.raises(RefusedConfigError) as info:
        build_from_config(name, config)
    assert option in str(info.value) and "get_collection(" in str(info.value)
    assert any(o.startswith(option) for o in info.value.options)
    assert info.value.function == name
    fn = rebuild_function("docs", name, config)
    assert isinstance(fn, UnavailableEmbeddingFunction) and fn.get_config() == config
    with pytest.raises(RefusedConfigError, match=r"collection 'docs': .*get_collection\('docs', embedding_function="):
        fn(["text"])


@pytest.mark.parametrize("name", sorted(BASES))
def test_build_from_config_accepts_the_stored_options(name, monkeypatch):
    for var in ("OPENAI_API_KEY", "CO_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.setenv(var, "test-key")
    fn = build_from_config(name, json.loads(json.dumps(BASES[name])))
    assert describe(fn)[0] == name
    assert build_from_config(name, describe(fn)[1]).get_config() == fn.get_config()


def test_harmless_defaults_are_accepted_and_dropped():
    config = st_kwargs(trust_remote_code=False, backend="torch",
                       model_kwargs={"trust_remote_code": False, "dtype": "float16"},
                       prompts={"query": "q: "}, truncate_dim=8, revision="abc", local_files_only=True)
    fn = build_from_config("sentence_transformer", config)
    assert fn.get_config()["kwargs"] == {"model_kwargs": {"dtype": "float16"}, "prompts": {"query": "q: "},
                                         "truncate_dim": 8, "revision": "abc", "local_files_only": True}


def test_get_config_keeps_only_the_allowed_options():
    fn = SentenceTransformerEmbeddingFunction(
        "some/model", trust_remote_code=True, backend="onnx", cache_folder="/x", token="hf_secret",
        model_kwargs={"trust_remote_code": True, "weights_only": False, "dtype": "bfloat16"}, truncate_dim=8,
    )
    assert fn.kwargs["trust_remote_code"] is True  # honoured when the caller passes it
    name, config = describe(fn)
    assert config["kwargs"] == {"model_kwargs": {"dtype": "bfloat16"}, "truncate_dim": 8}
    assert "hf_secret" not in json.dumps(config)
    assert same_function(name, config, name, {**config, "kwargs": {**config["kwargs"], "trust_remote_code": True}})
    assert not same_function(name, config, name, {**config, "kwargs": {"truncate_dim": 8}})
