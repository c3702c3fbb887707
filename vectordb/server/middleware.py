"""Two ASGI middlewares of the server: bearer-token auth and a request body size limit.

Both answer in the server's error shape, ``{"error": code, "message": text}``.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable, Dict, List, Tuple

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(send: Send, status: int, code: str, message: str, headers: List[Tuple[bytes, bytes]] = ()) -> None:
    """Send a complete JSON error response."""
    body = json.dumps({"error": code, "message": message}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
    })
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return b""


class BearerAuth:
    """Rejects (401) every HTTP request without ``Authorization: Bearer <token>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not hmac.compare_digest(_header(scope, b"authorization"), self.expected):
            await send_error(
                send, 401, "unauthorized",
                "this server needs a token: send the header 'Authorization: Bearer <token>' "
                "(HttpClient(..., headers={'Authorization': 'Bearer <token>'}))",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        await self.app(scope, receive, send)


class BodyLimit:
    """Answers 413 to a request whose body exceeds ``max_bytes``.

    The body is read before the app sees it; an oversized one is read to its end and
    thrown away (so that the client can read the answer), never kept in memory.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: List[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.max_bytes:
                chunks.append(chunk)
            else:
                chunks = []
            more = message.get("more_body", False)
        if size > self.max_bytes:
            limit_mb = self.max_bytes / 2**20
            await send_error(
                send, 413, "invalid_argument",
                f"request body of {size / 2**20:.1f} MB is larger than this server's limit of {limit_mb:g} MB "
                "(vectordb serve --max-body-mb): send fewer records per call",
            )
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
