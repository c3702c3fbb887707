"""The benchmark report's arithmetic: ingest rate slice by slice, and how slices are judged."""

from __future__ import annotations

import pytest

from benchmarks import report


def test_window_rates_split_the_load_and_count_the_final_save_last():
    ingest = {"batch_sizes": [10, 20, 30, 40], "batch_rates": [10.0, 10.0, 5.0, 5.0], "finish_seconds": 2.0}
    assert report.window_rates(ingest, 2) == [(0, 20, 10.0), (20, 40, pytest.approx(20 / 6))]


def test_window_rates_with_fewer_batches_than_slices():
    ingest = {"batch_sizes": [50, 100], "batch_rates": [25.0, 50.0], "finish_seconds": 0.0}
    assert report.window_rates(ingest, 10) == [(0, 50, 25.0), (50, 100, 50.0)]


def test_growth_rows_judge_each_slice_against_hnswlib():
    systems = {
        "vectordb": {"ingest": {"batch_sizes": [10, 20], "batch_rates": [9.0, 7.0], "finish_seconds": 0.0}},
        "hnswlib": {"ingest": {"batch_sizes": [10, 20], "batch_rates": [10.0, 10.0], "finish_seconds": 0.0}},
    }
    rows = report.growth_rows({"systems": systems})
    assert rows[1][-2:] == ["0.90x", "PASS"] and rows[2][-2:] == ["0.70x", "FAIL"]
