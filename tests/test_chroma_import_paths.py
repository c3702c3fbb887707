"""Chroma's module paths (``chromadb.api``, ``chromadb.api.models.Collection``, ``chromadb.api.types``)
exist under vectordb, as the same classes, and the runner of Chroma's API tests rewrites imports as it says.

Real Chroma code (its MCP server, LangChain-style wrappers, typed apps) imports
``from chromadb.api import ClientAPI``, ``from chromadb.api.models.Collection import
Collection`` and the domain types from ``chromadb.api.types``; with ``import vectordb as
chromadb`` and ``from vectordb.api... import`` these must load and name vectordb's own classes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import vectordb
from vectordb.errors import InvalidArgumentError

RUNNER = Path(__file__).parent / "chroma_scripts" / "run_chroma_api_tests.py"


def test_client_api_and_collection_are_vectordb_s_classes():
    from vectordb.api import BaseAPI, ClientAPI, ServerAPI
    from vectordb.api.models.Collection import Collection

    assert ClientAPI is BaseAPI is ServerAPI is vectordb.Client
    assert Collection is vectordb.Collection
    assert isinstance(vectordb.EphemeralClient(), ClientAPI)
    assert vectordb.api.ClientAPI is vectordb.Client  # reachable as an attribute after ``import vectordb``


def test_the_types_chroma_code_imports():
    from vectordb.api import types as api_types
    from vectordb.api.types import (  # noqa: F401  (each name must import)
        CollectionMetadata, DefaultEmbeddingFunction, Document, Documents, Embeddable, Embedding, EmbeddingFunction,
        Embeddings, GetResult, ID, IDs, Include, Metadata, Metadatas, OneOrMany, QueryResult, Space, URIs, Where,
        WhereDocument,
    )

    assert EmbeddingFunction is vectordb.EmbeddingFunction and QueryResult is vectordb.QueryResult
    assert GetResult is vectordb.GetResult and Documents is vectordb.Documents
    assert set(QueryResult.__annotations__) >= {"ids", "distances", "documents", "metadatas", "embeddings", "uris",
                                               "data", "included"}
    assert set(api_types.__all__) <= set(dir(api_types))

    class Letters(EmbeddingFunction[Documents]):  # typed as Chroma code types its functions
        def __call__(self, input: Documents) -> Embeddings:
            return [np.array([float(len(t)), 1.0]) for t in input]

    col = vectordb.Client().create_collection("typed", embedding_function=Letters())
    col.add(ids=["a"], documents=["abc"])
    assert col.get(include=["embeddings"])["embeddings"].tolist() == [[3.0, 1.0]]


def test_normalize_and_validate_embeddings():
    from vectordb.api.types import normalize_embeddings, validate_embeddings

    assert normalize_embeddings(None) is None
    one = normalize_embeddings([1, 2.5])
    assert len(one) == 1 and one[0].tolist() == [1.0, 2.5]
    assert [r.tolist() for r in normalize_embeddings([[1, 2], [3, 4]])] == [[1.0, 2.0], [3.0, 4.0]]
    assert len(normalize_embeddings(np.ones((3, 2)))) == 3
    rows = [np.ones(2, dtype=np.int64)]
    assert validate_embeddings(rows) == rows
    for bad in ([], ["a", "b"], [[True, False]], "text"):
        with pytest.raises(InvalidArgumentError, match="Expected embeddings to be a list of floats or ints"):
            normalize_embeddings(bad)
    for bad, match in (([], "non-empty"), ([np.array([])], r"embeddings\[0\]: expected a 1-dimensional"),
                       ([np.array(["x"])], r"embeddings\[0\]: expected ints or floats"), ([[1.0]], "numpy array")):
        with pytest.raises(InvalidArgumentError, match=match):
            validate_embeddings(bad)


@pytest.fixture(scope="module")
def runner():
    spec = importlib.util.spec_from_file_location("run_chroma_api_tests", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_the_runner_changes_only_the_public_imports(runner):
    source = (
        "import chromadb\n"
        "import chromadb.server.fastapi\n"
        "import chromadb.api.types as types\n"
        "from chromadb.api.fastapi import FastAPI\n"
        "from chromadb.api.types import (\n    Documents,\n)\n"
        "from chromadb.config import Settings, System\n"
        "from chromadb.test.conftest import reset\n"
        "    from chromadb.errors import NotFoundError\n"
    )
    assert runner.to_vectordb(source) == (
        "import vectordb as chromadb\n"
        "import chromadb.server.fastapi as _chromadb_server_fastapi\n"  # never rebinds the name chromadb
        "import vectordb.api.types as types\n"
        "from chromadb.api.fastapi import FastAPI\n"
        "from vectordb.api.types import (\n    Documents,\n)\n"
        "from chromadb.config import System\nfrom vectordb.config import Settings\n"
        "from chromadb.test.conftest import reset\n"
        "    from vectordb.errors import NotFoundError\n"
    )


def test_the_runner_counts_from_a_junit_report(runner, tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="test_api" name="test_add[memory]"/>'
        '<testcase classname="test_api" name="test_peek[memory]"><failure message="boom"/></testcase>'
        '<testcase classname="api__test_types.TestX" name="test_y"><skipped message="no"/></testcase>'
        "</testsuite></testsuites>"
    )
    found = runner.outcomes(report)
    assert found == {"test_api.py::test_add[memory]": ("passed", ""), "test_api.py::test_peek[memory]": ("failed", "boom"),
                     "api__test_types.py::TestX::test_y": ("skipped", "no")}
    assert runner.summarize("all", found) == "all: 3 cases, 1 passed, 1 failed, 0 errors, 1 skipped"


def test_the_runner_compares_both_systems_on_identical_cases(runner):
    n_results = "t.py::test_invalid_n_results_param[memory]"
    vectordb = {"t.py::test_a[memory]": ("passed", ""), "t.py::test_a[disk]": ("passed", ""),
                n_results: ("failed", "vectordb.errors.InvalidArgumentError: n_results\nmore"),
                "t.py::test_search[memory]": ("skipped", "Search API only available in distributed mode"),
                "t.py::test_xfail[memory]": ("passed", ""), "t.py::test_internal": ("failed", "x"),
                "t.py::test_vectordb_only[memory]": ("passed", "")}
    chromadb = {"t.py::test_a[memory]": ("passed", ""), "t.py::test_a[disk]": ("failed", "httpx.ConnectError: no"),
                n_results: ("passed", ""),
                "t.py::test_search[memory]": ("skipped", "Search API only available in distributed mode"),
                "t.py::test_xfail[memory]": ("skipped", "expected   to fail"), "t.py::test_internal": ("passed", "")}
    clients = set(vectordb) - {"t.py::test_internal"}
    lines = runner.compare({"vectordb": (vectordb, clients),
                            "chromadb": (chromadb, clients - {"t.py::test_vectordb_only[memory]"})})
    assert lines == [
        "client cases collected for vectordb only (left out): 1: t.py::test_vectordb_only[memory]",
        "identical client cases (collected for vectordb and chromadb): 5 (of 4 test functions, each case run in memory "
        "and on disk)",
        "  vectordb: 5 cases, 3 passed, 1 failed, 0 errors, 1 skipped",
        "  chromadb: 5 cases, 2 passed, 1 failed, 0 errors, 2 skipped",
        "counted client cases (identical, and not skipped by chromadb's own run): 3 (2 skipped there: "
        "1 x Search API only available in distributed mode; 1 x expected to fail)",
        "  vectordb: 2 passed of 3 counted client cases",
        "  chromadb: 2 passed of 3 counted client cases",
        "counted client cases that do not pass:",
        f"  vectordb FAILED {n_results} (chromadb: passed)",
        "      reason: vectordb.errors.InvalidArgumentError: n_results",
        "      why: " + runner.WHY["vectordb"]["test_invalid_n_results_param"],
        "  chromadb FAILED t.py::test_a[disk] (vectordb: passed)",
        "      reason: httpx.ConnectError: no",
    ]
