"""Recovery benchmark: cold open + first query after a clean close, a SIGKILL and a dropped client.

``python -m benchmarks.recovery --n 100000`` builds a store whose saved index lacks as many
records as the save policy allows at that size (the *tail*): it ingests n/2 + one batch
and closes (the index is saved), then ingests the rest, which stays below the next save.
From there:

* **SIGKILL mid-ingest**: the second ingest is killed with SIGKILL during its last batch;
* **dropped unclosed**: the second ingest drops its client without ``close()`` and the
  process ends with ``os._exit`` (no atexit); the same process also reopens the store
  at once (**dropped, reopened in the same process**);
* **clean close**: the dropped store, opened, let finish every background index work
  and closed.

Each image is copied afresh for each of ``--repeats`` fresh processes that time import,
open and the first query (default ``include``), then 20 more queries; recall@10 is
against exact cosine ground truth. The target: after a kill or a drop, open + first
query at most 2x the clean one + 0.5 s. Writes ``benchmarks/results/recovery-n<N>.json``
(``-<tag>`` with ``--tag``) and prints a table.

``--code DIR`` measures the ``vectordb`` of another checkout (default: the first
``PYTHONPATH`` entry holding ``vectordb/``, else this one), e.g. ``--code /work/main``
or ``PYTHONPATH=/work/main python -m benchmarks.recovery``: the steps run as a script
(:mod:`benchmarks.recovery_child`) with only that checkout on their path.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from benchmarks import data
from benchmarks.harness import REPO_ROOT, log, machine, write_report

CHILD = REPO_ROOT / "benchmarks" / "recovery_child.py"
QUERIES = 21
KILL_DELAY_S = 0.1
"""How long after the child announces its last batch it is killed (inside that add)."""
TIMEOUT_S = 7200


def default_code() -> Path:
    """The checkout whose vectordb is measured when ``--code`` is not given."""
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and (Path(entry) / "vectordb" / "__init__.py").exists():
            return Path(entry).resolve()
    return REPO_ROOT


def git_head(code: Path) -> str:
    """The checkout's commit (or, for an exported tree, the first line of its ``REVISION`` file)."""
    proc = subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if proc.stdout.strip():
        return proc.stdout.strip()
    revision = code / "REVISION"
    return revision.read_text().split("\n")[0].strip() if revision.exists() else "?"


class Steps:
    """Runs :mod:`benchmarks.recovery_child` steps with the measured checkout's vectordb."""

    def __init__(self, code: Path, work: Path) -> None:
        self.work = work
        self.env = dict(os.environ, PYTHONPATH=str(code), HF_HUB_OFFLINE="1", VECTORDB_PROGRESS="0")

    def command(self, *args: Any) -> List[str]:
        return [sys.executable, str(CHILD), *map(str, args)]

    def run(self, *args: Any) -> Dict[str, Any]:
        """Run a step to its end; its JSON line, with ``process_wall_s``."""
        t0 = time.perf_counter()
        proc = subprocess.run(self.command(*args), cwd=self.work, env=self.env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        out["process_wall_s"] = time.perf_counter() - t0
        return out

    def kill_in_last_batch(self, *args: Any) -> Dict[str, Any]:
        """Run an ``ingest ... kill`` step and SIGKILL it inside its last batch."""
        proc = subprocess.Popen(self.command(*args), cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().strip()
            if line != "last":
                raise RuntimeError(f"ingest did not reach its last batch: {line!r} {proc.stderr.read()[-2000:]}")
            time.sleep(KILL_DELAY_S)
            proc.send_signal(signal.SIGKILL)
            rest, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        return {"killed": proc.returncode == -signal.SIGKILL, "last_batch_acked": "acked" in rest}


def saved_seq(store: Path) -> Optional[int]:
    """The ``seq`` of the (one) saved index in ``store``, or None."""
    for meta in (store / "index").glob("*/meta.json"):
        return int(json.loads(meta.read_text())["seq"])
    return None


def truth_for(data_dir: Path, count: int) -> np.ndarray:
    """Exact top-10 of the queries among the first ``count`` rows (those a store holds)."""
    vectors = np.load(data_dir / "vectors.npy", mmap_mode="r")
    return data.exact_topk(np.asarray(vectors[:count]), np.load(data_dir / "queries.npy"), 10)


def cold_runs(steps: Steps, image: Path, data_dir: Path, repeats: int) -> Dict[str, Any]:
    """``repeats`` fresh processes, each on a fresh copy of ``image``; medians and each run."""
    runs = []
    truth: Optional[np.ndarray] = None
    for r in range(repeats):
        copy = steps.work / "run"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(image, copy)
        run = steps.run("cold", copy, data_dir)
        run["open_query_s"] = run["open_s"] + run["query_s"]
        if truth is None:
            truth = truth_for(data_dir, run["count"])  # a kill may have cut the last batch
        run["recall_first"] = data.recall_at_k(run["rows"][:1], truth[:1], 10)
        run["recall_all"] = data.recall_at_k(run.pop("rows"), truth, 10)
        runs.append(run)
        shutil.rmtree(copy, ignore_errors=True)
    keys = ("open_query_s", "import_s", "open_s", "query_s", "process_wall_s", "recall_first", "recall_all")
    out: Dict[str, Any] = {k: statistics.median(run[k] for run in runs) for k in keys}
    out["total_s"] = statistics.median(run["import_s"] + run["open_query_s"] for run in runs)
    more = [run["more_queries_p50_ms"] for run in runs if run.get("more_queries_p50_ms") is not None]
    out["more_queries_p50_ms"] = statistics.median(more) if more else None
    out["pending_after_first"] = runs[0]["pending_after_first"]
    out["count"] = runs[0]["count"]
    out["runs"] = runs
    return out


def run_all(args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    n, batch = args.n, args.batch
    half = (n // 2 // batch + 1) * batch
    if half >= n:
        raise SystemExit(f"--n {n} is too small for batches of {batch}")
    steps = Steps(args.code, work)
    report: Dict[str, Any] = {"config": {"n": n, "dim": args.dim, "batch": batch, "repeats": args.repeats,
                                         "code": str(args.code), "code_head": git_head(args.code),
                                         "first_ingest": half, "machine": machine(),
                                         "started": time.strftime("%Y-%m-%dT%H:%M:%S")}}
    log(f"data: {n:,} x {args.dim}, {QUERIES} queries; vectordb from {args.code} ({report['config']['code_head']})")
    ds = data.make_dataset(n, args.dim, QUERIES, args.seed)
    data_dir = work / "data"
    data.save(ds, data_dir)
    truth = data.exact_topk(ds.vectors, ds.queries, 10)
    del ds
    base, killed, live, dropped = (work / name for name in ("base", "killed", "drop-live", "dropped"))
    log(f"ingest {half:,} records and close (the index is saved)")
    phases = {"first": steps.run("ingest", base, data_dir, 0, half, batch, "close")}
    base_seq = saved_seq(base)
    shutil.copytree(base, killed)
    log(f"ingest {n - half:,} more, SIGKILL inside the last batch")
    phases["killed"] = steps.kill_in_last_batch("ingest", killed, data_dir, half, n, batch, "kill")
    shutil.copytree(base, live)
    log(f"ingest {n - half:,} more, drop the client unclosed, reopen in the same process")
    phases["dropped"] = steps.run("ingest", live, data_dir, half, n, batch, f"drop:{dropped}")
    shutil.rmtree(live, ignore_errors=True)
    shutil.rmtree(base, ignore_errors=True)
    phases["dropped"]["recall_first"] = data.recall_at_k(phases["dropped"].pop("rows"), truth[:1], 10)
    phases["dropped"]["open_query_s"] = phases["dropped"]["open_s"] + phases["dropped"]["query_s"]
    clean = work / "clean"
    shutil.copytree(dropped, clean)
    log("clean store: open the dropped one, let its background index work finish, close")
    phases["settle"] = steps.run("settle", clean, data_dir)
    report["phases"] = phases
    report["saved_seq"] = {"first_ingest": base_seq, "killed": saved_seq(killed), "dropped": saved_seq(dropped),
                           "clean": saved_seq(clean)}
    report["scenarios"] = {}
    for name, image in (("clean", clean), ("killed", killed), ("dropped", dropped)):
        log(f"cold open + first query: {name}, {args.repeats} fresh processes")
        report["scenarios"][name] = cold_runs(steps, image, data_dir, args.repeats)
    for name in ("killed", "dropped"):
        report["scenarios"][name]["tail"] = report["scenarios"][name]["count"] - half
    report["config"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report["config"]["machine"]["load_average_at_end"] = list(os.getloadavg())
    return report


def format_table(report: Dict[str, Any]) -> str:
    """The figures as a text table, with the target per row."""
    cfg, sc = report["config"], report["scenarios"]
    clean = sc["clean"]["open_query_s"]
    bound = 2 * clean + 0.5
    lines = [f"n={cfg['n']:,} dim={cfg['dim']} batch={cfg['batch']:,} repeats={cfg['repeats']} "
             f"vectordb={cfg['code']} ({cfg['code_head']}) cpus={cfg['machine']['cpus']} "
             f"load={cfg['machine']['load_average_at_start'][0]:.1f}",
             f"{'scenario':<34}{'tail':>9}{'open+1st query (s)':>20}{'import+open+query':>19}{'vs clean':>10}"
             f"{'next 20 q p50 (ms)':>20}{'recall@10':>11}  target <= {bound:.2f} s",
             "-" * 140]

    def row(label: str, tail: Any, figures: Dict[str, Any], total: Any, more: Any, recall: float, target: bool) -> None:
        value = figures["open_query_s"]
        verdict = ("PASS" if value <= bound else "FAIL") if target else "-"
        lines.append(f"{label:<34}{tail:>9,}{value:>20.3f}{total:>19}{value / clean:>9.2f}x"
                     f"{more:>20}{recall:>11.3f}  {verdict}")

    def fmt(x: Any, spec: str) -> str:
        return "-" if x is None else format(x, spec)

    for name, label in (("clean", "clean close"), ("killed", "SIGKILL mid-ingest"),
                        ("dropped", "dropped unclosed, process ended")):
        s = sc[name]
        row(label, s.get("tail", 0), s, fmt(s["total_s"], ".3f"), fmt(s["more_queries_p50_ms"], ".1f"),
            s["recall_all"], name != "clean")
    d = report["phases"]["dropped"]
    row("dropped, reopened in same process", sc["dropped"]["tail"], d, "-", "-", d["recall_first"], True)
    if d.get("refused_first"):
        lines.append("  (the same-process reopen was first refused: StoreLockedError, the dropped client still "
                     "held the store; the time includes the retries until it opened)")
    killed = report["phases"]["killed"]
    lines.append(f"(killed inside its last batch: {not killed['last_batch_acked']}; vectors still pending after the "
                 f"first query: killed {sc['killed']['pending_after_first']}, dropped "
                 f"{sc['dropped']['pending_after_first']}; settling the clean store took "
                 f"{report['phases']['settle']['settle_s']:.1f} s)")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="records in the collection (default 100000)")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (default 384)")
    parser.add_argument("--batch", type=int, default=5000, help="records per add() call (default 5000)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per scenario (median; default 3)")
    parser.add_argument("--code", type=Path, default=None,
                        help="checkout whose vectordb is measured (default: from PYTHONPATH, else this one)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results", help="folder for the JSON")
    parser.add_argument("--tag", default="", help="suffix of the JSON file name (e.g. before, after)")
    parser.add_argument("--work", default=None, help="folder for the temporary stores (default: the system's)")
    parser.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    args = parser.parse_args(argv)
    for name in ("n", "dim", "batch", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    args.code = (args.code or default_code()).resolve()
    if not (args.code / "vectordb" / "__init__.py").exists():
        parser.error(f"--code: no vectordb package in {args.code}")
    work = Path(tempfile.mkdtemp(prefix="vectordb-recovery-", dir=args.work))
    try:
        report = run_all(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(args.out, f"recovery-n{args.n}{'-' + args.tag if args.tag else ''}", report, format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
