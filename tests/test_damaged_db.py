"""A damaged ``vectordb.duckdb``, for real: each damage pattern is done to a copy of a
closed store, which a child process (damage could crash one) then opens.

Opening for writing, and ``vectordb check`` (read-only), must either raise
StoreCorruptedError naming the file and what to do (the command line: one line on
stderr, exit status 1), or, where DuckDB does not need the damaged bytes, give back every
record exactly. Damage to the headers, a foreign write-ahead log and a deleted file
must always be refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from typing import Callable, Dict

import numpy as np
import pytest

import vectordb

DB = "vectordb.duckdb"
N = 3000

CHILD = r"""
import contextlib, hashlib, io, json, sys
import numpy as np
import vectordb
from vectordb.cli import main

path = sys.argv[1]
out = {}
client = None
try:
    client = vectordb.PersistentClient(path)
    col = client.get_collection("docs")
    got = col.get(include=["embeddings", "metadatas", "documents"])
    digest = hashlib.sha256()
    for row in sorted(zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"]), key=lambda r: r[0]):
        digest.update(json.dumps([row[0], np.asarray(row[1]).tolist(), row[2], row[3]]).encode())
    out["open"] = {"digest": digest.hexdigest(), "count": col.count(), "ok": client.check().ok,
                   "query": len(col.query(np.asarray(got["embeddings"][0]), n_results=3)["ids"][0])}
except Exception as exc:
    out["open"] = {"error": type(exc).__name__, "message": str(exc)}
if client is not None:
    try:
        client.close()
    except Exception as exc:
        out["close"] = type(exc).__name__
stdout, stderr = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
    try:
        status = main(["check", "--path", path])
    except BaseException as exc:  # main() must not let anything through
        status = f"uncaught {type(exc).__name__}: {exc}"
out["cli"] = {"status": status, "stdout": stdout.getvalue(), "stderr": stderr.getvalue()}
print(json.dumps(out))
"""


def _digest(col) -> str:
    got = col.get(include=["embeddings", "metadatas", "documents"])
    digest = hashlib.sha256()
    for row in sorted(zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"]), key=lambda r: r[0]):
        digest.update(json.dumps([row[0], np.asarray(row[1]).tolist(), row[2], row[3]]).encode())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Dict[str, str]:
    """A closed store of N records (with a saved index), and one killed before its first checkpoint."""
    root = tmp_path_factory.mktemp("damage")
    path = str(root / "base")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", embedding_function=None)
        vectors = np.random.default_rng(0).random((N, 16), dtype=np.float32)
        for start in range(0, N, 1000):
            ids = [f"id{i}" for i in range(start, start + 1000)]
            col.add(ids, vectors[start:start + 1000], metadatas=[{"i": i} for i in range(start, start + 1000)],
                    documents=[f"doc {i}" for i in range(start, start + 1000)])
        col.query(vectors[0], n_results=1)
        digest = _digest(col)
    other = str(root / "other")
    code = ("import os, sys, signal, vectordb\n"
            "c = vectordb.PersistentClient(sys.argv[1])\n"
            "c.create_collection('xyz', embedding_function=None).add(['a'], [[1.0, 2.0]])\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code, other], env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert os.path.getsize(os.path.join(other, DB + ".wal")) > 0
    return {"path": path, "digest": digest, "other_wal": os.path.join(other, DB + ".wal")}


def _truncate(size: Callable[[int], int]) -> Callable[[str, dict], None]:
    return lambda file, base: os.truncate(file, size(os.path.getsize(file)))


def _overwrite(offset: Callable[[int], int], length: int, random_bytes: bool) -> Callable[[str, dict], None]:
    def damage(file: str, base: dict) -> None:
        start = offset(os.path.getsize(file))
        data = random.Random(start).randbytes(length) if random_bytes else b"\0" * length
        with open(file, "r+b") as f:
            f.seek(start)
            f.write(data)

    return damage


def _text(file: str, base: dict) -> None:
    with open(file, "w") as f:
        f.write("these are not the records you are looking for\n")


def _foreign_wal(file: str, base: dict) -> None:
    shutil.copy(base["other_wal"], file + ".wal")


def _garbage_wal(file: str, base: dict) -> None:
    with open(file + ".wal", "wb") as f:
        f.write(random.Random(1).randbytes(5000))


DAMAGE = {
    # name: (damage, always refused)
    "truncated_to_nothing": (_truncate(lambda n: 0), True),
    "truncated_to_100_bytes": (_truncate(lambda n: 100), True),
    "truncated_to_the_first_header": (_truncate(lambda n: 4096), True),
    "truncated_to_half": (_truncate(lambda n: n // 2), False),
    "last_block_cut_off": (_truncate(lambda n: n - 4096), False),
    "main_header_zeroed": (_overwrite(lambda n: 0, 4096, False), True),
    "database_headers_zeroed": (_overwrite(lambda n: 4096, 8192, False), True),
    "middle_zeroed": (_overwrite(lambda n: n // 2, 65536, False), False),
    "tail_zeroed": (_overwrite(lambda n: n - 65536, 65536, False), False),
    "main_header_random": (_overwrite(lambda n: 0, 4096, True), True),
    "magic_bytes_random": (_overwrite(lambda n: 8, 8, True), True),
    "middle_random": (_overwrite(lambda n: n // 2, 65536, True), False),
    "many_blocks_random": (_overwrite(lambda n: 12388, 200_000, True), False),
    "replaced_by_a_text_file": (_text, True),
    "deleted_with_its_index_files_left": (lambda file, base: os.remove(file), True),
    "write_ahead_log_of_another_store": (_foreign_wal, True),
    "write_ahead_log_of_garbage": (_garbage_wal, False),
}


@pytest.mark.parametrize("pattern", sorted(DAMAGE))
def test_damaged_database_gives_a_typed_error_or_every_record(base, tmp_path, pattern):
    damage, always_refused = DAMAGE[pattern]
    path = str(tmp_path / "db")
    shutil.copytree(base["path"], path)
    file = os.path.join(path, DB)
    damage(file, base)
    done = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, f"the process died ({done.returncode}): {done.stderr[-3000:]}"
    out = json.loads(done.stdout.strip().splitlines()[-1])
    opened, cli = out["open"], out["cli"]
    assert out.get("close") in (None, "StoreCorruptedError"), out
    if "error" in opened or always_refused:
        assert opened.get("error") == "StoreCorruptedError", opened
        assert file in opened["message"] and ("restore it from a backup" in opened["message"]
                                              or "Put the file back" in opened["message"]), opened
    else:  # DuckDB did not need the damaged bytes: every record must be there, exactly
        assert opened == {"digest": base["digest"], "count": N, "ok": True, "query": 3}, opened
    lines = cli["stderr"].splitlines()
    if cli["status"] == 1 and lines and lines[0].startswith("vectordb: error:"):
        assert len(lines) == 1 and file in lines[0] and cli["stdout"] == "", cli
        assert "Traceback" not in cli["stderr"]
    else:
        assert not always_refused, cli
        assert cli["status"] == 0 and cli["stdout"].startswith("checked 1 collection: no problems"), cli


LATER = r"""
import os, sys, numpy as np, vectordb
path = sys.argv[1]
client = vectordb.PersistentClient(path)
col = client.get_collection("docs")
file = os.path.join(path, "vectordb.duckdb")
size = os.path.getsize(file)
with open(file, "r+b") as f:  # every block after the headers, while the store is open
    f.seek(12288)
    f.write(b"\0" * (size - 12288))
for name, call in [("count", col.count), ("get", lambda: col.get(include=["embeddings"])),
                   ("query", lambda: col.query(np.zeros(16), n_results=3)), ("check", client.check)]:
    try:
        call()
        print(name, "returned")
    except Exception as exc:
        print(name, type(exc).__name__, file in str(exc))
client.close()
print("closed")
"""


def test_damage_found_by_a_later_call_is_a_typed_error(base, tmp_path):
    path = str(tmp_path / "db")
    shutil.copytree(base["path"], path)
    done = subprocess.run([sys.executable, "-c", LATER, path], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:5] == [f"{name} StoreCorruptedError True" for name in
                                           ("count", "get", "query", "check")] + ["closed"], done.stdout
