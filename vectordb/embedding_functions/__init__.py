"""Embedding functions: the default model, Sentence Transformers, hosted providers, Instructor.

Importing this module imports no provider SDK, no torch, no onnxruntime and no tokenizers:
each function loads its packages when it is first used (the default function, which
runs all-MiniLM-L6-v2 on onnxruntime, on its first call).
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
from vectordb.embedding_functions.cohere import CohereEmbeddingFunction
from vectordb.embedding_functions.default import DefaultEmbeddingFunction
from vectordb.embedding_functions.google import GoogleGenerativeAiEmbeddingFunction, GooglePalmEmbeddingFunction
from vectordb.embedding_functions.instructor import InstructorEmbeddingFunction
from vectordb.embedding_functions.openai import OpenAIEmbeddingFunction
from vectordb.embedding_functions.sentence_transformer import SentenceTransformerEmbeddingFunction

__all__ = [
    "CohereEmbeddingFunction",
    "DefaultEmbeddingFunction",
    "InstructorEmbeddingFunction",
    "SentenceTransformerEmbeddingFunction",
    "GoogleGenerativeAiEmbeddingFunction",
    "GooglePalmEmbeddingFunction",
    "OpenAIEmbeddingFunction",
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
