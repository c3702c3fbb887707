"""How long a small query waits while a slow request runs on the same store.

``python -m benchmarks.concurrency`` fills collection ``big`` (``--records`` records of
``--dim`` dimensions, with documents and metadata) and collection ``small`` (2,000
records) in one store on disk. For each slow request on ``big`` it sends small queries
(``--pause-ms`` apart) for as long as the slow request runs, and prints one row per
case: how long the slow request took, how many small queries completed meanwhile, and
their median and longest latency. A store that runs one request at a time answers the
first small query only when the slow one ends: its longest latency is about the slow
request's duration, and one or two complete. The last case sends the small queries to
``big`` itself (reads beside reads of one collection).

In process (the default) the slow request runs on a thread of this process. With
``--http`` the store is served by ``vectordb serve`` in a subprocess; the slow request is
sent by an ``HttpClient`` in a child process of its own (so that its client-side JSON work
does not hold this process's GIL), the small queries by an ``HttpClient`` here.

Only the public API is used, so the same script times any version of vectordb: run it
as a file with another checkout first on the path, e.g.
``PYTHONPATH=/work/main python benchmarks/concurrency.py``; the first line printed says
which vectordb was measured.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

import vectordb

SMALL = 2_000
ALONE_QUERIES = 50
BATCH = 5_000
ADDED = 20_000


def fill(col: Any, start: int, count: int, dim: int, seed: int, batch: int = 5000, prefix: str = "r") -> None:
    """Add ``count`` records ``<prefix><start>``… with random vectors, a document and metadata each."""
    rng = np.random.default_rng(seed)
    for first in range(start, start + count, batch):
        ids = list(range(first, min(start + count, first + batch)))
        col.add(
            ids=[f"{prefix}{i}" for i in ids],
            embeddings=rng.standard_normal((len(ids), dim)).astype(np.float32),
            metadatas=[{"i": i, "group": i % 100} for i in ids],
            documents=[f"document number {i}" for i in ids],
        )


def slow_cases(records: int, dim: int) -> List[Tuple[str, Callable[[Any], Any], bool]]:
    """``(label, slow request on big, whether the small queries go to big too)``."""
    batch = np.random.default_rng(3).standard_normal((BATCH, dim)).astype(np.float32)

    def add_then_query(big: Any) -> None:
        fill(big, 0, ADDED, dim, seed=4, batch=ADDED, prefix=f"added-{uuid.uuid4().hex[:8]}-")
        big.query(query_embeddings=batch[:1], n_results=1)  # waits for the background insertion

    return [
        (f"query batch of {BATCH:,} on big", lambda big: big.query(query_embeddings=batch, n_results=50), False),
        (f"get of all {records:,} records of big, with embeddings",
         lambda big: big.get(include=["embeddings", "metadatas", "documents"]), False),
        (f"add of {ADDED:,} to big, then a query of big", add_then_query, False),
        ("compact big (index rebuild, then file copy)", lambda big: big.compact(), False),
        (f"query batch of {BATCH:,} on big; small queries on big too",
         lambda big: big.query(query_embeddings=batch, n_results=50), True),
    ]


def small_query(col: Any, rng: np.random.Generator, dim: int) -> float:
    """The latency (s) of one query of ten neighbours."""
    t = time.perf_counter()
    col.query(query_embeddings=rng.standard_normal((1, dim)).astype(np.float32), n_results=10)
    return time.perf_counter() - t


def small_queries(col: Any, dim: int, until: threading.Event, pause_s: float) -> List[float]:
    """Latencies (s) of single queries sent one after another until ``until`` is set (at least one)."""
    rng = np.random.default_rng(7)
    latencies: List[float] = []
    while True:
        latencies.append(small_query(col, rng, dim))
        if until.wait(pause_s):
            return latencies


def beside(start_slow: Callable[[threading.Event], float], target: Any, dim: int, pause_s: float,
           lead_s: float = 0.3) -> Tuple[float, List[float]]:
    """Run the slow request (``start_slow(ready)`` sets ``ready`` once it is about to send it,
    and returns its duration) on a thread, and small queries on ``target`` here."""
    ready, done = threading.Event(), threading.Event()
    out: Dict[str, Any] = {}

    def run() -> None:
        try:
            out["slow_s"] = start_slow(ready)
        except BaseException as exc:  # reported below
            out["error"] = exc
        finally:
            ready.set()
            done.set()

    thread = threading.Thread(target=run)
    thread.start()
    ready.wait()
    time.sleep(lead_s)  # let the slow request get under way first
    latencies = small_queries(target, dim, done, pause_s)
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["slow_s"], latencies


def in_process(slow: Callable[[Any], Any], big: Any) -> Callable[[threading.Event], float]:
    def start(ready: threading.Event) -> float:
        ready.set()
        t = time.perf_counter()
        slow(big)
        return time.perf_counter() - t
    return start


def in_child(case: int, port: int, args: argparse.Namespace) -> Callable[[threading.Event], float]:
    """Send slow case ``case`` from a child process (this script with ``--child``); its duration."""
    def start(ready: threading.Event) -> float:
        command = [sys.executable, os.path.abspath(__file__), "--child", str(case), "--port", str(port),
                   "--records", str(args.records), "--dim", str(args.dim)]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env())
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        ready.set()
        child.stdin.write("go\n")
        child.stdin.flush()
        out, _ = child.communicate(timeout=3600)
        if child.returncode != 0:
            raise RuntimeError(f"the slow request failed (exit {child.returncode})")
        return float(out.strip())
    return start


def child(case: int, port: int, records: int, dim: int) -> None:
    """In the child: connect, wait for "go" on stdin, run the case, print its duration."""
    big = vectordb.HttpClient(port=port, timeout=3600).get_collection("big", embedding_function=None)
    _, slow, _ = slow_cases(records, dim)[case]
    print("ready", flush=True)
    sys.stdin.readline()
    t = time.perf_counter()
    slow(big)
    print(time.perf_counter() - t, flush=True)


def _env() -> Dict[str, str]:
    """This process's environment, with the vectordb it imported first on the path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(vectordb.__file__)))
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))


def serve(path: str) -> Tuple[subprocess.Popen, int]:
    """``vectordb serve`` on a free loopback port (the vectordb this script imported)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "vectordb", "serve", "--path", path, "--port", str(port),
                                "--max-body-mb", "512"], env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            vectordb.HttpClient(port=port).heartbeat()
            return process, port
        except Exception:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the server did not start")


def measure(args: argparse.Namespace, path: str) -> List[Tuple[str, Optional[float], List[float]]]:
    """Fill the store, then ``(case, slow duration or None, small-query latencies)`` per case."""
    process: Optional[subprocess.Popen] = None
    if args.http:
        process, port = serve(path)
        client: Any = vectordb.HttpClient(port=port, timeout=3600)
    else:
        client = vectordb.PersistentClient(path)
    try:
        big = client.create_collection("big", embedding_function=None)
        small = client.create_collection("small", embedding_function=None)
        fill(big, 0, args.records, args.dim, seed=1)
        fill(small, 0, SMALL, args.dim, seed=2)
        big.query(query_embeddings=np.zeros((1, args.dim), np.float32), n_results=1)  # load the indexes
        rng = np.random.default_rng(8)
        alone = []
        for _ in range(ALONE_QUERIES):
            alone.append(small_query(small, rng, args.dim))
            time.sleep(args.pause_ms / 1000)
        rows: List[Tuple[str, Optional[float], List[float]]] = [("small query alone", None, alone)]
        for case, (label, slow, on_big) in enumerate(slow_cases(args.records, args.dim)):
            start = in_child(case, port, args) if args.http else in_process(slow, big)
            slow_s, latencies = beside(start, big if on_big else small, args.dim, args.pause_ms / 1000)
            rows.append((label, slow_s, latencies))
        return rows
    finally:
        client.close()
        if process is not None:
            process.terminate()
            process.wait(timeout=60)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.concurrency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000, help="records in collection big (default 50000)")
    parser.add_argument("--dim", type=int, default=64, help="vector dimension (default 64)")
    parser.add_argument("--pause-ms", type=float, default=5.0, help="pause between small queries (default 5)")
    parser.add_argument("--http", action="store_true", help="through `vectordb serve` (see above)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.port, args.records, args.dim)
        return 0
    print(f"vectordb from {os.path.dirname(vectordb.__file__)}; {args.records:,} x {args.dim} in big, "
          f"{SMALL:,} in small; {'HTTP' if args.http else 'in process'}; cpus={os.cpu_count()} "
          f"load={os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        rows = measure(args, os.path.join(folder, "db"))
    print(f"{'slow request':<56} {'slow (s)':>9} {'small done':>10} {'p50 (ms)':>9} {'max (ms)':>9}")
    print("-" * 97)
    for label, slow_s, latencies in rows:
        slow_text = "-" if slow_s is None else f"{slow_s:.2f}"
        print(f"{label:<56} {slow_text:>9} {len(latencies):>10} {statistics.median(latencies) * 1000:>9.1f} "
              f"{max(latencies) * 1000:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
