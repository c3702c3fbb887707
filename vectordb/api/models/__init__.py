"""Chroma's ``chromadb.api.models`` package: ``from vectordb.api.models.Collection import Collection``.

Like Chroma's, the package itself exports nothing (its ``Collection`` is the module).
"""
