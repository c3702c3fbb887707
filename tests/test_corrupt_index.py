"""Damaged index files (truncated, zeroed, deleted, garbled, from an older sequence) are
detected on open and rebuilt from the records, with a warning; answers stay exact.

So are hostile ones: index.bin changed on purpose with its checksum recomputed (opened in
a child process, so a crash fails the test), another collection's index folder copied in
place, and a folder saved without its collection id."""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import struct
import zlib
from typing import Callable

import numpy as np
import pytest
from conftest import run_python

import vectordb
from vectordb.index import hnsw_file
from vectordb.index.hnsw_file import HEADER
from vectordb.index.search import SearchPolicy

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


def _flip_vector_byte(folder: str) -> None:
    """One byte of the first element's vector changed: the file is still well formed (it passes
    the structural check and hnswlib reads it), so only its checksum tells."""
    target = os.path.join(folder, "index.bin")
    with open(target, "rb") as f:
        header = np.frombuffer(f.read(HEADER.itemsize), dtype=HEADER)[0]
    at = HEADER.itemsize + int(header["offset_data"]) + 1
    with open(target, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0x40]))


def _garble_meta(folder: str) -> None:
    with open(os.path.join(folder, "meta.json"), "w") as f:
        f.write('{"format": 1, "seq": ')


DAMAGES = {
    "truncated index.bin": _truncate("index.bin"),
    "zeroed index.bin": _zero("index.bin"),
    "a vector byte of index.bin changed": _flip_vector_byte,
    "deleted index.bin": _delete("index.bin"),
    "truncated alive.npy": _truncate("alive.npy"),
    "zeroed alive.npy": _zero("alive.npy"),
    "deleted meta.json": _delete("meta.json"),
    "garbled meta.json": _garble_meta,
}


def _assert_exact_answers(path: str, through_the_graph: bool = False) -> None:
    with vectordb.PersistentClient(path) as client:
        if through_the_graph:  # answer through the graph that was loaded, not by exact search
            client.backend.engine.indexes.search_policy = SearchPolicy(exact_collection_max=0)
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


def test_deleted_index_folder_is_rebuilt_quietly(store, caplog):
    """No index file at all looks exactly like an index never saved (a client not closed):
    rebuilt with an INFO message, not a warning (see tests/test_quiet_reopen.py)."""
    shutil.rmtree(_index_folder(store))
    with caplog.at_level(logging.INFO, logger="vectordb"):
        _assert_exact_answers(store)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("no saved index" in r.getMessage() for r in caplog.records if r.levelno == logging.INFO)


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


# -- hostile files: changed on purpose, with their checksums recomputed ------------------
#
# hnswlib trusts its file; a bad count or link makes it crash the process. Each case below
# damages index.bin, fixes its checksum in meta.json, and opens the store in a child
# process (a segfault there is a negative return code, failing the test, not pytest).

_HEADER = struct.Struct("=QQQQQQiIQQQdQ")  # hnswlib 0.8.0 saveIndex: 96 bytes
_FIELDS = ("offset_level0", "max_elements", "cur_element_count", "size_data_per_element", "label_offset",
           "offset_data", "maxlevel", "enterpoint_node", "maxM", "maxM0", "M", "mult", "ef_construction")


class _Layout:
    """Where things are in an hnswlib file (parsed independently of vectordb's validator)."""

    def __init__(self, data: bytes) -> None:
        self.h = dict(zip(_FIELDS, _HEADER.unpack_from(data, 0)))
        self.count, self.size = self.h["cur_element_count"], self.h["size_data_per_element"]
        self.level0_end = _HEADER.size + self.count * self.size
        self.list_bytes = 4 + 4 * self.h["maxM"]
        self.levels, self.size_at = [], []
        pos = self.level0_end
        for _ in range(self.count):
            (length,) = struct.unpack_from("=I", data, pos)
            self.size_at.append(pos)
            self.levels.append(length // self.list_bytes)
            pos += 4 + length
        assert pos == len(data)

    def element(self, i: int) -> int:
        return _HEADER.size + i * self.size

    def label_at(self, i: int) -> int:
        return self.element(i) + self.h["label_offset"]

    def upper_list(self, i: int, level: int) -> int:
        return self.size_at[i] + 4 + (level - 1) * self.list_bytes

    def flags(self, data: bytes, i: int) -> int:
        return data[self.element(i) + 2]

    def first(self, predicate) -> int:
        return next(i for i in range(self.count) if predicate(i))


def _put(data: bytearray, offset: int, fmt: str, *values) -> None:
    struct.pack_into("=" + fmt, data, offset, *values)


def _header_field(name: str, value=None, seed: int = 0):
    fmt = {"maxlevel": "i", "enterpoint_node": "I", "mult": "d"}.get(name, "Q")
    offset = sum(struct.calcsize("=" + _HEADER.format[1:][j]) for j in range(_FIELDS.index(name)))

    def mutate(data: bytearray, lay: _Layout) -> bytes:
        if value is None:  # random bytes over the field
            width = struct.calcsize("=" + fmt)
            data[offset: offset + width] = np.random.default_rng(seed).bytes(width)
        else:
            _put(data, offset, fmt, value(lay) if callable(value) else value)
        return bytes(data)
    return mutate


def _at(where, fmt: str, value):
    """Write ``value`` (or value(layout, data)) at offset where(layout, data)."""
    def mutate(data: bytearray, lay: _Layout) -> bytes:
        _put(data, where(lay, data), fmt, value(lay, data) if callable(value) else value)
        return bytes(data)
    return mutate


def _random_bytes(where, width, seed: int):
    def mutate(data: bytearray, lay: _Layout) -> bytes:
        start = where(lay, data)
        data[start: start + width(lay)] = np.random.default_rng(seed).bytes(width(lay))
        return bytes(data)
    return mutate


def _upper(lay: _Layout) -> int:
    """An element present at level 1 with at least one level-1 link."""
    return lay.first(lambda i: lay.levels[i] >= 1)


def _level0_element(lay: _Layout) -> int:
    return lay.first(lambda i: lay.levels[i] == 0)


def _live(lay: _Layout, data: bytes, nth: int = 0) -> int:
    return [i for i in range(lay.count) if not lay.flags(data, i) & 1][nth]


def _deleted(lay: _Layout, data: bytes) -> int:
    return lay.first(lambda i: lay.flags(data, i) & 1)


def _level_beyond_top(data: bytearray, lay: _Layout) -> bytes:
    """Give a top-level element one more level (with an empty list), keeping the file consistent."""
    top = max(lay.levels)
    i = lay.first(lambda j: lay.levels[j] == top)
    _put(data, lay.size_at[i], "I", (top + 1) * lay.list_bytes)
    end = lay.size_at[i] + 4 + top * lay.list_bytes
    return bytes(data[:end]) + b"\0" * lay.list_bytes + bytes(data[end:])


HOSTILE = {
    "header": {
        **{f"random bytes in {name}": _header_field(name, seed=n) for n, name in enumerate(
            ("offset_level0", "cur_element_count", "size_data_per_element", "label_offset", "offset_data",
             "maxlevel", "enterpoint_node", "maxM", "maxM0", "M", "mult", "ef_construction"))},
        "max_elements huge": _header_field("max_elements", 2**61),
        "max_elements below the count": _header_field("max_elements", lambda lay: lay.count - 1),
        "element count plus one": _header_field("cur_element_count", lambda lay: lay.count + 1),
        "element count minus one": _header_field("cur_element_count", lambda lay: lay.count - 1),
        "element count 2**40": _header_field("cur_element_count", 2**40),
    },
    "graph": {
        "enterpoint out of range": _header_field("enterpoint_node", lambda lay: lay.count + 3),
        "enterpoint at level 0": _header_field("enterpoint_node", _level0_element),
        "maxlevel raised": _header_field("maxlevel", lambda lay: lay.h["maxlevel"] + 1),
        "maxlevel lowered": _header_field("maxlevel", lambda lay: lay.h["maxlevel"] - 1),
        "maxlevel 1000": _header_field("maxlevel", 1000),
        "level beyond maxlevel": _level_beyond_top,
        "level-0 link count beyond maxM0": _at(lambda lay, d: lay.element(7), "H", lambda lay, d: lay.h["maxM0"] + 1),
        "level-0 link to no element": _at(lambda lay, d: lay.element(9) + 4, "I", lambda lay, d: lay.count + 11),
        "level-0 link to element 2**32-1": _at(lambda lay, d: lay.element(12) + 4, "I", 2**32 - 1),
        "random bytes over a level-0 link list": _random_bytes(
            lambda lay, d: lay.element(20), lambda lay: 4 + 4 * lay.h["maxM0"], seed=3),
        "upper link count beyond maxM": _at(lambda lay, d: lay.upper_list(_upper(lay), 1), "H",
                                            lambda lay, d: lay.h["maxM"] + 1),
        "upper link to no element": _at(lambda lay, d: lay.upper_list(_upper(lay), 1) + 4, "I",
                                        lambda lay, d: lay.count + 1),
        "upper link to an element absent from that level": _at(
            lambda lay, d: lay.upper_list(_upper(lay), 1) + 4, "I", lambda lay, d: _level0_element(lay)),
        "random bytes over upper link lists": _random_bytes(
            lambda lay, d: lay.upper_list(_upper(lay), 1), lambda lay: lay.list_bytes, seed=4),
        "link-list size not a whole level": _at(lambda lay, d: lay.size_at[_upper(lay)], "I",
                                                lambda lay, d: lay.levels[_upper(lay)] * lay.list_bytes + 4),
        "link-list size on a level-0 element": _at(lambda lay, d: lay.size_at[_level0_element(lay)], "I",
                                                   lambda lay, d: lay.list_bytes),
    },
    "labels": {
        "label beyond the alive mask": _at(lambda lay, d: lay.label_at(_live(lay, d)), "Q", 10**6),
        "label 2**63": _at(lambda lay, d: lay.label_at(_live(lay, d)), "Q", 2**63),
        "label duplicated": _at(lambda lay, d: lay.label_at(_live(lay, d, 1)), "Q",
                                lambda lay, d: struct.unpack_from("=Q", d, lay.label_at(_live(lay, d)))[0]),
        "live label replaced by a deleted one": _at(
            lambda lay, d: lay.label_at(_live(lay, d)), "Q",
            lambda lay, d: struct.unpack_from("=Q", d, lay.label_at(_deleted(lay, d)))[0]),
        "deleted mark set on a live element": _at(lambda lay, d: lay.element(_live(lay, d)) + 2, "B", 1),
        "deleted mark cleared on a deleted element": _at(lambda lay, d: lay.element(_deleted(lay, d)) + 2, "B", 0),
        "unknown flags": _at(lambda lay, d: lay.element(_live(lay, d)) + 2, "B", 0x80),
        "random bytes over a label": _random_bytes(lambda lay, d: lay.label_at(30), lambda lay: 8, seed=5),
    },
    "size": {
        "truncated by one byte": lambda data, lay: bytes(data[:-1]),
        "truncated by four bytes": lambda data, lay: bytes(data[:-4]),
        "truncated inside the level-0 block": lambda data, lay: bytes(data[: lay.element(lay.count // 2) + 5]),
        "truncated after the level-0 block": lambda data, lay: bytes(data[: lay.level0_end]),
        "truncated to the header": lambda data, lay: bytes(data[:96]),
        "extended by four zero bytes": lambda data, lay: bytes(data) + b"\0" * 4,
        "extended by random bytes": lambda data, lay: bytes(data) + np.random.default_rng(6).bytes(100),
    },
}


def _fix_checksum(folder: str) -> None:
    meta_path = os.path.join(folder, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    for name in meta["files"]:
        meta["files"][name] = hnsw_file.checksum(os.path.join(folder, name))
    with open(meta_path, "w") as f:
        json.dump(meta, f)


_CHILD = """
import json, logging, sys
import numpy as np
import vectordb
from vectordb.index import hnsw_file
from vectordb.index.hnsw_file import HEADER
from vectordb.index.search import SearchPolicy

warnings = []
handler = logging.Handler(logging.WARNING)
handler.emit = lambda record: warnings.append(record.getMessage())
logging.getLogger("vectordb").addHandler(handler)
rng = np.random.default_rng(99)
queries = rng.standard_normal((8, %(dim)d)).astype(np.float32)

def check(col):
    got = col.get(include=["embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float64)
    exact = ((queries[:, None, :].astype(np.float64) - vectors[None]) ** 2).sum(-1)
    result = col.query(queries, n_results=10, include=[])["ids"]
    for q in range(len(queries)):
        assert result[q] == [got["ids"][j] for j in np.argsort(exact[q], kind="stable")[:10]], q

for name, path in json.loads(%(cases)r):
    print("opening", name, flush=True)
    del warnings[:]
    with vectordb.PersistentClient(path) as client:
        client.backend.engine.indexes.search_policy = SearchPolicy(exact_collection_max=0)  # through the graph
        col = client.get_collection("docs")
        check(col)
        col.add([f"late{i}" for i in range(20)], rng.standard_normal((20, %(dim)d)).astype(np.float32))
        col.delete(["r1", "r2", "late3"])
        check(col)
        assert client.check().ok
    print(json.dumps({"case": name, "warnings": warnings}), flush=True)
"""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> str:
    """A closed store like ``store`` (one saved index, some deleted slots), copied by each case."""
    path = str(tmp_path_factory.mktemp("pristine") / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", metadata={"hnsw:search_ef": 400}, embedding_function=None)
        col.add([f"r{i}" for i in range(N)], _vectors(0), metadatas=[{"i": i} for i in range(N)])
        col.delete([f"r{i}" for i in range(0, N, 7)])
    return path


@pytest.mark.parametrize("group", sorted(HOSTILE))
def test_hostile_index_file_is_rejected_not_crashed_on(pristine, tmp_path, group):
    cases = []
    for n, (name, mutate) in enumerate(sorted(HOSTILE[group].items())):
        path = str(tmp_path / f"case{n}")
        shutil.copytree(pristine, path)
        folder = _index_folder(path)
        with open(os.path.join(folder, "index.bin"), "rb") as f:
            data = f.read()
        damaged = mutate(bytearray(data), _Layout(data))
        assert damaged != data, name
        with open(os.path.join(folder, "index.bin"), "wb") as f:
            f.write(damaged)
        _fix_checksum(folder)
        cases.append((name, path))
    proc = run_python(_CHILD % {"dim": DIM, "cases": json.dumps(cases)})
    opened = [line.split(" ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("opening ")]
    assert proc.returncode == 0, f"crashed or failed on {opened[-1:]} (rc {proc.returncode}):\n{proc.stderr[-3000:]}"
    reports = {r["case"]: r["warnings"] for r in (json.loads(line) for line in proc.stdout.splitlines()
                                                  if line.startswith("{"))}
    assert sorted(reports) == sorted(name for name, _ in cases)
    for name, warnings in reports.items():
        assert any("unusable" in w and "rebuilding" in w for w in warnings), (name, warnings)


def _fake_mask(header: str, body: bytes = b"") -> bytes:
    """A .npy file with ``header`` (a dict literal) and ``body``."""
    text = header.encode("latin1")
    text += b" " * (-(len(text) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


HOSTILE_MASKS = {
    "a terabyte long": _fake_mask("{'descr': '|b1', 'fortran_order': False, 'shape': (1000000000000,), }", b"\1" * 64),
    "integers": _fake_mask("{'descr': '<i8', 'fortran_order': False, 'shape': (300,), }", b"\1" * 2400),
    "a pickled object": _fake_mask("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."),
    "two-dimensional": _fake_mask("{'descr': '|b1', 'fortran_order': False, 'shape': (20, 20), }", b"\1" * 400),
    "not a .npy file": b"garbage" * 100,
}


@pytest.mark.parametrize("mask", sorted(HOSTILE_MASKS))
def test_hostile_alive_mask_is_rejected(store, mask, caplog):
    folder = _index_folder(store)
    with open(os.path.join(folder, "alive.npy"), "wb") as f:
        f.write(HOSTILE_MASKS[mask])
    _fix_checksum(folder)
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        _assert_exact_answers(store)
    assert any("unusable" in r.getMessage() and "rebuilding" in r.getMessage() for r in caplog.records)


def _two_collections(path: str) -> None:
    """Two collections with the same settings, labels and deletions, but other vectors."""
    with vectordb.PersistentClient(path) as client:
        for name, seed in (("docs", 0), ("other", 1)):
            col = client.create_collection(name, embedding_function=None)
            col.add([f"r{i}" for i in range(N)], _vectors(seed))
            col.delete([f"r{i}" for i in range(0, N, 7)])


def test_another_collections_index_copied_in_place_is_rebuilt(tmp_path, caplog, monkeypatch):
    """Same settings and labels, so only the recorded collection id tells the folders apart."""
    path = str(tmp_path / "db")
    _two_collections(path)
    with vectordb.PersistentClient(path) as client:
        docs, other = client.get_collection("docs").id, client.get_collection("other").id
    shutil.rmtree(os.path.join(path, "index", docs))
    shutil.copytree(os.path.join(path, "index", other), os.path.join(path, "index", docs))
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        _assert_exact_answers(path, through_the_graph=True)
    assert any("belongs to another collection" in r.getMessage() for r in caplog.records)


def test_index_saved_without_its_collection_is_rebuilt(store, caplog):
    """An index folder from before collection ids were recorded is rebuilt once (it is a cache)."""
    meta_path = os.path.join(_index_folder(store), "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    del meta["collection"]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        _assert_exact_answers(store)
    assert any("older version" in r.getMessage() for r in caplog.records)
    with open(meta_path) as f:
        assert "collection" in json.load(f), "the rebuilt index records its collection"


def test_an_index_saved_with_crc32_checksums_is_still_checked_and_used(store, caplog):
    """Indexes saved before the xxh3 digests recorded a CRC-32 of each file: they load as they
    are (no rebuild), and a changed byte is still caught by that CRC."""
    folder = _index_folder(store)
    meta_path = os.path.join(folder, "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    for name in meta["files"]:
        with open(os.path.join(folder, name), "rb") as f:
            meta["files"][name] = [os.path.getsize(os.path.join(folder, name)), zlib.crc32(f.read())]
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        _assert_exact_answers(store)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    with open(meta_path) as f:
        assert isinstance(json.load(f)["files"]["index.bin"][1], int)  # not saved again: still the CRC
    _flip_vector_byte(folder)
    with caplog.at_level(logging.WARNING, logger="vectordb"):
        _assert_exact_answers(store)
    assert any("checksum" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
