"""Where memory and disk go: a per-part breakdown of one store, in bytes per record.

Usage::

    python -m benchmarks.memory --n 200000            # builds a store, then measures it
    python -m benchmarks.memory --n 200000 --store DIR  # measures (and keeps) the store in DIR

Two fresh processes run: one ingests the benchmark's data set (384-d, cosine, batches of
5,000, metadata and documents, as ``python -m benchmarks`` does) while a thread samples
its RSS, the other opens the store cold and runs a query, a 1%-filtered query, 200 of
each, a ``get`` and a text query, sampling RSS after each step and reading the size of
every part it holds (the hnswlib graph, the exact-search matrix, the record cache, the
metadata index, the text index, DuckDB's buffers). Then every file of the store is
measured, and DuckDB's own storage by column. Prints a table; ``--json`` writes it too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from benchmarks.worker import status_mib

REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 1024.0 * 1024.0


def rss_bytes() -> int:
    """This process's resident set now (Linux ``VmRSS``; 0 elsewhere)."""
    return int((status_mib("VmRSS") or 0) * MIB)


def hwm_bytes() -> int:
    """This process's peak resident set so far (Linux ``VmHWM``; 0 elsewhere)."""
    return int((status_mib("VmHWM") or 0) * MIB)


class Sampler:
    """Samples RSS every ``interval`` seconds on a thread; the peak of each named phase."""

    def __init__(self, interval: float = 0.01) -> None:
        self.phase = "start"
        self.peaks: Dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            rss = rss_bytes()
            self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)
            time.sleep(interval)

    def enter(self, phase: str) -> None:
        """Start a new phase (its peak is sampled from now on)."""
        rss = rss_bytes()
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), rss)
        self.phase = phase
        self.peaks[phase] = max(self.peaks.get(phase, 0), rss)

    def stop(self) -> Dict[str, int]:
        """Stop sampling; each phase's peak."""
        self.enter("end")
        self._stop.set()
        self._thread.join()
        return self.peaks


def _object_bytes(array: np.ndarray) -> int:
    """Bytes of an object array and the distinct Python objects it points to."""
    seen = set()
    total = array.nbytes
    for item in array.tolist():
        if item is not None and id(item) not in seen:
            seen.add(id(item))
            total += sys.getsizeof(item)
    return total


def _dict_bytes(d: Dict[Any, Any]) -> int:
    """Bytes of a dict and its keys and values (strings and ints)."""
    return sys.getsizeof(d) + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in d.items())


def part_sizes(engine: Any, row: Any) -> Dict[str, int]:
    """Bytes held by each derived part of one collection, read from the objects themselves."""
    out: Dict[str, int] = {}
    state = engine.indexes._states.get(row.id)
    index = None if state is None else state.index
    if index is not None:
        graph = getattr(index, "_index", None)
        if graph is not None:
            m0 = 2 * int(graph.M)
            per = index.dim * 4 + m0 * 4 + 4 + 8  # level 0: vector, links, link count, label
            out["hnswlib graph (level 0, estimated)"] = int(graph.get_max_elements()) * per
        exact = getattr(index, "_exact", None)
        if exact is not None:
            kind = "int8 codes" if getattr(exact, "quantized", False) else "float32"
            out[f"exact-search matrix ({kind}, allocated)"] = int(exact.nbytes())
        alive = getattr(index, "_alive", None)
        if alive is not None:
            out["index alive mask"] = int(alive.nbytes)
    records = engine.derived._states.get(row.id)
    cache = None if records is None else records.cache
    if cache is not None:
        for name in ("_ids", "_documents", "_metadatas"):
            array = getattr(cache, name, None)
            if isinstance(array, np.ndarray):
                out[f"record cache {name.strip('_')}"] = _object_bytes(array)
        for name in ("_keys", "_live"):
            array = getattr(cache, name, None)
            if isinstance(array, np.ndarray):
                out[f"record cache {name.strip('_')}"] = int(array.nbytes)
        by_id = getattr(cache, "_by_id", None)
        if isinstance(by_id, dict):
            out["record cache id->label dict"] = _dict_bytes(by_id) - sum(sys.getsizeof(k) for k in by_id)
        extra = getattr(cache, "memory_bytes", None)
        if callable(extra):
            out.update({f"record cache {k}": v for k, v in extra().items()})
    meta = None if records is None else records.metadata
    if meta is not None:
        total = int(meta._live.nbytes)
        for col in meta._columns.values():
            total += sum(int(a.nbytes) for a in col.arrays.values())
            extra = getattr(col, "memory_bytes", None)
            total += extra() if callable(extra) else 0
        out["metadata index"] = total
    text = engine.text._states.get(row.id)
    tindex = None if text is None else getattr(text, "index", None)
    if tindex is not None:
        total = 0
        for value in vars(tindex).values():
            if isinstance(value, np.ndarray):
                total += int(value.nbytes)
        out["text index (arrays)"] = total
    return out


def duckdb_memory(engine: Any) -> Dict[str, int]:
    """DuckDB's buffer-pool use by tag, and its memory limit."""
    out: Dict[str, int] = {}
    con = engine.store.con
    for tag, used in con.execute("SELECT tag, memory_usage_bytes FROM duckdb_memory()").fetchall():
        if used:
            out[f"duckdb {tag}"] = int(used)
    out["duckdb memory_limit setting"] = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    return out


def ingest_child(data_dir: str, store: str, batch: int) -> Dict[str, Any]:
    """Ingest the data set into a new store, sampling RSS (the workload of ``python -m benchmarks``)."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import data

    ds = data.load(Path(data_dir))
    base = rss_bytes()
    sampler = Sampler()
    sampler.enter("import")
    import vectordb

    sampler.enter("ingest")
    client = vectordb.PersistentClient(path=store)
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    for start in range(0, len(ds.vectors), batch):
        stop = min(start + batch, len(ds.vectors))
        col.add(ids=[f"id{i}" for i in range(start, stop)], embeddings=ds.vectors[start:stop],
                metadatas=ds.metadatas[start:stop], documents=ds.documents[start:stop])
    engine = client._backend.engine
    with engine.turn():
        row = engine.store.collection_by_name("bench")
        parts = part_sizes(engine, row)
        parts.update(duckdb_memory(engine))
    sampler.enter("close")
    client.close()
    peaks = sampler.stop()
    return {"data_rss": base, "phases": peaks, "hwm": hwm_bytes(), "parts_after_ingest": parts}


def open_child(store: str, data_dir: str) -> Dict[str, Any]:
    """Open the store cold and run each kind of read, recording RSS after each and the parts held."""
    sys.path.insert(0, str(REPO_ROOT))
    queries = np.load(Path(data_dir) / "queries.npy")
    cats = np.load(Path(data_dir) / "query_categories.npy")
    steps: List[Any] = [("start", rss_bytes(), 0.0)]
    t0 = time.perf_counter()

    def step(name: str) -> None:
        steps.append((name, rss_bytes(), time.perf_counter() - t0))

    import vectordb

    step("import vectordb")
    client = vectordb.PersistentClient(path=store)
    col = client.get_collection("bench", embedding_function=None)
    step("open client + collection")
    col.query(query_embeddings=[queries[0]], n_results=10)
    step("first query")
    col.query(query_embeddings=[queries[1]], n_results=10, where={"category": int(cats[1])})
    step("first 1%-filtered query")
    for q in queries[:200]:
        col.query(query_embeddings=[q], n_results=10)
    step("200 queries")
    lat = []
    for q, c in zip(queries[:200], cats[:200]):
        t = time.perf_counter()
        col.query(query_embeddings=[q], n_results=10, where={"category": int(c)})
        lat.append(time.perf_counter() - t)
    step("200 filtered queries")
    engine = client._backend.engine
    with engine.turn():
        row = engine.store.collection_by_name("bench")
        parts = part_sizes(engine, row)
        parts.update(duckdb_memory(engine))
    col.get(ids=["id1", "id2"])
    step("get by id")
    col.query(query_texts=["vector search"], n_results=10, mode="text")
    step("first text query")
    parts_text = part_sizes(engine, row)
    client.close()
    step("close")
    return {"steps": steps, "hwm": hwm_bytes(), "parts": parts, "parts_text": parts_text,
            "filtered_p50_ms": float(np.median(lat) * 1000)}


def disk_parts(store: str) -> Dict[str, int]:
    """Bytes of every file under the store (grouped: index files, text files, DuckDB's)."""
    out: Dict[str, int] = {}
    for root, _, files in os.walk(store):
        for name in files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, store)
            key = rel if os.sep not in rel else f"{rel.split(os.sep)[0]}/*/{name}"
            out[key] = out.get(key, 0) + os.path.getsize(path)
    return out


def duckdb_columns(store: str) -> Dict[str, int]:
    """DuckDB's storage by table and column: distinct 256 KiB blocks of each column's segments."""
    import duckdb

    con = duckdb.connect(os.path.join(store, "vectordb.duckdb"), read_only=True)
    try:
        out: Dict[str, int] = {}
        block = int(con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0])
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        for table in tables:
            rows = con.execute(f"SELECT column_name, block_id, additional_block_ids FROM pragma_storage_info('{table}')"
                               ).fetchall()
            per: Dict[str, set] = {}
            for column, block_id, extra in rows:
                ids = per.setdefault(f"{table}.{column}", set())
                if block_id is not None and block_id >= 0:
                    ids.add(block_id)
                for b in (extra or []):
                    ids.add(b)
            for key, ids in per.items():
                if ids:
                    out[key] = len(ids) * block
        info = con.execute("SELECT total_blocks, used_blocks, free_blocks, wal_size FROM pragma_database_size()"
                           ).fetchone()
        out["(blocks total/used/free)"] = f"{info[0]}/{info[1]}/{info[2]}"  # type: ignore[assignment]
        return out
    finally:
        con.close()


def run_child(args: List[str]) -> Dict[str, Any]:
    """Run this module in a fresh process with ``args``; its JSON answer."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, HF_HUB_OFFLINE="1", VECTORDB_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.memory", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report(n: int, ingest: Dict[str, Any], opened: Dict[str, Any], disk: Dict[str, int],
           columns: Dict[str, Any]) -> str:
    """The breakdown as text: MiB and bytes per record."""
    lines = [f"n={n:,}"]

    def row(name: str, value: Any) -> None:
        if isinstance(value, (int, float)):
            lines.append(f"  {name:<44} {value / MIB:>9.1f} MiB {value / n:>9.0f} B/rec")
        else:
            lines.append(f"  {name:<44} {value}")

    lines.append("ingest process (RSS peaks by phase; data set loaded first):")
    row("RSS with the data set loaded", ingest["data_rss"])
    for phase, peak in ingest["phases"].items():
        row(f"peak during {phase}", peak)
    row("VmHWM (peak RSS)", ingest["hwm"])
    lines.append("  parts held after the last add:")
    for name, value in ingest["parts_after_ingest"].items():
        row("  " + name, value)
    lines.append("cold open process (RSS after each step, seconds since start):")
    previous = opened["steps"][0][1]
    for name, rss, t in opened["steps"]:
        row(f"{name} (+{(rss - previous) / MIB:.1f} MiB, {t:.2f} s)", rss)
        previous = rss
    row("VmHWM (peak RSS)", opened["hwm"])
    lines.append(f"  filtered p50 (200 queries): {opened['filtered_p50_ms']:.3f} ms")
    lines.append("  parts held after the queries:")
    for name, value in opened["parts"].items():
        row("  " + name, value)
    lines.append("  after a text query as well:")
    for name, value in opened["parts_text"].items():
        if name not in opened["parts"] or opened["parts"][name] != value:
            row("  " + name, value)
    lines.append("disk (after the cold open's close):")
    for name, value in sorted(disk.items()):
        row(name, value)
    row("total", sum(disk.values()))
    lines.append("DuckDB storage by column (distinct blocks):")
    for name, value in columns.items():
        row(name, value)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--store", type=Path, default=None, help="build the store here and keep it")
    parser.add_argument("--reuse", action="store_true", help="measure --store as it is (no ingest)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        result = ingest_child(rest[0], rest[1], int(rest[2])) if kind == "ingest" else open_child(rest[0], rest[1])
        print(json.dumps(result))
        return 0
    from benchmarks import data

    work = Path(tempfile.mkdtemp(prefix="vectordb-mem-"))
    try:
        data.save(data.make_dataset(args.n, args.dim, 1000), work / "data")
        store = str(args.store or work / "store")
        ingest: Dict[str, Any] = {"data_rss": 0, "phases": {}, "hwm": 0, "parts_after_ingest": {}}
        if not args.reuse:
            ingest = run_child(["--child", "ingest", str(work / "data"), store, str(args.batch)])
        opened = run_child(["--child", "open", store, str(work / "data")])
        disk = disk_parts(store)
        columns = duckdb_columns(store)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the data set, and the store unless --store kept it
    text = report(args.n, ingest, opened, disk, columns)
    print(text)
    if args.json:
        args.json.write_text(json.dumps({"ingest": ingest, "open": opened, "disk": disk, "columns": columns}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
