"""The server's token check, with Chroma's token headers and Chroma's error under ``/api/v2``.

Chroma's clients send their token as ``Authorization: Bearer <token>`` or as
``X-Chroma-Token: <token>`` (``chroma_auth_token_transport_header``); ``vectordb serve
--auth-token`` checks the same token either way on Chroma's routes and answers a missing
or wrong one with 401 ``{"error": "AuthError", ...}`` (``chromadb.errors.ChromaAuthError``
in Python, ``ChromaUnauthorizedError`` in JS). As Chroma's server does by default,
``GET /api/v2``, ``/api/v2/heartbeat`` and ``/api/v2/version`` need no token. Every other
path keeps vectordb's own rule (:class:`vectordb.server.middleware.BearerAuth`).
"""

from __future__ import annotations

import hmac

from vectordb.server.middleware import ASGIApp, BearerAuth, Receive, Scope, Send, send_error

V2_PREFIX = "/api/v2"
OPEN_PATHS = frozenset({V2_PREFIX, V2_PREFIX + "/", V2_PREFIX + "/heartbeat", V2_PREFIX + "/version"})
"""What Chroma's server lets through without a token (its ``chroma_server_auth_ignore_paths``), for GET only."""


def _headers(scope: Scope) -> dict:
    return {key.lower(): value for key, value in scope.get("headers", [])}


class ChromaTokenAuth:
    """Token auth for the whole app: Chroma's headers and error under ``/api/v2``, vectordb's elsewhere."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.vectordb_rule = BearerAuth(app, token)
        self.bearer = f"Bearer {token}".encode()
        self.token = token.encode()

    def allowed(self, scope: Scope) -> bool:
        """Whether a request to Chroma's routes carries the token in either of Chroma's headers."""
        headers = _headers(scope)
        bearer = hmac.compare_digest(headers.get(b"authorization", b""), self.bearer)
        chroma = hmac.compare_digest(headers.get(b"x-chroma-token", b"").strip(), self.token)
        return bearer or chroma

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != V2_PREFIX and not path.startswith(V2_PREFIX + "/"):
            await self.vectordb_rule(scope, receive, send)
            return
        if (scope.get("method") == "GET" and path in OPEN_PATHS) or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        await send_error(
            send, 401, "AuthError",
            "Unauthorized: this server needs its token, as 'Authorization: Bearer <token>' or "
            "'X-Chroma-Token: <token>' (chromadb: Settings(chroma_client_auth_provider="
            "'chromadb.auth.token_authn.TokenAuthClientProvider', chroma_client_auth_credentials=<token>), "
            "or headers={'Authorization': 'Bearer <token>'})",
            [(b"www-authenticate", b"Bearer")],
        )
