"""The local engine: one store (DuckDB) and the structures derived from it.

It owns the write pipeline (plan, commit, then the derived structures and the vector
index), the in-memory caches of records and metadata, checking and compaction.
"""
