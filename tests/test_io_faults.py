"""Real I/O faults (libfiu): a failed write, fsync, truncate, open or rename never loses an
acknowledged call, never leaves a raised call applied without saying so, and never
leaves the store inconsistent. Each run's writer is a child under ``fiu-run -x``
(tests/faults/writer.py); the store is then checked in this process, which did not
write it (tests/faults/verify.py). The full randomized matrix (20 runs per setting) is
``python tests/faults/matrix.py``; here every setting runs on two seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "faults"))

from fiu import run_child, unavailable  # noqa: E402
from matrix import SETTINGS, run_once  # noqa: E402
from verify import COUNTS, read_store, verify  # noqa: E402

REASON = unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")
DIM = 64
DEFECTS = COUNTS[4:]  # lost, applied_unreported, partial, untyped, inconsistent, hang


def _ids(prefix: str, n: int) -> List[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _run(tmp_path: Path, faults: List[List[Any]], steps: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Fill a store with ``a*`` (no faults), arm ``faults``, run ``steps``, crash; check the store."""
    store = tmp_path / "store"
    scenario = {"dim": DIM, "steps": [{"op": "add", "k": 0, "ids": _ids("a", 200)}, {"op": "arm", "faults": faults},
                                      *steps, {"op": "crash"}]}
    journal = run_child(store, scenario, tmp_path)
    counts, notes = verify(store, journal, DIM)
    assert not any(counts[k] for k in DEFECTS), notes
    states, problems = read_store(store, DIM)
    assert states is not None and not problems, problems
    outcomes = {e["k"]: e for e in journal if e.get("op") == "add"}
    return {"states": states, "outcomes": outcomes, "failed_calls": journal[-1]["failed_calls"]}


def _holds(states: Dict[str, Any], prefix: str, n: int, k: int) -> bool:
    return all(states.get(i) == k for i in _ids(prefix, n))


def test_failed_fsync_whose_truncate_back_fails_is_settled_from_the_database(tmp_path):
    # The WAL's fdatasync fails at COMMIT and DuckDB cannot truncate the log back: the commit
    # is in the log after the reopen. It is acknowledged once a checkpoint made it durable,
    # and the next write gets new labels (before the fix: b* garbled by c*, "labels used twice").
    run = _run(tmp_path, [["posix/io/sync/fdatasync", 1, False], ["posix/io/rw/ftruncate", 1, True]], [
        {"op": "add", "k": 1, "ids": _ids("b", 100)},
        {"op": "add", "k": 2, "ids": _ids("c", 100)},
    ])
    assert run["failed_calls"] >= 2  # the fsync, and the truncate-back
    assert run["outcomes"][1]["outcome"] == "ok" and run["outcomes"][2]["outcome"] == "ok"
    states = run["states"]
    assert len(states) == 400 and _holds(states, "a", 200, 0) and _holds(states, "b", 100, 1) \
        and _holds(states, "c", 100, 2)


def test_commit_in_the_log_that_no_checkpoint_makes_durable_raises_not_durable_and_blocks_writes(tmp_path):
    run = _run(tmp_path, [["posix/io/sync/fdatasync", 1, True], ["posix/io/rw/ftruncate", 1, True]], [
        {"op": "add", "k": 1, "ids": _ids("b", 100)},   # in the log, no checkpoint succeeds: NotDurableError
        {"op": "add", "k": 2, "ids": _ids("c", 100)},   # refused: the log is not trusted
        {"op": "pause"},                                # the disk recovers
        {"op": "add", "k": 3, "ids": _ids("d", 100)},   # checkpoints first (b* durable), then commits
    ])
    outcomes = run["outcomes"]
    assert outcomes[1]["outcome"] == "not_durable" and outcomes[1]["applied"] is True, outcomes[1]
    assert outcomes[2]["outcome"] == "raised" and outcomes[2]["error"].startswith("StorageError:"), outcomes[2]
    assert outcomes[3]["outcome"] == "ok"
    states = run["states"]
    assert _holds(states, "b", 100, 1) and _holds(states, "d", 100, 3)
    assert not any(i in states for i in _ids("c", 100))


def test_log_append_failing_half_way_never_strands_later_acknowledged_writes(tmp_path):
    # The second write() of a large WAL append fails and the truncate-back fails too: a torn
    # entry stays in the log. Before the fix, c* was acknowledged after it and lost on replay.
    run = _run(tmp_path, [["posix/io/rw/write", 2, False], ["posix/io/rw/ftruncate", 1, True]], [
        {"op": "add", "k": 1, "ids": _ids("b", 3000)},
        {"op": "pause"},
        {"op": "add", "k": 2, "ids": _ids("c", 100)},
    ])
    assert run["outcomes"][1]["outcome"] == "raised" and run["outcomes"][2]["outcome"] == "ok"
    states = run["states"]
    assert _holds(states, "c", 100, 2) and not any(i in states for i in _ids("b", 3000))
    assert len(states) == 300


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_randomized_fault_matrix(tmp_path, setting, seed):
    counts, notes = run_once(setting, seed, tmp_path)
    assert counts["hang"] == 0, notes
    assert not any(counts[k] for k in DEFECTS), (dict(counts), notes)
