"""The names of the domain: what users pass in and what they get back."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
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
        head = f"checked {self.collections_checked} collections: "
        head += f"{len(self.problems)} problems" if self.problems else "no problems"
        lines = [f"- {p}" for p in self.problems] + [f"- note: {n}" for n in self.notes]
        return "\n".join([head] + lines)


@dataclass(frozen=True)
class CompactResult:
    """What a compaction did: bytes on disk before and after (0 for a store in memory)."""

    bytes_before: int
    bytes_after: int
    indexes_rebuilt: int
