"""One system's workload in a process of its own: ingest, then queries; prints nothing, writes JSON.

Usage (by the harness): ``python -m benchmarks.worker SYSTEM DATA_DIR STORE_DIR OUT.json
--batch 5000 [--ingest-only]``. Uses numpy and the standard library only (it also runs
under the chromadb interpreter). Recall is computed by the parent from the returned rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from benchmarks import data, systems

WARMUP_QUERIES = 20
K = 10


def status_mib(field: str) -> Optional[float]:
    """A ``/proc/self/status`` memory field (Linux) in MiB, or None elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak resident set size so far.

    ``VmHWM`` belongs to this process's own address space; ``ru_maxrss`` (the fallback)
    also counts the parent's size at fork, since Linux keeps it across exec.
    """
    hwm = status_mib("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mib() -> float:
    """This process's resident set size now (Linux), else its peak so far."""
    rss = status_mib("VmRSS")
    return rss if rss is not None else peak_rss_mib()


def ingest(store: Any, ds: data.Dataset, batch: int) -> Dict[str, Any]:
    """Add every record in batches; the time includes ``finish()`` (making it durable)."""
    sizes: List[int] = []
    rates: List[float] = []
    start_all = time.perf_counter()
    for start in range(0, len(ds.vectors), batch):
        stop = min(start + batch, len(ds.vectors))
        t0 = time.perf_counter()
        store.add(start, ds.vectors[start:stop], ds.metadatas[start:stop], ds.documents[start:stop])
        sizes.append(stop)
        rates.append((stop - start) / (time.perf_counter() - t0))
    added = time.perf_counter()
    store.finish()
    done = time.perf_counter()
    return {
        "records": len(ds.vectors),
        "seconds": done - start_all,
        "finish_seconds": done - added,
        "rate": len(ds.vectors) / (done - start_all),
        "batch_sizes": sizes,
        "batch_rates": rates,
    }


def timed_queries(store: Any, queries: np.ndarray, categories: Optional[np.ndarray]) -> Dict[str, Any]:
    """Run each query alone; latency percentiles in ms and the rows found."""
    latencies: List[float] = []
    rows: List[List[int]] = []
    for i, q in enumerate(queries):
        cat = None if categories is None else int(categories[i])
        t0 = time.perf_counter()
        found = store.query(q, K, cat)
        latencies.append(time.perf_counter() - t0)
        rows.append(found)
    ms = np.asarray(latencies) * 1000.0
    return {
        "count": len(ms),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "rows": rows,
    }


def run(system: str, data_dir: Path, store_dir: Path, batch: int, ingest_only: bool) -> Dict[str, Any]:
    """The whole workload of one system; returns the figures as a JSON-safe dict."""
    module = systems.load(system)
    ds = data.load(data_dir)
    result: Dict[str, Any] = {"system": system, "rss_data_mib": current_rss_mib()}
    store = module.Store.create(str(store_dir), ds.vectors.shape[1], len(ds.vectors))
    result["ingest"] = ingest(store, ds, batch)
    if not ingest_only:
        store.prepare()
        for q in ds.queries[:WARMUP_QUERIES]:
            store.query(q, K, None)
        result["query"] = timed_queries(store, ds.queries, None)
        result["filtered_query"] = timed_queries(store, ds.queries, ds.query_categories)
    store.close()
    result["rss_peak_mib"] = peak_rss_mib()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=systems.NAMES)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("store_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--ingest-only", action="store_true")
    args = parser.parse_args()
    result = run(args.system, args.data_dir, args.store_dir, args.batch, args.ingest_only)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
