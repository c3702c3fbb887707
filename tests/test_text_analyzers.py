"""The text analyzers: ``identifiers`` (a new collection's default) keeps identifiers whole as
well as split, so an exact code or name outranks documents sharing only a part of it (the
README's ``ERR_1042 on save`` example, text and hybrid); its terms equal an independent
implementation's; collections made before it keep ``default`` (read-only, after reopen, and
beside an older vectordb writing the catalog); ``english`` without PyStemmer is refused at
creation with a MissingDependencyError, and nothing is created."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import uuid
import zlib
from typing import List

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vectordb
from vectordb.errors import InvalidArgumentError
from vectordb.persistence.store import DB_FILE
from vectordb.text.analyzer import analyzer, default_terms, identifier_terms

sys.path.insert(0, os.path.dirname(__file__))
from conftest import run_python  # noqa: E402
from bm25_oracle import oracle, terms  # noqa: E402

# -- the terms ------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("ERR_1042", ["err", "1042", "err_1042"]),
    ("max_batch_size", ["max", "batch", "size", "max_batch_size"]),
    ("getElementById", ["getelementbyid", "get", "element", "by", "id"]),
    ("os.path.join", ["os", "path", "join", "os.path.join"]),
    ("v2.1.0", ["v2", "1", "0", "v2.1.0"]),
    ("HTTPServer", ["httpserver", "http", "server"]),
    ("Base64Encode", ["base64encode", "base64", "encode"]),
    ("getElement_byId", ["getelement", "byid", "getelement_byid", "get", "element", "by", "id"]),
    ("ISO-8601 and 2024-01-05", ["iso", "8601", "and", "2024", "01", "05", "iso-8601", "2024-01-05"]),
    ("Saving the file failed.", ["saving", "the", "file", "failed"]),  # plain words: as default
    ("__init__ a..b a--b -5 NASA", ["init", "a", "b", "a", "b", "5", "nasa"]),  # no identifier here
    ("Ünïcode_wörds façadeName", ["ünïcode", "wörds", "façadename", "ünïcode_wörds", "façade", "name"]),
])
def test_identifier_terms(text, expected):
    assert identifier_terms(text) == expected
    assert analyzer("identifiers").terms(text) == expected


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZb9_.- ,İΣσßÉé数x", max_size=40))
def test_identifier_terms_equal_the_independent_implementation_and_extend_default(text):
    got = identifier_terms(text)
    assert got == terms(text, "identifiers")
    assert got[: len(default_terms(text))] == default_terms(text)  # whatever matched before still does


def test_english_and_default_are_unchanged():
    """A saved index records only its analyzer's name: a name's terms must never change."""
    assert default_terms("ERR_1042 getElementById os.path.join") == [
        "err", "1042", "getelementbyid", "os", "path", "join"]
    assert analyzer("english").terms("Running ERR_1042 getElementById") == ["run", "err", "1042", "getelementbyid"]


# -- ranking: the README's example ----------------------------------------------------

README_DOCS = {
    "a": "ERR_2000 happens on load",
    "b": "Saving the file failed with ERR_1042",
    "c": "Loading is fast",
    "d": "How to save a file",
}
QUERY = "ERR_1042 on save"


class WordEmbedding:
    """A tiny deterministic "semantic" embedding: each word's first three letters hashed into
    64 dimensions, stop words and digits unseen (as a code is to many embedding models)."""

    STOP = {"a", "an", "the", "on", "to", "is", "with", "how", "of", "in"}

    def __call__(self, input: List[str]) -> List[List[float]]:
        out = []
        for text in input:
            vector = [0.0] * 64
            for word in re.findall(r"[a-z]+", text.lower()):
                if word not in self.STOP:
                    vector[zlib.crc32(word[:3].encode()) % 64] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            out.append([x / norm for x in vector])
        return out


@pytest.mark.parametrize("backend", ["memory", "disk", "http"])
def test_the_readme_example_finds_the_exact_code_first(clients, backend):
    client = clients(backend)
    col = client.create_collection(f"readme-{backend}", embedding_function=WordEmbedding())
    assert col.metadata is None  # the analyzer is recorded in the catalog, not added to the user's metadata
    col.add(ids=list(README_DOCS), documents=list(README_DOCS.values()))
    text = col.query(query_texts=[QUERY], mode="text")
    assert text["ids"][0][0] == "b"
    assert text["ids"] == [[i for i, _ in oracle(README_DOCS, QUERY)]]
    assert text["scores"][0] == pytest.approx([s for _, s in oracle(README_DOCS, QUERY)], rel=1e-5)
    assert text["scores"][0][0] > text["scores"][0][1]
    hybrid = col.query(query_texts=[QUERY], mode="hybrid")
    assert hybrid["ids"][0][0] == "b"
    assert hybrid["scores"][0][0] == pytest.approx(2 / 61)  # first in both rankings
    assert hybrid["scores"][0][0] > hybrid["scores"][0][1]

    # the issue, as the "default" analyzer still gives it: ERR_2000 (0.86) above ERR_1042 (0.74)
    old = client.create_collection(f"readme-default-{backend}", metadata={"text:analyzer": "default"},
                                   embedding_function=WordEmbedding())
    old.add(ids=list(README_DOCS), documents=list(README_DOCS.values()))
    got = old.query(query_texts=[QUERY], mode="text")
    assert got["ids"][0][:2] == ["a", "b"] and [round(s, 2) for s in got["scores"][0][:2]] == [0.86, 0.74]


@pytest.mark.parametrize("name, part_sharing", [
    ("ERR_1042", "err 1042 and more"),
    ("max_batch_size", "the max size of a batch"),
    ("getElementById", "get the element by its id"),
    ("os.path.join", "the os joins a path"),
    ("v2.1.0", "v2 brought 1 fix and 0 regressions"),
])
def test_an_exact_identifier_outranks_documents_sharing_its_parts(memory_collection, name, part_sharing):
    docs = {"exact": f"see {name} here", "parts": part_sharing, "other": "nothing related"}
    memory_collection.add(ids=list(docs), embeddings=[[1.0, 0.0]] * 3, documents=list(docs.values()))
    for query in (name, name.lower(), f"{name} please"):
        got = memory_collection.query(query_texts=query, mode="text")
        scores = got["scores"][0] + [0.0]  # "getelementbyid" finds only the exact document
        assert got["ids"][0][0] == "exact" and scores[0] > scores[1], (query, got)


# -- choosing, recording and keeping the analyzer -------------------------------------


def test_a_new_collection_records_identifiers_and_it_cannot_change(shared_memory_client):
    col = shared_memory_client.create_collection("recorded", embedding_function=None)
    assert col.metadata is None
    col.modify(metadata={"owner": "me", "text:analyzer": "identifiers"})  # the same value: accepted
    assert col.metadata == {"owner": "me", "text:analyzer": "identifiers"}
    with pytest.raises(InvalidArgumentError, match="cannot change from 'identifiers'"):
        col.modify(metadata={"text:analyzer": "default"})
    named = shared_memory_client.create_collection("named", metadata={"text:analyzer": "default"},
                                                   embedding_function=None)
    with pytest.raises(InvalidArgumentError, match="cannot change from 'default'"):
        named.modify(metadata={"text:analyzer": "identifiers"})


def _store_made_before_analyzers(path: str) -> None:
    """A store as vectordb left it before analyzers were recorded: the same tables, catalog
    rows and records, without the ``text_analyzer:<id>`` rows of ``store_info`` (made here,
    then those rows deleted)."""
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("legacy", embedding_function=None)
        col.add(ids=list(README_DOCS), embeddings=[[float(k), 1.0] for k in range(4)],
                documents=list(README_DOCS.values()))
        stems = client.create_collection("legacy-en", metadata={"text:analyzer": "english"}, embedding_function=None)
        stems.add(ids=["r"], embeddings=[[0.0, 1.0]], documents=["running"])
    assert not os.path.exists(os.path.join(path, "text"))  # no text index was built with the new analyzer
    con = duckdb.connect(os.path.join(path, DB_FILE))
    assert con.execute("DELETE FROM store_info WHERE key LIKE 'text_analyzer:%'").fetchone()[0] == 2
    con.close()


def _recorded(path: str) -> list:
    """The analyzers recorded in the store, by collection name (None: of no collection)."""
    con = duckdb.connect(os.path.join(path, DB_FILE), read_only=True)
    try:
        return con.execute("SELECT c.name, s.value FROM store_info s LEFT JOIN collections c "
                           "ON s.key = 'text_analyzer:' || c.id WHERE s.key LIKE 'text_analyzer:%' "
                           "ORDER BY c.position").fetchall()
    finally:
        con.close()


def _ranks_as(col, analyzer_name: str) -> None:
    got = col.query(query_texts=[QUERY], mode="text")
    want = oracle(README_DOCS, QUERY, analyzer=analyzer_name)
    assert got["ids"] == [[i for i, _ in want]]
    assert got["scores"][0] == pytest.approx([s for _, s in want], rel=1e-5)


def test_a_collection_made_before_analyzers_were_recorded_keeps_default(tmp_path):
    path = str(tmp_path / "db")
    _store_made_before_analyzers(path)
    with vectordb.PersistentClient(path, read_only=True) as client:
        legacy = client.get_collection("legacy", embedding_function=None)
        assert legacy.metadata is None
        _ranks_as(legacy, "default")  # ERR_2000 first, as it always ranked
        assert client.check().ok
    assert _recorded(path) == []  # a read-only open wrote nothing
    with vectordb.PersistentClient(path) as client:
        legacy = client.get_collection("legacy", embedding_function=None)
        _ranks_as(legacy, "default")
        assert client.get_collection("legacy-en", embedding_function=None).query(
            query_texts="runs", mode="text")["ids"] == [["r"]]
        with pytest.raises(InvalidArgumentError, match="cannot change from 'default'"):
            legacy.modify(metadata={"text:analyzer": "identifiers"})
        fresh = client.create_collection("fresh", embedding_function=None)
        fresh.add(ids=list(README_DOCS), embeddings=[[float(k), 1.0] for k in range(4)],
                  documents=list(README_DOCS.values()))
        _ranks_as(fresh, "identifiers")
    assert _recorded(path) == [("fresh", "identifiers")]  # nothing recorded for the old ones
    with vectordb.PersistentClient(path) as client:  # and so it stays
        _ranks_as(client.get_collection("legacy", embedding_function=None), "default")
        _ranks_as(client.get_collection("fresh", embedding_function=None), "identifiers")
        assert client.check().ok


def test_a_collection_an_older_vectordb_creates_in_the_store_keeps_default(tmp_path):
    """An older vectordb still writes the catalog as it did (ten columns, no analyzer row):
    its collection is indexed with ``default``, as that version indexed it."""
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        client.create_collection("new", embedding_function=None)
    con = duckdb.connect(os.path.join(path, DB_FILE))
    con.execute("INSERT INTO collections VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # as insert_collection did
                [str(uuid.uuid4()), "older", None, "l2", None, None, None, 0, 0, 1])
    con.close()
    with vectordb.PersistentClient(path) as client:
        older = client.get_collection("older", embedding_function=None)
        older.add(ids=list(README_DOCS), embeddings=[[float(k), 1.0] for k in range(4)],
                  documents=list(README_DOCS.values()))
        _ranks_as(older, "default")
        client.delete_collection("new")
        assert [c.name for c in client.list_collections()] == ["older"]
    assert _recorded(path) == []  # the deleted collection's analyzer went with it


# -- english without PyStemmer ----------------------------------------------------------


def test_english_without_pystemmer_is_refused_at_creation(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:  # made where PyStemmer is installed
        made = client.create_collection("made-with-stemmer", metadata={"text:analyzer": "english"},
                                        embedding_function=None)
        made.add(ids=["r"], embeddings=[[0.0, 1.0]], documents=["running"])
    proc = run_python(f"""
        import json, sys
        sys.modules["Stemmer"] = None  # PyStemmer not importable
        import vectordb
        from vectordb.errors import MissingDependencyError

        out = {{}}
        with vectordb.PersistentClient({path!r}) as client:
            try:
                client.create_collection("stems", metadata={{"text:analyzer": "english"}}, embedding_function=None)
            except MissingDependencyError as exc:
                out["refused"] = [str(exc), exc.package, exc.extra]
            out["names"] = [c.name for c in client.list_collections()]
            client.create_collection("no-text", metadata={{"text:analyzer": "english", "text:index": False}},
                                     embedding_function=None)  # never analyses anything: accepted
            made = client.get_collection("made-with-stemmer", embedding_function=None)
            try:
                made.query(query_texts="runs", mode="text")
            except MissingDependencyError as exc:
                out["query"] = str(exc)
            out["vector"] = made.query(query_embeddings=[[0.0, 1.0]], n_results=1)["ids"]
        print(json.dumps(out))
    """)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    message, package, extra = out["refused"]
    assert package == "PyStemmer" and extra == "stemmer"
    assert '"english" text analyzer' in message and 'pip install "vectordb[stemmer]"' in message
    assert out["names"] == ["made-with-stemmer"]  # nothing was created
    assert 'pip install "vectordb[stemmer]"' in out["query"]  # an older english collection: a typed error
    assert out["vector"] == [["r"]]
    with vectordb.PersistentClient(path) as client:
        assert [c.name for c in client.list_collections()] == ["made-with-stemmer", "no-text"]
        assert client.check().ok
