"""Command line: ``python -m benchmarks --n 100000``.

Example::

    python -m benchmarks --n 20000 --systems vectordb,hnswlib
    python -m benchmarks --n 100000 --growth-to 500000 --chroma-python /opt/chroma-venv/bin/python
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

from benchmarks import report, systems
from benchmarks.harness import REPO_ROOT, Options, log, run_all

DEFAULT_CHROMA_PYTHON = os.environ.get("VECTORDB_BENCH_CHROMA_PYTHON", "/opt/chroma-venv/bin/python")


def parse(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Benchmark vectordb against raw hnswlib and chromadb.",
        epilog=__doc__.split("Example::", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--n", type=int, default=100_000, help="records in the collection (default 100000)")
    parser.add_argument("--dim", type=int, default=384, help="vector dimension (default 384)")
    parser.add_argument("--batch", type=int, default=5000, help="records per add() call (default 5000)")
    parser.add_argument("--queries", type=int, default=1000, help="queries of each kind (default 1000)")
    parser.add_argument("--systems", default=",".join(systems.NAMES),
                        help="comma-separated, from vectordb,hnswlib,chromadb (default all)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "benchmarks" / "results",
                        help="folder for the JSON and PNG files (default benchmarks/results/)")
    parser.add_argument("--growth-to", type=int, default=None,
                        help="also ingest this many records and plot the per-batch rate as the collection grows")
    parser.add_argument("--chroma-python", default=DEFAULT_CHROMA_PYTHON,
                        help="Python of a separate venv with chromadb (default $VECTORDB_BENCH_CHROMA_PYTHON "
                             "or /opt/chroma-venv/bin/python)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="fresh processes for the import time (best) and the cold open (median)")
    parser.add_argument("--ingest-repeats", type=int, default=2,
                        help="extra ingest-only runs of vectordb and hnswlib, alternating; the ingest rate "
                             "is the median of all runs (default 2)")
    parser.add_argument("--ef-texts", type=int, default=1000,
                        help="texts for the embedding-function throughput; 0 skips it (default 1000)")
    parser.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    args = parser.parse_args(argv)
    names = tuple(s.strip() for s in args.systems.split(",") if s.strip())
    unknown = sorted(set(names) - set(systems.NAMES))
    if unknown or not names:
        given = ", ".join(unknown) or "(none given)"
        parser.error(f"--systems: unknown {given}; choose from {', '.join(systems.NAMES)}")
    if args.ingest_repeats < 0:
        parser.error("--ingest-repeats must be 0 or more")
    for name in ("n", "dim", "batch", "queries", "repeats"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be positive")
    args.systems = names
    return args


def main(argv: Optional[List[str]] = None) -> int:
    """Run the benchmark, print the table, write JSON and PNG; returns the exit status."""
    args = parse(argv)
    opts = Options(n=args.n, dim=args.dim, batch=args.batch, queries=args.queries, systems=args.systems,
                   growth_to=args.growth_to, chroma_python=args.chroma_python, repeats=args.repeats,
                   ingest_repeats=args.ingest_repeats, ef_texts=min(args.ef_texts, args.n), seed=args.seed)
    result = run_all(opts)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"bench-n{args.n}"
    report.write_json(result, stem.with_suffix(".json"))
    report.write_plot(result, stem.with_suffix(".png"))
    print(report.format_table(result))
    log(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
