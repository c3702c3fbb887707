"""The steps of the recovery benchmark, each run in a process of its own by :mod:`benchmarks.recovery`.

Run as a script (``python benchmarks/recovery_child.py STEP ...``) with ``PYTHONPATH`` set
to the checkout whose ``vectordb`` is measured, so that another checkout's code can be
measured with this script. Uses numpy, the standard library and vectordb only; prints
progress lines and one JSON line (the step's figures) on stdout.

Steps:

* ``ingest STORE DATA START STOP BATCH END``: add rows ``START..STOP`` (creating the store
  when START is 0) in batches; END is ``close`` (a clean close), ``kill`` (print ``last``
  before the last batch and wait to be killed), or ``drop:IMAGE`` (drop the client without
  ``close()``, copy the store folder to IMAGE as the process leaves it, then time a reopen
  and first query in this same process, retrying while the open is refused with
  ``StoreLockedError``, and end with ``os._exit``).
* ``settle STORE DATA``: open, query, let every background index work finish, close.
* ``cold STORE DATA``: time import + open + first query in this fresh process, then 20
  more queries; report the rows found and how many vectors were still pending.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import sys
import time
from typing import Any, Dict, List

import numpy as np

COLLECTION = "bench"
MORE_QUERIES = 20


def emit(figures: Dict[str, Any]) -> None:
    """The step's result: one JSON line."""
    print(json.dumps(figures), flush=True)


def rows_of(ids: List[str]) -> List[int]:
    return [int(i[2:]) for i in ids]


def _indexes(client: Any) -> Any:
    """The client's index manager (``engine.indexes``; ``_indexes`` before the engine was split out)."""
    backend = client._backend
    engine = getattr(backend, "engine", None)
    return getattr(backend, "_indexes", None) if engine is None else engine.indexes


def pending(client: Any, collection: Any) -> Any:
    """Vectors not yet in the graph (None where the code measured has no catch-up)."""
    indexes = _indexes(client)
    count = getattr(indexes, "pending", None)
    return None if count is None else int(count(collection.id))


def ingest(store: str, data: str, start: int, stop: int, batch: int, end: str) -> None:
    import vectordb

    vectors = np.load(os.path.join(data, "vectors.npy"), mmap_mode="r")
    with open(os.path.join(data, "records.json")) as fh:
        records = json.load(fh)
    client = vectordb.PersistentClient(store)
    if start == 0:
        col = client.create_collection(COLLECTION, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    else:
        col = client.get_collection(COLLECTION, embedding_function=None)
    t0 = time.perf_counter()
    for first in range(start, stop, batch):
        last = min(first + batch, stop)
        if last == stop and end == "kill":
            print("last", flush=True)
        col.add(ids=[f"id{i}" for i in range(first, last)], embeddings=np.asarray(vectors[first:last]),
                metadatas=records["metadatas"][first:last], documents=records["documents"][first:last])
    added = time.perf_counter() - t0
    if end == "close":
        client.close()
        emit({"ingest_s": time.perf_counter() - t0, "records": stop - start})
    elif end == "kill":
        print("acked", flush=True)
        time.sleep(3600)
    elif end.startswith("drop:"):
        del col, client
        gc.collect()
        shutil.copytree(store, end[len("drop:"):])
        t1 = time.perf_counter()
        refused = None
        while True:  # where the dropped client still holds the store, opening is refused: retry
            try:
                client = vectordb.PersistentClient(store)
                break
            except vectordb.errors.StoreLockedError as exc:
                refused = refused or str(exc)
                if time.perf_counter() - t1 > 600:
                    raise
                time.sleep(0.05)
        col = client.get_collection(COLLECTION, embedding_function=None)
        t2 = time.perf_counter()
        found = col.query(query_embeddings=[queries_of(data)[0].tolist()], n_results=10)
        t3 = time.perf_counter()
        emit({"ingest_s": added, "open_s": t2 - t1, "query_s": t3 - t2, "rows": [rows_of(found["ids"][0])],
              "pending_after_first": pending(client, col), "refused_first": refused})
        sys.stdout.flush()
        os._exit(0)
    else:
        raise SystemExit(f"unknown end {end!r}")


def queries_of(data: str) -> np.ndarray:
    return np.load(os.path.join(data, "queries.npy"))


def settle(store: str, data: str) -> None:
    import vectordb

    t0 = time.perf_counter()
    client = vectordb.PersistentClient(store)
    col = client.get_collection(COLLECTION, embedding_function=None)
    col.query(query_embeddings=[queries_of(data)[0].tolist()], n_results=10)
    left = pending(client, col)
    _indexes(client).wait()  # every background index work (a catch-up too, where there is one)
    t1 = time.perf_counter()
    client.close()
    emit({"settle_s": t1 - t0, "close_s": time.perf_counter() - t1, "pending_after_first": left})


def cold(store: str, data: str) -> None:
    queries = queries_of(data)
    first = queries[0].tolist()
    t0 = time.perf_counter()
    import vectordb

    t1 = time.perf_counter()
    client = vectordb.PersistentClient(store)
    col = client.get_collection(COLLECTION, embedding_function=None)
    t2 = time.perf_counter()
    found = col.query(query_embeddings=[first], n_results=10)
    t3 = time.perf_counter()
    left = pending(client, col)
    rows = [rows_of(found["ids"][0])]
    times = []
    for q in queries[1: 1 + MORE_QUERIES]:
        s = time.perf_counter()
        rows.append(rows_of(col.query(query_embeddings=[q.tolist()], n_results=10)["ids"][0]))
        times.append(time.perf_counter() - s)
    emit({"import_s": t1 - t0, "open_s": t2 - t1, "query_s": t3 - t2, "rows": rows,
          "more_queries_p50_ms": float(np.median(times) * 1000) if times else None,
          "pending_after_first": left, "count": col.count()})


def main(argv: List[str]) -> None:
    step, args = argv[0], argv[1:]
    if step == "ingest":
        ingest(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), args[5])
    elif step == "settle":
        settle(args[0], args[1])
    elif step == "cold":
        cold(args[0], args[1])
    else:
        raise SystemExit(f"unknown step {step!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
