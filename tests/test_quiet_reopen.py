"""Reopening a store after normal use is quiet; only real damage to a saved index warns.

A script that never calls ``client.close()`` (as Chroma's own examples do), or a process
killed after its writes, leaves no saved index (or one older than its records): the next
open builds or catches it up from the records, which is normal, so nothing is logged at
WARNING. A saved file that exists but is unusable (truncated, failing its checksum) is
damage, and still logs a WARNING.

The writer is a real separate Python process; the store is reopened in this process,
and the ``vectordb`` logger is captured with ``caplog``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from typing import List

import numpy as np
import pytest

import vectordb

sys.path.insert(0, os.path.dirname(__file__))
from server_helpers import subprocess_env  # noqa: E402

DIM = 8
BIG, SMALL = 300, 10
"""Records of the two collections: BIG is caught up in the background on reopen, SMALL on the calling thread."""

WRITER = r"""
import os, sys, time
import numpy as np
import vectordb

path, ending, first = sys.argv[1], sys.argv[2], int(sys.argv[3])


def vectors(seed, n):
    return np.random.default_rng(seed).random((n, 8), dtype=np.float32)


def write(client):
    for name, n in (("big", 300), ("small", 10)):
        col = client.get_or_create_collection(name, embedding_function=None)
        ids = [f"{name}{first + i}" for i in range(n)]
        docs = [f"record {first + i} of {name} about topic{i % 7}" for i in range(n)]
        col.add(ids=ids[: n // 2], embeddings=vectors(first, n)[: n // 2], documents=docs[: n // 2])
        col.query(query_embeddings=vectors(99, 1), n_results=3)
        col.query(query_texts=["topic3"], mode="text", n_results=3)  # the text index is built and saved
        col.add(ids=ids[n // 2:], embeddings=vectors(first, n)[n // 2:], documents=docs[n // 2:])
        col.delete(ids=ids[:2])
        col.upsert(ids=ids[2:4], embeddings=vectors(first + 1, 2), documents=["changed topic1", "changed topic2"])


def main():
    client = vectordb.PersistentClient(path)  # dropped on return: never closed
    write(client)
    if ending == "close":
        client.close()
    elif ending == "exit":
        os._exit(0)  # no clean-up at all
    elif ending == "kill":
        print("written", flush=True)
        time.sleep(600)  # killed with SIGKILL by the test


main()
"""


def run_writer(path: str, ending: str, first: int = 0) -> None:
    """Run the writer on ``path`` in a new process; ``ending``: close, drop (return without close),
    exit (``os._exit``) or kill (SIGKILL once the writes are acknowledged)."""
    command = [sys.executable, "-c", textwrap.dedent(WRITER), path, ending, str(first)]
    if ending != "kill":
        done = subprocess.run(command, capture_output=True, text=True, env=subprocess_env(), timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=subprocess_env())
    try:
        assert proc.stdout.readline().strip() == b"written", proc.stderr.read().decode()[-3000:]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def reopen_and_query(path: str, read_only: bool = False) -> None:
    """Open the store, run vector, text and hybrid queries and check the answers against the records."""
    with vectordb.PersistentClient(path, read_only=read_only) as client:
        for name in ("big", "small"):
            col = client.get_collection(name)
            got = col.get(include=["embeddings", "documents"])
            stored = np.asarray(got["embeddings"], dtype=np.float32)
            query = np.random.default_rng(7).random((1, DIM), dtype=np.float32)
            nearest = np.argsort(((stored - query) ** 2).sum(1), kind="stable")[:5]
            assert col.query(query_embeddings=query, n_results=5, include=[])["ids"][0] == \
                [got["ids"][j] for j in nearest]
            changed = {i for i, d in zip(got["ids"], got["documents"]) if d.startswith("changed")}
            assert set(col.query(query_texts=["changed"], mode="text", n_results=10, include=[])["ids"][0]) \
                == changed and changed
            assert col.query(query_embeddings=query, query_texts=["topic3"], mode="hybrid", n_results=3,
                             include=[])["ids"][0]
        if not read_only:
            assert client.check().ok


def warnings_of(caplog: pytest.LogCaptureFixture) -> List[str]:
    """The messages of the ``vectordb`` loggers at WARNING or above."""
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.WARNING and (r.name == "vectordb" or r.name.startswith("vectordb."))]


@pytest.mark.parametrize("ending", ["drop", "exit", "kill"])
@pytest.mark.parametrize("read_only", [False, True], ids=["writer", "reader"])
def test_reopening_after_a_client_never_closed_logs_no_warning(tmp_path, caplog, ending, read_only):
    path = str(tmp_path / "db")
    run_writer(path, ending)
    with caplog.at_level(logging.DEBUG, logger="vectordb"):
        reopen_and_query(path, read_only)
    assert warnings_of(caplog) == []
    notes = [r for r in caplog.records if "no saved index" in r.getMessage()]
    assert notes and all(r.levelno == logging.INFO for r in notes), "the rebuild is still told, at INFO"


@pytest.mark.parametrize("ending", ["drop", "kill"])
def test_unclosed_writes_after_a_saved_index_are_caught_up_quietly(tmp_path, caplog, ending):
    """A saved index older than the records (later writes, deletes and updates never saved) is normal too."""
    path = str(tmp_path / "db")
    run_writer(path, "close")
    run_writer(path, ending, first=1000)
    with caplog.at_level(logging.DEBUG, logger="vectordb"):
        reopen_and_query(path)
    assert warnings_of(caplog) == []


def _index_file(path: str, name: str, collection: str = "big") -> str:
    with vectordb.PersistentClient(path, read_only=True) as client:
        collection_id = client.get_collection(collection).id
    return os.path.join(path, "index", collection_id, name)


def _truncate(file: str) -> None:
    with open(file, "r+b") as f:
        f.truncate(os.path.getsize(file) // 2)


def test_a_truncated_index_file_still_warns(tmp_path, caplog):
    path = str(tmp_path / "db")
    run_writer(path, "close")
    _truncate(_index_file(path, "index.bin"))
    with caplog.at_level(logging.DEBUG, logger="vectordb"):
        reopen_and_query(path)
    found = warnings_of(caplog)
    assert any("unusable" in w and "index.bin" in w for w in found), found
    assert any("no usable saved index" in w for w in found), found


def test_an_index_file_failing_its_checksum_still_warns(tmp_path, caplog):
    path = str(tmp_path / "db")
    run_writer(path, "close")
    file = _index_file(path, "alive.npy")
    with open(file, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    with caplog.at_level(logging.DEBUG, logger="vectordb"):
        reopen_and_query(path)
    assert any("checksum" in w for w in warnings_of(caplog)), warnings_of(caplog)


def test_a_truncated_text_index_file_still_warns(tmp_path, caplog):
    path = str(tmp_path / "db")
    run_writer(path, "close")
    with vectordb.PersistentClient(path, read_only=True) as client:
        collection_id = client.get_collection("big").id
    _truncate(os.path.join(path, "text", collection_id + ".npz"))
    with caplog.at_level(logging.DEBUG, logger="vectordb"):
        reopen_and_query(path)
    assert any("text index" in w and "unusable" in w for w in warnings_of(caplog)), warnings_of(caplog)
