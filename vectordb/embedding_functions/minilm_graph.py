"""The ONNX graph of all-MiniLM-L6-v2, built from its safetensors weights: BERT, mean pooling, L2 norm.

This is what the default embedding function runs with onnxruntime, in place of
sentence-transformers and torch. The graph computes what
``SentenceTransformer("all-MiniLM-L6-v2").encode(texts, normalize_embeddings=True)``
computes, from the same weights, in float32 (equal to float32 rounding: about 3e-7):

* BERT embeddings: word + token type 0 + position, then LayerNorm;
* 6 encoder layers, each self-attention (12 heads; padding masked out) and a GELU
  (the exact, erf-based one) feed-forward, each followed by a residual LayerNorm;
* mean pooling over the tokens the attention mask marks, then L2 normalisation
  (``x / max(|x|, 1e-12)``, as ``torch.nn.functional.normalize``).

Inputs are ``input_ids`` and ``attention_mask`` (int64, batch x tokens); the output is
``sentence_embedding`` (float32, batch x 384). Attention and the feed-forward use
onnxruntime's fused CPU kernels (the ``com.microsoft`` Attention, SkipLayerNormalization
and BiasGelu operators), the rest standard ONNX operators (opset 17).

The weights are read by :func:`read_safetensors`, a reader of the (trivial) safetensors
format: an 8-byte header length, a JSON header, then raw little-endian tensors. It
reads data only, never code. The graph is written with :mod:`onnx_proto`, without the
``onnx`` package, and is the same bytes for the same weights on every machine.
"""

from __future__ import annotations

import json
import struct
from typing import Dict, List

import numpy as np

from vectordb.embedding_functions import onnx_proto as px
from vectordb.errors import EmbeddingError

GRAPH_VERSION = 1
"""Bumped whenever the graph built here changes (it names the cached file)."""
GRAPH_SHA256 = "51b126a81eec4edc45e4f4a861424f14e1904b81c26bf6de358832666befebc7"
"""sha256 of :func:`build_model` of the genuine all-MiniLM-L6-v2 weights. The graph is the same
bytes on every machine, so a cached copy is checked against this constant (a test rebuilds
the graph and checks it: change this with :data:`GRAPH_VERSION` whenever the graph changes)."""
HIDDEN = 384
HEADS = 12
LAYERS = 6
LAYER_NORM_EPS = 1e-12
MAX_POSITIONS = 512
_SAFETENSORS_DTYPES: Dict[str, np.dtype] = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}


class WeightsError(EmbeddingError):
    """The weights file is not the safetensors file of a BERT model of this shape."""


def read_safetensors(data: bytes) -> Dict[str, np.ndarray]:
    """The tensors of a safetensors file's bytes, as read-only numpy arrays (views into ``data``).

    Raises:
        WeightsError: the header is malformed, or a tensor's offsets or dtype are not valid.
    """
    if len(data) < 8:
        raise WeightsError("file too short for a safetensors header")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > len(data) - 8:
        raise WeightsError("safetensors header length past the end of the file")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WeightsError(f"safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise WeightsError("safetensors header is not a JSON object")
    base = 8 + header_len
    tensors: Dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = _SAFETENSORS_DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            start, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"tensor {name!r}: unsupported or malformed header entry") from None
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= start <= end <= len(data) - base or end - start != count * dtype.itemsize:
            raise WeightsError(f"tensor {name!r}: data offsets do not match its shape")
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=base + start).reshape(shape)
    return tensors


class _Graph:
    """Collects nodes and initializers, naming each node after its output."""

    def __init__(self) -> None:
        self.nodes: List[bytes] = []
        self.initializers: List[bytes] = []

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(px.tensor(name, array))
        return name

    def op(self, op_type: str, inputs: List[str], output: str, domain: str = "", **attrs: px.AttributeValue) -> str:
        self.nodes.append(px.node(op_type, inputs, [output], output, domain, **attrs))
        return output


def _weight(tensors: Dict[str, np.ndarray], name: str, shape: tuple) -> np.ndarray:
    array = tensors.get(name)
    if array is None or tuple(array.shape) != shape or array.dtype != np.float32:
        raise WeightsError(f"tensor {name!r} is missing or not float32 {shape}")
    return array


def build_model(tensors: Dict[str, np.ndarray]) -> bytes:
    """The serialized ONNX model of all-MiniLM-L6-v2 (see the module docstring) from its weights.

    Raises:
        WeightsError: a tensor the graph needs is missing or has another shape.
    """
    w = lambda name, *shape: _weight(tensors, name, shape)  # noqa: E731
    vocab = tensors.get("embeddings.word_embeddings.weight")
    if vocab is None or vocab.ndim != 2:
        raise WeightsError("tensor 'embeddings.word_embeddings.weight' is missing")
    g = _Graph()
    g.const("word_embeddings", w("embeddings.word_embeddings.weight", vocab.shape[0], HIDDEN))
    g.const("type_embedding_0", w("embeddings.token_type_embeddings.weight", 2, HIDDEN)[0])
    g.const("position_embeddings", w("embeddings.position_embeddings.weight", MAX_POSITIONS, HIDDEN))
    g.const("zero", np.array([0], dtype=np.int64))
    g.const("one", np.array([1], dtype=np.int64))
    g.const("two", np.array([2], dtype=np.int64))
    # embeddings: (word + type 0) + position, as BERT adds them, then LayerNorm
    g.op("Gather", ["word_embeddings", "input_ids"], "word")
    g.op("Add", ["word", "type_embedding_0"], "word_type")
    g.op("Shape", ["input_ids"], "ids_shape")
    g.op("Slice", ["ids_shape", "one", "two"], "seq_len")
    g.op("Slice", ["position_embeddings", "zero", "seq_len", "zero"], "positions")
    g.op("Add", ["word_type", "positions"], "embedded")
    hidden = g.op(
        "LayerNormalization",
        ["embedded", g.const("emb_ln_w", w("embeddings.LayerNorm.weight", HIDDEN)),
         g.const("emb_ln_b", w("embeddings.LayerNorm.bias", HIDDEN))],
        "layer_input_0", axis=-1, epsilon=LAYER_NORM_EPS,
    )
    g.op("Cast", ["attention_mask"], "mask_index", to=px.INT32)
    for i in range(LAYERS):
        hidden = _layer(g, tensors, i, hidden)
    _pool_and_normalize(g, hidden)
    return px.model(
        name="all-MiniLM-L6-v2",
        nodes=g.nodes,
        initializers=g.initializers,
        inputs=[
            px.value_info("input_ids", px.INT64, ["batch", "tokens"]),
            px.value_info("attention_mask", px.INT64, ["batch", "tokens"]),
        ],
        outputs=[px.value_info("sentence_embedding", px.FLOAT, ["batch", HIDDEN])],
        opsets=[("", 17), ("com.microsoft", 1)],
        ir_version=8,
        producer=f"vectordb minilm_graph v{GRAPH_VERSION}",
    )


def _layer(g: _Graph, tensors: Dict[str, np.ndarray], i: int, hidden: str) -> str:
    """One encoder layer: fused self-attention, then the GELU feed-forward, each with a residual LayerNorm."""
    p = f"encoder.layer.{i}."
    w = lambda name, *shape: _weight(tensors, p + name, shape)  # noqa: E731
    qkv_w = np.concatenate(
        [w(f"attention.self.{x}.weight", HIDDEN, HIDDEN).T for x in ("query", "key", "value")], axis=1
    )
    qkv_b = np.concatenate([w(f"attention.self.{x}.bias", HIDDEN) for x in ("query", "key", "value")])
    context = g.op(
        "Attention",
        [hidden, g.const(f"l{i}_qkv_w", qkv_w), g.const(f"l{i}_qkv_b", qkv_b), "mask_index"],
        f"l{i}_context", domain="com.microsoft", num_heads=HEADS,
    )
    g.op("MatMul", [context, g.const(f"l{i}_ao_w", w("attention.output.dense.weight", HIDDEN, HIDDEN).T)],
         f"l{i}_attn_proj")
    attended = g.op(
        "SkipLayerNormalization",
        [f"l{i}_attn_proj", hidden, g.const(f"l{i}_ln1_w", w("attention.output.LayerNorm.weight", HIDDEN)),
         g.const(f"l{i}_ln1_b", w("attention.output.LayerNorm.bias", HIDDEN)),
         g.const(f"l{i}_ao_b", w("attention.output.dense.bias", HIDDEN))],
        f"l{i}_attended", domain="com.microsoft", epsilon=LAYER_NORM_EPS,
    )
    inner = 4 * HIDDEN
    g.op("MatMul", [attended, g.const(f"l{i}_in_w", w("intermediate.dense.weight", inner, HIDDEN).T)],
         f"l{i}_inner")
    g.op("BiasGelu", [f"l{i}_inner", g.const(f"l{i}_in_b", w("intermediate.dense.bias", inner))],
         f"l{i}_gelu", domain="com.microsoft")
    g.op("MatMul", [f"l{i}_gelu", g.const(f"l{i}_out_w", w("output.dense.weight", HIDDEN, inner).T)],
         f"l{i}_ffn")
    return g.op(
        "SkipLayerNormalization",
        [f"l{i}_ffn", attended, g.const(f"l{i}_ln2_w", w("output.LayerNorm.weight", HIDDEN)),
         g.const(f"l{i}_ln2_b", w("output.LayerNorm.bias", HIDDEN)),
         g.const(f"l{i}_out_b", w("output.dense.bias", HIDDEN))],
        f"layer_input_{i + 1}", domain="com.microsoft", epsilon=LAYER_NORM_EPS,
    )


def _pool_and_normalize(g: _Graph, hidden: str) -> None:
    """Mean over the unmasked tokens (count clamped at 1e-9), then divide by max(L2 norm, 1e-12)."""
    g.const("axis_tokens", np.array([1], dtype=np.int64))
    g.const("axis_last", np.array([-1], dtype=np.int64))
    g.const("min_count", np.array(1e-9, dtype=np.float32))
    g.const("min_norm", np.array(1e-12, dtype=np.float32))
    g.op("Cast", ["attention_mask"], "mask_float", to=px.FLOAT)
    g.op("Unsqueeze", ["mask_float", "axis_last"], "mask_column")
    g.op("Mul", [hidden, "mask_column"], "masked")
    g.op("ReduceSum", ["masked", "axis_tokens"], "summed", keepdims=0)
    g.op("ReduceSum", ["mask_column", "axis_tokens"], "counted", keepdims=0)
    g.op("Max", ["counted", "min_count"], "count")
    g.op("Div", ["summed", "count"], "mean")
    g.op("ReduceL2", ["mean"], "norm", axes=[-1], keepdims=1)
    g.op("Max", ["norm", "min_norm"], "clamped_norm")
    g.op("Div", ["mean", "clamped_norm"], "sentence_embedding")

