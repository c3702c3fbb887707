"""The README's main job, on a few modules: builds a persisted store, answers, reopens; and
the exact-name question that vector search alone gets wrong and hybrid search gets right."""

import contextlib
import io
import os
import shlex
import subprocess
import sys

import pytest

from vectordb import demo

sys.path.insert(0, os.path.dirname(__file__))
from server_helpers import subprocess_env  # noqa: E402

MODULES = ("json", "gzip", "random", "queue", "shelve", "xml.etree.ElementTree")
QUESTIONS = ["how do I turn a JSON string into a Python object", "read a compressed file"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The demo's first run (it embeds with the real default model): its folder and output."""
    path = str(tmp_path_factory.mktemp("demo") / "demo")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        demo.main(path, questions=QUESTIONS, n_results=1, modules=MODULES)
    return path, out.getvalue()


def test_demo_builds_answers_and_reopens(built, capsys):
    path, first = built
    assert "Embedding" in first and "Stored" in first
    answers = [line.split()[1] for line in first.splitlines() if line.startswith("  0.") or line.startswith("  1.")]
    assert answers[:2] == ["json.loads", "gzip.open"]

    demo.main(path, questions=QUESTIONS[:1], n_results=1, modules=("json",))
    second = capsys.readouterr().out
    assert "Reopened" in second and "nothing to embed" in second
    assert "json.loads" in second


def test_exact_name_vector_search_misses_and_hybrid_finds(built):
    _, first = built
    header = first.index(f"? {demo.IDENTIFIER}   (an exact name")
    top = first[header:].splitlines()[1].split()  # "vector <id> | hybrid <id>" for rank 1
    assert top[0] == "vector" and top[2:4] == ["|", "hybrid"]
    assert top[1] != "xml.etree.ElementTree.iterparse"  # the embedding of a bare name lands elsewhere
    assert top[4] == "xml.etree.ElementTree.iterparse"  # BM25 matches the name; the fusion puts it first


def test_demo_ends_with_its_store_its_collection_and_a_command_that_works(built):
    """The closing lines name the folder and the collection, and the command they suggest runs as
    printed (through a POSIX shell, with this interpreter as ``vectordb``), saying while the model loads."""
    path, first = built
    lines = first.rstrip("\n").splitlines()
    assert lines[-4] == f"Store: {path}   collection: {demo.COLLECTION}" and lines[-3] == "Try next:", lines[-4:]
    query, info = (line.strip() for line in lines[-2:])
    assert query.startswith(f"vectordb query {demo.COLLECTION} \"{demo.NEXT_QUESTION}\" --path "), query
    assert info.startswith(f"vectordb info {demo.COLLECTION} --path "), info

    def shell(command: str) -> subprocess.CompletedProcess:
        assert command.startswith("vectordb ")
        line = f"{shlex.quote(sys.executable)} -m {command}"
        return subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=300, env=subprocess_env())

    answered = shell(query)
    assert answered.returncode == 0, answered.stderr
    assert answered.stderr.splitlines()[0] == "loading the embedding model all-MiniLM-L6-v2 ...", answered.stderr
    table = answered.stdout.splitlines()
    assert table[0].split()[:3] == ["#", "ID", "DISTANCE"] and len(table) == 6, answered.stdout
    described = shell(info)
    assert described.returncode == 0 and described.stderr == "", described.stderr
    assert demo.COLLECTION in described.stdout and str(len(list(demo.stdlib_docstrings(MODULES)))) in described.stdout


def test_demo_in_memory_says_nothing_was_kept():
    assert demo.closing_lines(None) == [f"The store was in memory (collection {demo.COLLECTION!r}): nothing was kept."]
    assert demo.next_commands("my demo") == [
        f"vectordb query {demo.COLLECTION} \"{demo.NEXT_QUESTION}\" --path \"my demo\"",
        f"vectordb info {demo.COLLECTION} --path \"my demo\"",
    ]
