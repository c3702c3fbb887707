"""Raw hnswlib, the ceiling: the same graph parameters as vectordb's defaults, no records.

Ingest is ``add_items`` in the same batches plus ``save_index`` at the end; the filtered
query is ``knn_query`` with a filter callable over a precomputed set of allowed labels,
which is what raw hnswlib offers (a search that reaches fewer than k allowed items
raises in hnswlib; it counts as a query that found nothing). Metadata and documents are
not stored.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Set

import numpy as np

M = 16
EF_CONSTRUCTION = 100
EF_SEARCH = 50
SPACE = "cosine"
INDEX_FILE = "index.bin"


def import_library() -> Any:
    """Import hnswlib (timed by the cold-open runner)."""
    import hnswlib

    return hnswlib


class Store:
    """One hnswlib index saved in ``path``."""

    def __init__(self, path: str, index: Any) -> None:
        self.path = path
        self.index = index
        self.categories: List[int] = []
        self.allowed: Dict[int, Set[int]] = {}

    @classmethod
    def create(cls, path: str, dim: int, capacity: int) -> "Store":
        """A new empty index sized for ``capacity`` items (the ceiling never resizes)."""
        hnswlib = import_library()
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.init_index(max_elements=capacity, ef_construction=EF_CONSTRUCTION, M=M)
        index.set_ef(EF_SEARCH)
        return cls(path, index)

    @classmethod
    def open(cls, path: str, dim: int) -> "Store":
        """Load the saved index."""
        hnswlib = import_library()
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.load_index(os.path.join(path, INDEX_FILE))
        index.set_ef(EF_SEARCH)
        return cls(path, index)

    def add(self, start: int, vectors: np.ndarray, metadatas: Sequence[Dict[str, Any]],
            documents: Sequence[str]) -> None:
        """Add one batch under labels ``start..start+len-1``."""
        self.index.add_items(vectors, np.arange(start, start + len(vectors)))
        self.categories.extend(m["category"] for m in metadatas)

    def finish(self) -> None:
        """Save the index to disk."""
        os.makedirs(self.path, exist_ok=True)
        self.index.save_index(os.path.join(self.path, INDEX_FILE))

    def prepare(self) -> None:
        """Precompute the allowed-label set of every category (not timed)."""
        cats = np.asarray(self.categories)
        self.allowed = {int(c): set(np.flatnonzero(cats == c).tolist()) for c in np.unique(cats)}

    def query(self, vector: Any, k: int, category: Optional[int] = None) -> List[int]:
        """The labels of the ``k`` nearest, optionally only those of ``category``."""
        if category is None:
            labels, _ = self.index.knn_query(np.asarray(vector, dtype=np.float32), k=k, num_threads=1)
        else:
            allowed = self.allowed.get(category, set())
            if not allowed:
                return []
            try:
                labels, _ = self.index.knn_query(
                    np.asarray(vector, dtype=np.float32), k=min(k, len(allowed)), num_threads=1,
                    filter=allowed.__contains__,
                )
            except RuntimeError:  # the filtered search reached fewer than k allowed items
                return []
        return labels[0].tolist()

    def close(self) -> None:
        """Nothing to release."""
