"""What the framework integrations share: opening their collection and writing records whole.

Frameworks treat a write of an existing id as a replacement of the record (text,
embedding and metadata), while vectordb's ``upsert`` merges metadata key by key. The
helpers here turn a framework's write into one ``upsert`` whose metadata also removes
the keys the old record had and the new one lacks, so the record ends up exactly as
given, in one transaction, on every backend. No framework is imported here.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from vectordb.client import Client, PersistentClient
from vectordb.collection import Collection
from vectordb.errors import InvalidArgumentError

SPACES = ("l2", "cosine", "ip")


def open_collection(
    collection: Optional[Collection],
    client: Optional[Client],
    collection_name: Optional[str],
    persist_directory: Optional[str],
    collection_metadata: Optional[Dict[str, Any]],
    default_name: str,
) -> Tuple[Optional[Client], Collection]:
    """The client (None when only ``collection`` is given) and the collection an integration works on: ``collection`` itself, or ``collection_name``
    in ``client`` (or in a ``PersistentClient(persist_directory)``, or in memory), created
    without an embedding function if missing (the framework embeds; vectors are passed
    explicitly, so every backend works).

    Raises:
        InvalidArgumentError: ``collection`` given together with a client, name or folder.

    An existing collection is opened with ``embedding_function=None``: a handle without a
    function, whatever the collection was created with (no conflict, as in Chroma).
    """
    if collection is not None:
        if not isinstance(collection, Collection):
            raise InvalidArgumentError(f"collection: expected a vectordb Collection, got {type(collection).__name__}")
        if client is not None or persist_directory is not None or collection_name is not None:
            raise InvalidArgumentError(
                "collection: give either a collection or client/collection_name/persist_directory, not both"
            )
        return None, collection
    if client is not None and persist_directory is not None:
        raise InvalidArgumentError("client, persist_directory: give one of them, not both")
    if client is None:
        client = Client() if persist_directory is None else PersistentClient(str(persist_directory))
    elif not isinstance(client, Client):
        raise InvalidArgumentError(f"client: expected a vectordb Client, got {type(client).__name__}")
    name = default_name if collection_name is None else collection_name
    return client, client.get_or_create_collection(name, metadata=collection_metadata, embedding_function=None)


def space_of(collection: Collection) -> str:
    """The collection's distance: ``l2`` (squared L2), ``cosine`` (1 − cosine) or ``ip`` (1 − dot)."""
    space = collection.configuration["hnsw"]["space"]  # the index's own (configuration, metadata or default)
    return space if space in SPACES else "l2"


def clean_metadata(metadata: Optional[Mapping[str, Any]], arg: str) -> Dict[str, Any]:
    """A copy of ``metadata`` without its None values (None means "no such key" in vectordb).

    Other values are left for vectordb to check: a list or a nested dict raises its
    InvalidArgumentError naming the key.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgumentError(f"{arg}: expected a dict, got {type(metadata).__name__}")
    return {k: v for k, v in metadata.items() if v is not None}


def write_records(
    collection: Collection,
    ids: List[str],
    embeddings: Sequence[Sequence[float]],
    metadatas: List[Dict[str, Any]],
    documents: List[str],
) -> None:
    """Store each record exactly as given, replacing any record of the same id, in one upsert.

    Keys of a replaced record's metadata that the new metadata lacks are sent as None,
    which ``upsert`` removes. (A writer that adds keys to the same record between this
    call's read and its write can leave those keys behind.)
    """
    if not ids:
        return
    metadatas = [dict(m) for m in metadatas]
    current = collection.get(ids=ids, include=["metadatas"])
    previous = {i: m for i, m in zip(current["ids"], current["metadatas"] or []) if m}
    for position, record_id in enumerate(ids):
        old = previous.get(record_id)
        if old:
            gone = {key: None for key in old if key not in metadatas[position]}
            metadatas[position] = {**gone, **metadatas[position]}
    collection.upsert(ids=ids, embeddings=list(embeddings), metadatas=metadatas, documents=documents)
