"""An independent BM25 oracle: Lucene 8+'s formula and each analyzer written again here, without the
engine's code, for the tests of the text index, hybrid search, the stateful model and crashes."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Dict, List, Optional, Tuple

K1, B = 1.2, 0.75


def terms(text: str, analyzer: str = "identifiers") -> List[str]:
    """The terms of ``text`` for ``analyzer``, written independently of the engine's code."""
    found = re.findall(r"[^\W_]+", text.lower())  # default: a regex, not the engine's translate table
    if analyzer == "english":
        import Stemmer

        found = Stemmer.Stemmer("english").stemWords(found)
    elif analyzer == "identifiers":
        for chunk in re.findall(r"[\w.\-]+", text):  # \w: letters, digits and "_"
            found += wholes(chunk) + [h.lower() for run in re.findall(r"[^\W_]+", chunk) for h in humps(run)]
    return found


def wholes(chunk: str) -> List[str]:
    """The identifiers with parts in ``chunk`` (letters, digits, ``_ . -``), lowercased: runs of
    letters and digits joined by underscores or by one dot or hyphen; any other joiner splits."""
    out, current = [], []
    for piece in re.findall(r"[^\W_]+|[_.\-]+", chunk):
        if piece[0].isalnum():
            current.append(piece)
        elif current and (set(piece) == {"_"} or piece in (".", "-")) and current[-1][0].isalnum():
            current.append(piece)
        else:
            out.append(current)
            current = []
    out.append(current)
    for ident in out:
        while ident and not ident[-1][0].isalnum():  # a trailing joiner joins nothing
            ident.pop()
    return ["".join(ident).lower() for ident in out if len(ident) > 1]


def humps(run: str) -> List[str]:
    """The camelCase humps of a run of letters and digits (none unless it has two or more)."""
    cuts = [i for i in range(1, len(run))
            if run[i].isupper() and (run[i - 1].islower() or run[i + 1: i + 2].islower())]
    bounds = [0] + cuts + [len(run)]
    return [run[a:b] for a, b in zip(bounds, bounds[1:])] if cuts else []


def oracle(docs: Dict[str, Optional[str]], query: str, allowed: Optional[set] = None,
           analyzer: str = "identifiers") -> List[Tuple[str, float]]:
    """Lucene 8+ BM25 over the live documents (``docs``: id -> document or None), best first, ties by id."""
    analysed = {i: Counter(terms(d, analyzer)) for i, d in docs.items() if d is not None}
    n = len(analysed)
    avgdl = sum(sum(c.values()) for c in analysed.values()) / n if n else 0.0
    out = []
    for i, counts in analysed.items():
        dl = sum(counts.values())
        score, hit = 0.0, False
        for t in terms(query, analyzer):  # a repeated query term counts once per occurrence
            tf = counts.get(t, 0)
            if not tf:
                continue
            hit = True
            n_t = sum(1 for c in analysed.values() if t in c)
            idf = math.log(1 + (n - n_t + 0.5) / (n_t + 0.5))
            score += idf * tf / (tf + K1 * (1 - B + B * dl / avgdl))
        if hit and (allowed is None or i in allowed):
            out.append((i, score))
    return sorted(out, key=lambda x: (-x[1], x[0]))
