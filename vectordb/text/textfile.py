"""The full-text index's file: plain integer arrays in one ``.npz``, validated before use.

``<store>/text/<collection id>.npz`` holds, as numpy arrays read with
``allow_pickle=False`` (nothing in the file can make the process load or run code):

- ``meta``: UTF-8 JSON bytes: format, collection id, analyzer, the record-log ``seq``
  the index covers;
- ``terms`` (UTF-8 bytes of every term, concatenated) and ``term_ends`` (int64 offsets);
- ``doc_labels`` (int64, strictly ascending), ``doc_lengths`` and ``doc_ends`` (int64:
  where each document's rows end);
- ``row_terms`` and ``row_counts`` (int64): each document's term ids, strictly ascending
  within the document, and their counts (≥ 1), which must sum to its length.

The statistics (N, avgdl, n_t) are not stored: they are recounted from the rows, so a
file cannot make them disagree with its postings. The file is written to a temporary
name, synced and renamed over the old one (a crash leaves the old or the new file); zip
CRCs catch torn or flipped bytes. Anything missing, malformed or inconsistent makes
:func:`load` return None, and the caller rebuilds the index from the store.
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from typing import List, Optional, Tuple

import numpy as np

from vectordb.persistence.files import fsync_dir
from vectordb.text.analyzer import Analyzer
from vectordb.text.bm25 import TextIndex

log = logging.getLogger("vectordb")

FORMAT = 1
_ARRAYS = ("meta", "terms", "term_ends", "doc_labels", "doc_lengths", "doc_ends", "row_terms", "row_counts")


def save(index: TextIndex, path: str, seq: int, collection_id: str) -> None:
    """Write ``index`` to ``path`` atomically, as covering the record log up to ``seq``."""
    terms, labels, lengths, ends, row_terms, row_counts = index.export()
    encoded = [t.encode("utf-8") for t in terms]
    meta = {"format": FORMAT, "collection": collection_id, "analyzer": index.analyzer.name, "seq": int(seq)}
    arrays = {
        "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
        "terms": np.frombuffer(b"".join(encoded), dtype=np.uint8),
        "term_ends": np.cumsum([len(e) for e in encoded], dtype=np.int64),
        "doc_labels": labels,
        "doc_lengths": lengths,
        "doc_ends": ends,
        "row_terms": row_terms,
        "row_counts": row_counts,
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path))


def load(path: str, analyzer: Analyzer, collection_id: str) -> Optional[Tuple[TextIndex, int]]:
    """The saved index and the ``seq`` it covers, or None (with a warning) when missing or unusable."""
    if not os.path.exists(path):
        return None
    try:
        return _load(path, analyzer, collection_id)
    except (OSError, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, zipfile.BadZipFile,
            EOFError, OverflowError, MemoryError) as exc:
        log.warning("text index %s is unusable (%s); rebuilding it from the records", path, exc)
        return None


def _load(path: str, analyzer: Analyzer, collection_id: str) -> Tuple[TextIndex, int]:
    with open(path, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # stored, never compressed: no zip bomb
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):
            raise ValueError("its arrays are compressed (vectordb writes them stored)")
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        if sorted(npz.files) != sorted(_ARRAYS):
            raise ValueError("it does not hold the text index's arrays")
        a = {name: npz[name] for name in _ARRAYS}
    for name, array in a.items():
        wanted = np.uint8 if name in ("meta", "terms") else np.int64
        if array.dtype != wanted or array.ndim != 1:
            raise ValueError(f"{name} is not a 1-D {np.dtype(wanted).name} array")
    meta = json.loads(a["meta"].tobytes().decode("utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("it is not a text index of this format")
    if meta.get("collection") != collection_id:
        raise ValueError("it belongs to another collection")
    if meta.get("analyzer") != analyzer.name:
        raise ValueError("it was made with another analyzer")
    seq = meta.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < -1:
        raise ValueError("its seq is not a record-log position")
    terms = _terms(a["terms"], a["term_ends"])
    labels, lengths, ends = a["doc_labels"], a["doc_lengths"], a["doc_ends"]
    row_terms, row_counts = a["row_terms"], a["row_counts"]
    n = len(labels)
    if len(lengths) != n or len(ends) != n or len(row_terms) != len(row_counts):
        raise ValueError("its arrays' lengths disagree")
    if n and (labels[0] < 0 or np.any(np.diff(labels) <= 0)):
        raise ValueError("its document labels are not distinct and ascending")
    if np.any(lengths < 0) or (n and (ends[0] < 0 or np.any(np.diff(ends) < 0) or ends[-1] != len(row_terms))):
        raise ValueError("its document boundaries are inconsistent")
    if not n and len(row_terms):
        raise ValueError("it holds rows of no document")
    if len(row_terms) and (row_terms.min() < 0 or row_terms.max() >= len(terms) or row_counts.min() < 1):
        raise ValueError("a row names no term, or counts a term less than once")
    counts = np.diff(np.concatenate([[0], ends]))
    totals = np.diff(np.concatenate([[0], np.cumsum(row_counts)])[np.concatenate([[0], ends])])
    if not np.array_equal(totals, lengths):
        raise ValueError("a document's term counts do not add up to its length")
    starts = np.repeat(ends - counts, counts)
    within = np.arange(len(row_terms)) - starts  # position of each row inside its document
    if np.any((within > 0) & (np.diff(np.concatenate([[-1], row_terms])) <= 0)):
        raise ValueError("a document's terms are not distinct and ascending")
    index = TextIndex(analyzer)
    index.set_vocabulary(terms)
    row_docs = np.repeat(np.arange(n, dtype=np.int64), counts)
    order = np.lexsort((row_docs, row_terms))
    index.add_rows(labels, lengths, row_terms[order], row_docs[order], row_counts[order])
    return index, seq


def _terms(blob: np.ndarray, ends: np.ndarray) -> List[str]:
    """The vocabulary from its concatenated UTF-8 bytes and end offsets (distinct terms)."""
    if len(ends) and (ends[0] < 0 or np.any(np.diff(ends) < 0) or ends[-1] != len(blob)):
        raise ValueError("its term offsets are inconsistent")
    if not len(ends) and len(blob):
        raise ValueError("its term bytes belong to no term")
    raw = blob.tobytes()
    starts = [0] + ends[:-1].tolist()
    terms = [raw[s:e].decode("utf-8") for s, e in zip(starts, ends.tolist())]
    if len(set(terms)) != len(terms):
        raise ValueError("a term is listed twice")
    return terms
