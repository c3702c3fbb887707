"""The benchmark harness runs end to end on a tiny size and writes sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hnswlib")
pytest.importorskip("matplotlib")

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_harness_smoke(tmp_path: Path) -> None:
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--n", "2000", "--batch", "500", "--queries", "30",
         "--systems", "vectordb,hnswlib", "--repeats", "1", "--ingest-repeats", "1", "--ef-texts", "20", "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "recall@10" in proc.stdout and "vdb/hnsw" in proc.stdout
    assert (out / "bench-n2000.png").stat().st_size > 0
    report = json.loads((out / "bench-n2000.json").read_text())
    for name in ("vectordb", "hnswlib"):
        figures = report["systems"][name]
        assert "error" not in figures and "skipped" not in figures, figures
        assert figures["ingest"]["rate"] > 0
        assert len(figures["ingest"]["batch_rates"]) == 4
        runs = figures["ingest"]["rate_runs"]
        assert len(runs) == 2 and min(runs) <= figures["ingest"]["rate"] <= max(runs)
        for kind in ("query", "filtered_query"):
            assert 0.0 <= figures[kind]["recall"] <= 1.0
            assert 0 < figures[kind]["p50_ms"] <= figures[kind]["p99_ms"]
        assert figures["cold"]["total_s"] > 0 and figures["import_s"] > 0
        assert figures["rss_peak_mib"] > 0 and figures["disk_mib"] > 0
    assert report["systems"]["vectordb"]["query"]["recall"] >= 0.8
    assert {t["metric"] for t in report["targets"]} >= {"ingest", "recall", "cold", "import"}
    slices = report["growth_slices"]
    assert len(slices) == 4 and slices[-1]["records"] == "1,500-2,000"  # 4 batches of 500: one slice each
    assert all(s["passed"] in ("PASS", "FAIL") for s in slices)
    assert "ingest rate by slice" in proc.stdout
    embedding = report["embedding"]
    if "skipped" not in embedding:  # the default model is installed with the [default] extra
        assert len(embedding["round_ratios"]) == 5 and embedding["ratio"] > 0
        assert embedding["vectordb"]["texts_per_s"] > 0 and embedding["sentence-transformers"]["texts_per_s"] > 0
        assert "default EF" in proc.stdout


def test_recovery_benchmark_smoke(tmp_path: Path) -> None:
    """``python -m benchmarks.recovery``: every scenario measured, the kill lands, the tails are pending."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.recovery", "--n", "3000", "--dim", "16", "--batch", "500",
         "--repeats", "1", "--out", str(out), "--tag", "smoke", "--code", str(REPO_ROOT)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SIGKILL mid-ingest" in proc.stdout and "dropped, reopened in same process" in proc.stdout
    report = json.loads((out / "recovery-n3000-smoke.json").read_text())
    assert report["phases"]["killed"]["killed"]
    assert report["saved_seq"]["killed"] == report["saved_seq"]["dropped"] == report["saved_seq"]["first_ingest"]
    for name in ("clean", "killed", "dropped"):
        figures = report["scenarios"][name]
        assert figures["open_query_s"] > 0 and figures["recall_all"] >= 0.9
    assert report["scenarios"]["clean"]["pending_after_first"] == 0
    assert report["scenarios"]["dropped"]["tail"] == 3000 - 2000 > 0  # 1,500 + one batch saved, the rest not
    assert report["scenarios"]["dropped"]["pending_after_first"] == report["scenarios"]["dropped"]["tail"]


def test_multiprocess_benchmark_smoke(tmp_path: Path) -> None:
    """``python -m benchmarks.multiprocess``: six processes on one store, every phase measured."""
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.multiprocess", "--n", "1000", "--dim", "16", "--queries", "20",
         "--rounds", "3", "--stream-s", "0.3", "--ingest", "300", "--batch", "100", "--timeout", "120",
         "--out", str(out), "--tag", "smoke"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "met?" in proc.stdout and "two writers together" in proc.stdout and "RSS at end" in proc.stdout
    report = json.loads((out / "multiprocess-n1000-smoke.json").read_text())
    assert [t["key"] for t in report["targets"]] == [
        "current_ratio", "catchup_p50_ms", "stream_p50_ms", "ingest_beside_readers_ratio", "two_writers_ratio"]
    assert all(t["value"] > 0 and isinstance(t["met"], bool) for t in report["targets"])
    assert report["current"]["lone"]["count"] == report["current"]["reader"]["count"] == 20
    assert report["catchup"]["next_query"]["count"] == 3
    assert report["stream"]["writer"]["batches"] >= 1 and report["stream"]["reader"]["count"] >= 1
    ingest = report["ingest"]
    assert len(ingest["lone_runs"]) == 2 and ingest["beside_readers"]["records"] == 300
    assert set(ingest["beside_readers"]["readers"]) == {"R", "R2", "R3"}
    assert ingest["two_writers"]["records"] == 300 and set(ingest["two_writers"]["processes"]) == {"W", "W2"}
    # every process on the shared store sees every record written by the others
    shared = 1000 + 100 + 3 * 100 + report["stream"]["writer"]["records"] + 300 + 300
    assert report["counts"] == dict.fromkeys(["L", "R", "R2", "R3", "W", "W2"], shared)
    # (the lone store L was filled to the shared one's size before its two ingest runs, as many as W's and W+W2's)
    assert set(report["memory"]) == {"L", "R", "R2", "R3", "W", "W2"}
    assert all(m["rss_mib"] > 0 for m in report["memory"].values())
    assert report["exit_codes"] == dict.fromkeys(["L", "R", "R2", "R3", "W", "W2"], 0)
