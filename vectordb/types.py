"""The names of the domain: what users pass in and what they get back.

The names are Chroma's (``IDs``, ``Documents``, ``Embeddings``, ``Metadata``, ``Where``,
``GetResult``, ...), so that code typed against ``chromadb`` keeps its annotations.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, TypeVar, Union

import numpy as np

if sys.version_info >= (3, 8):
    from typing import Literal, TypedDict
else:  # pragma: no cover
    from typing_extensions import Literal, TypedDict

ID = str
IDs = List[ID]
ScalarValue = Union[str, int, float, bool]
MetadataValue = Union[ScalarValue, List[str], List[int], List[float], List[bool]]
"""A metadata value: a scalar, or a non-empty list of scalars of one type."""
Metadata = Mapping[str, MetadataValue]
Metadatas = List[Metadata]
Document = str
Documents = List[Document]
"""What an embedding function embeds: a list of texts."""
Embedding = Union[Sequence[float], np.ndarray]
Embeddings = List[Embedding]
"""What an embedding function returns: one vector (a list of floats or a 1-D array) per text."""
Where = Dict[str, Any]
WhereDocument = Dict[str, Any]
IncludeField = Literal["embeddings", "metadatas", "documents", "distances", "scores"]
Include = List[IncludeField]
CollectionMetadata = Dict[str, Any]
"""A collection's metadata (``hnsw:*`` and ``text:*`` settings included)."""
UpdateMetadata = Mapping[str, Optional[MetadataValue]]
"""Metadata for ``update``/``upsert``: a key set to None is removed."""
Space = Literal["cosine", "l2", "ip"]
"""A distance metric (Chroma's name for it): what ``EmbeddingFunction.default_space()`` returns."""
URI = str
URIs = List[URI]
"""Chroma's record URIs: vectordb stores none, so results carry ``uris: None``."""
Image = np.ndarray
Images = List[Image]
"""Chroma's image inputs: vectordb embeds texts only; the names exist for annotations."""
Embeddable = Union[Documents, Images]
T = TypeVar("T")
OneOrMany = Union[T, List[T]]
"""One item or a list of them: what every list argument of the API also takes."""


class GetResult(TypedDict):
    """What ``Collection.get`` and ``peek`` return; a field not included is None.

    ``embeddings`` is one float64 array of shape (n, dimension) (shape (0,) when nothing
    matched), as Chroma 1.x returns it; ``included`` lists the fields asked for. ``uris``
    and ``data`` are always None (Chroma's fields for records kept by URI, which vectordb has not).
    """

    ids: List[ID]
    embeddings: Optional[np.ndarray]
    metadatas: Optional[List[Optional[Dict[str, MetadataValue]]]]
    documents: Optional[List[Optional[Document]]]
    uris: Optional[URIs]
    data: Optional[List[Any]]
    included: List[str]


class QueryResult(TypedDict):
    """What ``Collection.query`` returns: one inner list (or array) per query, nearest first.

    ``embeddings`` holds one float64 array of shape (k, dimension) per query. ``distances``
    come with vector results (``mode="vector"``, which have no ``scores`` key, as in Chroma);
    ``scores`` (higher is better: BM25 for ``mode="text"``, reciprocal rank fusion for
    ``mode="hybrid"``) with the others, whose ``distances`` are None. ``uris`` and
    ``data`` are always None, as in :class:`GetResult`.
    """

    ids: List[List[ID]]
    distances: Optional[List[List[float]]]
    scores: Optional[List[List[float]]]
    embeddings: Optional[List[np.ndarray]]
    metadatas: Optional[List[List[Optional[Dict[str, MetadataValue]]]]]
    documents: Optional[List[List[Optional[Document]]]]
    uris: Optional[List[URIs]]
    data: Optional[List[Any]]
    included: List[str]


class CollectionModel(Dict[str, Any]):
    """What ``Collection.get_model()`` returns: a dict whose keys also read as attributes
    (``model["version"]`` and ``model.configuration_json``), as Chroma's collection model."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"the collection model has no field {name!r}") from None


class DeleteResult(TypedDict):
    """What ``Collection.delete`` returns: how many records it removed."""

    deleted: int


@dataclass(frozen=True)
class Problem:
    """One disagreement: the collection it concerns (None: the store), what is wrong, whether fixed."""

    collection: Optional[str]
    what: str
    repaired: bool = False

    def __str__(self) -> str:
        where = f"collection {self.collection!r}" if self.collection else "store"
        return f"{where}: {self.what}" + (" (repaired)" if self.repaired else "")


@dataclass
class CheckReport:
    """The outcome of :meth:`Client.check`: problems, and notes (normal states that fix themselves)."""

    collections_checked: int = 0
    problems: List[Problem] = field(default_factory=list)
    notes: List[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong, or everything wrong was repaired."""
        return all(p.repaired for p in self.problems)

    @property
    def repairs(self) -> List[Problem]:
        """The problems that were fixed."""
        return [p for p in self.problems if p.repaired]

    def __str__(self) -> str:
        checked = self.collections_checked
        head = f"checked {checked} collection{'' if checked == 1 else 's'}: "
        problems = len(self.problems)
        head += f"{problems} problem{'' if problems == 1 else 's'}" if problems else "no problems"
        lines = [f"- {p}" for p in self.problems] + [f"- note: {n}" for n in self.notes]
        return "\n".join([head] + lines)


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did: bytes on disk before and after (0 for a store in memory)."""

    bytes_before: int
    bytes_after: int
    indexes_rebuilt: int
