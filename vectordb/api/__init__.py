"""Chroma's ``chromadb.api`` import path: ``from vectordb.api import ClientAPI``.

Code typed against Chroma names its client ``chromadb.api.ClientAPI`` and imports the
domain types from ``chromadb.api.types``; with the import changed these are vectordb's
own classes (:class:`vectordb.Client`, :class:`vectordb.Collection`), not copies.
``ClientAPI``, ``BaseAPI`` and ``ServerAPI`` all name :class:`vectordb.Client`: vectordb
has one client class over every backend. ``AdminAPI`` (tenants and databases) has no
counterpart: vectordb has one tenant and one database.
"""

from vectordb.api import types
from vectordb.api.types import *  # noqa: F401,F403  (chromadb.api re-exports its types too)
from vectordb.api.types import __all__ as _types_all
from vectordb.client import Client
from vectordb.collection import Collection

ClientAPI = Client
"""What ``chromadb.api.ClientAPI`` names: the client (here :class:`vectordb.Client`)."""
BaseAPI = Client
ServerAPI = Client

__all__ = ["BaseAPI", "ClientAPI", "Collection", "ServerAPI", "types", *_types_all]
