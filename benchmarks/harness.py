"""Run the whole benchmark: make the data, run every system in its own subprocesses, collect figures.

Each system's workload runs in a fresh process (:mod:`benchmarks.worker`) so that timings
and peak RSS are its own; the cold open (:mod:`benchmarks.cold`), the import time and the
embedding throughput (:mod:`benchmarks.embedding`) are measured in further fresh
processes. chromadb runs under its own interpreter (``--chroma-python``).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from benchmarks import data

REPO_ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_TIMEOUT_S = 3600
IMPORT_SNIPPET = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"
ERROR_TAIL = 1500


@dataclass
class Options:
    """What to run; mirrors the command-line options."""

    n: int = 100_000
    dim: int = 384
    batch: int = 5000
    queries: int = 1000
    systems: Tuple[str, ...] = ("vectordb", "hnswlib", "chromadb")
    growth_to: Optional[int] = None
    chroma_python: str = "/opt/chroma-venv/bin/python"
    repeats: int = 5
    ingest_repeats: int = 2
    ef_texts: int = 1000
    seed: int = 42


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the table."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env() -> Dict[str, str]:
    """The environment of every child: offline, quiet, this repository first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               VECTORDB_PROGRESS="0", TOKENIZERS_PARALLELISM="false")
    return env


def run_python(python: str, args: Sequence[str]) -> subprocess.CompletedProcess:
    """Run ``python args...`` from the repository root and capture its output."""
    return subprocess.run([python, *args], cwd=REPO_ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=SUBPROCESS_TIMEOUT_S)


def failure(proc: subprocess.CompletedProcess) -> str:
    """A short account of a failed child."""
    return f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-ERROR_TAIL:].strip()}"


def interpreter(system: str, opts: Options) -> Tuple[Optional[str], str]:
    """The Python that runs ``system``, or None and why it is skipped."""
    if system == "chromadb":
        python = opts.chroma_python
        if not python or not Path(python).exists():
            return None, f"no chromadb interpreter at {python!r} (see --chroma-python)"
    else:
        python = sys.executable
    probe = {"vectordb": "import vectordb; vectordb.PersistentClient",
             "vectordb-milvus": "import vectordb, pymilvus, milvus_lite; vectordb.MilvusClient",
             "vectordb-milvus-server": "import vectordb, pymilvus; vectordb.MilvusClient"}.get(system, f"import {system}")
    proc = run_python(python, ["-c", probe])
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"{system} not usable with {python}: {last}"
    return python, ""


def disk_mib(folder: Path) -> float:
    """Apparent size of every file under ``folder``."""
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return total / 2**20


def write_report(out: Path, name: str, report: Dict[str, Any], table: str) -> Path:
    """Write ``report`` as ``out/name.json``, print its ``table`` and say where it went."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(report, indent=1))
    print(table)
    log(f"wrote {path}")
    return path


def import_seconds(python: str, module: str, repeats: int) -> float:
    """Best of ``repeats`` timings of ``import module`` in a fresh process."""
    times = []
    for _ in range(repeats):
        proc = run_python(python, ["-c", IMPORT_SNIPPET.format(module)])
        if proc.returncode != 0:
            raise RuntimeError(failure(proc))
        times.append(float(proc.stdout.strip().splitlines()[-1]))
    return min(times)


def cold_open(python: str, system: str, store: Path, query_file: Path, repeats: int) -> Dict[str, Any]:
    """Median of ``repeats`` fresh processes timing import + open + first query."""
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = run_python(python, ["-m", "benchmarks.cold", system, str(store), str(query_file)])
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(failure(proc))
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        run["process_wall_s"] = wall
        runs.append(run)
    keys = ("import_s", "open_s", "query_s", "total_s", "process_wall_s")
    result = {k: statistics.median(r[k] for r in runs) for k in keys}
    result["open_query_s"] = statistics.median(r["open_s"] + r["query_s"] for r in runs)
    result["runs"] = len(runs)
    return result


def run_workload(python: str, system: str, data_dir: Path, work: Path, batch: int,
                 ingest_only: bool) -> Tuple[Dict[str, Any], Path]:
    """One worker process; returns its figures and the store it left behind."""
    store = work / f"store-{system}"
    out = work / f"{system}.json"
    args = ["-m", "benchmarks.worker", system, str(data_dir), str(store), str(out), "--batch", str(batch)]
    proc = run_python(python, args + (["--ingest-only"] if ingest_only else []))
    if proc.returncode != 0:
        raise RuntimeError(failure(proc))
    return json.loads(out.read_text()), store


def benchmark_system(system: str, python: str, data_dir: Path, work: Path, opts: Options,
                     truth: np.ndarray, filtered_truth: List[np.ndarray]) -> Dict[str, Any]:
    """Every figure of one system at size ``opts.n``."""
    log(f"{system}: ingest {opts.n:,} records and run {opts.queries:,} + {opts.queries:,} queries")
    result, store = run_workload(python, system, data_dir, work, opts.batch, ingest_only=False)
    result["python"] = python
    result["disk_mib"] = disk_mib(store)
    result["rss_over_data_mib"] = result["rss_peak_mib"] - result["rss_data_mib"]
    for key, want in (("query", truth), ("filtered_query", filtered_truth)):
        result[key]["recall"] = data.recall_at_k(result[key].pop("rows"), want, 10)
    log(f"{system}: cold open + first query, {opts.repeats} fresh processes")
    result["cold"] = cold_open(python, system, store, data_dir / "cold_query.json", opts.repeats)
    module = "vectordb" if system.startswith("vectordb-milvus") else system
    result["import_s"] = import_seconds(python, module, opts.repeats)
    result["search_ef"] = search_ef_of(system, store)
    shutil.rmtree(store, ignore_errors=True)
    return result


def search_ef_of(system: str, store: Path) -> Optional[int]:
    """The search ef a system's queries used: vectordb's calibrated one (in its saved index's
    ``meta.json``), raw hnswlib's fixed one; None for the others."""
    if system == "hnswlib":
        from benchmarks import sys_hnswlib

        return sys_hnswlib.EF_SEARCH
    if system == "vectordb":
        for meta in sorted(store.glob("index/*/meta.json")):
            calibrated = json.loads(meta.read_text()).get("calibrated") or {}
            return calibrated.get("ef")
    return None


def growth_run(system: str, python: str, data_dir: Path, work: Path, opts: Options) -> Dict[str, Any]:
    """Ingest only, up to ``opts.growth_to`` records: the per-batch rate as the collection grows."""
    log(f"{system}: growth run to {opts.growth_to:,} records")
    result, store = run_workload(python, system, data_dir, work, opts.batch, ingest_only=True)
    shutil.rmtree(store, ignore_errors=True)
    return result["ingest"]


def embedding_run(texts: List[str], work: Path) -> Dict[str, Any]:
    """vectordb's DefaultEmbeddingFunction against SentenceTransformer.encode: same texts, same model, one process."""
    texts_file = work / "texts.json"
    texts_file.write_text(json.dumps(texts))
    log(f"embedding throughput: vectordb and sentence-transformers, alternating, on {len(texts):,} texts")
    proc = run_python(sys.executable, ["-m", "benchmarks.embedding", str(texts_file)])
    if proc.returncode != 0:
        return {"error": failure(proc)}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ingest_repeats(pythons: Dict[str, str], data_dir: Path, work: Path, opts: Options,
                   systems: Dict[str, Dict[str, Any]]) -> None:
    """More ingest-only runs of vectordb and hnswlib, alternating, so their ratio does not hang on one run.

    Each system's ``ingest.rate`` becomes the median over its runs (the main run included);
    ``ingest.rate_runs`` keeps them all.
    """
    names = [n for n in ("vectordb", "hnswlib") if n in pythons and "ingest" in systems.get(n, {})]
    for name in names:
        systems[name]["ingest"]["rate_runs"] = [systems[name]["ingest"]["rate"]]
    for round_no in range(opts.ingest_repeats):
        for name in names if round_no % 2 else reversed(names):
            log(f"{name}: ingest-only run {round_no + 1} of {opts.ingest_repeats}")
            result, store = run_workload(pythons[name], name, data_dir, work, opts.batch, ingest_only=True)
            shutil.rmtree(store, ignore_errors=True)
            systems[name]["ingest"]["rate_runs"].append(result["ingest"]["rate"])
    for name in names:
        systems[name]["ingest"]["rate"] = statistics.median(systems[name]["ingest"]["rate_runs"])


def machine() -> Dict[str, Any]:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor(), "load_average_at_start": list(os.getloadavg())}


def run_all(opts: Options, work_root: Optional[str] = None) -> Dict[str, Any]:
    """Run every selected system and return the report (the JSON written to ``--out``)."""
    report: Dict[str, Any] = {"config": {**asdict(opts), "machine": machine(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S")}}
    work = Path(tempfile.mkdtemp(prefix="vectordb-bench-", dir=work_root))
    try:
        log(f"data: {opts.n:,} x {opts.dim} vectors, {opts.queries:,} queries, exact ground truth")
        ds = data.make_dataset(opts.n, opts.dim, opts.queries, opts.seed)
        data.save(ds, work / "data")
        truth = data.exact_topk(ds.vectors, ds.queries, 10)
        filtered = data.filtered_topk(ds.vectors, ds.categories, ds.queries, ds.query_categories, 10)
        texts = ds.documents[: opts.ef_texts]
        del ds
        pythons: Dict[str, str] = {}
        report["systems"] = {}
        for system in opts.systems:
            python, why = interpreter(system, opts)
            if python is None:
                log(f"{system}: skipped: {why}")
                report["systems"][system] = {"skipped": why}
                continue
            pythons[system] = python
            try:
                report["systems"][system] = benchmark_system(system, python, work / "data", work, opts,
                                                             truth, filtered)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"{system}: failed: {exc}")
                report["systems"][system] = {"error": str(exc)}
        try:
            ingest_repeats(pythons, work / "data", work, opts, report["systems"])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"ingest repeats failed: {exc}")
        if opts.growth_to:
            log(f"data: {opts.growth_to:,} vectors for the growth run")
            data.save(data.make_dataset(opts.growth_to, opts.dim, 1, opts.seed), work / "growth")
            report["growth"] = {}
            for system, python in pythons.items():
                try:
                    report["growth"][system] = growth_run(system, python, work / "growth", work, opts)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    report["growth"][system] = {"error": str(exc)}
        if opts.ef_texts > 0 and "vectordb" in opts.systems:
            report["embedding"] = embedding_run(texts, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["config"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report["config"]["machine"]["load_average_at_end"] = list(os.getloadavg())
    return report
