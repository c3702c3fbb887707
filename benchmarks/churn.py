"""Recall after churn: a collection that had records added, upserted with new vectors and
deleted, against one built once from its final records.

Usage: ``python -m benchmarks.churn --n 20000`` (options: ``--dim 64``, ``--churn 0.3``,
``--batch 200``, ``--queries 1000``, ``--space l2``, ``--data uniform|normal|mixture``,
``--out DIR``). It loads ``n`` records, then churns in rounds of ``batch`` adds,
``batch/2`` upserts that change vectors and ``batch/2`` deletes (random live records) until
``churn`` x ``n`` records were upserted or deleted, then measures, with default settings:

* reachability: every live record queried with its own vector, how many are not found
  first (and not within the first 10);
* recall@10 of ``queries`` random queries against exact search;
* the search ef in force;

for the churned collection in the process that wrote it and again after closing and
opening its store (a save calibrates the search ef: see :mod:`vectordb.index.calibration`),
a collection built once from the final records (likewise), and raw hnswlib built once over them at ef=50 (the issue's
reference). It prints a table and writes ``churn-n<N>.json`` to ``--out``
(``benchmarks/results`` by default). Only numpy, hnswlib and vectordb are used.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
QUERY_CHUNK = 2000


_POOLS: Dict[tuple, List[Any]] = {}


def make_vectors(rng: np.random.Generator, kind: str, count: int, dim: int) -> np.ndarray:
    """``count`` vectors: uniform in [0, 1) (the hardest for the graph), standard normal, or
    drawn in turn from one pool of the main benchmark's clustered mixture (:mod:`benchmarks.data`)."""
    if kind == "uniform":
        return rng.random((count, dim), dtype=np.float32)
    if kind == "normal":
        return rng.standard_normal((count, dim)).astype(np.float32)
    from benchmarks import data

    pool = _POOLS.setdefault((dim,), [None, 0])
    if pool[0] is None or pool[1] + count > len(pool[0]):
        pool[0], pool[1] = data.make_dataset(max(200_000, 4 * count), dim, 1, 42).vectors.astype(np.float32), 0
    pool[1] += count
    return pool[0][pool[1] - count: pool[1]]


def distances(space: str, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """vectordb's distances (squared l2, 1 - cosine, 1 - dot) of every query to every vector."""
    if space == "l2":
        return (queries ** 2).sum(1)[:, None] - 2 * queries @ vectors.T + (vectors ** 2).sum(1)[None, :]
    if space == "cosine":
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        return 1 - q @ v.T
    return 1 - queries @ vectors.T


class Workload:
    """The records of a churned collection, as the benchmark applies them to vectordb."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = np.random.default_rng(args.seed)
        self.vectors: Dict[int, np.ndarray] = {}
        self.next_row = 0
        self.counts = {"added": 0, "upserted": 0, "deleted": 0, "rounds": 0}

    def new(self, count: int) -> np.ndarray:
        return make_vectors(self.rng, self.args.data, count, self.args.dim)

    def add(self, col: Any, count: int) -> None:
        rows = list(range(self.next_row, self.next_row + count))
        self.next_row += count
        vectors = self.new(count)
        col.add(ids=[f"r{r}" for r in rows], embeddings=vectors)
        self.vectors.update(zip(rows, vectors))

    def run(self, col: Any) -> None:
        """Load ``n`` records, then churn until ``churn * n`` records were upserted or deleted."""
        args = self.args
        for start in range(0, args.n, 5000):
            self.add(col, min(5000, args.n - start))
        half = max(args.batch // 2, 1)
        while self.counts["upserted"] + self.counts["deleted"] < args.churn * args.n:
            self.add(col, args.batch)
            self.counts["added"] += args.batch
            live = np.fromiter(self.vectors, dtype=np.int64)
            changed = self.rng.choice(live, half, replace=False)
            vectors = self.new(half)
            col.upsert(ids=[f"r{r}" for r in changed], embeddings=vectors)
            self.vectors.update(zip(changed.tolist(), vectors))
            gone = self.rng.choice(np.fromiter(self.vectors, dtype=np.int64), half, replace=False)
            col.delete(ids=[f"r{r}" for r in gone])
            for r in gone.tolist():
                del self.vectors[r]
            self.counts["upserted"] += half
            self.counts["deleted"] += half
            self.counts["rounds"] += 1

    def final(self) -> tuple:
        rows = np.fromiter(sorted(self.vectors), dtype=np.int64)
        return rows, np.stack([self.vectors[int(r)] for r in rows])


def search_ef(client: Any, col: Any) -> Optional[int]:
    """The search ef the collection's index uses now (None where it cannot be read)."""
    try:
        index = client.backend.engine.indexes.loaded(col.id)
        return int(getattr(index, "search_ef", index.params.search_ef))
    except Exception:  # an older version or another backend: not reported
        return None


def measure_vectordb(client: Any, col: Any, rows: np.ndarray, vectors: np.ndarray, queries: np.ndarray,
                     truth: np.ndarray) -> Dict[str, Any]:
    """Reachability and recall@10 of a vectordb collection holding ``rows``."""
    ids = np.array([f"r{r}" for r in rows])
    not_top1 = not_top10 = 0
    t0 = time.perf_counter()
    for start in range(0, len(rows), QUERY_CHUNK):
        got = col.query(query_embeddings=vectors[start: start + QUERY_CHUNK], n_results=10, include=[])["ids"]
        for want, found in zip(ids[start: start + QUERY_CHUNK], got):
            not_top1 += found[0] != want
            not_top10 += want not in found
    own_s = time.perf_counter() - t0
    found = col.query(query_embeddings=queries, n_results=10, include=[])["ids"]
    wanted = [set(ids[t]) for t in truth]
    recall = float(np.mean([len(set(f) & w) / 10 for f, w in zip(found, wanted)]))
    return {"live": int(col.count()), "not_top1": int(not_top1), "not_top10": int(not_top10),
            "recall": recall, "search_ef": search_ef(client, col), "own_queries_s": own_s}


def measure_hnswlib(space: str, vectors: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                    ef: int = 50) -> Dict[str, Any]:
    """Raw hnswlib built once over ``vectors`` (M=16, ef_construction=100), searched at ``ef``."""
    import hnswlib

    index = hnswlib.Index(space=space, dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), ef_construction=100, M=16)
    index.add_items(vectors, np.arange(len(vectors)))
    index.set_ef(ef)
    labels, _ = index.knn_query(vectors, k=10)
    recall_labels, _ = index.knn_query(queries, k=10)
    own = np.arange(len(vectors))
    recall = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(recall_labels, truth)]))
    return {"live": len(vectors), "not_top1": int((labels[:, 0] != own).sum()),
            "not_top10": int((~(labels == own[:, None]).any(1)).sum()), "recall": recall, "search_ef": ef}


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """The whole benchmark; returns the report written as JSON."""
    import vectordb

    work = Path(tempfile.mkdtemp(prefix="vectordb-churn-"))
    metadata = {"hnsw:space": args.space}
    report: Dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "out"},
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": {}}
    try:
        workload = Workload(args)
        t0 = time.perf_counter()
        client = vectordb.PersistentClient(str(work / "churned"))
        col = client.create_collection("churn", metadata=metadata, embedding_function=None)
        workload.run(col)
        report["churn_s"] = time.perf_counter() - t0
        report["counts"] = workload.counts
        rows, vectors = workload.final()
        queries = make_vectors(np.random.default_rng(args.seed + 1), args.data, args.queries, args.dim)
        truth = np.argsort(distances(args.space, queries, vectors), axis=1)[:, :10]
        results = report["results"]

        def measure_then_reopened(label: str, client: Any, col: Any) -> None:
            """Measure the collection as written, then again in a new client (its index saved and loaded)."""
            results[label] = measure_vectordb(client, col, rows, vectors, queries, truth)
            client.close()
            with vectordb.PersistentClient(client.path) as again:
                reopened = again.get_collection(col.name, embedding_function=None)
                results[label + ", reopened"] = measure_vectordb(again, reopened, rows, vectors, queries, truth)

        measure_then_reopened("vectordb, churned", client, col)
        client = vectordb.PersistentClient(str(work / "fresh"))
        col = client.create_collection("fresh", metadata=metadata, embedding_function=None)
        for start in range(0, len(rows), 5000):
            col.add(ids=[f"r{r}" for r in rows[start: start + 5000]], embeddings=vectors[start: start + 5000])
        measure_then_reopened("vectordb, built once", client, col)
        results["hnswlib, built once, ef=50"] = measure_hnswlib(args.space, vectors, queries, truth)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = report["results"]
    report["recall_gap"] = results["vectordb, built once"]["recall"] - results["vectordb, churned"]["recall"]
    report["recall_gap_reopened"] = (results["vectordb, built once, reopened"]["recall"]
                                     - results["vectordb, churned, reopened"]["recall"])
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return report


def table(report: Dict[str, Any]) -> str:
    """The report as a text table."""
    cfg, counts = report["config"], report["counts"]
    lines = [
        f"churn: n={cfg['n']:,} dim={cfg['dim']} data={cfg['data']} space={cfg['space']}; "
        f"{counts['rounds']} rounds: {counts['added']:,} added, {counts['upserted']:,} upserted (new vectors), "
        f"{counts['deleted']:,} deleted ({report['churn_s']:.1f} s)",
        f"{'index':<32}{'live':>8}{'not top-1':>11}{'not top-10':>12}{'recall@10':>11}{'search ef':>11}",
        "-" * 85,
    ]
    for name, r in report["results"].items():
        ef = "-" if r["search_ef"] is None else str(r["search_ef"])
        lines.append(f"{name:<32}{r['live']:>8,}{r['not_top1']:>11,}{r['not_top10']:>12,}"
                     f"{r['recall']:>11.4f}{ef:>11}")
    lines.append(f"recall@10, built once minus churned: {report['recall_gap']:+.4f} in the writing process, "
                 f"{report['recall_gap_reopened']:+.4f} reopened (target <= 0.01)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.churn", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--churn", type=float, default=0.3)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--space", choices=("l2", "cosine", "ip"), default="l2")
    parser.add_argument("--data", choices=("uniform", "normal", "mixture"), default="uniform")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"churn-n{args.n}.json"
    path.write_text(json.dumps(report, indent=1))
    print(table(report))
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
