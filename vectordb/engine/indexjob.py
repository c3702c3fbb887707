"""One write's vectors going into a collection's vector index on a worker thread.

Inserting a write's vectors into the graph is the costliest step of a write, so it runs
in the background: a write returns once its records are committed to DuckDB (durable),
while an :class:`IndexJob` inserts its vectors (then saves the index, if a save is due).
The job's thread touches only the index and its files, never DuckDB (nor the engine or
the store, so that a client dropped without ``close()`` is collected); the collection's
:class:`~vectordb.engine.vectorindex.VectorIndexState` takes in its outcome.
"""

from __future__ import annotations

import threading
from typing import Callable, ContextManager, Optional

import numpy as np

from vectordb.index.base import VectorIndex
from vectordb.persistence.store import CollectionRow



class IndexJob:
    """One write's vectors going into an index on a worker thread, then a save if one is due."""

    def __init__(
        self, row: CollectionRow, index: VectorIndex, labels: np.ndarray, vectors: np.ndarray, save_to: Optional[str],
        saving: Callable[[], "ContextManager[bool]"], chunk: int = 1024,
    ) -> None:
        """``saving()``: whether the save may happen when the insertion is done (see
        :func:`vectordb.persistence.turns.save_gate`); ``save_to``: the index folder, None: no save."""
        self.row = row
        self.chunk = chunk
        """Vectors per step: a dropped engine's job stops after the step in progress."""
        self.saving = saving
        self.index = index
        self.labels = labels
        self.vectors = vectors
        self.save_to = save_to
        self.saved = False
        self.error: Optional[BaseException] = None
        self.save_error: Optional[BaseException] = None
        self.cancelled = False
        self.thread = threading.Thread(target=self._run, name="vectordb-index")

    def start(self, background: bool) -> None:
        """Run on the worker thread, or right here (the outcome is taken in the same way)."""
        if background:
            self.thread.start()
        else:
            self._run()

    def join(self) -> None:
        """Wait for the job to end."""
        if self.thread.ident is not None:  # started on the worker thread
            self.thread.join()

    def cancel(self) -> None:
        """Stop after the chunk in progress, and save nothing (the manager is gone: a dropped engine)."""
        self.cancelled = True

    def _run(self) -> None:
        try:
            add = self.index.add  # bound once: the whole write goes in through the same method
            for start in range(0, len(self.labels), self.chunk):
                if self.cancelled:
                    return
                add(self.labels[start: start + self.chunk], self.vectors[start: start + self.chunk])
        except BaseException as exc:  # taken in by the state's join_job(); an interrupt also goes on up
            self.error = exc
            if not isinstance(exc, Exception):
                raise
            return
        if self.save_to is None or self.cancelled:
            return
        try:
            with self.saving() as allowed:
                if allowed:
                    self.index.save(self.save_to, self.row.seq, self.row.id)
                    self.saved = True
        except Exception as exc:
            self.save_error = exc
