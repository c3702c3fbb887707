"""Chroma's ``chromadb.utils`` names, so that ``from vectordb.utils import embedding_functions`` works.

:mod:`vectordb.utils.embedding_functions` is :mod:`vectordb.embedding_functions` under
Chroma's path; nothing else lives here.
"""

from vectordb.utils import embedding_functions

__all__ = ["embedding_functions"]
