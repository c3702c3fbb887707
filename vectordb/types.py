"""The names of the domain: what users pass in and what they get back."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

if sys.version_info >= (3, 8):
    from typing import Literal, TypedDict
else:  # pragma: no cover
    from typing_extensions import Literal, TypedDict

ID = str
IDs = List[ID]
MetadataValue = Union[str, int, float, bool]
Metadata = Mapping[str, MetadataValue]
Document = str
Embedding = Sequence[float]
Where = Dict[str, Any]
WhereDocument = Dict[str, Any]
IncludeField = Literal["embeddings", "metadatas", "documents", "distances"]
Include = List[IncludeField]



class GetResult(TypedDict):
    """What ``Collection.get`` and ``peek`` return; a field not included is None."""

    ids: List[ID]
    embeddings: Optional[List[List[float]]]
    metadatas: Optional[List[Optional[Dict[str, MetadataValue]]]]
    documents: Optional[List[Optional[Document]]]
    include: List[str]


class QueryResult(TypedDict):
    """What ``Collection.query`` returns: one inner list per query, nearest first."""

    ids: List[List[ID]]
    distances: Optional[List[List[float]]]
    embeddings: Optional[List[List[List[float]]]]
    metadatas: Optional[List[List[Optional[Dict[str, MetadataValue]]]]]
    documents: Optional[List[List[Optional[Document]]]]
    include: List[str]
