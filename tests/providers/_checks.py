"""Checks the hosted embedding function tests (OpenAI, Cohere, Google) make alike.

Each helper asserts one behaviour every hosted function must have, so that a provider's
test module states what is particular to it and calls these for the rest.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any, Callable, Sequence, Tuple

import pytest

from vectordb.embedding_functions._hosted import RetryPolicy
from vectordb.embedding_functions.base import build_from_config, describe
from vectordb.errors import EmbeddingError, MissingDependencyError

FAST = RetryPolicy(max_attempts=4, initial_delay=0.01, max_delay=0.05, max_elapsed=10.0)
"""A retry policy quick enough for tests."""


def clear_env(monkeypatch: pytest.MonkeyPatch, names: Sequence[str]) -> None:
    """Unset ``names``, so no key or endpoint from the machine leaks into a test."""
    for name in names:
        monkeypatch.delenv(name, raising=False)


def unreachable_url() -> str:
    """The URL of a free loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def embed_timed(fn: Callable[[Any], Any], texts: Sequence[str]) -> Tuple[Any, float]:
    """The vectors ``fn(texts)`` returns and the seconds it took."""
    started = time.monotonic()
    vectors = fn(list(texts))
    return vectors, time.monotonic() - started


def failure_of(fn: Callable[[Any], Any], texts: Sequence[str] = ("a",)) -> EmbeddingError:
    """The :class:`EmbeddingError` that ``fn(texts)`` raises; fails the test if none is raised."""
    with pytest.raises(EmbeddingError) as info:
        fn(list(texts))
    return info.value


def assert_unreachable_is_reported(fn: Callable[[Any], Any]) -> None:
    """``fn`` points at :func:`unreachable_url`: it retries ``FAST.max_attempts`` times, then says so."""
    err = failure_of(fn)
    assert err.status is None and "no response" in str(err)
    assert f"after {FAST.max_attempts} attempts" in str(err)


def rebuilt_from_config(fn: Any, name: str, key: str) -> Any:
    """Rebuild ``fn`` from its JSON-encoded config, checking the config holds no key."""
    got_name, config = describe(fn)
    assert got_name == name
    assert key not in json.dumps(config)
    rebuilt = build_from_config(name, json.loads(json.dumps(config)))
    assert isinstance(rebuilt, type(fn))
    assert describe(rebuilt) == (name, config)
    return rebuilt


def assert_missing_sdk_named(
    monkeypatch: pytest.MonkeyPatch, module: str, build: Callable[[], Any], extra: str
) -> None:
    """With ``module`` unimportable, ``build()`` raises an error naming the ``extra`` to install."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError) as info:
        build()
    assert info.value.extra == extra
    assert f'pip install "vectordb[{extra}]"' in str(info.value)


def assert_import_leaves_out(module: str, sdk_prefixes: Sequence[str]) -> None:
    """Importing vectordb and ``module`` in a fresh process imports no module of the SDK."""
    code = (
        f"import sys, vectordb, {module}; "
        f"assert not [m for m in sys.modules if m.startswith({tuple(sdk_prefixes)!r})], 'SDK imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def query_a_collection(fn: Any, collection: str) -> None:
    """Add three documents with ``fn`` to a new in-memory collection and query one back."""
    import vectordb

    if not hasattr(vectordb, "Client"):
        pytest.skip("vectordb.Client is not built yet")
    col = vectordb.Client().create_collection(collection, embedding_function=fn)
    col.add(ids=["a", "b", "c"], documents=["red apples", "green pears", "blue plums"])
    result = col.query(query_texts=["green pears"], n_results=2)
    assert result["ids"][0][0] == "b"
