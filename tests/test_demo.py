"""The README's main job, on a few modules: builds a persisted store, answers, reopens."""

from vectordb import demo


def test_demo_builds_answers_and_reopens(tmp_path, capsys):
    path = str(tmp_path / "demo")
    questions = ["how do I turn a JSON string into a Python object", "read a compressed file"]
    demo.main(path, questions=questions, n_results=1, modules=("json", "gzip", "random", "queue"))
    first = capsys.readouterr().out
    assert "Embedding" in first and "Stored" in first
    answers = [line.split()[1] for line in first.splitlines() if line.startswith("  0.") or line.startswith("  1.")]
    assert answers[:2] == ["json.loads", "gzip.open"]

    demo.main(path, questions=questions[:1], n_results=1, modules=("json",))
    second = capsys.readouterr().out
    assert "Reopened" in second and "nothing to embed" in second
    assert "json.loads" in second
