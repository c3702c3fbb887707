"""vectordb's query against raw pymilvus's default search, on one collection of a real Milvus server.

Usage::

    python -m benchmarks.milvus_consistency --n 20000 [--dim 384] [--queries 300] [--uri http://host:19530]

Without ``--uri`` a Milvus 2.3.5 standalone is started for the run (``tests/milvus_server_helpers.py``)
and stopped after it. The benchmark's data set (:mod:`benchmarks.data`: clustered unit
vectors, metadata ``{"category", "year", "tag"}``, a short document each) is written
through ``vectordb.MilvusClient``; then, for every query vector in turn and in rotating
order (so that all see the same machine load), it times:

- ``raw Bounded``: ``pymilvus.MilvusClient.search`` on vectordb's Milvus collection with
  pymilvus's defaults (the collection's level, Bounded; ids and distances);
- ``raw Bounded +fields``: the same, also returning the document and metadata fields;
- ``vectordb``: ``collection.query(query_embeddings=[v], n_results=10)`` (default include:
  documents, metadatas, distances) at the default ``consistency="session"``;
- ``vectordb filtered``: the same with ``where={"category": c}`` (1% of the records);
- ``vectordb strong`` (every ``--strong-every``-th query): ``consistency="strong"``.

Prints a table (p50/p90 in ms, recall@10 against exact numpy search) and the target
check: vectordb p50 <= 1.5 x raw Bounded p50 + 2 ms; then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from benchmarks import data

K = 10
BATCH = 2000


def _percentiles(ms: List[float]) -> Dict[str, float]:
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)), "count": len(ms)}


def load(uri: str, ds: data.Dataset) -> Tuple[Any, Any]:
    """The data set in a new collection ``bench`` (cosine); returns the client and the collection."""
    import vectordb

    client = vectordb.MilvusClient(uri)
    if "bench" in [c.name for c in client.list_collections()]:
        client.delete_collection("bench")
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    for start in range(0, len(ds.vectors), BATCH):
        stop = min(start + BATCH, len(ds.vectors))
        col.add(ids=[f"id{i}" for i in range(start, stop)], embeddings=ds.vectors[start:stop],
                metadatas=ds.metadatas[start:stop], documents=ds.documents[start:stop])
    return client, col


def run(uri: str, n: int, dim: int, queries: int, strong_every: int, seed: int = 42) -> Dict[str, Any]:
    """Load, then time every kind of query (see the module docstring)."""
    import pymilvus

    import vectordb

    ds = data.make_dataset(n, dim, queries, seed)
    t0 = time.perf_counter()
    client, col = load(uri, ds)
    ingest_s = time.perf_counter() - t0
    truth = data.exact_topk(ds.vectors, ds.queries, K)
    filtered_truth = data.filtered_topk(ds.vectors, ds.categories, ds.queries, ds.query_categories, K)
    target = "vdb_" + col.id.replace("-", "")
    raw = pymilvus.MilvusClient(uri)
    strong_client = vectordb.MilvusClient(uri, consistency="strong")
    strong_col = strong_client.get_collection("bench")
    time.sleep(1.0)  # past the last write's time tick: no read below has a write of its own to wait for

    def rows(ids: List[str]) -> List[int]:
        return [int(i[2:]) for i in ids]

    kinds: Dict[str, Callable[[int], Optional[List[int]]]] = {
        "raw Bounded": lambda i: rows([h["id"] for h in raw.search(
            target, data=[ds.queries[i].tolist()], limit=K, search_params={"metric_type": "COSINE"})[0]]),
        "raw Bounded +fields": lambda i: rows([h["id"] for h in raw.search(
            target, data=[ds.queries[i].tolist()], limit=K, search_params={"metric_type": "COSINE"},
            output_fields=["doc", "metadata"])[0]]),
        "vectordb": lambda i: rows(col.query(query_embeddings=[ds.queries[i]], n_results=K)["ids"][0]),
        "vectordb filtered": lambda i: rows(col.query(
            query_embeddings=[ds.queries[i]], n_results=K, where={"category": int(ds.query_categories[i])})["ids"][0]),
        "vectordb strong": lambda i: rows(strong_col.query(query_embeddings=[ds.queries[i]], n_results=K)["ids"][0]),
    }
    times: Dict[str, List[float]] = {k: [] for k in kinds}
    found: Dict[str, List[List[int]]] = {k: [] for k in kinds}
    for i in range(min(10, queries)):  # warm-up
        for fn in kinds.values():
            fn(i)
    names = list(kinds)
    for i in range(queries):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            if name == "vectordb strong" and i % strong_every:
                continue
            t = time.perf_counter()
            got = kinds[name](i)
            times[name].append((time.perf_counter() - t) * 1000)
            found[name].append(got)
    out: Dict[str, Any] = {"n": n, "dim": dim, "queries": queries, "uri": uri, "ingest_s": ingest_s,
                           "server": client._backend.features.version, "kinds": {}}
    for name in names:
        want = filtered_truth if name == "vectordb filtered" else truth
        picked = [want[i] for i in range(queries) if name != "vectordb strong" or i % strong_every == 0]
        out["kinds"][name] = {**_percentiles(times[name]), "recall": data.recall_at_k(found[name], picked, K)}
    base = out["kinds"]["raw Bounded"]["p50_ms"]
    limit = 1.5 * base + 2.0
    out["target"] = {"limit_ms": limit, "vectordb_p50_ms": out["kinds"]["vectordb"]["p50_ms"],
                     "passed": out["kinds"]["vectordb"]["p50_ms"] <= limit,
                     "filtered_recall": out["kinds"]["vectordb filtered"]["recall"]}
    raw.close()
    strong_client.close()
    client.close()
    return out


def table(result: Dict[str, Any]) -> str:
    """The figures as aligned text."""
    lines = [f"n={result['n']:,} dim={result['dim']} queries={result['queries']} server={result['server']} "
             f"ingest={result['ingest_s']:.1f}s load={os.getloadavg()[0]:.1f}",
             f"{'query':22s} {'p50 ms':>8s} {'p90 ms':>8s} {'recall@10':>10s} {'n':>5s}"]
    for name, k in result["kinds"].items():
        lines.append(f"{name:22s} {k['p50_ms']:8.2f} {k['p90_ms']:8.2f} {k['recall']:10.3f} {k['count']:5d}")
    t = result["target"]
    lines.append(f"target: vectordb p50 {t['vectordb_p50_ms']:.2f} ms <= 1.5 x raw Bounded p50 + 2 ms = "
                 f"{t['limit_ms']:.2f} ms: {'PASS' if t['passed'] else 'FAIL'}; "
                 f"filtered recall {t['filtered_recall']:.3f}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--strong-every", type=int, default=10, help="time a Strong query every Nth query")
    parser.add_argument("--uri", default=None, help="a running Milvus server (default: start a Milvus 2.3.5)")
    args = parser.parse_args(argv)
    server = None
    if args.uri is None:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
        from milvus_server_helpers import MilvusServer

        server = MilvusServer(tempfile.mkdtemp(prefix="vectordb-milvus-bench-")).start()
    try:
        result = run(args.uri or server.uri, args.n, args.dim, args.queries, args.strong_every)  # type: ignore[union-attr]
    finally:
        if server is not None:
            server.stop()
            import shutil

            shutil.rmtree(server.base_dir, ignore_errors=True)
    print(table(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
