"""The child of the I/O-fault tests: runs a scenario of calls on a store while libfiu fails
its I/O, and writes a journal line for each call (what it was, and how it ended).

Run by :func:`fiu.run_child` as ``fiu-run -x python writer.py STORE SCENARIO JOURNAL HELPER``.
A scenario is ``{"dim": d, "steps": [...]}``; each step is a call on the collection
``docs`` (``add``/``upsert`` of ``ids`` with the values of step ``k``, ``delete`` of
``ids``, ``compact``, ``query``), or ``arm`` (switch ``faults`` on: ``[point, nth,
forever]`` each), ``pause``, ``close``, or ``crash`` (``os._exit``: no close). The
journal is written while faults are paused, so its own writes never fail.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Tuple

import numpy as np


def value(record_id: str, k: int, dim: int) -> Tuple[List[float], Dict[str, Any], str]:
    """What step ``k`` writes for ``record_id``: (embedding, metadata, document), distinct per step."""
    seed = int.from_bytes(f"{record_id}/{k}".encode(), "little") % (2 ** 32)
    embedding = np.random.default_rng(seed).random(dim, dtype=np.float32)
    return embedding.tolist(), {"k": k, "id": record_id}, f"{record_id} written by step {k} word{k % 7}"


def main(store: str, scenario_file: str, journal_file: str, helper: str) -> None:
    sys.modules["pyarrow"] = None  # libfiu 1.1 preloaded can deadlock with pyarrow's loading
    import vectordb
    from vectordb.errors import VectorDBError
    NotDurableError = getattr(vectordb.errors, "NotDurableError", ())  # () matches nothing: the matrix also runs on older versions

    from fiu import Faults  # type: ignore[import-not-found]  # beside this file

    scenario = json.loads(open(scenario_file).read())
    dim = scenario.get("dim", 16)
    faults = Faults(helper)
    journal = open(journal_file, "a")
    client = vectordb.PersistentClient(store)
    col = client.get_or_create_collection("docs", embedding_function=None)

    def note(entry: Dict[str, Any]) -> None:
        faults.pause()
        journal.write(json.dumps(entry) + "\n")
        journal.flush()
        os.fsync(journal.fileno())

    active = False
    for number, step in enumerate(scenario["steps"]):
        op = step["op"]
        if op == "arm":
            for point, nth, forever in step["faults"]:
                faults.arm(point, nth, forever)
            active = True
            continue
        if op == "pause":
            active = False
            continue
        if op == "crash":
            note({"step": number, "op": "crash", "failed_calls": faults.failed()})
            os._exit(3)
        entry: Dict[str, Any] = {"step": number, "op": op, "k": step.get("k"), "ids": step.get("ids", [])}
        if active:
            faults.resume()
        try:
            if op in ("add", "upsert"):
                values = [value(i, step["k"], dim) for i in step["ids"]]
                getattr(col, op)(ids=step["ids"], embeddings=[v[0] for v in values],
                                 metadatas=[v[1] for v in values], documents=[v[2] for v in values])
            elif op == "delete":
                col.delete(ids=step["ids"])
            elif op == "compact":
                col.compact()
            elif op == "query":
                col.query(query_embeddings=[[0.5] * dim], n_results=3)
            elif op == "close":
                client.close()
            else:
                raise ValueError(f"unknown step {op!r}")
            entry["outcome"] = "ok"
        except NotDurableError as exc:
            entry.update(outcome="not_durable", applied=exc.applied, error=f"{type(exc).__name__}: {exc}")
        except VectorDBError as exc:
            entry.update(outcome="raised", error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # anything else is an untyped error: a defect the matrix counts
            entry.update(outcome="untyped", error=f"{type(exc).__name__}: {exc}")
        note(entry)
        if op == "close":
            break
    note({"op": "end", "failed_calls": faults.failed()})
    journal.close()
    os._exit(0)


if __name__ == "__main__":
    main(*sys.argv[1:5])
