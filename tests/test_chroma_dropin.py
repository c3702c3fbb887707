"""A script written for Chroma's client runs on vectordb with only its imports changed, and prints the same.

tests/chroma_scripts/library.py is an app written against chromadb 1.5.9: a
PersistentClient with Settings, ``configuration=``, list-valued metadata with
``$contains`` / ``$not_contains``, results keyed ``included`` with numpy embeddings,
``query(ids=...)``, ``delete`` results, a handle without a function, ``NotFoundError``,
``chromadb.utils.embedding_functions``, an ``EmbeddingFunction`` subclass and
``reset()``. The SAME text runs under the Chroma oracle (``/opt/chroma-venv``) and
under vectordb with its import lines rewritten, each in a new process on a store of its
own; their outputs must be equal line for line. Without the oracle's venv the
comparison is skipped (saying why), and the vectordb run is still checked on its own.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent / "chroma_scripts" / "library.py"
ORACLE = Path("/opt/chroma-venv/bin/python")
ROOT = Path(__file__).resolve().parent.parent


def as_vectordb(text: str) -> str:
    """The script with only its imports changed: ``import chromadb`` and ``from chromadb... import``."""
    text = re.sub(r"^import chromadb$", "import vectordb as chromadb", text, flags=re.M)
    return re.sub(r"^from chromadb(\.| )", r"from vectordb\1", text, flags=re.M)


def _run(python: str, script: Path, store: Path, pythonpath: str = "") -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": pythonpath}
    proc = subprocess.run([python, str(script), str(store)], capture_output=True, text=True, env=env, timeout=180,
                          cwd=str(store.parent))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_only_the_imports_change():
    original = SCRIPT.read_text()
    changed = as_vectordb(original)
    diff = [(a, b) for a, b in zip(original.splitlines(), changed.splitlines()) if a != b]
    assert len(diff) == 5 and all(a.startswith(("import chromadb", "from chromadb")) for a, _ in diff)
    assert all(b.startswith(("import vectordb as chromadb", "from vectordb")) for _, b in diff)


@pytest.fixture(scope="module")
def vectordb_output(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("dropin-vectordb")
    script = folder / "app.py"
    script.write_text(as_vectordb(SCRIPT.read_text()))
    return _run(sys.executable, script, folder / "db", pythonpath=str(ROOT))


def test_the_script_runs_on_vectordb(vectordb_output):
    lines = vectordb_output.splitlines()
    assert lines[0] == "configuration {'space': 'cosine', 'ef_construction': 64, 'ef_search': 32, 'max_neighbors': 8}"
    assert "contains classic ['dune', 'emma']" in lines
    assert "embeddings ndarray (2, 4) float64" in lines
    assert "missing True Collection [missing] does not exist" in lines
    assert lines[-1] == "reset True []"


@pytest.mark.skipif(not ORACLE.exists(), reason=f"the Chroma oracle ({ORACLE}, chromadb 1.5.9) is not installed here")
def test_chroma_and_vectordb_print_the_same(vectordb_output, tmp_path):
    check = subprocess.run([str(ORACLE), "-c", "import chromadb; print(chromadb.__version__)"],
                           capture_output=True, text=True, timeout=120)
    if check.returncode != 0:
        pytest.skip(f"the Chroma oracle at {ORACLE} cannot import chromadb: {check.stderr[-300:]}")
    assert check.stdout.strip() == "1.5.9"
    chroma_output = _run(str(ORACLE), SCRIPT, tmp_path / "db")
    assert chroma_output.splitlines() == vectordb_output.splitlines()
