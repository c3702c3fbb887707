"""Validation of an hnswlib index file before hnswlib is allowed to read it.

hnswlib's ``loadIndex`` trusts its file: a count, an offset, a link-list size or a link
target out of range makes it read or write outside its buffers and crash the process
(a checksum does not help against a file changed on purpose with its checksum
recomputed). :func:`validate_index_file` therefore checks everything hnswlib 0.8.0 relies
on, with vectorised numpy reads over a memory map, and raises ``ValueError`` naming
the first inconsistency. The layout (``HierarchicalNSW::saveIndex`` in ``hnswalg.h``):

* a header of 96 bytes: offsetLevel0, max_elements, cur_element_count,
  size_data_per_element, label_offset, offsetData (size_t each), maxlevel (int),
  enterpoint_node (uint32), maxM, maxM0, M (size_t), mult (double), ef_construction;
* the level-0 block: per element (``cur_element_count`` of them) a link list (uint16
  count, a flags byte whose bit 0 marks the element deleted, one spare byte, maxM0
  uint32 neighbour ids), the vector (dim float32) and the label (uint64);
* per element a uint32 ``linkListSize`` (level × (4 + 4·maxM) bytes) and that many bytes
  of upper-level link lists (uint16 count, spare, maxM uint32 ids each).

Checked: header fields against the collection's dimension and settings; element count
against max_elements and the file size; every link count, every link target (an
element, and one present at that level), every element's level against maxlevel; the
enterpoint; every label (in range, unique, alive exactly when not marked deleted).
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from typing import Any, Callable, List

import numpy as np
import xxhash

from vectordb.index.base import IndexParams

HEADER = np.dtype([
    ("offset_level0", "u8"), ("max_elements", "u8"), ("cur_element_count", "u8"),
    ("size_data_per_element", "u8"), ("label_offset", "u8"), ("offset_data", "u8"),
    ("maxlevel", "i4"), ("enterpoint_node", "u4"), ("maxM", "u8"), ("maxM0", "u8"),
    ("M", "u8"), ("mult", "f8"), ("ef_construction", "u8"),
])
"""hnswlib's header, in the machine's byte order (hnswlib writes it so)."""
assert HEADER.itemsize == 96
HNSW_M_CAP = 10_000
"""hnswlib caps M at this value."""
CAPACITY_SLACK = 4
MIN_CAPACITY = 4096
"""max_elements may exceed the element count by at most this factor (or this many slots):
vectordb grows an index by doubling from 1,024 slots, and a larger value in a file would
only make hnswlib allocate memory for nothing."""
_CHUNK = 1 << 16
"""Elements per step of the level-0 checks (bounds their temporary memory)."""


@dataclass(frozen=True)
class IndexFile:
    """What a valid file holds: its element slots, how many are marked deleted, its capacity."""

    elements: int
    deleted: int
    max_elements: int


CHECKSUM_CHUNK = 1 << 23
"""Bytes read per step of :func:`checksum`."""
DIGEST_PREFIX = "xxh3_64:"


def validate_index_file(data: "np.ndarray | memoryview | bytes", dim: int, params: IndexParams,
                        alive: np.ndarray) -> IndexFile:
    """Check an hnswlib index file's bytes (``data``, e.g. a memory map) for ``dim``-dimensional
    vectors built with ``params``, whose live labels are ``alive`` (a boolean mask by label).

    Raises ValueError naming what is wrong; returns what the file holds when it is valid.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if len(buf) < HEADER.itemsize:
        raise ValueError(f"index.bin has {len(buf)} bytes, fewer than hnswlib's header")
    h = buf[: HEADER.itemsize].view(HEADER)[0]
    M = min(params.M, HNSW_M_CAP)
    links0_bytes = 4 + 4 * 2 * M
    expected = {
        "offset_level0": 0, "maxM": M, "maxM0": 2 * M, "M": M,
        "ef_construction": max(params.construction_ef, M),
        "offset_data": links0_bytes, "label_offset": links0_bytes + 4 * dim,
        "size_data_per_element": links0_bytes + 4 * dim + 8,
    }
    for name, value in expected.items():
        if int(h[name]) != value:
            raise ValueError(f"index.bin header field {name} is {int(h[name])}, expected {value}")
    mult = 1 / math.log(M) if M > 1 else math.inf  # as hnswlib computes it (1/log(1) is inf)
    if not (float(h["mult"]) == mult or math.isclose(float(h["mult"]), mult, rel_tol=1e-9)):
        raise ValueError(f"index.bin header field mult is {float(h['mult'])}, expected {mult}")
    count, capacity = int(h["cur_element_count"]), int(h["max_elements"])
    if not count <= capacity <= max(CAPACITY_SLACK * count, MIN_CAPACITY):
        raise ValueError(f"index.bin holds {count} elements in a capacity of {capacity}")
    size = expected["size_data_per_element"]
    level0_end = HEADER.itemsize + count * size
    if level0_end + 4 * count > len(buf):
        raise ValueError(f"index.bin has {len(buf)} bytes, too few for {count} elements")
    maxlevel, enterpoint = int(h["maxlevel"]), int(h["enterpoint_node"])
    if count == 0:
        if maxlevel != -1 or enterpoint != 0xFFFFFFFF:
            raise ValueError("index.bin has no elements but an entry point")
    elif not (0 <= maxlevel and enterpoint < count):
        raise ValueError(f"index.bin's entry point {enterpoint} (level {maxlevel}) is not one of its {count} elements")
    deleted = _check_level0(buf, count, size, M, dim, alive)
    levels = _check_upper_levels(buf[level0_end:], count, M, maxlevel)
    if count and levels[enterpoint] != maxlevel:
        raise ValueError(f"index.bin's entry point is at level {levels[enterpoint]}, not the top level {maxlevel}")
    return IndexFile(elements=count, deleted=deleted, max_elements=capacity)


def _strided(buf: np.ndarray, dtype: str, offset: int, count: int, stride: int, width: int = 0) -> np.ndarray:
    """A view of one field of every element of the level-0 block (no copy)."""
    if width:
        return np.ndarray((count, width), dtype=dtype, buffer=buf, offset=offset,
                          strides=(stride, np.dtype(dtype).itemsize))
    return np.ndarray((count,), dtype=dtype, buffer=buf, offset=offset, strides=(stride,))


def _check_level0(buf: np.ndarray, count: int, size: int, M: int, dim: int, alive: np.ndarray) -> int:
    """Check the level-0 link lists, flags and labels; return how many elements are marked deleted.

    One pass, a chunk of elements at a time (each element's fields read while in cache): its
    first word holds the link count (low 16 bits) and the flags (the next 8)."""
    start = HEADER.itemsize
    heads = _strided(buf, "u4", start, count, size)
    links = _strided(buf, "u4", start + 4, count, size, 2 * M)
    stored = _strided(buf, "u8", start + 4 + 8 * M + 4 * dim, count, size)
    labels = np.empty(count, dtype=np.int64)
    deleted = np.empty(count, dtype=bool)
    slots = np.arange(2 * M, dtype=np.uint32)
    for first in range(0, count, _CHUNK):
        part = slice(first, first + _CHUNK)
        head = heads[part]
        counts, flags = head & 0xFFFF, (head >> 16) & 0xFF
        if int(counts.max()) > 2 * M:
            raise ValueError(f"index.bin has a level-0 link list longer than {2 * M}")
        if int(flags.max()) > 1:
            raise ValueError("index.bin has an element with unknown flags")
        if np.any((links[part] >= count) & (slots[None, :] < counts[:, None])):
            raise ValueError("index.bin has a level-0 link to no element")
        chunk = stored[part]
        if int(chunk.max()) >= len(alive):
            raise ValueError(f"index.bin has a label beyond the {len(alive)} labels of its alive mask")
        labels[part] = chunk
        deleted[part] = flags.astype(bool)
    if count and int(np.bincount(labels, minlength=len(alive)).max()) > 1:
        raise ValueError("index.bin holds a label twice")
    if not np.array_equal(alive[labels], ~deleted) or int(alive.sum()) != count - int(deleted.sum()):
        raise ValueError("index.bin's deleted marks disagree with the alive mask")
    return int(deleted.sum())


def _check_upper_levels(tail: np.ndarray, count: int, M: int, maxlevel: int) -> np.ndarray:
    """Walk the per-element upper-level link lists; return every element's level.

    The tail holds, for each element in turn, a size word (bytes of its upper-level lists:
    0 for the many elements of level 0) and those lists. The first nonzero word is the size
    word of the first element above level 0, and after each such element's lists the next
    nonzero word is the next one's size word (the words between are level-0 elements' zero
    sizes). So each nonzero word that reads as a whole number of levels gets, vectorised, the
    next nonzero word after its lists, and the walk follows those steps from the first: one
    step per element above level 0 (about 1 in M), not one per word.
    """
    if len(tail) % 4:
        raise ValueError("index.bin's link lists do not end on a whole number of words")
    words = tail.view(np.uint32)
    block = 1 + M  # words per upper-level list: count word, M ids
    nonzero = np.flatnonzero(words)
    sizes = words[nonzero].astype(np.int64)
    whole = np.flatnonzero((sizes % (4 * block) == 0) & (sizes <= 4 * block * max(maxlevel, 0)))
    after = nonzero + 1 + sizes // 4  # where the next element's size word is, for a size word
    step = dict(zip(whole.tolist(), np.searchsorted(nonzero, after[whole]).tolist()))  # to the next nonzero word
    chain = []
    at, last = 0, len(nonzero)
    while at < last:
        following = step.get(at)
        if following is None:
            raise ValueError(f"index.bin has a link-list size {int(sizes[at])} that is no level up to {maxlevel}")
        chain.append(at)
        at = following
    chain_at = np.asarray(chain, dtype=np.int64)
    starts = nonzero[chain_at] + 1
    per = sizes[chain_at] // (4 * block)
    list_words = per * block
    if len(chain_at) and int(after[chain_at[-1]]) > len(words):
        raise ValueError("index.bin ends inside a link list")
    elements = starts - 1 - np.concatenate(([0], np.cumsum(list_words)[:-1]))  # size words before each
    found = len(words) - int(list_words.sum())
    if found != count:
        raise ValueError(f"index.bin has the link-list sizes of {found} elements, not {count}")
    levels = np.zeros(count, dtype=np.int64)
    levels[elements] = per
    if len(elements):
        _check_upper_links(words, levels, elements, starts, M)
    return levels


def _check_upper_links(words: np.ndarray, levels: np.ndarray, elements: np.ndarray, starts: np.ndarray,
                       M: int) -> None:
    """Every upper-level list: at most M links, each to an element present at that level."""
    block = 1 + M
    per = levels[elements]
    level_of = _ranges(per)
    first = np.repeat(starts, per) + (level_of - 1) * block
    lists = words[first[:, None] + np.arange(block)]
    counts = lists[:, 0] & 0xFFFF
    if int(counts.max()) > M:
        raise ValueError(f"index.bin has an upper-level link list longer than {M}")
    used = np.arange(M)[None, :] < counts[:, None]
    targets = lists[:, 1:].astype(np.int64)
    if np.any((targets >= len(levels)) & used):
        raise ValueError("index.bin has an upper-level link to no element")
    reach = levels[np.where(used, targets, 0)]
    if np.any((reach < level_of[:, None]) & used):
        raise ValueError("index.bin has an upper-level link to an element absent from that level")


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """1..n for each n in ``lengths``, concatenated (vectorised)."""
    ends = np.cumsum(lengths)
    out = np.ones(int(ends[-1]), dtype=np.int64)
    out[ends[:-1]] = 1 - lengths[:-1]
    return np.cumsum(out)


def read_array(path: str, dtype: "np.dtype[Any] | type") -> np.ndarray:
    """The one-dimensional array of ``dtype`` saved in ``path`` (.npy), its header checked against
    the file size before anything is allocated."""
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, found = read_header(f)
        want = np.dtype(dtype)
        if found != want or len(shape) != 1 or shape[0] * want.itemsize != os.path.getsize(path) - f.tell():
            raise ValueError(f"{os.path.basename(path)} is not an array of {want}")
        return np.fromfile(f, dtype=want, count=shape[0])


def checksum(path: str) -> List[Any]:
    """The size and the xxh3-64 digest (``"xxh3_64:<hex>"``) of the file at ``path``: what
    meta.json records of each saved file.

    Read a chunk at a time into one buffer (no mapping: mapped pages count in the RSS, and
    no new allocation per chunk); file reads and the hash let go of the GIL, so it runs
    beside other threads' work. xxh3 runs at the speed of the read (0.27 s for a 1.7 GB
    file here, where CRC-32 took 0.64 s)."""
    digest = xxhash.xxh3_64()
    _read_through(path, digest.update)
    return [os.path.getsize(path), DIGEST_PREFIX + digest.hexdigest()]


def matches(path: str, recorded: Any) -> bool:
    """Whether the file at ``path`` has the size and digest ``recorded`` in meta.json (an index
    saved by an older version recorded a CRC-32, an int: checked as such)."""
    if not isinstance(recorded, list) or len(recorded) != 2 or os.path.getsize(path) != recorded[0]:
        return False
    if isinstance(recorded[1], int) and not isinstance(recorded[1], bool):
        crc = [0]

        def update(chunk: memoryview) -> None:
            crc[0] = zlib.crc32(chunk, crc[0])

        _read_through(path, update)
        return crc[0] == recorded[1]
    return checksum(path) == recorded


def _read_through(path: str, update: Callable[[memoryview], None]) -> None:
    buffer = bytearray(CHECKSUM_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while True:
            got = f.readinto(buffer)
            if not got:
                break
            update(view[:got])
