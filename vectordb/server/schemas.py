"""The request bodies of the REST API, as pydantic models (they also document it at ``/docs``).

Models are strict: a number is not a string, a bool is not a number, and unknown
fields are refused, so a wrong type is a 400 that names the field. Values whose
rules are the core's (metadata values, filters, include names) pass through as
JSON and are checked by :mod:`vectordb.validation` and :mod:`vectordb.filters`.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Metadata = Dict[str, Any]
OneOrManyIds = Union[str, List[str]]
OneOrManyEmbeddings = Union[List[List[float]], List[float]]
OneOrManyMetadatas = Union[Metadata, List[Optional[Metadata]]]
OneOrManyDocuments = Union[str, List[Optional[str]]]

GET_INCLUDE = ["metadatas", "documents"]
QUERY_INCLUDE = ["metadatas", "documents", "distances"]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class EmbeddingFunctionSpec(_Strict):
    """An embedding function as persisted: its registered name and JSON config."""

    name: str
    config: Optional[Dict[str, Any]] = None


class CreateCollection(_Strict):
    """``create_collection`` / ``get_or_create_collection``."""

    name: str
    metadata: Optional[Metadata] = None
    embedding_function: Optional[EmbeddingFunctionSpec] = Field(
        None, description="The client's function (name and config), persisted with the collection; null for none."
    )
    get_or_create: bool = False


class ModifyCollection(_Strict):
    """``Collection.modify``: rename and/or replace the metadata."""

    new_name: Optional[str] = None
    new_metadata: Optional[Metadata] = None


class CollectionModel(BaseModel):
    """A collection as the server describes it."""

    id: str
    name: str
    metadata: Optional[Metadata]
    dimension: Optional[int]
    embedding_function: Optional[EmbeddingFunctionSpec]


class WriteRecords(_Strict):
    """``add``, ``upsert`` and ``update``: the server stores vectors, it never embeds."""

    ids: OneOrManyIds
    embeddings: Optional[OneOrManyEmbeddings] = None
    metadatas: Optional[OneOrManyMetadatas] = None
    documents: Optional[OneOrManyDocuments] = None
    document_embeddings: Optional[Dict[str, List[float]]] = Field(
        None, description="Vectors the client made for documents, by text (asked for by an embeddings_needed answer)."
    )


class CheckStore(_Strict):
    """``Client.check``."""

    repair: bool = False


class DeleteRecords(_Strict):
    """``delete``: every given condition must hold."""

    ids: Optional[OneOrManyIds] = None
    where: Optional[Dict[str, Any]] = None
    where_document: Optional[Dict[str, Any]] = None
    limit: Optional[int] = None


class GetRecords(_Strict):
    """``get``."""

    ids: Optional[OneOrManyIds] = None
    where: Optional[Dict[str, Any]] = None
    where_document: Optional[Dict[str, Any]] = None
    limit: Optional[int] = None
    offset: Optional[int] = None
    include: Union[str, List[str]] = Field(default_factory=lambda: list(GET_INCLUDE))


class QueryRecords(_Strict):
    """``query``: give ``query_embeddings`` (the server does not embed ``query_texts``)."""

    query_embeddings: Optional[OneOrManyEmbeddings] = None
    query_texts: Optional[Union[str, List[str]]] = None
    n_results: int = 10
    where: Optional[Dict[str, Any]] = None
    where_document: Optional[Dict[str, Any]] = None
    include: Union[str, List[str]] = Field(default_factory=lambda: list(QUERY_INCLUDE))
    ids: Optional[OneOrManyIds] = Field(None, description="Search only the records with these ids.")
    mode: str = Field("vector", description='"vector", "text" (BM25 over query_texts) or "hybrid" '
                      "(query_embeddings and query_texts, fused by reciprocal rank fusion).")
