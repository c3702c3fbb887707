"""Full-text and hybrid search benchmark: ``python -m benchmarks.text --n 100000``.

In one run, on the harness's data (:func:`benchmarks.data.make_dataset`: vectors and
short documents over a 120-word vocabulary):

- ingest rate with the text index on (loaded first, so every write updates it) and off,
  each measured ``--ingest-repeats`` times in turn (off, on, off, on), the best kept;
- query p50/p99 of ``mode="vector"``, ``"text"`` and ``"hybrid"`` (n_results=10,
  default includes), the text queries being 1-3 words drawn from the vocabulary; and of
  the vector and text queries at n_results=100 with ids only (what each side of a hybrid
  query computes before fusing: the floor under the hybrid figure); the five modes are
  taken in turn for each query, so drift in the machine's speed shifts them alike;
- the text index's memory (traced while it is built) and its file on disk.

Prints a table and writes ``benchmarks/results/text-n<N>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable, Dict, List

import numpy as np

import vectordb
from benchmarks import data
from vectordb.text.analyzer import analyzer
from vectordb.text.bm25 import TextIndex

BATCH = 1000


def _ingest(client: vectordb.Client, name: str, ds: data.Dataset, text_on: bool) -> float:
    """Records per second for adding the whole dataset in batches (the text index loaded first when on)."""
    col = client.create_collection(name, metadata={"text:index": text_on}, embedding_function=None)
    if text_on:
        col.query(query_texts="warm", mode="text")  # the index is in memory: every write updates it
    ids = [f"r{i}" for i in range(len(ds.documents))]
    start = time.perf_counter()
    for s in range(0, len(ids), BATCH):
        col.add(ids=ids[s:s + BATCH], embeddings=ds.vectors[s:s + BATCH],
                metadatas=ds.metadatas[s:s + BATCH], documents=ds.documents[s:s + BATCH])
    col.count()
    return len(ids) / (time.perf_counter() - start)


def _latencies(modes: Dict[str, Callable[[Any], Any]], queries: List) -> Dict[str, Dict[str, float]]:
    """p50/p99 of each mode over ``queries``, the modes taken in turn for each query (so a
    machine that speeds up or slows down during the run shifts every mode alike, and the
    ratios between them stay fair); five warm-up rounds first."""
    for q in queries[:5]:
        for fn in modes.values():
            fn(q)
    times: Dict[str, List[float]] = {name: [] for name in modes}
    for q in queries:
        for name, fn in modes.items():
            t = time.perf_counter()
            fn(q)
            times[name].append(time.perf_counter() - t)
    return {name: {"p50_ms": float(np.percentile(ts, 50) * 1e3), "p99_ms": float(np.percentile(ts, 99) * 1e3)}
            for name, ts in times.items()}


def run(n: int, dim: int, n_queries: int, seed: int, ingest_repeats: int = 3) -> Dict:
    ds = data.make_dataset(n, dim, n_queries, seed)
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(data.VOCAB, rng.integers(1, 4))) for _ in range(n_queries)]
    folder = tempfile.mkdtemp(prefix="vectordb-text-bench-")
    result: Dict = {"n": n, "dim": dim, "queries": n_queries}
    with vectordb.PersistentClient(os.path.join(folder, "db")) as client:
        rates: Dict[str, List[float]] = {"off": [], "on": []}
        for repeat in range(ingest_repeats):  # off, on, off, on...: drift in the machine's speed hits both
            for mode in ("off", "on"):
                name = f"text-{mode}" if repeat == 0 else f"text-{mode}-{repeat}"
                rates[mode].append(_ingest(client, name, ds, text_on=mode == "on"))
                if repeat:
                    client.delete_collection(name)
        off, on = max(rates["off"]), max(rates["on"])
        result["ingest_text_off_per_s"], result["ingest_text_on_per_s"] = off, on
        result["ingest_runs_per_s"] = rates
        col = client.get_collection("text-on", embedding_function=None)
        pairs = list(zip(ds.queries, texts))
        result.update(_latencies({
            "vector": lambda p: col.query(query_embeddings=[p[0]], n_results=10),
            "text": lambda p: col.query(query_texts=[p[1]], n_results=10, mode="text"),
            "hybrid": lambda p: col.query(query_embeddings=[p[0]], query_texts=[p[1]], n_results=10, mode="hybrid"),
            "vector_top100_ids": lambda p: col.query(query_embeddings=[p[0]], n_results=100, include=[]),
            "text_top100_ids": lambda p: col.query(query_texts=[p[1]], n_results=100, mode="text", include=[]),
        }, pairs))
        text_id = col.id
    disk = os.path.getsize(os.path.join(folder, "db", "text", text_id + ".npz"))
    tracemalloc.start()
    index = TextIndex(analyzer("default"))
    for s in range(0, n, 10_000):
        index.put(np.arange(s, min(n, s + 10_000)), ds.documents[s: s + 10_000])
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    result["text_index_memory_mb"], result["text_index_disk_mb"] = memory / 2**20, disk / 2**20
    result["ratios"] = {
        "ingest_on_over_off": on / off,
        "hybrid_p50_over_vector_p50": result["hybrid"]["p50_ms"] / result["vector"]["p50_ms"],
    }
    return result


def table(r: Dict) -> str:
    rows = [
        ("ingest, text index off (rec/s)", f"{r['ingest_text_off_per_s']:,.0f}", ""),
        ("ingest, text index on (rec/s)", f"{r['ingest_text_on_per_s']:,.0f}",
         f"{r['ratios']['ingest_on_over_off']:.2f}x off (target >= 0.8x)"),
        ("vector query p50 / p99 (ms)", f"{r['vector']['p50_ms']:.3f} / {r['vector']['p99_ms']:.3f}", ""),
        ("text query p50 / p99 (ms)", f"{r['text']['p50_ms']:.3f} / {r['text']['p99_ms']:.3f}", "target p50 <= 5 ms"),
        ("hybrid query p50 / p99 (ms)", f"{r['hybrid']['p50_ms']:.3f} / {r['hybrid']['p99_ms']:.3f}",
         f"{r['ratios']['hybrid_p50_over_vector_p50']:.2f}x vector (target <= 2x)"),
        ("vector top-100, ids only, p50 (ms)", f"{r['vector_top100_ids']['p50_ms']:.3f}", "hybrid's vector side"),
        ("text top-100, ids only, p50 (ms)", f"{r['text_top100_ids']['p50_ms']:.3f}", "hybrid's text side"),
        ("text index memory (MiB)", f"{r['text_index_memory_mb']:.1f}", ""),
        ("text index on disk (MiB)", f"{r['text_index_disk_mb']:.1f}", ""),
    ]
    width = max(len(a) for a, _, _ in rows)
    return "\n".join(f"{a:<{width}}  {b:>20}  {c}" for a, b, c in [(f"n = {r['n']:,}", "", "")] + rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--ingest-repeats", type=int, default=3,
                        help="ingest with the text index off and on this many times each, alternating (best kept)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    result = run(args.n, args.dim, args.queries, args.seed, args.ingest_repeats)
    print(table(result))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"text-n{args.n}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
