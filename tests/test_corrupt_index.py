"""Damaged index files (truncated, zeroed, deleted, garbled, from an older sequence) are
detected on open and rebuilt from the records, with a warning; answers stay exact."""

from __future__ import annotations

import glob
import logging
import os
import shutil
from typing import Callable

import numpy as np
import pytest

import vectordb

DIM = 8
N = 300


def _vectors(seed: int, n: int = N) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


@pytest.fixture
def store(tmp_path) -> str:
    """A closed store with one saved index over N records (ids r0..)."""
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", metadata={"hnsw:search_ef": 400}, embedding_function=None)
        col.add([f"r{i}" for i in range(N)], _vectors(0), metadatas=[{"i": i} for i in range(N)])
        col.delete([f"r{i}" for i in range(0, N, 7)])
    return path


def _index_folder(path: str) -> str:
    (folder,) = glob.glob(os.path.join(path, "index", "*"))
    return folder


def _truncate(name: str) -> Callable[[str], None]:
    def damage(folder: str) -> None:
        target = os.path.join(folder, name)
        with open(target, "r+b") as f:
            f.truncate(os.path.getsize(target) // 2)
    return damage


def _zero(name: str) -> Callable[[str], None]:
    def damage(folder: str) -> None:
        target = os.path.join(folder, name)
        size = os.path.getsize(target)
        with open(target, "wb") as f:
            f.write(b"\0" * size)
    return damage


def _delete(name: str) -> Callable[[str], None]:
    return lambda folder: os.remove(os.path.join(folder, name))


def _garble_meta(folder: str) -> None:
    with open(os.path.join(folder, "meta.json"), "w") as f:
        f.write('{"format": 1, "seq": ')


DAMAGES = {
    "truncated index.bin": _truncate("index.bin"),
    "zeroed index.bin": _zero("index.bin"),
    "deleted index.bin": _delete("index.bin"),
    "truncated alive.npy": _truncate("alive.npy"),
    "zeroed alive.npy": _zero("alive.npy"),
    "deleted meta.json": _delete("meta.json"),
    "garbled meta.json": _garble_meta,
    "deleted folder": lambda folder: shutil.rmtree(folder),
}


def _assert_exact_answers(path: str) -> None:
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("docs")
        got = col.get(include=["embeddings"])
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        queries = _vectors(99, 8)
        result = col.query(queries, n_results=10, include=["distances"])
        exact = ((queries[:, None, :] - vectors[None, :, :]) ** 2).sum(-1)
        for q in range(len(queries)):
            expected = [got["ids"][j] for j in np.argsort(exact[q], kind="stable")[:10]]
            assert result["ids"][q] == expected
        assert col.count() == N - len(range(0, N, 7))
        report = client.check()
        assert report.ok, str(report)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_index_is_rebuilt_with_a_warning(store, damage, caplog):
    DAMAGES[damage](_index_folder(store))
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        _assert_exact_answers(store)
    assert any("rebuild" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


def test_index_from_an_older_sequence_is_rebuilt(store, tmp_path, caplog):
    folder = _index_folder(store)
    old = str(tmp_path / "old")
    shutil.copytree(folder, old)
    with vectordb.PersistentClient(store) as client:
        col = client.get_collection("docs")
        col.delete([f"r{i}" for i in range(1, N, 5)])
        col.add([f"new{i}" for i in range(40)], _vectors(5, 40))
    shutil.rmtree(folder)
    shutil.copytree(old, folder)
    with caplog.at_level(logging.WARNING, logger="vectordb"), vectordb.PersistentClient(store) as client:
        col = client.get_collection("docs")
        ids = set(col.get()["ids"])
        hits = col.query(_vectors(99, 4), n_results=300, include=[])["ids"]
        assert all(set(h) <= ids for h in hits) and all(len(h) == min(300, len(ids)) for h in hits)
        assert client.check().ok
    assert any("rebuild" in r.getMessage() for r in caplog.records)


def test_index_from_a_later_sequence_is_rebuilt(store, tmp_path):
    """An index newer than the records (e.g. a database restored from a backup) is not trusted."""
    folder = _index_folder(store)
    with vectordb.PersistentClient(store) as client:
        client.get_collection("docs").add([f"x{i}" for i in range(30)], _vectors(3, 30))
    newer = str(tmp_path / "newer")
    shutil.copytree(folder, newer)
    with vectordb.PersistentClient(store) as client:
        client.get_collection("docs").delete([f"x{i}" for i in range(30)])
    shutil.rmtree(folder)
    shutil.copytree(newer, folder)
    with vectordb.PersistentClient(store) as client:
        col = client.get_collection("docs")
        hits = col.query(_vectors(7, 3), n_results=N, include=[])["ids"]
        assert not any(h.startswith("x") for row in hits for h in row)
