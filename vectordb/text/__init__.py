"""Full-text ranking: analyzers, the BM25 index derived from a collection's documents, and
reciprocal rank fusion of a vector ranking with a text ranking (hybrid search).

- :mod:`vectordb.text.analyzer`: how a text becomes terms (``identifiers``, a new
  collection's, keeps ``ERR_1042`` or ``os.path.join`` whole as well as split; ``default``,
  that of collections made before it; ``english``, stemmed);
- :mod:`vectordb.text.bm25`: the in-memory inverted index and its exact Lucene BM25 scoring;
- :mod:`vectordb.text.textfile`: the index's file format (plain arrays, validated on load);
- :mod:`vectordb.text.manager`: keeping each collection's index in step with the store;
- :mod:`vectordb.text.fusion`: hybrid results from the two rankings (backend-independent).
"""
