"""Full-text ranking: analyzers, the BM25 index derived from a collection's documents, and
reciprocal rank fusion of a vector ranking with a text ranking (hybrid search).

- :mod:`vectordb.text.analyzer`: how a text becomes terms (``identifiers``, a new
  collection's, keeps ``ERR_1042`` or ``os.path.join`` whole as well as split; ``default``,
  that of collections made before it; ``english``, stemmed);
- :mod:`vectordb.text.bm25`: the in-memory inverted index and its exact Lucene BM25 scoring;
- :mod:`vectordb.text.textfile`: the index's file format (plain arrays, validated on load);
- :mod:`vectordb.text.kernels` and :mod:`vectordb.text.topk`: the numpy steps of scoring,
  selecting the best and fusing (equal scores ordered by id);
- :mod:`vectordb.text.fusion`: hybrid rankings from the two rankings (reciprocal rank fusion).

Keeping each collection's index in step with the store is the local engine's
(:mod:`vectordb.engine.textindexes`).
"""
