"""The README's main job, on a few modules: builds a persisted store, answers, reopens; and
the exact-name question that vector search alone gets wrong and hybrid search gets right."""

import contextlib
import io

import pytest

from vectordb import demo

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
