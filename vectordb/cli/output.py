"""How the command line prints: aligned plain-text tables for people, JSON for programs."""

from __future__ import annotations

import json
import sys
from typing import Any, List, Optional, Sequence, TextIO


def shorten(text: Any, width: int = 60) -> str:
    """One line of at most ``width`` characters ('' for None)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = json.dumps(text, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def counted(n: int, noun: str, plural: Optional[str] = None) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1: ``1 record``, ``2 records``, ``0 indexes``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def notice(message: str, out: Optional[TextIO] = None) -> None:
    """Print a one-line progress note for people on stderr (stdout stays the command's output)."""
    print(message, file=out or sys.stderr, flush=True)


def print_table(headers: Sequence[str], rows: List[Sequence[Any]], out: Optional[TextIO] = None) -> None:
    """Print ``rows`` under ``headers``, columns aligned; numbers right-aligned."""
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]
    for row in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        print("  ".join(parts).rstrip(), file=out)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) or value is None


def print_json(value: Any, out: Optional[TextIO] = None) -> None:
    """Print ``value`` as indented JSON (numpy arrays, such as result embeddings, as lists)."""
    print(json.dumps(value, indent=2, ensure_ascii=False, default=_plain), file=out or sys.stdout)


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
