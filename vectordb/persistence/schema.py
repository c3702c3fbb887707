"""The store's tables: their definitions, the schema version, and bringing an older store up to date.

This module owns the DDL, so that the shape of the database is written down in one place;
the modules that read and write rows (:mod:`~vectordb.persistence.catalog`,
:mod:`~vectordb.persistence.records`) rely on it.

Tables:

- ``collections``: one row per collection (id, name, metadata, metric, dimension, the
  embedding function's name and config, the next free label, the last ``seq``).
- ``records``: one row per record: its integer ``label`` (its key in the vector index,
  never reused within a collection), id, the ``seq`` of the write that last touched it,
  the embedding as float32 bytes, document and metadata (JSON, for reading back).
  The embedding column is stored uncompressed: float bytes do not compress, and
  DuckDB's attempt to (at every checkpoint) cost more than half of a write's time.
- ``metadata``: one typed row per record and metadata key, for filtering.
- ``metadata_lists``: one typed row per distinct item of a record's list value (as
  ``metadata``), for ``$contains``. Stores made before list values get the table on their
  first open for writing (the one migration so far: every table is created if missing);
  a read-only open of such a store gives it an empty one for the session (a temporary
  table, :func:`session_tables`), so filters read it alike.
- ``tombstones``: labels deleted after the index was last saved, so that an older
  index file can be caught up.
- ``store_info``: facts as keys and values: ``schema`` (the schema's version), and
  ``text_analyzer:<collection id>``, the text analyzer each collection was created with.
  Rows here rather than a column of ``collections`` (an older vectordb still inserts its
  ten values there) or a table of their own (a store would grow by a whole block for
  them). A collection without such a row was made before they were recorded, or by an
  older vectordb: it keeps the analyzer it was indexed with
  (:func:`vectordb.engine.textindexes.analyzer_name`).
"""

from __future__ import annotations

import duckdb

from vectordb.persistence.database import Database

SCHEMA_VERSION = 1

_LISTS_TABLE = """CREATE {temp}TABLE IF NOT EXISTS metadata_lists (
        collection_id VARCHAR, label BIGINT, key VARCHAR,
        str_value VARCHAR, int_value BIGINT, float_value DOUBLE, bool_value BOOLEAN)"""
ANALYZER_KEY = "text_analyzer:"
"""The ``store_info`` key of a collection's text analyzer, before the collection's id."""
METADATA_TABLES = ("metadata", "metadata_lists")
"""The tables of typed metadata rows (scalars, list items), written and deleted together."""
COLLECTION_TABLES = ("records", *METADATA_TABLES, "tombstones")
"""The tables whose rows belong to a collection (by ``collection_id``), besides its catalog row."""
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS store_info (key VARCHAR, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS collections (
        id VARCHAR, name VARCHAR, metadata VARCHAR, metric VARCHAR, dimension INTEGER,
        ef_name VARCHAR, ef_config VARCHAR, next_label BIGINT, seq BIGINT, position BIGINT)""",
    """CREATE TABLE IF NOT EXISTS records (
        collection_id VARCHAR, label BIGINT, id VARCHAR, seq BIGINT,
        embedding BLOB USING COMPRESSION uncompressed, document VARCHAR, metadata VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS metadata (
        collection_id VARCHAR, label BIGINT, key VARCHAR,
        str_value VARCHAR, int_value BIGINT, float_value DOUBLE, bool_value BOOLEAN)""",
    _LISTS_TABLE.format(temp=""),
    "CREATE TABLE IF NOT EXISTS tombstones (collection_id VARCHAR, label BIGINT, seq BIGINT)",
]


def prepare(db: Database, read_only: bool) -> None:
    """Create missing tables and record the schema version (a store opened for writing).

    A read-only open only reads what a writer's open reads, so that a damaged catalog
    shows here too.
    """
    if not read_only:
        for statement in _SCHEMA:
            db.con.execute(statement)
        if not db.con.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchall():
            db.con.execute("INSERT INTO store_info VALUES ('schema', ?)", [str(SCHEMA_VERSION)])
    else:
        db.con.execute("SELECT value FROM store_info WHERE key = 'schema'").fetchall()
        db.con.execute("SELECT count(*) FROM collections").fetchall()


def session_tables(con: duckdb.DuckDBPyConnection) -> None:
    """On each read-only connection: a store made before list values gets an empty
    ``metadata_lists`` for the session (nothing to find in it), so filters read it alike."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "metadata_lists" not in tables:
        con.execute(_LISTS_TABLE.format(temp="TEMP "))
