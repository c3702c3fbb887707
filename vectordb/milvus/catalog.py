"""The catalog of a Milvus-backed store: one small Milvus collection naming every vectordb collection.

vectordb allows collection names Milvus does not (``my-coll``, dots, any Unicode), so a
collection's records live in a Milvus collection named by its id (:func:`data_name`:
``vdb_<uuid hex>``), and the catalog (``vectordb_catalog``) maps ids to what vectordb
knows of them: the name, the metadata, the embedding function's name and config, the
dimension (None until the first write), and the creation time that orders them. A
rename is a catalog update; nothing is moved. Each row is written whole (upsert by id).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from vectordb.backend import CollectionInfo
from vectordb.milvus import expressions as x

if TYPE_CHECKING:
    from vectordb.milvus.calls import Calls

CONFIRM_LEVEL = "Strong"
"""The consistency level of the read that confirms an absence before it is reported."""
CATALOG = "vectordb_catalog"
"""The Milvus collection holding the catalog."""
DATA_PREFIX = "vdb_"
DEFAULT_LEVEL = "Bounded"
"""The consistency level Milvus uses for requests that name none (other tools' reads of vectordb's
collections): Milvus's own default. vectordb names a level in each of its requests."""


class MissingData(Exception):
    """A Milvus collection does not exist (internal: the caller decides what that means)."""


def data_name(collection_id: str) -> str:
    """The Milvus collection holding the records of the collection with this id."""
    return DATA_PREFIX + collection_id.replace("-", "")


def create(calls: "Calls", name: str, schema: Any, index: Any) -> None:
    """Make a Milvus collection with its index, and load it.

    pymilvus's ``create_collection(index_params=...)`` polls the index state every 0.5 s
    (a second per collection on Milvus Lite); an index on an empty collection has nothing
    to build, so it is asked for without the wait, and the load waits for what it needs.
    """
    client = calls.client
    calls.call(client.create_collection, name, schema=schema, consistency_level=DEFAULT_LEVEL)
    calls.call(client.create_index, name, index, sync=False)
    calls.call(client.load_collection, name)


def is_data_name(name: str) -> bool:
    """Whether a Milvus collection's name is of the form :func:`data_name` gives."""
    return name.startswith(DATA_PREFIX) and len(name) == len(DATA_PREFIX) + 32


class Catalog:
    """The catalog collection (made if missing), read and written through ``calls`` (a
    :class:`vectordb.milvus.calls.Calls`: it maps Milvus's errors, and sends expressions as
    templates or rendered, as the server takes them)."""

    def __init__(self, calls: "Calls") -> None:
        self._calls = calls
        self._client = calls.client
        self._call = calls.call
        self._query = calls.query_rows
        self._delete = calls.delete_where
        self._ensure()
        calls.loaded.add(CATALOG)

    def _ensure(self) -> None:
        from pymilvus import DataType

        if self._call(self._client.has_collection, CATALOG):
            self._call(self._client.load_collection, CATALOG)
            return
        schema = self._client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("created", DataType.INT64)
        schema.add_field("info", DataType.VARCHAR, max_length=65535)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field in every collection
        index = self._client.prepare_index_params()
        index.add_index(field_name="vec", index_type="FLAT", metric_type="L2")
        try:
            create(self._calls, CATALOG, schema, index)
        except Exception:
            if not self._call(self._client.has_collection, CATALOG):  # not a race with another client
                raise
            self._call(self._client.load_collection, CATALOG)

    def rows(self, level: Optional[str] = None) -> List[CollectionInfo]:
        """Every collection, in creation order (read at ``level``, else the client's)."""
        found = self._query(CATALOG, ("created >= {p0}", {"p0": 0}), ["id", "created", "info"], level)
        found.sort(key=lambda r: (r["created"], r["id"]))
        return [_info(r) for r in found]

    def by_name(self, name: str) -> Optional[CollectionInfo]:
        """The collection called ``name`` (compared in Python: names never enter an expression).

        None only once a Strong read agrees: a collection another client made is found
        as soon as its creation was acknowledged.
        """
        for level in (None, CONFIRM_LEVEL):
            info = next((info for info in self.rows(level) if info.name == name), None)
            if info is not None:
                return info
        return None

    def by_id(self, collection_id: str) -> Optional[CollectionInfo]:
        """The collection with this id, or None (only once a Strong read agrees)."""
        found = self._by_id(collection_id, ["id", "created", "info"])
        return _info(found[0]) if found else None

    def created(self, collection_id: str) -> int:
        """When the collection was created (its catalog order), or -1 if it is gone."""
        found = self._by_id(collection_id, ["created"])
        return int(found[0]["created"]) if found else -1

    def _by_id(self, collection_id: str, fields: List[str]) -> List[Dict[str, Any]]:
        for level in (None, CONFIRM_LEVEL):
            found = self._query(CATALOG, x.one_of("id", [collection_id]), fields, level)
            if found:
                return found
        return []

    def put(self, info: CollectionInfo, created: Optional[int] = None) -> None:
        """Write ``info``'s row (a new one with ``created`` now, or replacing the stored one)."""
        if created is None:
            created = self.created(info.id)
            if created < 0:
                created = time.time_ns()
        body = {"name": info.name, "metadata": info.metadata, "dimension": info.dimension,
                "ef_name": info.ef_name, "ef_config": info.ef_config, "metric": info.metric}
        row = {"id": info.id, "created": created, "info": json.dumps(body), "vec": [0.0, 0.0]}
        self._calls.write_call(CATALOG, self._client.upsert, [row])

    def remove(self, collection_id: str) -> None:
        """Remove the collection's row."""
        self._delete(CATALOG, x.one_of("id", [collection_id]))


def _info(row: Dict[str, Any]) -> CollectionInfo:
    body = json.loads(row["info"])
    return CollectionInfo(str(row["id"]), body["name"], body["metadata"], body["dimension"],
                          body["ef_name"], body["ef_config"], body.get("metric"))  # none in rows written before it was kept
