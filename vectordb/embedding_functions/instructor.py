"""INSTRUCTOR embeddings (hkunlp/instructor-*), run by sentence-transformers itself.

The ``InstructorEmbedding`` package no longer loads with current sentence-transformers,
so this module reproduces what it computes: the instruction is prepended to each text
(``instruction + text``, no separator, the text stripped, as INSTRUCTOR does) and the
mean is taken over the text's tokens only. In sentence-transformers terms the instruction
is the ``prompt`` of ``encode`` and the model's Pooling module has ``include_prompt=False``,
which masks the first special token and the instruction's tokens, exactly the positions
INSTRUCTOR's context mask hides. Normalisation follows the checkpoint (its Normalize module).

A stored config may carry only ``model_name``, ``device``, ``instruction`` and
``query_instruction`` (``InstructorEmbeddingFunction.CONFIG_OPTIONS``); the model is
always loaded with sentence-transformers' defaults (``trust_remote_code=False``), and a
function rebuilt from a config refuses a local model folder naming custom module
classes, as :mod:`~vectordb.embedding_functions.sentence_transformer` does. Any other
option in a config (``trust_remote_code`` included) is refused, not ignored.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from vectordb.embedding_functions.base import Documents, register_embedding_function
from vectordb.embedding_functions.options import Spec, allowed_config, is_str, optional
from vectordb.embedding_functions.sentence_transformer import (
    encode,
    first_line,
    load_model,
    refuse_custom_modules,
    require_sentence_transformers,
)
from vectordb.errors import EmbeddingError, InvalidArgumentError

DOCUMENT_INSTRUCTION = "Represent the document for retrieval:"
"""Used for documents when no instruction is given (INSTRUCTOR's retrieval convention)."""
QUERY_INSTRUCTION = "Represent the question for retrieving supporting documents:"
"""Used for query texts when neither instruction is given."""


def _exclude_instruction_from_pooling(model: Any) -> None:
    """Make the model pool over the text's tokens only, as INSTRUCTOR does."""
    poolings = [module for module in model if hasattr(module, "include_prompt")]
    if not poolings:
        raise EmbeddingError("an INSTRUCTOR model needs a Pooling module; this model has none")
    for module in poolings:
        module.include_prompt = False


@register_embedding_function
class InstructorEmbeddingFunction:
    """Embeds texts with an INSTRUCTOR model, each text under an instruction.

    Args:
        model_name: hub name (e.g. ``hkunlp/instructor-large``) or local model directory.
        device: torch device, e.g. ``"cpu"`` or ``"cuda"``.
        instruction: prepended to every document, e.g. ``"Represent the science title:"``.
            None means :data:`DOCUMENT_INSTRUCTION`; ``""`` means no instruction (the
            mean over all tokens, which is what Chroma does for None).
        query_instruction: used for query texts instead. None means ``instruction`` when
            that was given, else :data:`QUERY_INSTRUCTION`.

    The model loads on the first call and is shared by every instance in the process.
    """

    CONFIG_OPTIONS: Spec = {
        "model_name": is_str,
        "device": is_str,
        "instruction": optional(is_str),
        "query_instruction": optional(is_str),
    }
    """What a stored config may hold; :meth:`build_from_config` refuses anything else."""

    def __init__(
        self,
        model_name: str = "hkunlp/instructor-base",
        device: str = "cpu",
        instruction: Optional[str] = None,
        query_instruction: Optional[str] = None,
    ) -> None:
        if not isinstance(model_name, str) or not model_name:
            raise InvalidArgumentError(f"model_name must be a non-empty string, got {model_name!r}")
        if not isinstance(device, str) or not device:
            raise InvalidArgumentError(f"device must be a non-empty string, got {device!r}")
        for label, value in (("instruction", instruction), ("query_instruction", query_instruction)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"{label} must be a string or None, got {value!r}")
        require_sentence_transformers("instructor", "InstructorEmbeddingFunction")
        self.model_name = model_name
        self.device = device
        self.instruction = DOCUMENT_INSTRUCTION if instruction is None else instruction
        if query_instruction is None:
            query_instruction = QUERY_INSTRUCTION if instruction is None else instruction
        self.query_instruction = query_instruction
        self._from_config = False
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            if self._from_config:
                refuse_custom_modules(self.name(), self.model_name)
            try:
                self._model = load_model(
                    self.model_name,
                    self.device,
                    tag="instructor",
                    setup=_exclude_instruction_from_pooling,
                    extra="instructor",
                )
            except OSError as exc:
                raise EmbeddingError(
                    f"could not load the INSTRUCTOR model {self.model_name!r}: {first_line(exc)}. A model name "
                    "is downloaded from the Hugging Face hub once and then cached; offline, connect "
                    "once or pass the path of a local model directory"
                ) from exc
        return self._model

    def _embed(self, texts: Documents, instruction: str) -> np.ndarray:
        return encode(self._load(), [text.strip() for text in texts], prompt=instruction or None)

    def __call__(self, input: Documents) -> np.ndarray:
        """Embed documents under ``instruction``."""
        return self._embed(input, self.instruction)

    def embed_query(self, input: Documents) -> np.ndarray:
        """Embed query texts under ``query_instruction``."""
        return self._embed(input, self.query_instruction)

    @staticmethod
    def name() -> str:
        return "instructor"

    @staticmethod
    def default_space() -> str:
        """The distance metric a new collection of this function gets, as in Chroma 1.x: cosine
        (unless the collection's metadata or configuration names another)."""
        return "cosine"

    def get_config(self) -> Dict[str, Any]:
        return {
            "model_name": self.model_name,
            "device": self.device,
            "instruction": self.instruction,
            "query_instruction": self.query_instruction,
        }

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "InstructorEmbeddingFunction":
        """Rebuild from a stored or received config; raises :class:`RefusedConfigError` for other options."""
        config = allowed_config(cls, config)
        fn = cls(
            model_name=config.get("model_name", "hkunlp/instructor-base"),
            device=config.get("device", "cpu"),
            instruction=config.get("instruction"),
            query_instruction=config.get("query_instruction"),
        )
        fn._from_config = True
        return fn
