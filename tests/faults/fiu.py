"""Real I/O faults with libfiu: a child process whose write/fsync/open/rename calls fail.

``fiu-run -x`` preloads libfiu's POSIX wrappers into the child; inside it, faults are
switched on through libfiu's C API (:class:`Faults`), after every native module is
imported, and chosen by call count (``fiu_nth.c``: "fail the 3rd fdatasync", "fail every
write from the 5th on"), always with a fixed errno. pyarrow is kept out of the child:
libfiu 1.1 preloaded deadlocks with its loading in about half the runs.

:func:`unavailable` says why the tests cannot run here (no fiu-run, no C compiler), and
:func:`run_child` runs :mod:`writer` on a scenario and returns its journal.
"""

from __future__ import annotations

import ctypes
import errno as errno_module
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
LIBFIU = "libfiu.so.0"


def unavailable() -> Optional[str]:
    """Why libfiu faults cannot be injected on this machine (None: they can)."""
    if not sys.platform.startswith("linux"):
        return "libfiu fault injection runs on Linux only"
    if shutil.which("fiu-run") is None:
        return "libfiu is not installed (apt-get install fiu-utils)"
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        return "no C compiler to build tests/faults/fiu_nth.c"
    return None


def build(folder: Path) -> Path:
    """Compile ``fiu_nth.c`` into ``folder`` (once per folder); the shared library's path."""
    target = folder / "fiu_nth.so"
    if not target.exists():
        compiler = shutil.which("cc") or shutil.which("gcc")
        scratch = folder / f"fiu_nth.{os.getpid()}.so"
        subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(scratch), str(HERE / "fiu_nth.c")],
                       check=True, capture_output=True)
        os.replace(scratch, target)
    return target


_DECIDE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                           ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_uint))


class Faults:
    """In the child: arm failure points by call count (paused until :meth:`resume`)."""

    def __init__(self, helper: str) -> None:
        self.fiu = ctypes.CDLL(LIBFIU)
        self.fiu.fiu_enable_external.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_uint,
                                                 ctypes.c_void_p]
        self.nth = ctypes.CDLL(helper)
        self.nth.fiu_nth_arm.argtypes = [ctypes.c_char_p, ctypes.c_long, ctypes.c_int]
        self.nth.fiu_nth_failed.restype = ctypes.c_long
        self.decide = ctypes.cast(self.nth.fiu_nth_decide, ctypes.c_void_p)

    def arm(self, point: str, nth: int, forever: bool, errno: int = errno_module.EIO) -> None:
        """Fail call ``nth`` (from 1) of ``point`` (every call from it on with ``forever``), with ``errno``."""
        if self.nth.fiu_nth_arm(point.encode(), nth, int(forever)) < 0:
            raise RuntimeError("too many failure points")
        if self.fiu.fiu_enable_external(point.encode(), 1, ctypes.c_void_p(errno), 0, self.decide) != 0:
            raise RuntimeError(f"libfiu refused to enable {point}")

    def pause(self) -> None:
        self.nth.fiu_nth_pause(1)

    def resume(self) -> None:
        self.nth.fiu_nth_pause(0)

    def failed(self) -> int:
        """How many calls failed so far."""
        return int(self.nth.fiu_nth_failed())


def run_child(store: Path, scenario: Dict[str, Any], work: Path, timeout: float = 180) -> List[Dict[str, Any]]:
    """Run ``writer.py`` under ``fiu-run -x`` on ``scenario``; the journal of what each call did.

    A child that hangs is killed, and its journal gets a final ``{"hang": true}`` entry.
    """
    helper = build(work)
    spec = work / f"scenario-{os.getpid()}-{id(scenario)}.json"
    journal = work / f"journal-{store.name}.jsonl"
    spec.write_text(json.dumps(scenario))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = ["fiu-run", "-x", "-f", "", sys.executable, str(HERE / "writer.py"), str(store), str(spec),
               str(journal), str(helper)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        tail = done.stderr[-3000:]
        code: Optional[int] = done.returncode
    except subprocess.TimeoutExpired as exc:
        tail, code = str(exc.stderr or "")[-3000:], None
    entries = [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []
    if code is None:
        entries.append({"hang": True, "stderr": tail})
    elif code not in (0, 3):
        entries.append({"crash": code, "stderr": tail})
    return entries
