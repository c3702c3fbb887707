"""The conftest.py that run_chroma_api_tests.py puts beside Chroma's copied test files.

It stands in for ``chromadb/test/conftest.py``, whose fixtures start Chroma's own
servers and systems: here the ``client`` fixture is one client of the target
(``CHROMA_HARNESS_TARGET``: vectordb or chromadb), empty, allowing ``reset()``, once in
memory and once on disk in a folder of its own (so each client case runs twice). Chroma's helper modules (``chromadb.test.property.strategies``,
``invariants``, the hypothesis profiles) are Chroma's own, imported from the wheel at
``CHROMA_SITE_PACKAGES`` (appended to ``sys.path`` for vectordb, so this interpreter's
packages win; put first for chromadb, so Chroma runs with its own).
The real ``chromadb.test.conftest`` is imported as a plain module (its fixtures are not
registered) after stubbing the one dev-only package it needs for its server fixtures.
Its ``create_isolated_database`` (a fresh database of a Chroma server) becomes, for
vectordb, ``reset()``: vectordb has one database, and the fixture's client is empty. And
vectordb's clients get ``_server = None`` and its collections ``_model`` (their ``get_model()``),
the two internal attributes Chroma's invariants and state machines read; and
``is_client_in_process`` says False, so that the one invariant that measures Chroma's own
write log (through ``client._system``) is left out, as it is for Chroma's HTTP clients.
Each test's fixture names are written to ``CHROMA_HARNESS_ITEMS`` so the runner can
tell the client cases apart.
"""

from __future__ import annotations

import json
import os
import sys
import types
from typing import Any, Iterator

import pytest

TARGET = os.environ.get("CHROMA_HARNESS_TARGET", "vectordb")
SITE = os.environ["CHROMA_SITE_PACKAGES"]
if SITE not in sys.path:  # vectordb runs with this interpreter's packages, Chroma with its wheel's (hnswlib...)
    if TARGET == "chromadb":
        sys.path.insert(0, SITE)
    else:
        sys.path.append(SITE)


def _stub_module(name: str, **attrs: Any) -> None:
    """Put an empty module called ``name`` (and its parents) in sys.modules unless it imports."""
    try:
        __import__(name)
        return
    except ImportError:
        pass
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sub = ".".join(parts[:i])
        if sub not in sys.modules:
            try:
                __import__(sub)
                continue
            except ImportError:
                sys.modules[sub] = types.ModuleType(sub)
    for key, value in attrs.items():
        setattr(sys.modules[name], key, value)


class _Instrumentor:
    """Chroma's server instruments FastAPI with OpenTelemetry; never used here."""

    @staticmethod
    def instrument_app(*args: Any, **kwargs: Any) -> None:
        return None


_stub_module("opentelemetry.instrumentation.fastapi", FastAPIInstrumentor=_Instrumentor)

import chromadb.test.conftest as chroma_conftest  # noqa: E402  (registers the hypothesis profiles)
from chromadb.config import DEFAULT_DATABASE  # noqa: E402


def _fresh_database(client: Any) -> None:
    """Chroma's ``create_isolated_database`` for vectordb: its one database, emptied."""
    client.reset()


if TARGET == "vectordb":  # before the test modules import it
    import vectordb.client

    chroma_conftest.create_isolated_database = _fresh_database
    # Chroma's invariants inspect ``client._server`` (its server object) for the segments of its
    # Python engine; vectordb's clients have none, so only their API-level checks run, as they
    # do for Chroma's own Rust-backed client.
    vectordb.client.Client._server = None
    # and a test prints ``collection._model["id"]`` (Chroma's private copy of get_model())
    vectordb.client.Collection._model = property(lambda self: self.get_model())
    # an invariant of the embeddings state machine reads the size of Chroma's own write log from
    # ``client._system`` when the client is "in process": vectordb has no such log to measure
    chroma_conftest.is_client_in_process = lambda client: False

_ITEMS_FILE = os.environ.get("CHROMA_HARNESS_ITEMS")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``database_name``: the default database only (as Chroma's conftest without multi-region)."""
    if "database_name" in metafunc.fixturenames:
        metafunc.parametrize("database_name", [pytest.param(DEFAULT_DATABASE, id="classic")], indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    chroma_conftest.pytest_configure(config)


def pytest_collection_finish(session: pytest.Session) -> None:
    if _ITEMS_FILE:
        partial = f"{_ITEMS_FILE}.{os.getpid()}"
        with open(partial, "w") as out:
            json.dump({item.nodeid: list(getattr(item, "fixturenames", [])) for item in session.items}, out)
        os.replace(partial, _ITEMS_FILE)  # every xdist worker collects the same items


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", DEFAULT_DATABASE))


@pytest.fixture(params=["memory", "disk"])
def client(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    """One client of the target, empty, that allows ``reset()``: in memory, or on disk in a
    folder of its own (as Chroma's conftest runs each test on an ephemeral and a persistent system)."""
    path = str(tmp_path / "store") if request.param == "disk" else None
    if TARGET == "vectordb":
        import vectordb
        from vectordb.config import Settings

        settings = Settings(allow_reset=True)
        made = vectordb.Client(settings) if path is None else vectordb.PersistentClient(path, settings=settings)
        yield made
        made.close()
    else:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        settings = ChromaSettings(allow_reset=True, anonymized_telemetry=False)
        made = chromadb.EphemeralClient(settings) if path is None else chromadb.PersistentClient(path, settings)
        made.reset()
        yield made
        made.reset()
        made.clear_system_cache()
