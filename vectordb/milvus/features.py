"""What a Milvus server can do, found once per client: its version, expression templates, nullable fields.

vectordb speaks to every Milvus from 2.3 on and to Milvus Lite, and picks the best
encoding each offers:

- **Expression templates** (``filter_params``: Milvus 2.5+) are found by *trying*
  one: a query of the catalog by ``id == {p0}``. A server that parses it takes
  templates; one that refuses it (Milvus 2.3/2.4 and Milvus Lite 3.x, which ignores
  ``filter_params``) gets expressions with every value written as an escaped literal
  (:func:`vectordb.milvus.expressions.render`).
- **Infix patterns** (``doc like "%text%"``; Milvus 2.3 takes prefix patterns only)
  are found by trying one on the catalog; without them a document's ``$contains``
  narrows nothing and is decided by the exact check alone
  (:mod:`vectordb.milvus.expressions`).
- **Nullable fields** (Milvus 2.5+; Milvus Lite 3.x) decide how a new collection stores
  "no document" (:mod:`vectordb.milvus.layout`). Older servers *accept* a schema with
  ``nullable=True`` and silently drop the flag, so it is read from the version the
  server reports (``get_server_version``: ``v2.3.5``, ``2.5.4``, ``milvus_lite-3.2.2``);
  when that says nothing usable (a managed service's own wording), a scratch collection
  with a nullable field is made, described and dropped: the server's own answer.

Collections already made keep the encoding they were made with: each one's layout is
read from its own schema (:func:`vectordb.milvus.layout.layout_of`), never assumed.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Tuple

from vectordb.errors import BackendError

if TYPE_CHECKING:
    from vectordb.milvus.calls import Calls

NULLABLE_SINCE = (2, 5)
"""The first release with nullable fields, of Milvus and of Milvus Lite (Lite 2.5 runs Milvus 2.5's engine)."""
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Features:
    """What one server offers.

    Attributes:
        version: the version string the server reports ("" if it reports none).
        templates: it reads expression templates (``filter_params``).
        nullable: a new collection can have nullable fields.
        infix_like: it takes ``like "%text%"`` patterns.
    """

    version: str
    templates: bool
    nullable: bool
    infix_like: bool = True


def parse_version(text: str) -> Optional[Tuple[str, Tuple[int, int, int]]]:
    """``("milvus" or "milvus_lite", (major, minor, patch))`` from a reported version, or None.

    ``v2.3.5-lite`` is the Milvus 2.3.5 *server* of the ``milvus`` PyPI package (its
    builds carry that suffix); Milvus Lite reports ``milvus_lite-3.2.2``.
    """
    if not isinstance(text, str):
        return None
    match = _VERSION.search(text)
    if match is None:
        return None
    numbers = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
    return ("milvus_lite" if text.lower().startswith("milvus_lite") else "milvus"), numbers


def nullable_by_version(text: str) -> Optional[bool]:
    """Whether a server of this reported version has nullable fields; None when the text says nothing."""
    parsed = parse_version(text)
    if parsed is None:
        return None
    return parsed[1][:2] >= NULLABLE_SINCE


def detect(calls: "Calls", catalog: str) -> Features:
    """The features of the server ``calls`` (a :class:`vectordb.milvus.calls.Calls`) speaks to, its
    ``catalog`` collection made."""
    version = _version(calls)
    templates = _accepts(calls, catalog, filter="id == {p0}", filter_params={"p0": ""})
    infix_like = _accepts(calls, catalog, filter='info like "%a%"')
    nullable = nullable_by_version(version)
    if nullable is None:
        nullable = probe_nullable(calls)
    return Features(version, templates, nullable, infix_like)


def _version(calls: "Calls") -> str:
    try:
        return str(calls.call(calls.client.get_server_version))
    except BackendError:  # a proxy that does not implement it: probed instead
        return ""


def _accepts(calls: "Calls", catalog: str, **args: Any) -> bool:
    """Whether the server answers a query of the catalog with ``args`` (rather than refusing to parse it)."""
    with quiet_pymilvus():
        try:
            calls.call(calls.client.query, catalog, output_fields=["id"], limit=1,
                         consistency_level="Eventually", **args)
            return True
        except BackendError:
            return False


def probe_nullable(calls: "Calls") -> bool:
    """Whether the server keeps ``nullable=True``: a scratch collection is made, described and dropped."""
    from pymilvus import DataType

    client = calls.client
    name = "vectordb_probe_" + uuid.uuid4().hex
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=8)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=2)
    schema.add_field("note", DataType.VARCHAR, max_length=8, nullable=True)
    with quiet_pymilvus():
        try:
            calls.call(client.create_collection, name, schema=schema)
        except BackendError:  # the schema itself refused: no nullable fields here
            return False
    try:
        fields = calls.call(client.describe_collection, name)["fields"]
        return any(f["name"] == "note" and f.get("nullable") for f in fields)
    finally:
        calls.call(client.drop_collection, name)


class quiet_pymilvus:
    """Silence pymilvus's ERROR log (a traceback per refused request) around a request expected to fail."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("pymilvus")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: Any) -> None:
        self._logger.setLevel(self._level)
