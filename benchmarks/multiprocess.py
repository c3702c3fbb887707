"""Many processes on one store: ``python -m benchmarks.multiprocess --n 100000``.

One run builds a store of ``--n`` records of ``--dim`` dimensions (random unit vectors,
each record with a short document and a small metadata dict; cosine space) in a process
of its own, closes it and copies the folder once (the copy is the *lone* store: one
process, :data:`LONE`, uses it, alone, as the single-process baseline of the same run).
Then separate processes (``multiprocessing``, spawn), each with its own
``vectordb.PersistentClient`` on the one store folder, are driven over pipes:

1. **current reader**: query p50 of a reader (``R``) whose caches are current, while a
   writer (``W``) that has written holds the store open, against the lone client's
   (``L``, on the copy) p50; the two take turns in blocks of queries, so that drift in
   the machine's speed hits both alike (target: at most 1.2x);
2. **catch-up**: ``W`` adds a batch of ``--catchup-batch`` records (100), then ``R``
   runs one query, which must catch up first; its latency, p50 over ``--rounds`` rounds
   (target: at most 25 ms); ``R``'s next query (current again) is kept beside it;
3. **steady writer**: ``W`` adds ``--catchup-batch`` records every ``--writer-period``
   seconds (0.2) for ``--stream-s`` seconds while ``R`` queries continuously; ``R``'s
   p50 (target: at most 25 ms);
4. **ingest beside readers**: records/s of ``W`` adding ``--ingest`` records in batches
   of ``--batch`` (embeddings computed before the clock starts) to the collection that
   ``R``, ``R2`` and ``R3`` (``R3`` with ``read_only=True``) query continuously, against
   the lone writer's rate (``L`` ingesting as many records on the lone store, once before
   and once after, the mean kept; the lone store is first given, untimed, as many records
   as the shared one gained in phases 1-3, so that both ingest from the same size)
   (target: at least 0.8x); every process is first let finish the work it deferred (a reader
   inserts another process's writes into its own graph once they pause), before each ingest
   run, so that none of it lands in a timed run, and the readers' deferred work after the
   ingest beside them is reported (seconds busy, CPU seconds);
5. **two writers**: ``W`` and ``W2`` each adding ``--ingest / 2`` records to the one
   collection at once; their combined rate (all records over the span from the first
   start to the last end) against the lone writer's (target: at least 0.8x);
6. **memory**: each process's resident set size (and peak) at the end, beside the size of
   the raw vectors, to state what each process holds.

Every process queries (n_results=10, default ``include``) a few times before any
measurement, so that each holds the collection's derived structures like an app worker
would. Each long phase also reports the CPU seconds each process spent in it (threads
included): every process keeps its own index, and a reader inserts the writer's vectors into
it once the writes pause (until then it searches them exactly), which is visible there and in
the deferred work after the ingest; and for each ingest, how the writer's main thread spent
the span (Linux ``schedstat``): running, waiting for a CPU (the machine is short of cores:
three readers querying without pause, ``--reader-pause-ms 0``, take three), or blocked
(waiting for its turn, for its background index insertion, on a lock or I/O). Only the
public API is used.

Prints a table (figure, measured, target, met?) and writes
``benchmarks/results/multiprocess-n<N>.json`` (``-<tag>`` with ``--tag``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import traceback
import zlib
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks.harness import REPO_ROOT, log, machine, write_report
from benchmarks.worker import status_mib
from vectordb.engine.maintenance import disk_usage

COLLECTION = "bench"
COLLECTION_METADATA = {"hnsw:space": "cosine"}
BUILD_BATCH = 5000
WARM_QUERIES = 20
SETTLE_WINDOW_S = 6.0
"""A process counts as idle after this long with (almost) no CPU: longer than a reader waits for a
writer's pause before inserting its writes (``InsertPolicy.defer_quiet_max_s``, :mod:`vectordb.engine.structure`)."""
K = 10
TAGS = ("news", "blog", "paper", "forum", "wiki", "review", "note", "mail")
WORDS = ("vector", "search", "index", "query", "cluster", "store", "record", "graph", "filter", "cache",
         "disk", "memory", "token", "topic", "market", "energy", "river", "forest", "music", "science")

LONE, READER, WRITER = "L", "R", "W"
READERS = (READER, "R2", "R3")
WRITER2 = "W2"
ROLES = {
    LONE: "lone client, alone on a copy of the store",
    READER: "reader",
    "R2": "reader",
    "R3": "reader, read_only=True",
    WRITER: "writer",
    WRITER2: "second writer",
}


# -- data ---------------------------------------------------------------------


def _rng(seed: int, label: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def unit_vectors(seed: int, label: str, count: int, dim: int) -> np.ndarray:
    """``count`` random unit vectors (float32), the same for the same ``(seed, label)``."""
    v = _rng(seed, label).standard_normal((count, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def records(prefix: str, count: int, dim: int, seed: int) -> Dict[str, Any]:
    """The arguments of ``add`` for records ``<prefix><0..count-1>``: embeddings, a short
    document and a small metadata dict each."""
    ids = [f"{prefix}{i}" for i in range(count)]
    return {
        "ids": ids,
        "embeddings": unit_vectors(seed, prefix, count, dim),
        "documents": [f"record {r}: {WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]}"
                      for i, r in enumerate(ids)],
        "metadatas": [{"i": i, "group": i % 100, "tag": TAGS[i % len(TAGS)]} for i in range(count)],
    }


def _slice(batch: Dict[str, Any], start: int, stop: int) -> Dict[str, Any]:
    return {key: value[start:stop] for key, value in batch.items()}


# -- what runs in each process ------------------------------------------------


def _sched_s() -> Tuple[float, float]:
    """This thread's time on a CPU and waiting for one (runnable, not running) so far (Linux;
    zeros elsewhere): what is neither, of a span, it spent blocked (sleeping, on a lock, on I/O)."""
    try:
        with open("/proc/thread-self/schedstat") as fh:
            ran, waited = fh.read().split()[:2]
        return int(ran) / 1e9, int(waited) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


def _split(wall: float, before: Tuple[float, float], after: Tuple[float, float]) -> Dict[str, float]:
    ran, waited = after[0] - before[0], after[1] - before[1]
    return {"running_s": ran, "runnable_s": waited, "blocked_s": max(0.0, wall - ran - waited)}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def build(path: str, n: int, dim: int, seed: int) -> Dict[str, float]:
    """In a process of its own: create the store with ``n`` records (ids ``b<batch start>-<i>``), close it."""
    import vectordb

    start = time.perf_counter()
    client = vectordb.PersistentClient(path)
    col = client.create_collection(COLLECTION, metadata=COLLECTION_METADATA, embedding_function=None)
    for first in range(0, n, BUILD_BATCH):
        col.add(**records(f"b{first}-", min(BUILD_BATCH, n - first), dim, seed))
    col.query(query_embeddings=unit_vectors(seed, "build-query", 1, dim), n_results=K)
    assert col.count() == n, (col.count(), n)
    ingest_s = time.perf_counter() - start
    client.close()
    return {"ingest_s": ingest_s, "total_s": time.perf_counter() - start, "rate": n / ingest_s}


def _build_main(conn: Any, path: str, n: int, dim: int, seed: int) -> None:
    try:
        conn.send(("ok", build(path, n, dim, seed)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


class _Actor:
    """One process's client and what the driver asks of it (see :func:`_actor_main`)."""

    def __init__(self, conn: Any, name: str, path: str, dim: int, seed: int, read_only: bool) -> None:
        import vectordb

        self.conn, self.name, self.dim, self.seed = conn, name, dim, seed
        start = time.perf_counter()
        self.client = vectordb.PersistentClient(path, read_only=read_only)
        self.col = self.client.get_collection(COLLECTION, embedding_function=None)
        self.open_s = time.perf_counter() - start
        self.queries = unit_vectors(seed, f"queries-{name}", 1024, dim)
        self.next_query = 0

    def query_once(self) -> float:
        q = self.queries[self.next_query % len(self.queries)]
        self.next_query += 1
        t = time.perf_counter()
        result = self.col.query(query_embeddings=[q], n_results=K)
        elapsed = time.perf_counter() - t
        if len(result["ids"][0]) != K:
            raise AssertionError(f"{self.name}: a query returned {len(result['ids'][0])} ids, not {K}")
        return elapsed

    # each command returns what is sent back

    def cmd_warm(self, count: int) -> Dict[str, Any]:
        t = time.perf_counter()
        first = self.query_once()
        for _ in range(count - 1):
            self.query_once()
        return {"first_s": first, "total_s": time.perf_counter() - t}

    def cmd_query(self, count: int) -> List[float]:
        return [self.query_once() for _ in range(count)]

    def cmd_query_until_stop(self, pause_s: float) -> Dict[str, Any]:
        """Query until the driver sends anything (that message is the stop)."""
        cpu, latencies = _cpu_s(), []
        while not self.conn.poll(pause_s if pause_s > 0 else 0):
            latencies.append(self.query_once())
        self.conn.recv()
        return {"latencies": latencies, "cpu_s": _cpu_s() - cpu}

    def cmd_add(self, prefix: str, count: int) -> float:
        batch = records(prefix, count, self.dim, self.seed)
        t = time.perf_counter()
        self.col.add(**batch)
        return time.perf_counter() - t

    def cmd_write_every(self, prefix: str, count: int, period_s: float) -> Dict[str, Any]:
        """Add ``count`` records every ``period_s`` (start to start) until the driver sends anything."""
        cpu, latencies, k = _cpu_s(), [], 0
        tick = time.monotonic()
        while True:
            batch = records(f"{prefix}{k}-", count, self.dim, self.seed)
            t = time.perf_counter()
            self.col.add(**batch)
            latencies.append(time.perf_counter() - t)
            k += 1
            tick += period_s
            if self.conn.poll(max(0.0, tick - time.monotonic())):
                break
        self.conn.recv()
        return {"add_latencies": latencies, "batches": k, "records": k * count, "cpu_s": _cpu_s() - cpu}

    def cmd_ingest(self, prefix: str, count: int, batch: int, go: float) -> Dict[str, Any]:
        """Add ``count`` records in batches of ``batch`` from monotonic time ``go`` on
        (embeddings, documents and metadata made before); start and end (monotonic)."""
        data = records(prefix, count, self.dim, self.seed)
        parts = [_slice(data, s, s + batch) for s in range(0, count, batch)]
        time.sleep(max(0.0, go - time.monotonic()))
        cpu, sched, start = _cpu_s(), _sched_s(), time.monotonic()
        for part in parts:
            self.col.add(**part)
        end = time.monotonic()
        return {"start": start, "end": end, "records": count, "rate": count / (end - start),
                "cpu_s": _cpu_s() - cpu, "main_thread": _split(end - start, sched, _sched_s())}

    def cmd_settle(self, window_s: float, max_s: float) -> Dict[str, float]:
        """Wait until this process is idle (under 2% of a CPU over ``window_s``, longer than a reader
        defers its index work), at most ``max_s``: what it did meanwhile is work deferred to then."""
        start, cpu = time.monotonic(), _cpu_s()
        while True:
            before = _cpu_s()
            time.sleep(window_s)
            if _cpu_s() - before < 0.02 * window_s or time.monotonic() - start >= max_s:
                break
        return {"busy_s": max(0.0, time.monotonic() - start - window_s), "cpu_s": _cpu_s() - cpu}

    def cmd_count(self) -> int:
        return self.col.count()

    def cmd_memory(self) -> Dict[str, Optional[float]]:
        return {"rss_mib": status_mib("VmRSS"), "peak_rss_mib": status_mib("VmHWM")}

    def cmd_close(self) -> float:
        t = time.perf_counter()
        self.client.close()
        return time.perf_counter() - t


def _actor_main(conn: Any, name: str, path: str, dim: int, seed: int, read_only: bool) -> None:
    """A process of the benchmark: open the store, then answer ``(command, *args)`` messages
    with ``("ok", result)`` or ``("error", traceback)`` until ``close``."""
    try:
        actor = _Actor(conn, name, path, dim, seed, read_only)
        conn.send(("ok", {"open_s": actor.open_s, "pid": os.getpid()}))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, *args = conn.recv()
        except EOFError:
            return  # the driver is gone
        try:
            result = getattr(actor, f"cmd_{command}")(*args)
        except BaseException:
            conn.send(("error", traceback.format_exc()))
            return
        conn.send(("ok", result))
        if command == "close":
            return


# -- the driver ----------------------------------------------------------------


class Proc:
    """A benchmark process seen from the driver."""

    def __init__(self, ctx: Any, name: str, path: str, dim: int, seed: int, read_only: bool = False) -> None:
        self.name = name
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_actor_main, args=(child, name, path, dim, seed, read_only),
                                   name=f"vectordb-bench-{name}", daemon=True)
        self.process.start()
        child.close()
        self.opened: Dict[str, Any] = {}

    def send(self, command: str, *args: Any) -> None:
        self.conn.send((command, *args))

    def receive(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"process {self.name} did not answer within {timeout:g} s")
        try:
            status, result = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise RuntimeError(f"process {self.name} died (exit code {self.process.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"process {self.name} failed:\n{result}")
        return result

    def call(self, timeout: float, command: str, *args: Any) -> Any:
        self.send(command, *args)
        return self.receive(timeout)

    def stop(self, timeout: float) -> Any:
        """End a ``*_until_stop`` / ``write_every`` command and return its result."""
        self.conn.send(("stop",))
        return self.receive(timeout)

    def shut(self, timeout: float, clean: bool = True) -> Optional[float]:
        """Close the client (seconds it took), or terminate the process if that fails or
        ``clean`` is false (after an error the process may be inside a command)."""
        closed: Optional[float] = None
        try:
            if clean and self.process.is_alive():
                closed = self.call(timeout, "close")
        except Exception as exc:  # terminated below
            log(f"{self.name}: close failed: {str(exc)[-300:]}")
        self.process.join(timeout if clean else 0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)
        self.conn.close()
        if self.process.exitcode != 0:
            log(f"{self.name}: exit code {self.process.exitcode}")
        return closed


def _ms(seconds: Iterable[float]) -> Dict[str, Any]:
    values = np.asarray(list(seconds), dtype=np.float64) * 1e3
    if not len(values):
        return {"count": 0}
    return {"count": int(len(values)), "p50_ms": float(np.percentile(values, 50)),
            "p90_ms": float(np.percentile(values, 90)), "p99_ms": float(np.percentile(values, 99)),
            "max_ms": float(values.max()), "mean_ms": float(values.mean())}


def _disk_mib(path: str) -> float:
    return disk_usage(path) / 2**20


def start_all(procs: Dict[str, Proc], timeout: float) -> None:
    for proc in procs.values():
        proc.opened = proc.receive(timeout)


def warm(procs: Sequence[Proc], count: int, timeout: float) -> Dict[str, Any]:
    """A few queries in each process (its caches loaded or caught up); their first query's time."""
    for proc in procs:
        proc.send("warm", count)
    return {proc.name: proc.receive(timeout) for proc in procs}


def settle(procs: Sequence[Proc], args: argparse.Namespace) -> Dict[str, Any]:
    """Let every process finish the work it deferred (a reader inserts another process's writes
    into its own graph once they pause), so that none of it lands in the next timed run; how
    long each stayed busy and the CPU it spent."""
    for proc in procs:
        proc.send("settle", SETTLE_WINDOW_S, args.timeout / 2)
    return {proc.name: proc.receive(args.timeout) for proc in procs}


def phase_current(procs: Dict[str, Proc], args: argparse.Namespace) -> Dict[str, Any]:
    """1: the lone client's and a current reader's query latency, in alternating blocks."""
    lone, reader = procs[LONE], procs[READER]
    times: Dict[str, List[float]] = {LONE: [], READER: []}
    block = max(1, min(100, args.queries // 10))
    done = 0
    while done < args.queries:
        count = min(block, args.queries - done)
        for proc in (lone, reader):
            times[proc.name] += proc.call(args.timeout, "query", count)
        done += count
    out = {"lone": _ms(times[LONE]), "reader": _ms(times[READER]), "block": block}
    out["ratio"] = out["reader"]["p50_ms"] / out["lone"]["p50_ms"]
    return out


def phase_catchup(procs: Dict[str, Proc], args: argparse.Namespace) -> Dict[str, Any]:
    """2: the writer adds a batch; the reader's next query catches up, then one more (current)."""
    writer, reader = procs[WRITER], procs[READER]
    adds, first, second = [], [], []
    for r in range(args.rounds):
        adds.append(writer.call(args.timeout, "add", f"c{r}-", args.catchup_batch))
        a, b = reader.call(args.timeout, "query", 2)
        first.append(a)
        second.append(b)
    return {"next_query": _ms(first), "query_after": _ms(second), "writer_add": _ms(adds),
            "rounds": args.rounds, "batch": args.catchup_batch}


def phase_stream(procs: Dict[str, Proc], args: argparse.Namespace) -> Dict[str, Any]:
    """3: the writer adds a batch every period while the reader queries continuously."""
    writer, reader = procs[WRITER], procs[READER]
    reader.send("query_until_stop", 0.0)
    writer.send("write_every", "s", args.catchup_batch, args.writer_period)
    time.sleep(args.stream_s)
    read = reader.stop(args.timeout)
    wrote = writer.stop(args.timeout)
    return {"reader": {**_ms(read["latencies"]), "cpu_s": read["cpu_s"]},
            "writer": {"add": _ms(wrote["add_latencies"]), "batches": wrote["batches"], "records": wrote["records"],
                       "cpu_s": wrote["cpu_s"]},
            "seconds": args.stream_s, "period_s": args.writer_period}


def _ingest(procs: Sequence[Proc], prefix: str, count: int, args: argparse.Namespace) -> Dict[str, Any]:
    """The processes add ``count`` records each, from one moment on; combined rate and each one's."""
    go = time.monotonic() + 0.5 + 0.3 * len(procs)  # time to make the records first
    for i, proc in enumerate(procs):
        proc.send("ingest", f"{prefix}{i}-", count, args.batch, go)
    results = {proc.name: proc.receive(args.timeout) for proc in procs}
    start = min(r["start"] for r in results.values())
    end = max(r["end"] for r in results.values())
    total = sum(r["records"] for r in results.values())
    return {"rate": total / (end - start), "seconds": end - start, "records": total,
            "processes": {name: {"rate": r["rate"], "seconds": r["end"] - r["start"], "cpu_s": r["cpu_s"],
                                 "main_thread": r["main_thread"]} for name, r in results.items()}}


def phase_ingest(procs: Dict[str, Proc], args: argparse.Namespace) -> Dict[str, Any]:
    """4 and 5: the lone writer; the writer beside three querying readers; two writers at once;
    the lone writer again (its two runs bracket the others)."""
    lone = procs[LONE]
    readers = [procs[name] for name in READERS]
    out: Dict[str, Any] = {"lone_runs": []}
    # the lone store gets as many records as the shared one has gained, so that both ingest from one size
    sizes = {LONE: lone.call(args.timeout, "count"), WRITER: procs[WRITER].call(args.timeout, "count")}
    if sizes[WRITER] > sizes[LONE]:
        log(f"ingest: {sizes[WRITER] - sizes[LONE]:,} records added to the lone store first (not timed)")
        lone.call(args.timeout, "ingest", "f-", sizes[WRITER] - sizes[LONE], args.batch, 0.0)
    out["records_at_start"] = sizes[WRITER]
    everyone = list(procs.values())
    log("ingest: every process finishing its deferred work first")
    settle(everyone, args)
    log(f"ingest: lone writer, {args.ingest:,} records in batches of {args.batch:,}")
    out["lone_runs"].append(_ingest([lone], "iL0-", args.ingest, args))
    warm([procs[WRITER], *readers], 3, args.timeout)
    settle(everyone, args)
    log("ingest: the writer, three readers querying")
    for proc in readers:
        proc.send("query_until_stop", args.reader_pause_ms / 1000)
    time.sleep(0.5)
    try:
        busy = _ingest([procs[WRITER]], "iB-", args.ingest, args)
    finally:
        stopped = {proc.name: proc.stop(args.timeout) for proc in readers}
    busy["readers"] = {name: {**_ms(r["latencies"]), "cpu_s": r["cpu_s"]} for name, r in stopped.items()}
    out["beside_readers"] = busy
    log("ingest: the readers finishing the work they deferred")
    out["after_beside_readers"] = settle(everyone, args)
    warm([procs[WRITER], procs[WRITER2]], 3, args.timeout)
    settle(everyone, args)
    log(f"ingest: two writers, {args.ingest // 2:,} records each")
    out["two_writers"] = _ingest([procs[WRITER], procs[WRITER2]], "iT-", args.ingest // 2, args)
    settle(everyone, args)
    log("ingest: lone writer again")
    out["lone_runs"].append(_ingest([lone], "iL1-", args.ingest, args))
    out["lone_rate"] = statistics.mean(r["rate"] for r in out["lone_runs"])
    out["beside_readers_ratio"] = busy["rate"] / out["lone_rate"]
    out["two_writers_ratio"] = out["two_writers"]["rate"] / out["lone_rate"]
    return out


def run(args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    """Build the store, start the processes, run the phases; the report."""
    report: Dict[str, Any] = {"config": {
        "n": args.n, "dim": args.dim, "batch": args.batch, "ingest": args.ingest, "queries": args.queries,
        "rounds": args.rounds, "catchup_batch": args.catchup_batch, "writer_period_s": args.writer_period,
        "stream_s": args.stream_s, "reader_pause_ms": args.reader_pause_ms, "seed": args.seed, "k": K,
        "collection_metadata": COLLECTION_METADATA,
        "processes": ROLES, "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }}
    ctx = multiprocessing.get_context("spawn")
    main_path, lone_path = str(work / "store"), str(work / "lone")
    log(f"build: {args.n:,} x {args.dim} records in one process")
    parent, child = ctx.Pipe()
    builder = ctx.Process(target=_build_main, args=(child, main_path, args.n, args.dim, args.seed), daemon=True)
    builder.start()
    child.close()
    try:
        if not parent.poll(args.timeout * 4):
            raise TimeoutError("building the store took too long")
        status, result = parent.recv()
    except EOFError:
        raise RuntimeError(f"the build process died (exit code {builder.exitcode})") from None
    finally:
        builder.join(30)
        if builder.is_alive():
            builder.terminate()
            builder.join(10)
    if status != "ok":
        raise RuntimeError(f"the build failed:\n{result}")
    report["build"] = {**result, "disk_mib": _disk_mib(main_path)}
    shutil.copytree(main_path, lone_path)
    procs: Dict[str, Proc] = {}
    clean = False
    try:
        procs[LONE] = Proc(ctx, LONE, lone_path, args.dim, args.seed)
        for name in (READER, "R2", "R3", WRITER, WRITER2):
            procs[name] = Proc(ctx, name, main_path, args.dim, args.seed, read_only=name == "R3")
        log(f"processes: {', '.join(f'{n} ({ROLES[n]})' for n in procs)}: opening")
        start_all(procs, args.timeout)
        report["open_s"] = {name: p.opened["open_s"] for name, p in procs.items()}
        report["first_query_s"] = {name: r["first_s"] for name, r in warm(list(procs.values()), WARM_QUERIES,
                                                                            args.timeout).items()}
        # the writer writes once, so that the reader shares the store with a process that has written
        procs[WRITER].call(args.timeout, "add", "w-", args.catchup_batch)
        warm([procs[READER]], WARM_QUERIES, args.timeout)
        log(f"1: lone client vs current reader, {args.queries:,} queries each")
        report["current"] = phase_current(procs, args)
        log(f"2: writer adds {args.catchup_batch}, reader's next query, {args.rounds} rounds")
        report["catchup"] = phase_catchup(procs, args)
        log(f"3: writer adds {args.catchup_batch} every {args.writer_period:g} s for {args.stream_s:g} s, "
            "reader queries")
        report["stream"] = phase_stream(procs, args)
        report["ingest"] = phase_ingest(procs, args)
        warm(list(procs.values()), 3, args.timeout)  # every process current, before its memory is read
        counts = {name: p.call(args.timeout, "count") for name, p in procs.items()}
        report["counts"] = counts
        report["memory"] = {name: {"role": ROLES[name], **p.call(args.timeout, "memory")} for name, p in procs.items()}
        report["vectors_mib"] = {"store": counts[READER] * args.dim * 4 / 2**20,
                                 "lone": counts[LONE] * args.dim * 4 / 2**20}
        report["disk_mib"] = {"store": _disk_mib(main_path), "lone": _disk_mib(lone_path)}
        if len({counts[name] for name in procs if name != LONE}) != 1:
            raise AssertionError(f"the processes on one store count different records: {counts}")
        clean = True
    finally:
        log("closing the processes" if clean else "stopping the processes")
        closes = {name: p.shut(min(args.timeout, 300), clean) for name, p in procs.items()}
    report["close_s"] = closes
    report["exit_codes"] = {name: p.process.exitcode for name, p in procs.items()}
    report["config"]["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["config"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report["targets"] = targets(report)
    return report


def targets(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The judged figures: figure, value, target text, met (True/False)."""
    cur, cat, stream, ing = report["current"], report["catchup"], report["stream"], report["ingest"]
    return [
        {"figure": "current reader query p50 / lone client's", "key": "current_ratio", "value": cur["ratio"],
         "target": "<= 1.2x", "met": cur["ratio"] <= 1.2},
        {"figure": f"next query after another process adds {cat['batch']}, p50 (ms)", "key": "catchup_p50_ms",
         "value": cat["next_query"]["p50_ms"], "target": "<= 25 ms", "met": cat["next_query"]["p50_ms"] <= 25},
        {"figure": f"reader query p50, writer adding {cat['batch']} every {stream['period_s']:g} s (ms)",
         "key": "stream_p50_ms", "value": stream["reader"]["p50_ms"], "target": "<= 25 ms",
         "met": stream["reader"]["p50_ms"] <= 25},
        {"figure": "ingest beside 3 querying processes / lone writer", "key": "ingest_beside_readers_ratio",
         "value": ing["beside_readers_ratio"], "target": ">= 0.8x", "met": ing["beside_readers_ratio"] >= 0.8},
        {"figure": "two writers together / one writer alone", "key": "two_writers_ratio",
         "value": ing["two_writers_ratio"], "target": ">= 0.8x", "met": ing["two_writers_ratio"] >= 0.8},
    ]


def format_table(report: Dict[str, Any]) -> str:
    """The figures as a text table: figure, measured, target, met?"""
    cfg = report["config"]
    cur, cat, stream, ing = report["current"], report["catchup"], report["stream"], report["ingest"]
    met = {t["key"]: ("yes" if t["met"] else "NO") for t in report["targets"]}
    busy, two = ing["beside_readers"], ing["two_writers"]
    lone_runs = " / ".join(f"{r['rate']:,.0f}" for r in ing["lone_runs"])
    rows: List[Tuple[str, str, str, str]] = [
        ("1. current reader query p50 (ms)",
         f"{cur['reader']['p50_ms']:.3f} vs lone {cur['lone']['p50_ms']:.3f}: {cur['ratio']:.2f}x",
         "<= 1.2x lone", met["current_ratio"]),
        ("   p99 (ms)", f"{cur['reader']['p99_ms']:.3f} vs lone {cur['lone']['p99_ms']:.3f}", "", ""),
        (f"2. next query after another process adds {cat['batch']}, p50 (ms)",
         f"{cat['next_query']['p50_ms']:.2f}", "<= 25 ms", met["catchup_p50_ms"]),
        ("   its p90 / max; the query after it, p50 (ms)",
         f"{cat['next_query']['p90_ms']:.2f} / {cat['next_query']['max_ms']:.2f}; {cat['query_after']['p50_ms']:.3f}",
         "", ""),
        (f"   the writer's add of {cat['batch']}, p50 (ms)", f"{cat['writer_add']['p50_ms']:.2f}", "", ""),
        (f"3. reader query p50, writer adding {cat['batch']} every {stream['period_s']:g} s (ms)",
         f"{stream['reader']['p50_ms']:.3f}", "<= 25 ms", met["stream_p50_ms"]),
        ("   its p90 / p99 / max, mean (ms); queries; writer's batches",
         f"{stream['reader']['p90_ms']:.2f} / {stream['reader']['p99_ms']:.2f} / {stream['reader']['max_ms']:,.0f}, "
         f"{stream['reader']['mean_ms']:.2f}; {stream['reader']['count']:,}; {stream['writer']['batches']}", "", ""),
        (f"4. ingest, 3 processes querying (rec/s, batches of {cfg['batch']:,})",
         f"{busy['rate']:,.0f} vs lone {ing['lone_rate']:,.0f}: {ing['beside_readers_ratio']:.2f}x",
         ">= 0.8x lone", met["ingest_beside_readers_ratio"]),
        ("   lone writer runs (rec/s, before / after)", lone_runs, "", ""),
        ("   readers' query p50 (max) during it (ms)",
         ", ".join(f"{n} {r['p50_ms']:.2f} ({r['max_ms']:,.0f})" for n, r in busy["readers"].items()), "", ""),
        ("   CPU s in it: writer (lone writer); readers",
         f"{busy['processes'][WRITER]['cpu_s']:.1f} ({ing['lone_runs'][0]['processes'][LONE]['cpu_s']:.1f}); "
         + ", ".join(f"{r['cpu_s']:.1f}" for r in busy["readers"].values()), "", ""),
        ("   then each reader busy with deferred work (s, CPU s)",
         ", ".join(f"{n} {r['busy_s']:.1f} ({r['cpu_s']:.1f})" for n, r in ing["after_beside_readers"].items()
                   if n in READERS), "", ""),
        ("   writer's main thread running / waiting for a CPU / blocked (s)",
         f"{_thread(busy['processes'][WRITER])} vs lone {_thread(ing['lone_runs'][0]['processes'][LONE])}", "", ""),
        ("5. two writers together (rec/s)",
         f"{two['rate']:,.0f} vs one {ing['lone_rate']:,.0f}: {ing['two_writers_ratio']:.2f}x",
         ">= 0.8x one", met["two_writers_ratio"]),
        ("   each writer's own rate (rec/s); CPU s",
         ", ".join(f"{n} {p['rate']:,.0f}" for n, p in two["processes"].items()) + "; "
         + ", ".join(f"{p['cpu_s']:.1f}" for p in two["processes"].values()), "", ""),
        ("   main threads running / waiting for a CPU / blocked (s)",
         ", ".join(f"{n} {_thread(p)}" for n, p in two["processes"].items()), "", ""),
    ]
    vectors = report["vectors_mib"]["store"]
    for i, (name, mem) in enumerate(report["memory"].items()):
        rows.append((f"{'6.' if i == 0 else '  '} RSS at end (MiB), {name}: {mem['role']}",
                     f"{_mib(mem['rss_mib'])} (peak {_mib(mem['peak_rss_mib'])})", "report", "-"))
    rows.append(("   raw vectors; store on disk (MiB)",
                 f"{vectors:,.1f}; {report['disk_mib']['store']:,.1f}", "", ""))
    head = (f"n={cfg['n']:,} dim={cfg['dim']} records at end={report['counts'][READER]:,} "
            f"cpus={cfg['machine']['cpus']} load={cfg['machine']['load_average_at_start'][0]:.1f}"
            f"->{cfg['machine']['load_average_at_end'][0]:.1f} build {report['build']['rate']:,.0f} rec/s")
    header = ("figure", "measured", "target", "met?")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(4)]
    line = "  ".join("{:<%d}" % w for w in widths)
    out = [head, line.format(*header), "-" * (sum(widths) + 6)]
    out += [line.format(*row).rstrip() for row in rows]
    return "\n".join(out)


def _mib(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _thread(figures: Dict[str, Any]) -> str:
    t = figures["main_thread"]
    return f"{t['running_s']:.1f} / {t['runnable_s']:.1f} / {t['blocked_s']:.1f}"


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.multiprocess", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="records in the store at the start (default 100000)")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (default 384)")
    parser.add_argument("--queries", type=int, default=2000,
                        help="queries of the lone client and of the current reader (default 2000)")
    parser.add_argument("--rounds", type=int, default=100, help="catch-up rounds (default 100)")
    parser.add_argument("--catchup-batch", type=int, default=100,
                        help="records the writer adds per round, and per period (default 100)")
    parser.add_argument("--writer-period", type=float, default=0.2,
                        help="seconds between the steady writer's batches (default 0.2)")
    parser.add_argument("--stream-s", type=float, default=10.0, help="seconds of the steady writer (default 10)")
    parser.add_argument("--ingest", type=int, default=None,
                        help="records of each ingest run (default min(20000, n/5), at least 5 batches)")
    parser.add_argument("--batch", type=int, default=1000, help="records per add() in the ingest runs (default 1000)")
    parser.add_argument("--reader-pause-ms", type=float, default=0.0,
                        help="pause between the queries of each reader during the ingest (default 0: continuous)")
    parser.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds a process may take to answer one step (default 900)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results", help="folder for the JSON")
    parser.add_argument("--tag", default="", help="suffix of the JSON file name (e.g. before, after)")
    parser.add_argument("--work", default=None, help="folder for the temporary stores (default: the system's)")
    args = parser.parse_args(argv)
    if args.ingest is None:
        args.ingest = max(5 * args.batch, min(20_000, args.n // 5))
    for name in ("n", "dim", "queries", "rounds", "catchup_batch", "ingest", "batch"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.ingest < 2:
        parser.error("--ingest must be at least 2 (two writers take half each)")
    if args.writer_period <= 0 or args.stream_s <= 0 or args.timeout <= 0:
        parser.error("--writer-period, --stream-s and --timeout must be positive")
    if args.reader_pause_ms < 0:
        parser.error("--reader-pause-ms must be 0 or more")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse(argv)
    os.environ.setdefault("VECTORDB_PROGRESS", "0")  # the processes inherit it
    work = Path(tempfile.mkdtemp(prefix="vectordb-multiprocess-", dir=args.work))
    try:
        report = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(args.out, f"multiprocess-n{args.n}{'-' + args.tag if args.tag else ''}", report, format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
