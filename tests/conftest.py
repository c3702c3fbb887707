"""Shared fixtures: one ``client`` fixture that runs each test on every backend of :data:`BACKENDS`
(in memory, on disk, over HTTP to a ``vectordb serve`` server, on Milvus Lite).

Core tests use ``embedding_function=None`` with explicit embeddings, or the small
deterministic :class:`CountingEmbedding` below; none of them loads a model.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from typing import Any, Callable, Dict, Iterator, List

import numpy as np
import pytest

import vectordb


BACKENDS = ["memory", "disk", "http", "milvus"]
"""Every backend the shared API tests run on."""

SLOW_MODULES = {
    "test_benchmarks_smoke", "test_chroma_dropin", "test_chroma_import_paths", "test_chroma_surface",
    "test_chroma_wire", "test_crash", "test_damaged_db", "test_demo", "test_disk_full", "test_docs_examples",
    "test_ef_default", "test_ef_default_onnx", "test_ef_default_onnx_graph", "test_ef_instructor",
    "test_http_faults", "test_integration_langchain", "test_integration_llama_index", "test_io_faults",
    "test_locking", "test_milvus_real_server", "test_minilm_package", "test_multiprocess", "test_stateful",
    "test_threads", "test_fuzz_inputs", "test_recovery", "test_compact", "test_server", "test_text_growth",
    "test_shared_engine_gc", "test_quiet_reopen", "test_cli", "test_ef_security", "test_corrupt_index",
}
"""Test modules marked ``slow``: they start processes (SIGKILL, servers, several writers), build
wheels, load models or run Chroma's oracle. ``pytest -m "not slow"`` runs the rest, the fast tier."""


def pytest_collection_modifyitems(config: Any, items: List[Any]) -> None:
    """Mark every test of :data:`SLOW_MODULES` ``slow``."""
    for item in items:
        if item.module is not None and item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


class _MilvusLite:
    """One Milvus Lite file for the whole test session (starting one costs ~0.5 s). Each
    test folder gets a Milvus database of its own in it, so tests never see each other's
    collections, and a client opened again on the same folder sees what it left there."""

    def __init__(self) -> None:
        self.uri = ""
        self.admin: Any = None
        self.databases: Dict[str, str] = {}

    def database(self, folder: str) -> str:
        """The name of ``folder``'s database in the session's file (made on first use)."""
        if self.admin is None:
            import atexit
            import shutil
            import tempfile

            from pymilvus import MilvusClient as Admin

            session = tempfile.mkdtemp(prefix="vectordb-milvus-")
            atexit.register(shutil.rmtree, session, True)
            self.uri = os.path.join(session, "milvus.db")
            self.admin = Admin(self.uri)
        if folder not in self.databases:
            self.databases[folder] = f"t{len(self.databases)}"
            self.admin.create_database(self.databases[folder])
        return self.databases[folder]


MILVUS_LITE = _MilvusLite()


@contextlib.contextmanager
def backend_client(
    backend: str, folder: str, settings: Any = None, server_settings: Any = None
) -> Iterator[vectordb.Client]:
    """A client of ``backend`` whose data (if any) lives under ``folder``; closed afterwards.

    ``http`` is a :class:`vectordb.HttpClient` of a server on a free loopback port, serving a
    store on disk under ``folder`` (see :func:`server_helpers.serving_in_thread`).
    ``settings`` (a :class:`vectordb.config.Settings`) go to the client, and to the
    served store too unless ``server_settings`` are given.
    """
    if backend == "memory":
        c = vectordb.Client(settings)
    elif backend == "disk":
        c = vectordb.PersistentClient(os.path.join(folder, "db"), settings=settings)
    elif backend == "http":
        from server_helpers import serving_in_thread

        served_settings = settings if server_settings is None else server_settings
        served = vectordb.PersistentClient(os.path.join(folder, "served"), settings=served_settings)
        try:
            with serving_in_thread(served) as url:
                with vectordb.HttpClient(url, settings=settings) as c:
                    yield c
        finally:
            served.close()
        return
    elif backend == "milvus":
        database = MILVUS_LITE.database(os.path.abspath(folder))
        with vectordb.MilvusClient(MILVUS_LITE.uri, db_name=database, settings=settings) as c:
            yield c
        return
    else:
        raise ValueError(f"unknown backend {backend!r}")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def clients(tmp_path_factory) -> Iterator[Callable[[str], vectordb.Client]]:
    """One client per backend for a whole module, opened on first use (tests use collections of their own)."""
    with contextlib.ExitStack() as stack:
        opened: Dict[str, vectordb.Client] = {}

        def get(backend: str) -> vectordb.Client:
            if backend not in opened:
                opened[backend] = stack.enter_context(backend_client(backend, str(tmp_path_factory.mktemp(backend))))
            return opened[backend]

        yield get


@pytest.fixture(params=BACKENDS)
def client(request, tmp_path):
    """A fresh client on each backend: ``vectordb.Client()``, ``vectordb.PersistentClient(tmp_path)``,
    and ``vectordb.HttpClient`` to a server over a fresh store on disk."""
    with backend_client(request.param, str(tmp_path)) as c:
        yield c


@pytest.fixture(params=["memory", "disk"])
def local_client(request, tmp_path):
    """A fresh client of the local engine, for tests that look inside it (its store, its indexes)."""
    c = vectordb.Client() if request.param == "memory" else vectordb.PersistentClient(str(tmp_path / "db"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def shared_memory_client():
    """One in-memory client per test module, for big parametrised matrices (a new client costs ~0.1 s)."""
    c = vectordb.Client()
    yield c
    c.close()


@pytest.fixture
def memory_collection(shared_memory_client):
    """An empty embeddings-only collection in the module's shared in-memory client, removed afterwards."""
    col = shared_memory_client.create_collection("memory-collection", embedding_function=None)
    yield col
    shared_memory_client.delete_collection(col.name)


@pytest.fixture
def collection(client):
    """An empty collection that only takes explicit embeddings (l2)."""
    return client.create_collection("test-collection", embedding_function=None)


class CountingEmbedding:
    """A deterministic 4-d embedding of text that counts every text it embeds.

    Not registered and without ``get_config``: persisted as a custom function.
    """

    def __init__(self) -> None:
        self.calls: List[List[str]] = []
        self.query_calls: List[List[str]] = []

    @property
    def embedded(self) -> List[str]:
        """Every text embedded for storage, in order."""
        return [t for call in self.calls for t in call]

    def __call__(self, input: List[str]) -> List[List[float]]:
        self.calls.append(list(input))
        return [text_vector(t) for t in input]

    def embed_query(self, input: List[str]) -> List[List[float]]:
        self.query_calls.append(list(input))
        return [text_vector(t) for t in input]


def text_vector(text: str) -> List[float]:
    """A deterministic 4-d vector for ``text`` (same text, same vector)."""
    rng = np.random.default_rng(sum((i + 1) * ord(ch) for i, ch in enumerate(text)) + len(text))
    return rng.normal(size=4).astype(np.float32).tolist()


@pytest.fixture
def counting_ef() -> CountingEmbedding:
    return CountingEmbedding()


def snapshot(col) -> Dict:
    """Everything a collection holds, for before/after comparisons (embeddings as lists, so ``==`` compares)."""
    got = col.get(include=["embeddings", "metadatas", "documents"])
    return {
        "count": col.count(),
        "get": {**got, "embeddings": got["embeddings"].tolist()},
        "dimension": col.dimension,
    }


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a new Python process that sees this one's sys.path, offline."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )


def in_new_process(code: str) -> Any:
    """The JSON that ``code`` prints on its last line, run in a new Python process."""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
