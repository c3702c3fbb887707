"""The text index grows its per-term arrays by doubling when it needs room, not at every new term:
a long-lived process (or one catching up from other processes' writes) makes many small writes."""

from __future__ import annotations

import logging

import vectordb


def test_many_small_writes_with_new_terms_keep_the_text_index(caplog):
    col = vectordb.EphemeralClient().create_collection("grow", embedding_function=None)
    with caplog.at_level(logging.ERROR, logger="vectordb"):
        for i in range(120):  # each write brings two terms never seen before
            col.add(ids=[f"i{i}"], embeddings=[[1.0, float(i)]], documents=[f"word{i} other{i}"])
            if i == 0:
                col.query(query_texts="word0", mode="text")  # loaded: every later write updates it in place
    assert not [r for r in caplog.records if "text index update" in r.getMessage()]  # never dropped and rebuilt
    assert col.query(query_texts="word77", mode="text", n_results=1)["ids"] == [["i77"]]
