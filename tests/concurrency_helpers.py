"""Run a slow call on one thread and a quick one on another, and time both (tests/test_threads.py,
tests/test_server.py).

A store that ran one request at a time would answer the quick call only once the slow
one ends; the tests assert that the quick call returns while the slow one still runs,
in a small share of its duration. The slow call is sized by measuring it first, so that
it lasts long enough on any machine for the comparison to mean something.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict

LEAD_S = 0.3
"""How long the slow call runs before the quick one is sent."""


@dataclass
class Timing:
    slow_s: float
    """How long the slow call took."""
    quick_s: float
    """How long the quick call took."""
    quick_ended_first: bool
    """Whether the quick call returned while the slow one was still running."""
    quick_result: Any


def beside(slow: Callable[[], Any], quick: Callable[[], Any], lead_s: float = LEAD_S) -> Timing:
    """Start ``slow`` on a thread, ``lead_s`` later run ``quick`` here; both must succeed."""
    out: Dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        started.set()
        t = time.perf_counter()
        try:
            slow()
        except BaseException as exc:  # reported below
            out["error"] = exc
        out["slow_end"] = time.perf_counter()
        out["slow_s"] = out["slow_end"] - t

    thread = threading.Thread(target=run, name="slow-request")
    thread.start()
    started.wait()
    time.sleep(lead_s)
    t = time.perf_counter()
    result = quick()
    quick_end = time.perf_counter()
    thread.join(timeout=600)
    assert not thread.is_alive(), "the slow call did not end"
    if "error" in out:
        raise out["error"]
    return Timing(out["slow_s"], quick_end - t, quick_end < out["slow_end"], result)


def sized(make: Callable[[int], Callable[[], Any]], target_s: float, start: int = 500, most: int = 200_000) -> int:
    """The size ``n`` for which ``make(n)()`` takes about ``target_s`` (measured, growing ``n``).

    A first call warms up (an index loaded, a matrix filled) so that it is not measured.
    """
    n = start
    make(n)()
    while True:
        t = time.perf_counter()
        make(n)()
        took = time.perf_counter() - t
        if took >= target_s / 4 or n >= most:
            return min(most, max(n, int(n * target_s / max(took, 1e-3))))
        n *= 4
