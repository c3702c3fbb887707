"""vectordb over Milvus: the same Client and Collection API, stored in Milvus Lite, a server or a cluster.

``MilvusClient(uri)`` is the ordinary :class:`vectordb.Client` over a
:class:`vectordb.milvus.backend.MilvusBackend`; pymilvus is imported only when one is
made (``pip install "vectordb[milvus]"``). The package owns the Milvus layout (the
catalog, one Milvus collection per vectordb collection), the expressions sent to
Milvus and the exact checking of their answers; see each module's docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from vectordb.client import Client
from vectordb.config import Settings, check_settings

if TYPE_CHECKING:
    from vectordb.milvus.backend import MilvusBackend


class MilvusClient(Client):
    """A client whose collections live in Milvus, with the API of :class:`vectordb.Client`.

    Args:
        uri: a Milvus Lite file (``"./milvus.db"``: made if missing, served in this
            process) or a Milvus server or cluster (``"http://host:19530"``).
        token: Milvus's token (``"user:password"`` or an API key), if the server wants one.
        db_name: the Milvus database to use (the server's default when None).
        settings: as for :class:`vectordb.Client` (``Settings(allow_reset=True)`` allows ``reset()``).
        consistency: ``"session"`` (the default): every read sees this client's acknowledged
            writes (and those of every client in this process); the first read after a write
            waits until the server applied it, other reads do not wait; another process's
            writes show within a few hundred milliseconds. ``"strong"``: every read sees every
            write acknowledged to anyone before it began, and waits for the server to have
            applied them (~0.2-0.4 s a read on a Milvus server). See :mod:`vectordb.milvus.calls`.
        timeout: seconds to wait for the connection and for each Milvus request, retries
            included (None: pymilvus's own limits); past it, a typed connection error
            (:class:`vectordb.errors.ServerUnreachableError` or ``OutcomeUnknownError``).

    Works with every Milvus server from 2.3 on and Milvus Lite; what a server supports
    (nullable fields, expression templates) is found when the client connects.

    Raises:
        MissingDependencyError: pymilvus is not installed.
        ServerUnreachableError: the server cannot be reached.
        InvalidArgumentError: an unknown ``consistency``.
    """

    def __init__(self, uri: str, token: Optional[str] = None, db_name: Optional[str] = None,
                 settings: Optional[Settings] = None, consistency: str = "session",
                 timeout: Optional[float] = None) -> None:
        from vectordb.milvus.backend import MilvusBackend

        check_settings(settings)
        backend = MilvusBackend(uri, token, db_name, timeout, consistency)
        super().__init__(settings, backend=backend)
        self._milvus: MilvusBackend = backend

    @property
    def uri(self) -> str:
        """The Milvus Lite file or server this client stores in."""
        return self._milvus.uri


__all__ = ["MilvusClient"]
