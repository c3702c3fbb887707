"""Durable storage: the DuckDB store (source of truth) and the files beside it."""
