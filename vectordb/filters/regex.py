"""The regular-expression dialect of ``where_document`` ``$regex`` / ``$not_regex``, and its cost bound.

The dialect is RE2's (https://github.com/google/re2/wiki/Syntax), the engine DuckDB's
``regexp_matches`` runs, with the options it runs it with: UTF-8, case-sensitive unless
the pattern says ``(?i)``, ``.`` not matching a newline unless ``(?s)``, ``^`` / ``$`` at
the document's ends unless ``(?m)``, no backreferences or lookaround. A pattern matches a
document when it matches anywhere in it (search, not full match; anchor with ``^...$``).

This module owns checking a pattern once, when a filter is parsed (:func:`check_pattern`),
and compiling it for Python-side evaluation with the same engine (:func:`compiled`,
``google-re2``, imported on first use so ``import vectordb`` does not pay for it). RE2
runs in time linear in the document's length, so no pattern backtracks exponentially
(``(a+)+$`` is as cheap as ``a+$``); the factor is the size of the compiled program,
which the checks bound: at most :data:`MAX_PATTERN_LENGTH` characters, and a compiled
program of at most :data:`MAX_PROGRAM_SIZE` instructions within :data:`MAX_MEMORY` bytes.
"""

from __future__ import annotations

import functools
from typing import Any

from vectordb.errors import InvalidArgumentError

MAX_PATTERN_LENGTH = 2_000
"""The most characters a ``$regex`` / ``$not_regex`` pattern may have."""

MAX_PROGRAM_SIZE = 10_000
"""The most RE2 program instructions a pattern may compile to (``\\pL`` alone is about 1,200;
``(\\pL|\\pN){1,7}$`` scans 5 MB in about 0.05 s, ``(\\pL|\\pN){1,20}$`` at 27,000 took 4.5 s)."""

MAX_MEMORY = 8 << 20
"""RE2's memory budget for compiling and running one pattern, as DuckDB gives it (its default)."""


def _options() -> Any:
    import re2  # google-re2; on first use only

    options = re2.Options()
    options.log_errors = False  # errors are raised as InvalidArgumentError, not printed
    options.never_capture = True  # only "does it match" is asked: no submatch tracking
    options.max_mem = MAX_MEMORY
    return options


@functools.lru_cache(maxsize=256)
def compiled(pattern: str) -> Any:
    """The compiled RE2 program of a pattern that :func:`check_pattern` accepted (cached)."""
    import re2

    return re2.compile(pattern, _options())


def check_pattern(pattern: str, where: str) -> str:
    """``pattern`` if it is a valid RE2 pattern within the cost bound, else InvalidArgumentError
    naming it (``where`` is its place in the filter) and what is wrong."""
    import re2

    shown = _shown(pattern)
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise InvalidArgumentError(
            f"{where}: pattern {shown} is {len(pattern)} characters long (the limit is {MAX_PATTERN_LENGTH})"
        )
    try:
        program = compiled(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise InvalidArgumentError(f"{where}: invalid regular expression {shown}: {reason}") from None
    if program.programsize > MAX_PROGRAM_SIZE:
        raise InvalidArgumentError(
            f"{where}: pattern {shown} is too costly: it compiles to {program.programsize} RE2 instructions "
            f"(the limit is {MAX_PROGRAM_SIZE}; narrow its character classes or repetition counts)"
        )
    return pattern


def search(pattern: str, document: str) -> bool:
    """Whether a checked ``pattern`` matches anywhere in ``document``, as DuckDB's ``regexp_matches``."""
    return compiled(pattern).search(document) is not None


def _shown(pattern: str) -> str:
    text = repr(pattern)
    return text if len(text) <= 60 else text[:57] + "..."
