"""The vector index: a derived, rebuildable cache of each collection's vectors."""
