"""The one error tree of vectordb.

Every error raised on purpose by vectordb is a :class:`VectorDBError`. Each class
has a stable ``code`` and an ``http_status`` so that the server, the HTTP client and
the command line can speak of the same error in the same words::

    VectorDBError
    ├── InvalidArgumentError (also ValueError)       400
    │   ├── DuplicateIDError                         400
    │   ├── InvalidDimensionError                    400
    │   ├── RefusedConfigError                       400
    │   └── TextSearchUnavailableError               400
    ├── CollectionNotFoundError (also ValueError)    404
    ├── CollectionExistsError (also ValueError)      409
    ├── EmbeddingFunctionConflictError (ValueError)  409
    ├── StoreLockedError                             423
    │   └── StoreBusyError (waited past lock_timeout) 423
    ├── StorageError (the disk or the database file)  500
    │   ├── StorageFullError (disk full)             507
    │   ├── StoreCorruptedError (damaged database)   500
    │   └── NotDurableError (applied, not durable)   500
    ├── AuthorizationError (not allowed)             403
    │   ├── UnauthorizedError (wrong or no token)    401
    │   └── ResetDisabledError                       403
    ├── ServerUnreachableError (also ConnectionError) 503
    ├── OutcomeUnknownError (also ConnectionError)   504
    ├── BackendError (the engine behind a client)    502
    ├── MissingDependencyError (also ImportError)    500
    └── EmbeddingError                               502

Chroma's names are aliases of these classes, so that ``except chromadb.errors.X`` code
keeps working with the import changed: ``ChromaError`` is :class:`VectorDBError`,
``NotFoundError`` :class:`CollectionNotFoundError`, ``UniqueConstraintError``
:class:`CollectionExistsError`, ``InvalidDimensionException``
:class:`InvalidDimensionError`, ``ChromaAuthError`` :class:`AuthorizationError`;
``InvalidArgumentError``, ``DuplicateIDError`` and ``AuthorizationError`` have Chroma's
names already.
"""

from __future__ import annotations

from typing import Optional, Sequence


class Message(str):
    """An error's message: a str that may also be called, ``error.message()``, as Chroma's
    ``ChromaError.message()`` is (code written for Chroma calls it)."""

    def __call__(self) -> str:
        return str(self)


class VectorDBError(Exception):
    """Base of every error vectordb raises on purpose; ``message`` is its text (see :class:`Message`)."""

    code = "vectordb_error"
    http_status = 500

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = Message(message)


class InvalidArgumentError(VectorDBError, ValueError):
    """An argument is malformed: wrong type, wrong shape, bad value or filter."""

    code = "invalid_argument"
    http_status = 400


class DuplicateIDError(InvalidArgumentError):
    """The same id appears more than once in one call."""

    code = "duplicate_id"


class InvalidDimensionError(InvalidArgumentError):
    """An embedding's dimension differs from the collection's."""

    code = "invalid_dimension"


class TextSearchUnavailableError(InvalidArgumentError):
    """``query(mode="text" | "hybrid")`` on a collection that cannot rank by text: its full-text
    index is off (``metadata={"text:index": False}``), or its backend has no text ranking."""

    code = "text_search_unavailable"


class RefusedConfigError(InvalidArgumentError):
    """A stored or received embedding-function config holds an option that is never honoured from a config.

    Options that make the process load or run code (``trust_remote_code``, custom code
    revisions, other backends, ...) are honoured only when the caller builds the function
    itself and passes it: ``get_collection(name, embedding_function=...)``.
    """

    code = "refused_config"

    def __init__(self, message: str = "", *, function: Optional[str] = None, options: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.function = function
        self.options = list(options)


class CollectionNotFoundError(VectorDBError, ValueError):
    """No collection of that name exists."""

    code = "collection_not_found"
    http_status = 404


def collection_not_found(name_or_id: object) -> CollectionNotFoundError:
    """The error for a collection that does not exist, in Chroma's words: ``Collection [NAME] does not exist``."""
    return CollectionNotFoundError(f"Collection [{name_or_id}] does not exist")


def collection_deleted(name: object) -> CollectionNotFoundError:
    """The error for a handle whose collection was deleted: Chroma's words, and why."""
    return CollectionNotFoundError(f"Collection [{name}] does not exist (it was deleted after this handle was made)")


class CollectionExistsError(VectorDBError, ValueError):
    """A collection of that name already exists."""

    code = "collection_exists"
    http_status = 409


class EmbeddingFunctionConflictError(VectorDBError, ValueError):
    """The embedding function passed differs from the collection's persisted one."""

    code = "embedding_function_conflict"
    http_status = 409


class StoreLockedError(VectorDBError):
    """The store is open for writing in another process."""

    code = "store_locked"
    http_status = 423


class StoreBusyError(StoreLockedError):
    """Another process held the store for longer than this call may wait (``lock_timeout``).

    ``holder`` is that process's PID when known. Nothing was changed: the call may be retried.
    """

    code = "store_busy"

    def __init__(self, message: str, *, path: Optional[str] = None, holder: Optional[int] = None) -> None:
        super().__init__(message)
        self.path = path
        self.holder = holder


class StorageError(VectorDBError):
    """Reading or writing the store's files failed: the message names the path and the cause.

    ``path`` (the store's folder or the file concerned) and ``cause`` (the operating
    system's or DuckDB's own words) are kept as attributes when known.
    """

    code = "storage_error"
    http_status = 500

    def __init__(self, message: str, *, path: Optional[str] = None, cause: Optional[str] = None) -> None:
        super().__init__(message)
        self.path = path
        self.cause = cause


class StorageFullError(StorageError):
    """The disk (or the quota, or the file size limit) has no room for a write."""

    code = "storage_full"
    http_status = 507


class StoreCorruptedError(StorageError):
    """The database file is damaged or missing; the message says what to do."""

    code = "store_corrupted"
    http_status = 500


class NotDurableError(StorageError):
    """A write reached the database but the disk failed to make it durable, so it is not acknowledged.

    Every other :class:`StorageError` raised by a write means the call changed nothing.
    This one means it may have: with ``applied`` True its changes are in the store and
    visible now (read back from the database after the failure); with ``applied`` None the
    database could not be read back to tell. The changes become durable once a checkpoint
    succeeds (the store's next write tries one, and until one does every write is refused
    with a StorageError), and may be lost if the machine stops before that. Sending the
    same write again is safe: writes give the same result when repeated.
    """

    code = "not_durable"
    http_status = 500

    def __init__(
        self, message: str, *, path: Optional[str] = None, cause: Optional[str] = None, applied: Optional[bool] = None
    ) -> None:
        super().__init__(message, path=path, cause=cause)
        self.applied = applied


class AuthorizationError(VectorDBError):
    """The caller may not do this: a wrong or missing token, or an operation its settings disable."""

    code = "not_allowed"
    http_status = 403


class UnauthorizedError(AuthorizationError):
    """The server wants ``Authorization: Bearer <token>`` and did not get the right one."""

    code = "unauthorized"
    http_status = 401


class ResetDisabledError(AuthorizationError):
    """``reset()`` was called on a client (or a server) made without ``Settings(allow_reset=True)``."""

    code = "reset_disabled"
    http_status = 403


class ServerUnreachableError(VectorDBError, ConnectionError):
    """The vectordb server at the client's URL could not be reached: the request was never
    sent, so nothing changed and it is safe to send again."""

    code = "server_unreachable"
    http_status = 503


class OutcomeUnknownError(VectorDBError, ConnectionError):
    """A request reached the server but its answer did not come back (a read timeout, a
    dropped connection): it may or may not have been applied. Every write of vectordb gives
    the same result when sent again (see the README's Guarantees), so retrying is safe."""

    code = "outcome_unknown"
    http_status = 504


class BackendError(VectorDBError):
    """The engine a client stores in (a Milvus server, say) refused or failed a request, or
    its data is not what vectordb left there; the message names the engine's address."""

    code = "backend_error"
    http_status = 502


class MissingDependencyError(VectorDBError, ImportError):
    """An optional package is not installed; the message names the extra to install."""

    code = "missing_dependency"
    http_status = 500

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed: "
            f'pip install "vectordb[{extra}]"'
        )
        self.package = package
        self.extra = extra


class EmbeddingError(VectorDBError):
    """An embedding function failed or returned unusable vectors.

    For hosted providers ``provider``, ``status`` (the HTTP status, if any) and the
    provider's own message are kept as attributes and named in the message.
    """

    code = "embedding_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        provider: Optional[str] = None,
        status: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


ERRORS_BY_CODE = {
    cls.code: cls
    for cls in (
        VectorDBError,
        InvalidArgumentError,
        DuplicateIDError,
        InvalidDimensionError,
        RefusedConfigError,
        TextSearchUnavailableError,
        CollectionNotFoundError,
        CollectionExistsError,
        EmbeddingFunctionConflictError,
        StoreLockedError,
        StoreBusyError,
        StorageError,
        StorageFullError,
        StoreCorruptedError,
        NotDurableError,
        AuthorizationError,
        UnauthorizedError,
        ResetDisabledError,
        EmbeddingError,
        BackendError,
    )
}
"""Maps each stable ``code`` to its class, so a client can re-raise a server's error."""

# -- Chroma's names (aliases: the same classes) -------------------------------------

ChromaError = VectorDBError
NotFoundError = CollectionNotFoundError
UniqueConstraintError = CollectionExistsError
InvalidDimensionException = InvalidDimensionError
ChromaAuthError = AuthorizationError
