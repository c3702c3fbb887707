"""Chroma's token auth through chromadb's HttpClient: ``python wire_auth.py PORT TOKEN``.

Run by tests/test_chroma_wire.py against ``vectordb serve --auth-token TOKEN``. Prints,
for each way a Chroma app sends its token (and for a wrong and a missing one), whether
the client worked or which class it raised.
"""

from __future__ import annotations

import sys
from typing import Dict, Optional

import chromadb
from chromadb.config import Settings

PORT, TOKEN = int(sys.argv[1]), sys.argv[2]
PROVIDER = "chromadb.auth.token_authn.TokenAuthClientProvider"


def attempt(label: str, settings: Optional[Settings] = None, headers: Optional[Dict[str, str]] = None) -> None:
    try:
        client = chromadb.HttpClient(host="127.0.0.1", port=PORT, settings=settings or Settings(), headers=headers)
        collection = client.get_or_create_collection(f"auth-{label}", embedding_function=None)
        collection.upsert(ids=["a"], embeddings=[[1.0, 2.0]])
        print(f"{label}: ok, count {collection.count()}")
    except Exception as exc:  # noqa: BLE001 - the class is what is checked
        print(f"{label}: {type(exc).__name__}")


attempt("bearer", Settings(chroma_client_auth_provider=PROVIDER, chroma_client_auth_credentials=TOKEN))
attempt("x-chroma-token", Settings(chroma_client_auth_provider=PROVIDER, chroma_client_auth_credentials=TOKEN,
                                   chroma_auth_token_transport_header="X-Chroma-Token"))
attempt("headers", headers={"Authorization": f"Bearer {TOKEN}"})
attempt("wrong", Settings(chroma_client_auth_provider=PROVIDER, chroma_client_auth_credentials=TOKEN + "x"))
attempt("missing")
