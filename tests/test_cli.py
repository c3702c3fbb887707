"""The `vectordb` command line, run as a subprocess: every command, round trips, and bad arguments."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from typing import List, Optional

import numpy as np
import pytest

import vectordb
from vectordb import cli
from vectordb.cli import commands
from vectordb.cli.paths import PATH_ENV
from vectordb.types import CheckReport, Problem

sys.path.insert(0, os.path.dirname(__file__))
from conftest import snapshot  # noqa: E402
from server_helpers import ROOT, HashEmbedding, embed_text, subprocess_env  # noqa: E402

RECORDS = [
    {"id": "r1", "document": "the cat sat on the mat", "metadata": {"year": 2020, "tag": "pets", "ok": True}},
    {"id": "r2", "document": "a dog chased a ball", "metadata": {"year": 2021, "tag": "pets", "score": 0.5}},
    {"id": "r3", "document": "stocks fell sharply", "metadata": {"year": 2019, "tag": "news"}},
    {"id": "r4", "document": None, "metadata": None},
    {"id": "r5", "document": "rain tomorrow, ünïcode ☂", "metadata": {"tag": "weather"}},
]


def vector(i: int) -> List[float]:
    return np.random.default_rng(i).random(4, dtype=np.float32).tolist()


def run(*args: str, ok: bool = True, module: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "vectordb", *args] if module else [shutil.which("vectordb") or "vectordb", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=subprocess_env(), cwd=ROOT)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "error" in lines[0] and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "db")
    with vectordb.PersistentClient(path) as client:
        notes = client.create_collection("notes", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        for i, record in enumerate(RECORDS):
            notes.add(ids=record["id"], embeddings=vector(i), documents=record["document"],
                      metadatas=record["metadata"])
        client.create_collection("hashed", embedding_function=HashEmbedding(8)).add(ids="h1", documents="hello")
    return path


def test_ls_table_and_json(store):
    table = run("ls", "--path", store).stdout.splitlines()
    assert table[0].split() == ["NAME", "COUNT", "DIMENSION", "METRIC", "EMBEDDING", "FUNCTION"]
    assert table[1].split() == ["notes", "5", "4", "cosine", "none"]
    assert table[2].split() == ["hashed", "1", "8", "l2", "test-server-hash"]
    assert table[0].index("METRIC") == table[1].index("cosine") == table[2].index("l2")
    listed = json.loads(run("ls", "--path", store, "--json").stdout)
    assert [(c["name"], c["count"], c["dimension"], c["metric"], c["embedding_function"]) for c in listed] == [
        ("notes", 5, 4, "cosine", None), ("hashed", 1, 8, "l2", "test-server-hash")]


def test_info(store):
    info = json.loads(run("info", "hashed", "--path", store, "--json").stdout)
    assert info["embedding_function_config"] == {"dim": 8} and info["count"] == 1
    text = run("info", "notes", "--path", store).stdout
    assert "cosine" in text and "notes" in text


def test_info_and_ls_show_the_collection_s_real_space(tmp_path):
    """The space the index was built with (the catalog's), not one read from the metadata: a space given
    as configuration is not in the metadata, nor is the one implied by an embedding function."""
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        client.create_collection("configured", configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
        # what create_collection stores for a function whose default_space() is cosine: the metric, no metadata
        client.backend.create_collection("implied", None, None, None, "cosine")
    for name, space in (("configured", "ip"), ("implied", "cosine")):
        info = json.loads(run("info", name, "--path", path, "--json").stdout)
        assert (info["metric"], info["metadata"]) == (space, None)
        assert [line.split() for line in run("info", name, "--path", path).stdout.splitlines()
                if line.startswith("metric")] == [["metric", space]]
    listed = json.loads(run("ls", "--path", path, "--json").stdout)
    assert [(c["name"], c["metric"]) for c in listed] == [("configured", "ip"), ("implied", "cosine")]


def test_peek(store):
    lines = run("peek", "notes", "--path", store, "-n", "2").stdout.splitlines()
    assert lines[0].split() == ["ID", "DOCUMENT", "METADATA"] and len(lines) == 3
    assert lines[1].startswith("r1") and "the cat sat" in lines[1]
    peeked = json.loads(run("peek", "notes", "--path", store, "--json").stdout)
    assert peeked["ids"] == ["r1", "r2", "r3", "r4", "r5"] and len(peeked["embeddings"][0]) == 4


def test_query_by_vector_with_filter(store):
    result = json.loads(run("query", "notes", "--embedding", json.dumps(vector(1)), "--path", store,
                            "-n", "2", "--json").stdout)
    assert result["ids"][0] == "r2" and result["distances"][0] == pytest.approx(0, abs=1e-5)
    filtered = json.loads(run("query", "notes", "--embedding", json.dumps(vector(1)), "--path", store,
                              "--where", '{"tag": "news"}', "--json").stdout)
    assert filtered["ids"] == ["r3"]
    table = run("query", "notes", "--embedding", json.dumps(vector(0)), "--path", store, "-n", "1").stdout
    assert table.splitlines()[1].split()[:2] == ["1", "r1"]


def test_query_by_text_uses_the_collections_function(store, capsys):
    assert cli.main(["query", "hashed", "hello", "--path", store, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ids"] == ["h1"] and result["distances"][0] == pytest.approx(0, abs=1e-5)


@pytest.mark.parametrize("args, fragment", [
    (["query", "notes", "cats"], "no embedding function"),
    (["query", "notes", "--embedding", "[1, 2"], "--embedding: not valid JSON"),
    (["query", "notes", "--embedding", "[1, 2]"], "dimension"),
    (["query", "notes", "--embedding", "[1, 2, 3, 4]", "--where", '{"$or": []}'], "$or"),
    (["query", "notes"], "give a text or --embedding"),
    (["info", "missing-one"], "does not exist"),
    (["peek", "notes", "-n", "0"], "-n"),
    (["peek", "notes", "-n", "many"], "invalid int value"),
    (["export", "notes", "out.txt"], "--format"),
    (["frobnicate"], "invalid choice"),
    (["ls", "--bogus"], "unrecognized arguments"),
    (["import", "notes"], "required"),
])
def test_bad_arguments_are_one_line_errors(store, args, fragment):
    assert_one_line_error(run(*args, "--path", store, ok=False), fragment)


def test_missing_store_is_an_error(tmp_path):
    assert_one_line_error(run("ls", "--path", str(tmp_path / "nothing"), ok=False), "no store")
    assert not (tmp_path / "nothing").exists()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_export_then_import_gives_identical_records(store, tmp_path, fmt):
    target = str(tmp_path / f"notes.{fmt}")
    assert "exported 5 records" in run("export", "notes", target, "--path", store, "--batch-size", "2").stdout
    new_store = str(tmp_path / "copy")
    out = run("import", "copy", target, "--path", new_store, "--embedding-function", "none", "--metric", "cosine",
              "--batch-size", "2")
    assert "imported 5 records into 'copy'" in out.stdout
    with vectordb.PersistentClient(store, read_only=True) as a, vectordb.PersistentClient(new_store) as b:
        copied = b.get_collection("copy")
        assert snapshot(copied)["get"] == snapshot(a.get_collection("notes"))["get"]
        assert copied.metadata == {"hnsw:space": "cosine"}
        assert copied.query(query_embeddings=vector(2), n_results=1)["ids"] == [["r3"]]


def test_export_jsonl_rows(store, tmp_path):
    target = tmp_path / "rows.jsonl"
    run("export", "notes", str(target), "--path", store)
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["r1", "r2", "r3", "r4", "r5"]
    assert rows[4]["document"] == RECORDS[4]["document"] and rows[3]["metadata"] is None
    assert rows[0]["embedding"] == vector(0)


def test_import_csv_with_fields(tmp_path):
    source = tmp_path / "items.csv"
    with open(source, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["key", "text", "year", "price", "fresh", "note", "vec"])
        writer.writerow(["007", "apples", "2020", "1.5", "true", "", json.dumps([1.0, 0.0])])
        writer.writerow(["008", "pears", "2021", "2", "false", "ripe", json.dumps([0.0, 1.0])])
    path = str(tmp_path / "db")
    run("import", "fruit", str(source), "--path", path, "--id-field", "key", "--text-field", "text",
        "--metadata-fields", "year,price,fresh,note", "--embedding-field", "vec", "--embedding-function", "none")
    with vectordb.PersistentClient(path) as client:
        got = client.get_collection("fruit").get(include=["metadatas", "documents", "embeddings"])
    assert got["ids"] == ["007", "008"] and got["documents"] == ["apples", "pears"]
    assert got["metadatas"] == [{"year": 2020, "price": 1.5, "fresh": True},
                                {"year": 2021, "price": 2, "fresh": False, "note": "ripe"}]
    assert got["embeddings"].tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_import_embeds_texts_with_the_collections_function(tmp_path, capsys):
    source = tmp_path / "texts.jsonl"
    source.write_text("\n".join(json.dumps({"id": f"t{i}", "text": t, "lang": "en"})
                                for i, t in enumerate(["red fox", "blue whale", "green tea"])) + "\n")
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        client.create_collection("texts", embedding_function=HashEmbedding(8))
    assert cli.main(["import", "texts", str(source), "--path", path, "--text-field", "text", "--no-progress"]) == 0
    assert "imported 3 records" in capsys.readouterr().out
    with vectordb.PersistentClient(path) as client:
        got = client.get_collection("texts").get(include=["embeddings", "metadatas"])
    np.testing.assert_allclose(got["embeddings"][1], embed_text("blue whale"), rtol=1e-6)
    assert got["metadatas"] == [{"lang": "en"}] * 3


@pytest.mark.parametrize("content, args, fragment", [
    ('{"id": "a", "embedding": [1.0]}\n{"id": "a", "embedding": [2.0]}\n', [], "repeated"),
    ('{"id": "a", "embedding": [1.0]}\nnot json\n', [], "line 2"),
    ('{"document": "x", "embedding": [1.0]}\n', [], "no id"),
    ('{"id": "a", "document": "x"}\n', ["--embedding-function", "none"], "--embedding-field"),
    ('{"id": "a", "embedding": [1.0], "tags": [1, "x"]}\n', [], "tags"),
    ('{"id": "a", "embedding": [1.0, 2.0]}\n', [], "dimension"),
])
def test_bad_imports_change_nothing(store, tmp_path, content, args, fragment):
    source = tmp_path / "bad.jsonl"
    source.write_text(content)
    before = run("ls", "--path", store, "--json").stdout
    extra = [] if "--embedding-function" in args or fragment == "dimension" else ["--embedding-function", "none"]
    name = "notes" if fragment == "dimension" else "fresh-one"
    assert_one_line_error(run("import", name, str(source), "--path", store, *args, *extra, ok=False), fragment)
    assert run("ls", "--path", store, "--json").stdout == before


def test_parquet_needs_pyarrow(store, tmp_path):
    code = ("import sys; sys.modules['pyarrow'] = None; from vectordb.cli import main; "
            f"sys.exit(main(['export', 'notes', {str(tmp_path / 'x.parquet')!r}, '--path', {store!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env=subprocess_env(), cwd=ROOT)
    assert_one_line_error(result, "vectordb[parquet]")


def test_check_and_compact(store, tmp_path):
    path = str(tmp_path / "maint")
    shutil.copytree(store, path)
    checked = json.loads(run("check", "--path", path, "--json").stdout)
    assert checked["ok"] is True and checked["collections_checked"] == 2
    assert "no problems" in run("check", "--path", path).stdout
    compacted = json.loads(run("compact", "notes", "--path", path, "--json").stdout)
    assert compacted["indexes_rebuilt"] == 1
    assert "indexes rebuilt" in run("compact", "--path", path).stdout


def test_demo_calls_vectordb_demo_main(monkeypatch, tmp_path):
    import vectordb.demo

    called = []
    monkeypatch.setattr(vectordb.demo, "main", lambda path: called.append(path))
    assert cli.main(["demo", "--path", str(tmp_path)]) == 0
    assert called == [str(tmp_path)]
    assert "demo" in run("demo", "--help").stdout


def test_console_script_and_help_examples():
    assert run("--version", module=False).stdout.strip() == f"vectordb {vectordb.__version__}"
    for command, epilog in cli.EPILOGS.items():
        assert epilog in " ".join(run(command, "--help").stdout.split()), command
    help_text = run("--help").stdout
    for command in cli.EPILOGS:
        assert command in help_text


def run_without_path(*args: str, cwd: str, env_path: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run ``vectordb ARGS`` in ``cwd`` with ``$VECTORDB_PATH`` set to ``env_path`` (unset when None)."""
    env = subprocess_env()
    env.pop(PATH_ENV, None)
    if env_path is not None:
        env[PATH_ENV] = env_path
    return subprocess.run([sys.executable, "-m", "vectordb", *args], capture_output=True, text=True, timeout=120,
                          env=env, cwd=cwd)


def test_missing_default_store_says_which_path_and_how_to_choose(tmp_path):
    result = run_without_path("ls", cwd=str(tmp_path))
    assert_one_line_error(result, f"no store at {tmp_path / 'vectordb_data'}")
    line = result.stderr.strip()
    assert "the default folder ./vectordb_data" in line and "neither --path nor $VECTORDB_PATH" in line, line
    assert "--path DIR" in line and "VECTORDB_PATH environment variable" in line, line
    assert not (tmp_path / "vectordb_data").exists(), "a read creates no store"


def test_missing_store_named_by_the_environment_says_so(tmp_path):
    result = run_without_path("info", "notes", cwd=str(tmp_path), env_path="elsewhere")
    assert_one_line_error(result, f"no store at {tmp_path / 'elsewhere'} (from $VECTORDB_PATH=elsewhere)")
    given = run_without_path("peek", "notes", "--path", "typo", cwd=str(tmp_path), env_path="elsewhere")
    assert_one_line_error(given, f"no store at {tmp_path / 'typo'} (from --path typo)")


def test_the_environment_names_the_store_and_path_wins_over_it(store, tmp_path):
    listed = json.loads(run_without_path("ls", "--json", cwd=str(tmp_path), env_path=store).stdout)
    assert [c["name"] for c in listed] == ["notes", "hashed"]
    other = tmp_path / "other"
    with vectordb.PersistentClient(str(other)) as client:
        client.create_collection("only-here", embedding_function=None)
    listed = json.loads(run_without_path("ls", "--json", "--path", str(other), cwd=str(tmp_path),
                                         env_path=store).stdout)
    assert [c["name"] for c in listed] == ["only-here"]


def test_help_tells_the_default_path_and_the_environment_variable():
    main_help = " ".join(run("--help").stdout.split())
    assert "$VECTORDB_PATH" in main_help and "./vectordb_data" in main_help and "--path DIR" in main_help
    for command in ("ls", "query", "check", "import"):
        command_help = " ".join(run(command, "--help").stdout.split())
        assert "--path DIR" in command_help, command
        assert "(default: $VECTORDB_PATH if set, else ./vectordb_data)" in command_help, command


def test_counts_are_singular_or_plural(store, tmp_path):
    assert run("check", "--path", store).stdout.startswith("checked 2 collections: no problems")
    one = str(tmp_path / "one")
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps({"id": "a", "embedding": [1.0, 0.0]}) + "\n")
    imported = run("import", "solo", str(source), "--path", one, "--embedding-function", "none").stdout
    assert "imported 1 record into 'solo' (1 record now)" in imported
    assert run("check", "--path", one).stdout.startswith("checked 1 collection: no problems")
    assert "exported 1 record of 'solo'" in run("export", "solo", str(tmp_path / "o.jsonl"), "--path", one).stdout
    assert "1 index rebuilt" in run("compact", "--path", one).stdout
    assert str(CheckReport(collections_checked=1, problems=[Problem("x", "bad")])).startswith(
        "checked 1 collection: 1 problem\n")


@pytest.mark.parametrize("args, announced", [
    (["query", "hashed", "hello"], True),
    (["query", "hashed", "hello", "--mode", "hybrid"], True),
    (["query", "hashed", "hello", "--json"], False),
    (["query", "hashed", "hello", "--mode", "text"], False),
    (["query", "hashed", "--embedding", json.dumps([0.0] * 8)], False),
    (["ls"], False),
])
def test_a_notice_on_stderr_while_the_model_loads(store, capsys, monkeypatch, args, announced):
    """Only a command that embeds a text says so, and not for --json (a program reads the output)."""
    monkeypatch.setattr(commands, "model_to_load", lambda function: "all-MiniLM-L6-v2")
    assert cli.main([*args, "--path", store]) == 0
    err = capsys.readouterr().err
    assert err == ("loading the embedding model all-MiniLM-L6-v2 ...\n" if announced else ""), err


def test_import_announces_the_model_unless_quiet(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(commands, "model_to_load", lambda function: "all-MiniLM-L6-v2")
    source = tmp_path / "texts.jsonl"
    source.write_text(json.dumps({"id": "t1", "text": "red fox"}) + "\n")
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        client.create_collection("texts", embedding_function=HashEmbedding(8))
    assert cli.main(["import", "texts", str(source), "--path", path, "--text-field", "text"]) == 0
    assert "loading the embedding model all-MiniLM-L6-v2 ..." in capsys.readouterr().err
    assert cli.main(["import", "texts", str(source), "--path", path, "--text-field", "text", "--no-progress"]) == 0
    assert "loading the embedding model" not in capsys.readouterr().err


def test_which_functions_load_a_local_model():
    from vectordb.embedding_functions.sentence_transformer import (
        DefaultEmbeddingFunction,
        SentenceTransformerEmbeddingFunction,
    )

    assert commands.model_to_load(DefaultEmbeddingFunction()) == "all-MiniLM-L6-v2"
    assert commands.model_to_load(SentenceTransformerEmbeddingFunction("some/model")) == "some/model"
    assert commands.model_to_load(HashEmbedding(8)) is None
    assert commands.model_to_load(None) is None
