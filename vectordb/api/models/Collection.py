"""Chroma's ``chromadb.api.models.Collection`` module: its ``Collection`` is :class:`vectordb.Collection`."""

from vectordb.collection import Collection

__all__ = ["Collection"]
