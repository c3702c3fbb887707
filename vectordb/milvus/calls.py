""":class:`Calls`: how the Milvus backend sends requests, at what consistency, and with which errors.

**Consistency.** Reads (searches, queries, counts, and the reads a write makes before
it writes) use Milvus's *Session* level by default: the server answers once it has
applied every write that *this process* had acknowledged on that collection (pymilvus
keeps the last write's timestamp per server, database and collection), and does not
wait at all when there is none. So:

- a client sees its own acknowledged writes in every later read (read-your-writes,
  also across clients of the same process and server). The first read after a write
  waits until the server has applied that write (it applies writes time tick by time
  tick, ``proxy.timeTickInterval``: 200 ms by default; measured on Milvus 2.3: ~270 ms);
  later reads do not wait. A delete returns only once it is applied (:meth:`Calls.settle`);
- a read of a collection this process has not written recently does not wait: it
  sees what the server has applied, which trails the present by a time tick or two:
  another process's acknowledged write shows within a few hundred milliseconds
  (measured on Milvus 2.3: 0.2-0.5 s), with no hard bound under overload (Milvus's
  "Eventually"); what it sees of a collection is a prefix of that collection's writes
  (one shard, Milvus's default);
- an answer "there is no such collection" is never given from a stale view: the
  catalog is read again at level Strong first (:mod:`vectordb.milvus.catalog`).

``consistency="strong"`` (:class:`vectordb.MilvusClient`) makes every read wait for
the server instead: each read sees every write acknowledged to any client before it
began, at ~0.2-0.4 s a read on a Milvus server (and no cost on Milvus Lite).

**Errors.** Every failure comes out as a :class:`vectordb.errors.VectorDBError`, never
as a pymilvus or grpc exception: :class:`BackendError` for a refusal, naming the server;
:class:`ServerUnreachableError` for a read (or the read that starts every write) that
cannot reach the server: nothing was changed; :class:`OutcomeUnknownError` for a write
(an upsert or a delete) whose connection failed or timed out: pymilvus reconnects
before it reports, so whether the request had been sent cannot be told, and the write
may or may not have been applied. Every vectordb write can be sent again with the same
result (``add`` leaves what is there, ``upsert``/``update`` set the same values,
``delete`` deletes the same). A write of many records is sent in batches
(:data:`vectordb.milvus.records.WRITE_BATCH` rows), each acknowledged before the next is
sent: after a lost answer, the batches before it were applied and the one in flight may
or may not have been.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Set

from vectordb.errors import (
    BackendError,
    InvalidArgumentError,
    OutcomeUnknownError,
    ServerUnreachableError,
    VectorDBError,
)
from vectordb.milvus import expressions as x
from vectordb.milvus.catalog import CONFIRM_LEVEL, MissingData

READ_LEVELS = {"session": "Session", "strong": "Strong"}
"""``MilvusClient(consistency=...)`` values and the Milvus level of reads at each."""
_NOT_FOUND, _CONNECT_FAILED, _NOT_LOADED = 100, 2, 101
_NEVER_SENT = ("fail connecting to server", "failed to connect to all addresses", "connection refused",
               "no channel in handler")
_CONNECTION = ("connect", "unavailable", "socket closed", "connection reset", "broken pipe", "goaway",
               "deadline", "timeout", "timed out", "stream removed")


class NotLoaded(BackendError):
    """The collection is released on the server (internal: :meth:`Calls.data_call` loads it and retries once)."""


def read_level(consistency: str) -> str:
    """The Milvus level of reads for a ``consistency`` setting.

    Raises:
        InvalidArgumentError: not one of :data:`READ_LEVELS`.
    """
    if consistency not in READ_LEVELS:
        raise InvalidArgumentError(f"consistency: expected one of {', '.join(READ_LEVELS)}, got {consistency!r}")
    return READ_LEVELS[consistency]


class Calls:
    """Requests to one Milvus server: each pymilvus call with its errors mapped (see the module
    docstring), collections loaded on first use, expressions sent as the server takes them.

    Args:
        uri: the Milvus Lite file or server (named in every error).
        connect: makes the pymilvus client (called once, here, its errors mapped too).
        exceptions: ``pymilvus.exceptions`` (whose MilvusException is told from other failures).
        timeout: seconds for each request, retries included (None: pymilvus's own limits).
        read_level: the Milvus consistency level of reads (:func:`read_level`).
    """

    def __init__(self, uri: str, connect: Callable[[], Any], exceptions: Any, timeout: Optional[float],
                 read_level: str) -> None:
        self.uri = uri
        self.timeout = timeout
        self.read_level = read_level
        self.templates = False  # until the server is known: literals work everywhere
        self.closed = False
        self.loaded: Set[str] = set()
        self._exceptions = exceptions
        self.client: Any = None
        self.client = self.call(connect)

    def close(self) -> None:
        """Close the connection (idempotent); every later call raises."""
        if self.closed:
            return
        self.closed = True
        try:
            self.client.close()
        except Exception:  # closing a connection that is already gone
            pass

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with Milvus's errors as vectordb's (MissingData for a missing collection)."""
        if self.closed:
            raise VectorDBError("this client is closed")
        if self.timeout is not None and self.client is not None and getattr(fn, "__self__", None) is self.client:
            kwargs.setdefault("timeout", self.timeout)  # pymilvus's methods take it per request
        try:
            return fn(*args, **kwargs)
        except VectorDBError:
            raise
        except self._exceptions.MilvusException as exc:
            raise self._mapped(exc, getattr(exc, "message", None) or str(exc), getattr(exc, "code", None)) from None
        except Exception as exc:  # grpc and socket errors: the server went away mid-request
            raise self._mapped(exc, f"{type(exc).__name__}: {exc}", None) from None

    def _mapped(self, exc: Exception, message: str, code: Any) -> Exception:
        low = message.lower()
        if code == _NOT_FOUND and ("not exist" in low or "not found" in low):
            return MissingData(message)
        if code == _NOT_LOADED or "not loaded" in low or "call load()" in low:
            return NotLoaded(f"Milvus at {self.uri}: {message}")
        connection = code == _CONNECT_FAILED or any(word in low for word in _CONNECTION)
        if connection and any(phrase in low for phrase in _NEVER_SENT):
            return ServerUnreachableError(f"cannot reach Milvus at {self.uri}: {message}")
        if connection or not isinstance(exc, self._exceptions.MilvusException):
            return OutcomeUnknownError(f"lost the connection to Milvus at {self.uri} mid-request: {message}")
        return BackendError(f"Milvus at {self.uri} refused the request: {message}")

    def data_call(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A call on collection ``name``, loading it first if this server has it released."""
        if name not in self.loaded:
            self.call(self.client.load_collection, name)
            self.loaded.add(name)
        try:
            return self.call(fn, name, *args, **kwargs)
        except NotLoaded:  # released behind our back, or the server restarted: load and try once more
            self.call(self.client.load_collection, name)
            return self.call(fn, name, *args, **kwargs)

    def write_call(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """An upsert or delete on collection ``name``: a connection that fails during it is
        :class:`OutcomeUnknownError` (see the module docstring)."""
        try:
            return self.data_call(name, fn, *args, **kwargs)
        except ServerUnreachableError as exc:
            raise OutcomeUnknownError(
                f"{exc}; the write may or may not have been applied (sending it again gives the same result)"
            ) from None

    def filter_args(self, expr: Optional[x.Expr]) -> Dict[str, Any]:
        """``filter`` (and ``filter_params``) for an expression, as this server takes them."""
        if expr is None:
            return {"filter": "seq >= 0"}
        if self.templates:
            return {"filter": expr[0], "filter_params": expr[1]}
        return {"filter": x.render(expr)}

    def query_rows(self, name: str, expr: Optional[x.Expr], fields: List[str],
                   level: Optional[str] = None) -> List[Dict[str, Any]]:
        """The rows of collection ``name`` matching ``expr`` (all matches), with ``fields``.

        ``level``: the consistency level, if not the client's (:data:`CONFIRM_LEVEL` to confirm an absence).
        """
        return list(self.data_call(name, self.client.query, output_fields=fields,
                                   consistency_level=level or self.read_level, **self.filter_args(expr)))

    def delete_where(self, name: str, expr: x.Expr, settle: bool = True) -> None:
        """Delete the rows of collection ``name`` matching ``expr``.

        ``settle``: return only once the deletion is visible to every read (see
        :meth:`settle`); a caller deleting in several pieces settles after the last.
        """
        self.write_call(name, self.client.delete, **self.filter_args(expr))
        if settle:
            self.settle(name, expr)

    def settle(self, name: str, expr: x.Expr) -> None:
        """Wait until the server has applied this client's deletes of collection ``name``.

        Session reads see a client's own writes by their timestamps, but Milvus 2.3
        answers a delete with none (timestamp 0), so a read after it could miss it. A
        Strong read of the deleted rows (``expr``) waits for the server's next time tick:
        once it returns, the server has applied the delete, and every later read sees it.
        """
        self.query_rows(name, expr, ["id"], CONFIRM_LEVEL)
