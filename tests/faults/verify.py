"""Checks a store after a fault run, in a process that did not write it, against the journal.

Each record may end in the state its last acknowledged call gave it, or in the state of
a call after that which raised NotDurableError (its changes may or may not be there).
A call that raised any other error must have changed nothing. :func:`verify` counts
what breaks these rules, and whether the store is consistent (opens, ``check()`` is
clean, ids are unique, every record is found by its own vector, text queries answer).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

import vectordb
from writer import value  # type: ignore[import-not-found]  # beside this file

State = Optional[int]
"""A record's state: the step ``k`` whose values it holds, or None when absent."""

COUNTS = ("runs", "faults", "errors", "not_durable", "lost", "applied_unreported", "partial", "untyped",
          "inconsistent", "hang")


def expected_states(journal: List[Dict[str, Any]]) -> Tuple[Dict[str, Set[State]], Dict[str, State]]:
    """For each id, the states it may end in; and for each id the state of the call that raised
    an ordinary error last (which must not show unless allowed otherwise)."""
    allowed: Dict[str, Set[State]] = {}
    refused: Dict[str, State] = {}
    for entry in journal:
        op = entry.get("op")
        if op not in ("add", "upsert", "delete"):
            continue
        state = None if op == "delete" else entry["k"]
        outcome = entry.get("outcome")
        for record_id in entry["ids"]:
            before = allowed.setdefault(record_id, {None})
            if outcome == "ok":
                allowed[record_id] = {state}
            elif outcome in ("not_durable", "untyped"):
                before.add(state)
            else:
                refused[record_id] = state
    return allowed, refused


def read_store(path: Path, dim: int) -> Tuple[Optional[Dict[str, State]], List[str]]:
    """Every record's state, and what is inconsistent about the store (empty: nothing)."""
    problems: List[str] = []
    try:
        client = vectordb.PersistentClient(path)
    except Exception as exc:
        return None, [f"the store does not open: {type(exc).__name__}: {exc}"]
    try:
        try:
            col = client.get_collection("docs", embedding_function=None)
        except vectordb.errors.CollectionNotFoundError:
            return {}, problems
        got = col.get(include=["embeddings", "metadatas", "documents"])
        ids = got["ids"]
        if len(ids) != len(set(ids)):
            problems.append(f"{len(ids) - len(set(ids))} ids appear twice")
        if col.count() != len(ids):
            problems.append(f"count() {col.count()} != {len(ids)} records")
        states: Dict[str, State] = {}
        for record_id, embedding, metadata, document in zip(ids, got["embeddings"], got["metadatas"],
                                                            got["documents"]):
            k = (metadata or {}).get("k")
            want = value(record_id, k, dim) if isinstance(k, int) else None
            if want is None or not np.array_equal(np.asarray(embedding, dtype=np.float32),
                                                  np.asarray(want[0], dtype=np.float32)) \
                    or metadata != want[1] or document != want[2]:
                problems.append(f"record {record_id!r} holds values no call wrote")
                continue
            states[record_id] = k
        report = client.check()
        if not report.ok:
            problems.append(f"check(): {report}")
        for record_id, embedding in list(zip(ids, got["embeddings"]))[:5]:
            found = col.query(query_embeddings=[list(embedding)], n_results=1, include=[])["ids"][0]
            if found != [record_id]:
                problems.append(f"querying {record_id!r} by its own vector found {found}")
        col.query(query_texts=["word3"], mode="text", n_results=5)
        return states, problems
    except Exception as exc:
        problems.append(f"reading the store failed: {type(exc).__name__}: {exc}")
        return None, problems
    finally:
        client.close()


def verify(path: Path, journal: List[Dict[str, Any]], dim: int) -> Tuple[Counter, List[str]]:
    """Counts (see COUNTS) for one run, and a line for each problem found."""
    counts: Counter = Counter(runs=1)
    notes: List[str] = []
    for entry in journal:
        outcome = entry.get("outcome")
        counts["errors"] += outcome in ("raised", "not_durable", "untyped")
        counts["not_durable"] += outcome == "not_durable"
        if outcome == "untyped":
            counts["untyped"] += 1
            notes.append(f"untyped error from {entry['op']}: {entry.get('error')}")
        if "failed_calls" in entry:
            counts["faults"] = entry["failed_calls"]
        if entry.get("hang") or "crash" in entry:
            counts["hang"] += 1
            notes.append(f"the writer hung or crashed: {entry.get('stderr', '')[-800:]}")
    states, problems = read_store(path, dim)
    if problems:
        counts["inconsistent"] += 1
        notes.extend(problems)
    if states is None:
        return counts, notes
    allowed, refused = expected_states(journal)
    for record_id, may in allowed.items():
        actual = states.get(record_id)
        if actual in may:
            continue
        if record_id in refused and actual == refused[record_id]:
            counts["applied_unreported"] += 1
            notes.append(f"{record_id!r} shows step {actual}, whose call raised an ordinary error")
        else:
            counts["lost"] += 1
            notes.append(f"{record_id!r} is {actual}, expected one of {sorted(may, key=str)}")
    for entry in journal:  # a call that may or may not have been applied: all of it or none
        if entry.get("outcome") == "not_durable" and entry.get("op") in ("add", "upsert"):
            eligible = [i for i in entry["ids"] if entry["k"] in allowed.get(i, ())]
            shown = sum(states.get(i) == entry["k"] for i in eligible)
            if 0 < shown < len(eligible):
                counts["partial"] += 1
                notes.append(f"step {entry['step']} shows in {shown} of {len(eligible)} records")
    return counts, notes
