"""A writer for the crash tests, run as a child process and killed with SIGKILL.

Usage: ``python crash_writer.py STORE LOG SEED FIRST_CALL [PREFIX]``. Call number k writes a
batch whose every record carries ``k``: metadata ``{"call": k}``, document ``"<id>@k"``
and the embedding :func:`vector` (k, id). Before each call the writer appends an
``intent`` line to LOG (fsynced); after the call returns, a ``done`` line. So the
parent knows every acknowledged call, and the one call that may have been cut short.
Index saves and automatic compaction are made frequent so that kills land inside them.
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import signal
import sys
import zlib
from typing import List

import numpy as np

import vectordb
from vectordb.engine import maintenance
from vectordb.engine import vectorindex
from vectordb.engine.structure import SavePolicy

DIM = 8
POOL = 240
OPS = ("add", "upsert", "update", "delete", "compact")
WEIGHTS = (4, 4, 2, 3, 0.3)


def vector(call: int, record_id: str) -> List[float]:
    """The embedding that call ``call`` writes for ``record_id``."""
    rng = np.random.default_rng(zlib.crc32(f"{call}:{record_id}".encode()))
    return rng.standard_normal(DIM).astype(np.float32).tolist()


def collection_of(client: vectordb.Client) -> vectordb.Collection:
    """The crash test's collection (a wide search: exact for a few hundred records)."""
    return client.get_or_create_collection("crash", metadata={"hnsw:search_ef": 400}, embedding_function=None)


def _log(f, entry: dict) -> None:
    f.write(json.dumps(entry) + "\n")
    f.flush()
    os.fsync(f.fileno())


def main(path: str, log_path: str, seed: int, first_call: int, prefix: str = "") -> None:
    """Write calls for ever; ``prefix`` keeps this writer's ids apart from other writers' (several
    writer processes on one store, see test_multiprocess.py)."""
    vectorindex.BACKGROUND_MIN = 10  # writes of 10-30 vectors go to the worker thread, smaller ones stay inline
    maintenance.AUTO_COMPACT_MIN_DELETED = 30
    faulthandler.register(signal.SIGUSR1)  # a test that finds the store held too long asks where this process is
    rng = random.Random(seed)
    client = vectordb.PersistentClient(path)
    client.backend.engine.indexes.policy = SavePolicy(min_changes=40)
    client.backend.engine.text.policy = SavePolicy(min_changes=20, fraction=0.05)  # the text index is saved every few calls
    collection = collection_of(client)
    collection.query(query_texts="r1", mode="text")  # the text index is loaded: every write then updates it
    print("ready", flush=True)
    with open(log_path, "a") as log:
        call = first_call
        while True:
            op = rng.choices(OPS, WEIGHTS)[0]
            ids = [f"{prefix}r{i}" for i in rng.sample(range(POOL), rng.randint(1, 30))]
            _log(log, {"intent": call, "op": op, "ids": ids})
            if op == "delete":
                collection.delete(ids=ids)
            elif op == "compact":
                collection.compact()
            else:
                getattr(collection, op)(
                    ids=ids,
                    embeddings=[vector(call, i) for i in ids],
                    metadatas=[{"call": call} for _ in ids],
                    documents=[f"{i}@{call}" for i in ids],
                )
            _log(log, {"done": call})
            call += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), *sys.argv[5:6])
