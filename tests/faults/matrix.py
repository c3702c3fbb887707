"""The randomized I/O-fault matrix: for each fault setting, runs of a writer whose I/O fails
(fail once or fail forever, at a call chosen by a seeded draw), each checked afterwards
in a fresh process (:mod:`verify`).

    python tests/faults/matrix.py --runs 20            # every setting, 20 runs each
    python tests/faults/matrix.py --runs 2 --settings fsync-truncate,write-truncate

Prints one row per setting (runs, faults injected, errors raised, of which
NotDurableError, and the defects: acknowledged records lost, raised calls applied without
being reported, calls partly applied, untyped errors, inconsistent stores, hung or crashed
writers) and writes the table as JSON (``--out``). The test suite runs a few seeds of it
(``tests/test_io_faults.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fiu import run_child, unavailable  # noqa: E402
from verify import COUNTS, verify  # noqa: E402

DIM = 64
SETTINGS: Dict[str, List[Tuple[str, int, bool]]] = {
    # name: (failure point, the largest call number drawn, fail forever from it)
    "fsync-once": [("posix/io/sync/fdatasync", 12, False), ("posix/io/sync/fsync", 12, False)],
    "fsync-forever": [("posix/io/sync/fdatasync", 12, True), ("posix/io/sync/fsync", 12, True)],
    "fsync-truncate": [("posix/io/sync/fdatasync", 12, False), ("posix/io/rw/ftruncate", 1, True)],
    "fsync-forever-truncate": [("posix/io/sync/fdatasync", 12, True), ("posix/io/rw/ftruncate", 1, True)],
    "write-once": [("posix/io/rw/write", 60, False), ("posix/io/rw/pwrite", 60, False)],
    "write-forever": [("posix/io/rw/write", 60, True), ("posix/io/rw/pwrite", 60, True)],
    "write-truncate": [("posix/io/rw/write", 60, False), ("posix/io/rw/pwrite", 60, False),
                       ("posix/io/rw/ftruncate", 1, True)],
    "short-write": [("posix/io/rw/write/reduce", 60, False), ("posix/io/rw/pwrite/reduce", 60, False)],
    "open-rename-unlink": [("posix/io/oc/open", 30, False), ("posix/io/dir/rename", 3, False),
                           ("posix/io/dir/unlink", 3, False)],
    "open-forever": [("posix/io/oc/open", 30, True)],
}


def scenario(setting: str, seed: int) -> Dict[str, Any]:
    """A seeded scenario: a store filled without faults, then ten calls with the setting's faults armed."""
    draw = random.Random(f"{setting}/{seed}")
    fresh = iter(f"r{n}" for n in range(10**9))
    written: List[str] = []

    def new_ids(count: int) -> List[str]:
        ids = [next(fresh) for _ in range(count)]
        written.extend(ids)
        return ids

    steps: List[Dict[str, Any]] = [
        {"op": "add", "k": 0, "ids": new_ids(150)},
        {"op": "upsert", "k": 1, "ids": written[:40] + new_ids(10)},
        {"op": "delete", "ids": written[:5]},
        {"op": "compact"},
        {"op": "query"},
        {"op": "arm", "faults": [[point, draw.randint(1, top), forever] for point, top, forever in SETTINGS[setting]]},
    ]
    for k in range(2, 12):
        kind = draw.choices(["add", "upsert", "delete", "compact", "query"], [4, 3, 2, 1, 1])[0]
        if kind == "add":
            steps.append({"op": "add", "k": k, "ids": new_ids(draw.randint(20, 1500))})
        elif kind == "upsert":
            steps.append({"op": "upsert", "k": k, "ids": draw.sample(written, min(len(written), 30)) + new_ids(20)})
        elif kind == "delete":
            steps.append({"op": "delete", "ids": draw.sample(written, min(len(written), draw.randint(5, 40)))})
        else:
            steps.append({"op": kind})
    steps.append({"op": "close"} if draw.random() < 0.5 else {"op": "crash"})
    return {"dim": DIM, "steps": steps}


def run_once(setting: str, seed: int, work: Path) -> Tuple[Counter, List[str]]:
    """One run: the writer under faults, then the check in this process."""
    store = work / f"{setting}-{seed}"
    journal = run_child(store, scenario(setting, seed), work)
    return verify(store, journal, DIM)


def _job(args: Tuple[str, int, str]) -> Tuple[str, int, Counter, List[str]]:
    setting, seed, work = args
    counts, notes = run_once(setting, seed, Path(work))
    return setting, seed, counts, notes


def run_matrix(settings: List[str], runs: int, work: Path, workers: int = 2) -> Dict[str, Counter]:
    """Every setting × ``runs`` seeds; the summed counts per setting (problems printed as found)."""
    totals: Dict[str, Counter] = {s: Counter() for s in settings}
    jobs = [(s, seed, str(work)) for s in settings for seed in range(runs)]
    with ProcessPoolExecutor(workers) as pool:
        for setting, seed, counts, notes in pool.map(_job, jobs):
            totals[setting].update(counts)
            for note in notes:
                print(f"  {setting} seed {seed}: {note}", file=sys.stderr)
    return totals


def table(totals: Dict[str, Counter]) -> str:
    """The matrix as a text table, one row per setting and a total."""
    header = ["setting", *COUNTS]
    rows = [[name, *(str(c[k]) for k in COUNTS)] for name, c in totals.items()]
    overall = sum(totals.values(), Counter())
    rows.append(["total", *(str(overall[k]) for k in COUNTS)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(r, widths)))
             for r in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(-1, "-" * len(lines[0]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per setting (default 20)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated settings (default: all)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--out", default="fault-matrix.json", help="where to write the table as JSON")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"cannot run the fault matrix: {reason}", file=sys.stderr)
        return 2
    settings = args.settings.split(",")
    logging.getLogger("vectordb").setLevel(logging.ERROR)  # the checks' reopenings log each rebuild
    with tempfile.TemporaryDirectory(prefix="vectordb-faults-") as work:
        totals = run_matrix(settings, args.runs, Path(work), args.workers)
    print(table(totals))
    Path(args.out).write_text(json.dumps({s: dict(c) for s, c in totals.items()}, indent=1))
    defects = sum(sum(c[k] for k in COUNTS[4:]) for c in totals.values())
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
