"""Client settings: :class:`Settings`, the object Chroma's clients take as ``settings=``.

vectordb is configured by constructor arguments; ``Settings`` exists so that code written
for ``chromadb.config.Settings`` runs unchanged. What each field does here:

- ``allow_reset`` (default False): honoured. ``client.reset()`` deletes every
  collection only when it is True (over HTTP the server's own settings must allow it too:
  ``vectordb serve --allow-reset``).
- ``is_persistent`` and ``persist_directory``: honoured by ``vectordb.Client(settings)``
  only, as by ``chromadb.Client``: ``Settings(is_persistent=True, persist_directory=p)``
  gives a store on disk under ``p``. ``PersistentClient(path)`` uses its ``path``.
- ``anonymized_telemetry``: accepted, no effect (vectordb never sends telemetry).
- Chroma's other fields (``chroma_*`` and its few others, e.g. ``chroma_server_host``,
  ``chroma_api_impl``, ``migrations``): accepted and kept as attributes, no effect; one
  not given reads as None (code written for Chroma reads ``settings.chroma_api_impl``).

Any other name raises :class:`~vectordb.errors.InvalidArgumentError` naming it, so that
a misspelt ``allow_rest=True`` does not pass silently.
"""

from __future__ import annotations

from typing import Any, Dict

from vectordb.errors import InvalidArgumentError

DEFAULT_TENANT = "default_tenant"
"""The one tenant a vectordb store has (Chroma's default tenant name)."""
DEFAULT_DATABASE = "default_database"
"""The one database a vectordb store has (Chroma's default database name)."""

_CHROMA_OTHER_FIELDS = frozenset(
    {"environment", "tenant_id", "topic_namespace", "migrations", "migrations_hash_algorithm",
     "worker_memberlist_name"}
)
"""Chroma's Settings fields that neither start with ``chroma_`` nor matter here (accepted, no effect)."""


class Settings:
    """Chroma-compatible client settings (see the module docstring for what is honoured).

    Args:
        allow_reset: let ``client.reset()`` delete every collection.
        is_persistent: with ``persist_directory``, makes ``vectordb.Client(settings)`` a store on disk.
        persist_directory: the folder of that store.
        anonymized_telemetry: accepted for compatibility; vectordb sends no telemetry.
        **other: Chroma's other setting names, accepted with no effect.

    Raises:
        InvalidArgumentError: a field of the wrong type, or a name Chroma's Settings does not have.
    """

    def __init__(
        self,
        allow_reset: bool = False,
        is_persistent: bool = False,
        persist_directory: str = "./chroma",
        anonymized_telemetry: bool = True,
        **other: Any,
    ) -> None:
        for name, value in (("allow_reset", allow_reset), ("is_persistent", is_persistent),
                            ("anonymized_telemetry", anonymized_telemetry)):
            if not isinstance(value, bool):
                raise InvalidArgumentError(f"Settings.{name}: expected a bool, got {type(value).__name__}")
        if not isinstance(persist_directory, str):
            raise InvalidArgumentError(
                f"Settings.persist_directory: expected str, got {type(persist_directory).__name__}"
            )
        unknown = sorted(k for k in other if not k.startswith("chroma_") and k not in _CHROMA_OTHER_FIELDS)
        if unknown:
            raise InvalidArgumentError(
                f"Settings: unknown field {unknown[0]!r} (vectordb honours allow_reset, is_persistent and "
                "persist_directory; Chroma's other fields are accepted with no effect)"
            )
        self.allow_reset = allow_reset
        self.is_persistent = is_persistent
        self.persist_directory = persist_directory
        self.anonymized_telemetry = anonymized_telemetry
        self.other: Dict[str, Any] = dict(other)
        """Chroma's other fields as given (they have no effect)."""

    def __getattr__(self, name: str) -> Any:
        """Chroma's other fields: the value given, else None (unset: they have no effect here)."""
        other = self.__dict__.get("other", {})
        if name in other:
            return other[name]
        if name.startswith("chroma_") or name in _CHROMA_OTHER_FIELDS:
            return None
        raise AttributeError(f"Settings has no field {name!r}")

    def __repr__(self) -> str:
        fields = [f"allow_reset={self.allow_reset!r}", f"is_persistent={self.is_persistent!r}",
                  f"persist_directory={self.persist_directory!r}"]
        fields += [f"{k}={v!r}" for k, v in sorted(self.other.items())]
        return f"Settings({', '.join(fields)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and vars(self) == vars(other)


def check_settings(settings: Any) -> Settings:
    """``settings`` as a :class:`Settings` (None gives the defaults)."""
    if settings is None:
        return Settings()
    if not isinstance(settings, Settings):
        hint = " (for a store on disk use vectordb.PersistentClient(path))" if isinstance(settings, str) else ""
        raise InvalidArgumentError(
            f"settings: expected vectordb.config.Settings, got {type(settings).__name__}{hint}"
        )
    return settings


def check_tenant_database(tenant: Any, database: Any) -> None:
    """vectordb has one tenant and one database, under Chroma's default names; any other is refused."""
    for arg, value, only in (("tenant", tenant, DEFAULT_TENANT), ("database", database, DEFAULT_DATABASE)):
        if value != only:
            raise InvalidArgumentError(
                f"{arg}: vectordb has one {arg}, {only!r}; got {value!r} "
                f"(use a separate store, or collection names, to keep data apart)"
            )
