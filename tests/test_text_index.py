"""The full-text index: BM25 scores equal Lucene's formula computed independently by
tests/bm25_oracle.py (each analyzer written again there too), before and after updates and deletes, on every
backend; statistics ignore deleted and document-less records and filters; the analyzer option
persists; ``text:index: False``; damaged files."""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest

import vectordb
from vectordb.errors import InvalidArgumentError, TextSearchUnavailableError

from bm25_oracle import oracle  # noqa: E402


def assert_matches(result, expected: List[Tuple[str, float]], k: int) -> None:
    want = expected[:k]
    assert result["ids"][0] == [i for i, _ in want]
    assert result["scores"][0] == pytest.approx([s for _, s in want], rel=1e-5)


DOCS = {
    "a": "The quick brown fox jumps over the lazy dog",
    "b": "A quick brown dog! The dog barks; the DOG sleeps.",
    "c": "Error ERR_1042 in module foo_bar: connection refused",
    "d": "Café crème, naïve façade — Ünïcode wörds and 数据库 text",
    "e": "fox fox fox fox",
    "f": "",
    "g": None,
    "h": "lazy afternoon, quick nap",
    "i": "Call os.path.join(max_batch_size) or getElementById; HTTPServer v2.1.0 fixed ERR_2000.",
}
QUERIES = ["quick dog", "fox", "err_1042", "ERR 1042 connection", "dog dog fox", "café ünïcode 数据库",
           "nothing-matches-this", "the", "lazy quick brown", "os.path.join", "getElementById v2.1.0",
           "ERR_1042 on save", "http server batch", "Ünïcode_wörds"]


def vec(i: int) -> List[float]:
    return np.random.default_rng(i).random(4).tolist()


def fill(col, docs: Dict[str, Optional[str]]) -> None:
    ids = list(docs)
    col.add(ids=ids, embeddings=[vec(k) for k in range(len(ids))], documents=[docs[i] for i in ids],
            metadatas=[{"i": k, "even": k % 2 == 0} for k in range(len(ids))])


@pytest.mark.parametrize("analyzer", ["identifiers", "default"])
@pytest.mark.parametrize("backend", ["memory", "disk", "http"])
def test_scores_equal_lucene_bm25_before_and_after_changes(clients, backend, analyzer):
    """``identifiers`` is a new collection's analyzer when none is named; ``default`` is named."""
    metadata = None if analyzer == "identifiers" else {"text:analyzer": analyzer}
    col = clients(backend).create_collection(f"bm25-{backend}-{analyzer}", metadata=metadata, embedding_function=None)
    docs = dict(DOCS)
    fill(col, docs)
    for q in QUERIES:
        assert_matches(col.query(query_texts=q, mode="text", n_results=10), oracle(docs, q, analyzer=analyzer), 10)
    col.update(ids=["a", "c"], documents=["dog dog dog", None if False else "ERR_1042 again"],
               embeddings=[vec(20), vec(21)])
    col.upsert(ids=["e", "z"], documents=["quick fox", "zebra quick quick"], embeddings=[vec(22), vec(23)])
    col.delete(ids=["b", "h"])
    docs.update({"a": "dog dog dog", "c": "ERR_1042 again", "e": "quick fox", "z": "zebra quick quick"})
    del docs["b"], docs["h"]
    for q in QUERIES:
        assert_matches(col.query(query_texts=q, mode="text", n_results=10), oracle(docs, q, analyzer=analyzer), 10)
    # n_results cuts the ranking; several texts at once give one list each
    many = col.query(query_texts=["quick", "fox"], mode="text", n_results=2)
    assert many["ids"] == [[i for i, _ in oracle(docs, q, analyzer=analyzer)[:2]] for q in ("quick", "fox")]
    assert many["distances"] is None and many["included"] == ["metadatas", "documents", "scores"]


def test_statistics_ignore_deleted_and_documentless_records_and_filters(local_client):
    col = local_client.create_collection("stats", embedding_function=None)
    docs = {"a": "red apple", "b": "green apple pie", "c": None, "d": "red red wine", "e": ""}
    fill(col, docs)
    col.delete(ids=["d"])
    del docs["d"]
    engine = local_client.backend.engine
    col.query(query_texts="x", mode="text")
    index = engine.text.loaded(col.id)
    assert index.count == 3  # a, b and the empty e: c has no document, d is deleted
    assert index.avgdl == pytest.approx(5 / 3)
    assert index.document_frequency("red") == 1 and index.document_frequency("wine") == 0
    # a filter restricts the candidates, never the statistics
    filtered = col.query(query_texts="red apple", mode="text", where={"even": True})
    allowed = {i for k, i in enumerate(["a", "b", "c", "d", "e"]) if k % 2 == 0}
    assert_matches(filtered, oracle(docs, "red apple", allowed), 10)
    by_doc = col.query(query_texts="apple", mode="text", where_document={"$contains": "pie"})
    assert_matches(by_doc, oracle(docs, "apple", {"b"}), 10)
    by_ids = col.query(query_texts="apple", mode="text", ids=["b", "c"])
    assert_matches(by_ids, oracle(docs, "apple", {"b", "c"}), 10)


def test_repeated_query_terms_count_once_per_occurrence(memory_collection):
    fill(memory_collection, {"a": "cat dog", "b": "dog dog bird", "c": "cat cat cat fish"})
    docs = {"a": "cat dog", "b": "dog dog bird", "c": "cat cat cat fish"}
    once = memory_collection.query(query_texts="cat dog", mode="text")
    twice = memory_collection.query(query_texts="dog cat dog", mode="text")
    assert_matches(once, oracle(docs, "cat dog"), 10)
    assert_matches(twice, oracle(docs, "dog cat dog"), 10)
    assert once["scores"][0] != twice["scores"][0]


def test_equal_scores_are_ordered_by_ascending_id(memory_collection):
    ids = ["m", "b", "z", "a", "q", "c"]
    memory_collection.add(ids=ids, embeddings=[vec(k) for k in range(6)], documents=["same words here"] * 6)
    result = memory_collection.query(query_texts="words", mode="text", n_results=4)
    assert result["ids"][0] == ["a", "b", "c", "m"]
    assert len(set(result["scores"][0])) == 1


def test_only_documents_with_a_query_term_come_back(memory_collection):
    fill(memory_collection, {"a": "alpha beta", "b": "gamma", "c": None})
    assert memory_collection.query(query_texts="beta", mode="text", n_results=10)["ids"] == [["a"]]
    assert memory_collection.query(query_texts="!!! ...", mode="text")["ids"] == [[]]


def test_english_analyzer_is_kept_across_reopen(tmp_path):
    path = str(tmp_path / "db")
    docs = {"a": "running runners run", "b": "the runner ran", "c": "walking"}
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("stems", metadata={"text:analyzer": "english"}, embedding_function=None)
        fill(col, docs)
        assert_matches(col.query(query_texts="runs", mode="text"), oracle(docs, "runs", analyzer="english"), 10)
        plain = client.create_collection("plain", embedding_function=None)
        fill(plain, docs)
        assert plain.query(query_texts="runs", mode="text")["ids"] == [[]]
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("stems", embedding_function=None)
        assert col.metadata["text:analyzer"] == "english"
        assert_matches(col.query(query_texts="runs", mode="text"), oracle(docs, "runs", analyzer="english"), 10)
        with pytest.raises(InvalidArgumentError, match="text:analyzer"):
            col.modify(metadata={"text:analyzer": "default"})


@pytest.mark.parametrize("metadata, fragment", [
    ({"text:analyzer": "klingon"}, "text:analyzer"),
    ({"text:index": "yes"}, "text:index"),
    ({"text:colour": 1}, "unknown text setting"),
])
def test_bad_text_settings_are_refused(shared_memory_client, metadata, fragment):
    with pytest.raises(InvalidArgumentError, match=fragment):
        shared_memory_client.create_collection("bad-text", metadata=metadata, embedding_function=None)
    assert "bad-text" not in [c.name for c in shared_memory_client.list_collections()]


def test_text_index_off(client):
    col = client.create_collection("no-text", metadata={"text:index": False}, embedding_function=None)
    fill(col, {"a": "alpha", "b": "beta"})
    for mode in ("text", "hybrid"):
        with pytest.raises(TextSearchUnavailableError, match="text:index"):
            col.query(query_texts="alpha", query_embeddings=[vec(0)] if mode == "hybrid" else None, mode=mode)
    assert col.query(query_embeddings=[vec(0)], n_results=1)["ids"] == [["a"]]
    with pytest.raises(InvalidArgumentError, match="text:index"):
        col.modify(metadata={"text:index": True})


def test_text_index_is_saved_caught_up_and_a_damaged_file_rebuilt(tmp_path):
    path = str(tmp_path / "db")
    docs = {f"r{k}": f"word{k % 7} shared term{k % 3}" for k in range(40)}
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("saved", embedding_function=None)
        fill(col, docs)
        col.query(query_texts="shared", mode="text")  # loads (builds and saves) the index
    with vectordb.PersistentClient(path) as client:  # saved on close; changes after reopen are caught up
        col = client.get_collection("saved", embedding_function=None)
        col.delete(ids=["r1", "r2"])
        col.update(ids=["r3"], documents=["brand new words"], embeddings=[vec(99)])
        del docs["r1"], docs["r2"]
        docs["r3"] = "brand new words"
    files = os.listdir(os.path.join(path, "text"))
    assert len(files) == 1 and files[0].endswith(".npz")
    target = os.path.join(path, "text", files[0])
    for damage in ("none", "flip", "truncate", "garbage"):  # none: the saved file, caught up with the changes
        data = bytearray(open(target, "rb").read())
        if damage == "none":
            pass
        elif damage == "flip":
            data[len(data) // 2] ^= 0xFF
        elif damage == "truncate":
            data = data[: len(data) // 3]
        else:
            data = bytearray(b"\x93NUMPY" + os.urandom(200))
        with open(target, "wb") as f:
            f.write(bytes(data))
        with vectordb.PersistentClient(path) as client:
            col = client.get_collection("saved", embedding_function=None)
            for q in ("shared", "brand words", "word3 term1"):
                assert_matches(col.query(query_texts=q, mode="text", n_results=50), oracle(docs, q), 50)
            assert client.check().ok


def test_file_from_another_collection_or_analyzer_is_not_used(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        one = client.create_collection("one", embedding_function=None)
        two = client.create_collection("two", embedding_function=None)
        fill(one, {"a": "apple"})
        fill(two, {"a": "banana"})
        one.query(query_texts="x", mode="text")
        two.query(query_texts="x", mode="text")
        ids = one.id, two.id
    folder = os.path.join(path, "text")
    os.replace(os.path.join(folder, ids[0] + ".npz"), os.path.join(folder, ids[1] + ".npz"))  # one's file as two's
    with vectordb.PersistentClient(path) as client:
        two = client.get_collection("two", embedding_function=None)
        assert two.query(query_texts="banana", mode="text")["ids"] == [["a"]]
        assert two.query(query_texts="apple", mode="text")["ids"] == [[]]


def test_check_reports_and_repairs_a_stale_text_index(tmp_path):
    """A document changed behind the engine's back (straight in DuckDB, seq unchanged): the saved
    text index no longer matches it; check() says so, repair=True rebuilds it."""
    import duckdb

    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("stale", embedding_function=None)
        fill(col, {"a": "old words", "b": "other words"})
        col.query(query_texts="words", mode="text")  # builds and saves the text index
    con = duckdb.connect(os.path.join(path, "vectordb.duckdb"))
    con.execute("UPDATE records SET document = 'fresh words' WHERE id = 'a'")
    con.close()
    with vectordb.PersistentClient(path) as client:
        report = client.check()
        assert not report.ok and any("saved text index" in p.what for p in report.problems), str(report)
        col = client.get_collection("stale", embedding_function=None)
        assert col.query(query_texts="old", mode="text")["ids"] == [["a"]]  # stale: the file's terms
        report = client.check(repair=True)
        assert report.ok and report.repairs, str(report)
        assert col.query(query_texts="old", mode="text")["ids"] == [[]]
        assert col.query(query_texts="fresh", mode="text")["ids"] == [["a"]]
        assert client.check().ok


def test_the_file_round_trips_empty_documents_dropped_terms_and_an_empty_index(tmp_path):
    from vectordb.text import textfile
    from vectordb.text.analyzer import analyzer
    from vectordb.text.bm25 import TextIndex

    index = TextIndex(analyzer("default"))
    index.put(np.arange(6), ["", "alpha beta", "beta beta gamma", "", "delta", "épée ñ"])
    index.remove(np.array([4]))  # the only document holding "delta"
    path = str(tmp_path / "t.npz")
    textfile.save(index, path, 7, "c1")
    loaded, seq = textfile.load(path, analyzer("default"), "c1")
    assert seq == 7 and loaded.count == index.count == 5 and loaded.avgdl == index.avgdl
    assert list(loaded.documents()) == list(index.documents())
    assert loaded.document_frequency("delta") == 0 and loaded.document_frequency("beta") == 2
    textfile.save(TextIndex(analyzer("default")), path, 1, "c1")
    assert textfile.load(path, analyzer("default"), "c1")[0].count == 0
