"""The report: a text table with ratios and the issue's targets, the JSON file and a PNG plot."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

SUBJECT = "vectordb"
BASELINES = ("hnswlib", "chromadb")
SHORT = {"hnswlib": "hnsw", "chromadb": "chroma"}


@dataclass(frozen=True)
class Metric:
    """One row of the table: where the figure lies in a system's results and how to print it."""

    key: str
    label: str
    path: Tuple[str, ...]
    fmt: str
    ratio: bool = True


@dataclass(frozen=True)
class Target:
    """A goal from the issue (stated for 100k x 384, cosine, batch 5000) on a metric of vectordb."""

    metric: str
    text: str
    check: Callable[[float, Dict[str, Any]], Optional[bool]]


METRICS = (
    Metric("ingest", "ingest (rec/s, median)", ("ingest", "rate"), "{:,.0f}"),
    Metric("finish", "  of which finish/save (s)", ("ingest", "finish_seconds"), "{:.2f}", ratio=False),
    Metric("query_p50", "query p50 (ms)", ("query", "p50_ms"), "{:.3f}"),
    Metric("query_p99", "query p99 (ms)", ("query", "p99_ms"), "{:.3f}"),
    Metric("recall", "recall@10", ("query", "recall"), "{:.3f}"),
    Metric("search_ef", "  at search ef", ("search_ef",), "{:,.0f}", ratio=False),
    Metric("filtered_p50", "1%-filter p50 (ms)", ("filtered_query", "p50_ms"), "{:.3f}"),
    Metric("filtered_p99", "1%-filter p99 (ms)", ("filtered_query", "p99_ms"), "{:.3f}"),
    Metric("filtered_recall", "1%-filter recall@10", ("filtered_query", "recall"), "{:.3f}"),
    Metric("cold", "cold import+open+query (s)", ("cold", "total_s"), "{:.3f}"),
    Metric("cold_open", "  open+first query (s)", ("cold", "open_query_s"), "{:.3f}"),
    Metric("import", "import (s, best)", ("import_s",), "{:.3f}"),
    Metric("rss", "peak RSS (MiB)", ("rss_peak_mib",), "{:,.0f}"),
    Metric("rss_over", "  over data loaded (MiB)", ("rss_over_data_mib",), "{:,.0f}", ratio=False),
    Metric("disk", "disk (MiB)", ("disk_mib",), "{:,.1f}"),
)


def lookup(result: Any, path: Sequence[str]) -> Optional[float]:
    """The figure at ``path`` in one system's results, or None."""
    for part in path:
        if not isinstance(result, dict) or part not in result:
            return None
        result = result[part]
    return float(result) if isinstance(result, (int, float)) and not isinstance(result, bool) else None


def _vs_hnswlib(report: Dict[str, Any], path: Sequence[str], value: float, share: float) -> Optional[bool]:
    base = lookup(report["systems"].get("hnswlib", {}), path)
    return None if not base else value / base >= share


TARGETS = (
    Target("ingest", ">= 8,000", lambda v, r: v >= 8000),
    Target("ingest", ">= 0.80x hnswlib", lambda v, r: _vs_hnswlib(r, ("ingest", "rate"), v, 0.8)),
    Target("query_p50", "<= 0.3", lambda v, r: v <= 0.3),
    Target("recall", ">= 0.95", lambda v, r: v >= 0.95),
    Target("filtered_p50", "<= 2", lambda v, r: v <= 2.0),
    Target("filtered_recall", ">= 0.95", lambda v, r: v >= 0.95),
    Target("cold", "<= 1", lambda v, r: v <= 1.0),
    Target("import", "<= 0.3", lambda v, r: v <= 0.3),
    Target("ef", ">= 0.95x ST", lambda v, r: v >= 0.95),
)


def _cell(value: Optional[float], fmt: str) -> str:
    return "-" if value is None or math.isnan(value) else fmt.format(value)


def _status(system: Dict[str, Any]) -> Optional[str]:
    if "skipped" in system:
        return "skipped"
    if "error" in system:
        return "error"
    return None


def evaluate(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every target with vectordb's value and PASS/FAIL (None when it cannot be judged)."""
    subject = report["systems"].get(SUBJECT, {})
    values = {m.key: lookup(subject, m.path) for m in METRICS}
    values["ef"] = (report.get("embedding") or {}).get("ratio")
    out = []
    for target in TARGETS:
        value = values.get(target.metric)
        passed = None if value is None or math.isnan(value) else target.check(value, report)
        out.append({"metric": target.metric, "target": target.text, "value": value, "passed": passed})
    return out


def _pass_cell(results: List[Dict[str, Any]]) -> str:
    if not results:
        return ""
    if any(r["passed"] is None for r in results):
        return "n/a"
    return "PASS" if all(r["passed"] for r in results) else "FAIL"


def table_rows(report: Dict[str, Any]) -> List[List[str]]:
    """The table as rows of cells, header first."""
    systems = report["systems"]
    others = [s for s in systems if s != SUBJECT and s not in BASELINES]  # e.g. vectordb-milvus: a column, no ratio
    names = [SUBJECT] + [b for b in BASELINES if b in systems] + others if SUBJECT in systems else list(systems)
    ratios = [b for b in BASELINES if b in systems and SUBJECT in systems]
    header = ["metric"] + names + [f"vdb/{SHORT[b]}" for b in ratios] + ["target (vectordb)", "pass"]
    judged = evaluate(report)
    rows = [header]
    for metric in METRICS:
        row = [metric.label]
        for name in names:
            row.append(_status(systems[name]) or _cell(lookup(systems[name], metric.path), metric.fmt))
        mine = lookup(systems.get(SUBJECT, {}), metric.path)
        for base in ratios:
            theirs = lookup(systems[base], metric.path) if metric.ratio else None
            row.append(_cell(mine / theirs if mine is not None and theirs else None, "{:.2f}x"))
        targets = [j for j in judged if j["metric"] == metric.key]
        row += ["; ".join(t["target"] for t in targets), _pass_cell(targets)]
        rows.append(row)
    embedding = report.get("embedding")
    if embedding:
        ef = [j for j in judged if j["metric"] == "ef"]
        vdb = (embedding.get("vectordb") or {}).get("texts_per_s")
        st = (embedding.get("sentence-transformers") or {}).get("texts_per_s")
        ratio = embedding.get("ratio")
        cell = f"{_cell(vdb, '{:,.0f}')} (ST {_cell(st, '{:,.0f}')}, {_cell(ratio, '{:.2f}x')})"
        rows.append(["default EF (texts/s)", cell] + [""] * (len(header) - 4)
                    + ["; ".join(t["target"] for t in ef), _pass_cell(ef)])
    return rows


def format_table(report: Dict[str, Any]) -> str:
    """The table as aligned text, with notes on skipped or failed systems."""
    lines = _aligned(table_rows(report))
    growth = growth_rows(report)
    if growth:
        lines += ["", "ingest rate by slice of the load (the final save counts in the last slice):", *_aligned(growth)]
    cfg = report["config"]
    title = (f"n={cfg['n']:,} dim={cfg['dim']} batch={cfg['batch']:,} queries={cfg['queries']:,} "
             f"cpus={cfg['machine']['cpus']} load={cfg['machine']['load_average_at_start'][0]:.1f} "
             "(targets are stated for n=100,000)")
    notes = [f"note: {name}: {sys.get('skipped') or sys.get('error')}"
             for name, sys in report["systems"].items() if _status(sys)]
    embedding = report.get("embedding") or {}
    why = embedding.get("skipped") or embedding.get("error")
    if why:
        notes.append(f"note: embedding throughput: {why}")
    return "\n".join([title, *lines, *notes])


GROWTH_WINDOWS = 10
GROWTH_SHARE = 0.8


def window_rates(ingest: Dict[str, Any], windows: int = GROWTH_WINDOWS) -> List[Tuple[int, int, float]]:
    """Ingest rate over consecutive slices of the load: ``(first record, last record, records/s)``.

    Built from the per-batch sizes and rates; the final save (``finish_seconds``) counts in
    the last slice, as it does for every system.
    """
    sizes, rates = ingest.get("batch_sizes") or [], ingest.get("batch_rates") or []
    if not sizes:
        return []
    total = sizes[-1]
    bounds = [round(total * (i + 1) / windows) for i in range(windows)]
    out: List[Tuple[int, int, float]] = []
    start, records, seconds, w = 0, 0, 0.0, 0
    previous = 0
    for size, rate in zip(sizes, rates):
        records += size - previous
        seconds += (size - previous) / rate
        previous = size
        if size >= bounds[w] or size == total:
            if size == total:
                seconds += ingest.get("finish_seconds", 0.0)
            out.append((start, size, records / seconds))
            start, records, seconds = size, 0, 0.0
            while w < windows - 1 and bounds[w] <= size:
                w += 1
    return out


def growth_rows(report: Dict[str, Any]) -> List[List[str]]:
    """vectordb's ingest rate against hnswlib's, slice by slice of the load (header first)."""
    curves = report.get("growth") or {n: s.get("ingest") for n, s in report["systems"].items()}
    mine = window_rates(curves.get(SUBJECT) or {})
    base = window_rates(curves.get("hnswlib") or {})
    if not mine or len(mine) != len(base):
        return []
    rows = [["records", SUBJECT, "hnswlib", "vdb/hnsw", f">= {GROWTH_SHARE:.2f}x"]]
    for (start, stop, rate), (_, _, base_rate) in zip(mine, base):
        ratio = rate / base_rate
        rows.append([f"{start:,}-{stop:,}", f"{rate:,.0f}", f"{base_rate:,.0f}", f"{ratio:.2f}x",
                     "PASS" if ratio >= GROWTH_SHARE else "FAIL"])
    return rows


def _aligned(rows: List[List[str]]) -> List[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("-" * len(lines[0]))
    return lines


def write_json(report: Dict[str, Any], path: Path) -> None:
    """The full report, with the targets judged."""
    growth = [dict(zip(("records", "vectordb", "hnswlib", "ratio", "passed"), row)) for row in growth_rows(report)[1:]]
    path.write_text(json.dumps({**report, "targets": evaluate(report), "growth_slices": growth}, indent=2))


def write_plot(report: Dict[str, Any], path: Path) -> None:
    """Ingest rate against collection size, and query latency percentiles (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (grow, lat) = plt.subplots(1, 2, figsize=(13, 4.8))
    curves = report.get("growth") or {n: s.get("ingest") for n, s in report["systems"].items()}
    for name, ingest in curves.items():
        if ingest and "batch_sizes" in ingest:
            grow.plot(ingest["batch_sizes"], ingest["batch_rates"], marker=".", label=name)
    grow.set(title="ingest rate per batch as the collection grows", xlabel="records in collection",
             ylabel="records/s")
    grow.set_ylim(bottom=0)
    grow.legend()
    groups = [(q, p) for q in ("query", "filtered_query") for p in ("p50_ms", "p90_ms", "p99_ms")]
    done = [(n, s) for n, s in report["systems"].items() if not _status(s)]
    width = 0.8 / max(len(done), 1)
    for i, (name, sys_result) in enumerate(done):
        heights = [lookup(sys_result, g) or 0.0 for g in groups]
        lat.bar([g + i * width for g in range(len(groups))], heights, width, label=name)
    lat.set_xticks([g + width * (len(done) - 1) / 2 for g in range(len(groups))])
    lat.set_xticklabels([f"{'1% filter' if q != 'query' else 'plain'}\n{p[:3]}" for q, p in groups])
    lat.set(title=f"query latency, n={report['config']['n']:,}", ylabel="ms (log)", yscale="log")
    lat.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
