"""upsert and update: merging metadata, keeping fields not given, re-embedding only changed documents."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import snapshot, text_vector

from vectordb.errors import DuplicateIDError, InvalidArgumentError

ALL = ["embeddings", "metadatas", "documents"]


@pytest.fixture
def filled(collection):
    collection.add(
        ids=["a", "b"],
        embeddings=[[1.0, 0.0], [0.0, 1.0]],
        metadatas=[{"year": 2000, "tag": "x"}, {"year": 2010}],
        documents=["doc a", "doc b"],
    )
    return collection


def test_update_merges_metadata_key_by_key(filled):
    filled.update(ids="a", metadatas={"year": 2001, "new": True})
    assert filled.get(ids="a")["metadatas"] == [{"year": 2001, "tag": "x", "new": True}]


def test_update_key_set_to_none_is_removed(filled):
    filled.update(ids="a", metadatas={"tag": None})
    assert filled.get(ids="a")["metadatas"] == [{"year": 2000}]
    filled.update(ids="a", metadatas={"year": None})
    assert filled.get(ids="a")["metadatas"] == [None]
    # the removed key no longer matches filters
    assert filled.get(where={"year": 2000})["ids"] == []


def test_update_fields_not_given_stay(filled):
    filled.update(ids="b", metadatas={"k": 1})
    got = filled.get(ids="b", include=ALL)
    assert got["documents"] == ["doc b"]
    assert got["metadatas"] == [{"year": 2010, "k": 1}]
    assert got["embeddings"].tolist() == [[0.0, 1.0]]
    filled.update(ids="b", documents="doc b2", embeddings=[0.0, 1.0])
    got = filled.get(ids="b", include=ALL)
    assert got["documents"] == ["doc b2"]
    assert got["metadatas"] == [{"year": 2010, "k": 1}]
    filled.update(ids="b", embeddings=[0.5, 0.5])
    got = filled.get(ids="b", include=ALL)
    assert got["documents"] == ["doc b2"]
    assert got["embeddings"].tolist() == [[0.5, 0.5]]


def test_update_embedding_moves_it_in_the_index(filled):
    filled.update(ids="a", embeddings=[10.0, 10.0])
    assert filled.query(query_embeddings=[10.0, 10.0], n_results=1)["ids"] == [["a"]]
    assert filled.query(query_embeddings=[1.0, 0.0], n_results=2)["ids"] == [["b", "a"]]


def test_update_unknown_ids_are_skipped_and_logged(filled, caplog):
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        filled.update(ids=["a", "zzz"], metadatas=[{"tag": "y"}, {"tag": "z"}])
    assert filled.get()["ids"] == ["a", "b"]
    assert filled.get(ids="a")["metadatas"] == [{"year": 2000, "tag": "y"}]
    assert any("zzz" in r.getMessage() for r in caplog.records)


def test_update_repeated_id(filled):
    before = snapshot(filled)
    with pytest.raises(DuplicateIDError, match="'a'"):
        filled.update(ids=["a", "a"], metadatas=[{"k": 1}, {"k": 2}])
    assert snapshot(filled) == before


def test_upsert_repeated_id(filled):
    before = snapshot(filled)
    with pytest.raises(DuplicateIDError, match="'c'"):
        filled.upsert(ids=["c", "c"], embeddings=[[1.0, 1.0], [2.0, 2.0]])
    assert snapshot(filled) == before


def test_upsert_inserts_new_and_updates_existing(filled):
    filled.upsert(
        ids=["b", "c"],
        embeddings=[[0.0, 2.0], [3.0, 3.0]],
        metadatas=[{"tag": "y"}, {"tag": "z", "gone": None}],
        documents=["doc b2", "doc c"],
    )
    got = filled.get(include=ALL)
    assert got["ids"] == ["a", "b", "c"]
    assert got["embeddings"].tolist() == [[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]
    assert got["metadatas"] == [{"year": 2000, "tag": "x"}, {"year": 2010, "tag": "y"}, {"tag": "z"}]
    assert got["documents"] == ["doc a", "doc b2", "doc c"]


def test_upsert_existing_keeps_fields_not_given(filled):
    filled.upsert(ids="a", metadatas={"year": None})
    got = filled.get(ids="a", include=ALL)
    assert got["metadatas"] == [{"tag": "x"}]
    assert got["documents"] == ["doc a"]
    assert got["embeddings"].tolist() == [[1.0, 0.0]]


def test_upsert_new_id_needs_embedding_or_document(filled):
    before = snapshot(filled)
    with pytest.raises(InvalidArgumentError, match="'new'"):
        filled.upsert(ids=["a", "new"], metadatas=[{"k": 1}, {"k": 2}])
    assert snapshot(filled) == before


def test_upsert_changes_are_queryable(filled):
    filled.upsert(ids=["a", "c"], embeddings=[[5.0, 5.0], [-1.0, -1.0]])
    assert filled.query(query_embeddings=[5.0, 5.0], n_results=1)["ids"] == [["a"]]
    assert filled.query(query_embeddings=[-1.0, -1.0], n_results=1)["ids"] == [["c"]]
    assert filled.count() == 3


def test_update_single_items(filled):
    filled.update(ids="a", embeddings=[2.0, 2.0], metadatas={"tag": "q"}, documents="d")
    got = filled.get(ids="a", include=ALL)
    assert got["embeddings"].tolist() == [[2.0, 2.0]] and got["metadatas"] == [{"year": 2000, "tag": "q"}]
    assert got["documents"] == ["d"]


def test_update_numpy_embeddings(filled):
    filled.update(ids=["b", "a"], embeddings=np.array([[7.0, 8.0], [9.0, 10.0]]))
    assert filled.get(ids=["a", "b"], include=["embeddings"])["embeddings"].tolist() == [[9.0, 10.0], [7.0, 8.0]]


# -- re-embedding ------------------------------------------------------------


@pytest.fixture
def docs(client, counting_ef):
    col = client.create_collection("docs", embedding_function=counting_ef)
    col.add(ids=["a", "b"], documents=["alpha", "beta"], metadatas=[{"n": 1}, {"n": 2}])
    counting_ef.calls.clear()
    return col


def test_upsert_unchanged_documents_not_reembedded(docs, counting_ef):
    docs.upsert(ids=["a", "b"], documents=["alpha", "beta"], metadatas=[{"n": 10}, {"n": 20}])
    assert counting_ef.embedded == []
    assert docs.get()["metadatas"] == [{"n": 10}, {"n": 20}]


def test_upsert_embeds_only_changed_and_new_documents(docs, counting_ef):
    docs.upsert(ids=["a", "b", "c"], documents=["alpha", "beta 2", "gamma"])
    assert sorted(counting_ef.embedded) == ["beta 2", "gamma"]
    got = docs.get(include=["embeddings", "documents"])
    assert got["documents"] == ["alpha", "beta 2", "gamma"]
    np.testing.assert_allclose(got["embeddings"][1], text_vector("beta 2"), rtol=1e-6)
    np.testing.assert_allclose(got["embeddings"][0], text_vector("alpha"), rtol=1e-6)


def test_update_unchanged_document_not_reembedded(docs, counting_ef):
    docs.update(ids="a", documents="alpha")
    docs.update(ids="b", metadatas={"x": "y"})
    assert counting_ef.embedded == []
    docs.update(ids="a", documents="alpha two")
    assert counting_ef.embedded == ["alpha two"]
    np.testing.assert_allclose(
        docs.get(ids="a", include=["embeddings"])["embeddings"][0], text_vector("alpha two"), rtol=1e-6
    )
    assert docs.query(query_embeddings=[text_vector("alpha two")], n_results=1)["ids"] == [["a"]]


def test_update_changed_document_with_embedding_not_embedded(docs, counting_ef):
    docs.update(ids="a", documents="other", embeddings=[1.0, 2.0, 3.0, 4.0])
    assert counting_ef.embedded == []
    assert docs.get(ids="a", include=["embeddings"])["embeddings"].tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_update_unknown_id_document_not_embedded(docs, counting_ef):
    docs.update(ids="ghost", documents="boo")
    assert counting_ef.embedded == []
    assert docs.count() == 2


def test_documents_needing_embedding_without_function_refused(filled):
    before = snapshot(filled)
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        filled.upsert(ids="c", documents="new doc")
    with pytest.raises(InvalidArgumentError, match="no embedding function"):
        filled.update(ids="a", documents="changed doc")
    assert snapshot(filled) == before
    filled.update(ids="a", documents="doc a")  # unchanged: nothing to embed
    assert snapshot(filled) == before


def test_concurrent_upserts_from_threads(client, counting_ef):
    import threading

    col = client.create_collection("threads", embedding_function=counting_ef)

    def work(k):
        for i in range(15):
            col.upsert(
                ids=[f"{k}-{i}", "shared"],
                documents=[f"doc {k} {i}", f"shared by {k} at {i}"],
                metadatas=[{"k": k}, {"last": k}],
            )

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = col.get(include=["embeddings", "documents"])
    assert col.count() == 4 * 15 + 1
    for doc, vector in zip(got["documents"], got["embeddings"]):
        np.testing.assert_allclose(vector, text_vector(doc), rtol=1e-6)  # each stored vector is its document's
    shared = col.query(query_embeddings=[text_vector(got["documents"][got["ids"].index("shared")])], n_results=1)
    assert shared["ids"] == [["shared"]]


def test_upsert_of_a_new_id_with_only_none_values_stores_no_metadata(collection):
    """Found by the state machine: None means "no value", so {'k': None} on a new record is no metadata."""
    collection.upsert(ids=["a", "b"], embeddings=[[0.0, 0.0], [1.0, 1.0]], metadatas=[{"k": None}, {"k": None, "x": 1}])
    assert collection.get(ids=["a", "b"], include=["metadatas"])["metadatas"] == [None, {"x": 1}]
