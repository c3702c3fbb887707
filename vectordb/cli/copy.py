"""``vectordb copy``: move collections between stores: a local folder, a Milvus server, a Milvus Lite file.

A store is named by one string (:func:`open_store`):

- ``milvus://HOST:PORT`` — a Milvus server or cluster (``milvuss://`` for TLS);
- ``milvus-lite:PATH`` — a Milvus Lite file (made if missing);
- anything else — a vectordb store folder (``PersistentClient(PATH)``).

Each collection is made in the destination with the source's metadata and
embedding-function name and config (nothing is embedded again, no model is loaded),
then its records are upserted in batches, in insertion order: ids, embeddings (float32,
exact), documents and metadata. Rerunning a copy upserts the same records again, so an
interrupted copy is finished by running it once more.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Sequence

from vectordb.backend import CollectionInfo
from vectordb.client import Client, PersistentClient
from vectordb.collection import Collection
from vectordb.embedding_functions.identity import conflict_message, same_function
from vectordb.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
)


def open_store(spec: str, must_exist: bool = False) -> Client:
    """The client of the store ``spec`` names (see the module docstring)."""
    if spec.startswith(("milvus://", "milvuss://")):
        from vectordb.milvus import MilvusClient

        scheme, _, rest = spec.partition("://")
        if not rest:
            raise InvalidArgumentError(f"{spec}: expected milvus://HOST:PORT")
        return MilvusClient(("https://" if scheme == "milvuss" else "http://") + rest)
    if spec.startswith("milvus-lite:"):
        from vectordb.milvus import MilvusClient

        path = spec[len("milvus-lite:"):]
        if not path:
            raise InvalidArgumentError(f"{spec}: expected milvus-lite:PATH")
        if must_exist and not os.path.exists(path):
            raise InvalidArgumentError(f"{spec}: no Milvus Lite file at {path}")
        return MilvusClient(path)
    if must_exist and not os.path.isdir(spec):
        raise InvalidArgumentError(f"{spec}: no vectordb store there (a folder, milvus://HOST:PORT or milvus-lite:PATH)")
    return PersistentClient(spec)


def copy_collections(source: Client, target: Client, names: Sequence[str], batch_size: int = 1000,
                     quiet: bool = False) -> List[Dict[str, Any]]:
    """Copy ``names`` (every collection when empty) from ``source`` to ``target``; one summary per collection."""
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise InvalidArgumentError(f"--batch-size: expected a positive integer, got {batch_size}")
    infos = [source.backend.get_collection(n) for n in names] if names else source.backend.list_collections()
    summary = []
    for info in infos:
        from_col = Collection(source.backend, info, None)
        to_col = Collection(target.backend, _made(target, info), None)
        total = from_col.count()
        with tqdm(total=total, unit="record", desc=f"copying {info.name}", disable=True if quiet else None,
                  file=sys.stderr) as bar:
            for offset in range(0, total, batch_size):
                page = from_col.get(limit=batch_size, offset=offset, include=["embeddings", "metadatas", "documents"])
                if not page["ids"]:
                    break
                to_col.upsert(ids=page["ids"], embeddings=page["embeddings"].astype("float32"),
                              metadatas=_metadatas(page["metadatas"]), documents=page["documents"])
                bar.update(len(page["ids"]))
        summary.append({"name": info.name, "records": total})
    return summary


def _metadatas(metadatas: List[Optional[Dict[str, Any]]]) -> Optional[List[Optional[Dict[str, Any]]]]:
    """Metadata for upsert: None for every record when none has any."""
    return None if all(m is None for m in metadatas) else [m or None for m in metadatas]


def _made(target: Client, info: CollectionInfo) -> CollectionInfo:
    """The target's collection called ``info.name``, made like ``info`` if missing (same function, or an error)."""
    try:
        return target.backend.create_collection(info.name, info.metadata, info.ef_name, info.ef_config, info.metric)
    except CollectionExistsError:
        pass
    try:
        existing = target.backend.get_collection(info.name)
    except CollectionNotFoundError:  # deleted meanwhile
        return target.backend.create_collection(info.name, info.metadata, info.ef_name, info.ef_config, info.metric)
    if not same_function(existing.ef_name, existing.ef_config, info.ef_name, info.ef_config):
        raise EmbeddingFunctionConflictError(
            conflict_message(info.name, existing.ef_name, existing.ef_config, info.ef_name, info.ef_config)
        )
    return existing
