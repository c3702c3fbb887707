"""Embedding functions: the default model, Sentence Transformers, hosted providers, Instructor.

Importing this module imports no provider SDK and no torch: each function loads its
package when it is first built.
"""

from vectordb.embedding_functions.base import (
    Documents,
    EmbeddingFunction,
    Embeddings,
    build_from_config,
    describe,
    embed_texts,
    register_embedding_function,
    registered_names,
    set_progress_bar,
)

__all__ = [
    "Documents",
    "EmbeddingFunction",
    "Embeddings",
    "build_from_config",
    "describe",
    "embed_texts",
    "register_embedding_function",
    "registered_names",
    "set_progress_bar",
]
