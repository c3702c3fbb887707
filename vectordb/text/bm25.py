"""The in-memory inverted index of one collection's documents and its exact BM25 ranking.

Scores are Lucene 8+'s BM25, computed exactly (no lossy length encoding, no deleted
documents lingering until a merge)::

    score(d, q) = Σ_{t in q} idf(t) · tf / (tf + k1 · (1 − b + b · dl / avgdl))
    idf(t)      = ln(1 + (N − n_t + 0.5) / (n_t + 0.5)),   k1 = 1.2, b = 0.75

``tf`` is the count of ``t`` in ``d``, ``dl`` the exact number of terms of ``d``; ``N``
(the documents), ``avgdl`` and ``n_t`` (the documents holding ``t``) are kept live over
the indexed documents, which are exactly the collection's live records that have a
document (an empty document counts, with length 0). A term repeated in the query counts
once per occurrence. Filters never change the statistics: they only restrict which
documents are returned.

Layout: a vocabulary (term → id), per term a posting list (labels, term counts and
document lengths as numpy arrays, so a query is a few vectorised operations per
query term), per document its term ids and counts (to take it out again), and the live
counters. A write appends its postings as pending chunks and marks removed labels;
a term's list is settled (chunks joined, removed labels dropped) when a query or a later
write needs it, under a mutex, so concurrent reads see whole lists. Each settled list
caches its term-frequency parts ``tf / (tf + k1 · (1 − b + b · dl / avgdl))`` for the
current avgdl, so a query multiplies them by idf, in whole-array numpy steps
(:mod:`vectordb.text.kernels`) that add the terms' lists up by label and keep the top k
(equal scores by ascending id, without sorting strings).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from vectordb.text import kernels, topk
from vectordb.text.analyzer import Analyzer
from vectordb.text.topk import IdOrder

K1 = 1.2
B = 0.75
_NO_LABELS = np.empty(0, dtype=np.int64)


class _Postings:
    """One term's posting list: settled arrays, pending chunks, labels to drop."""

    __slots__ = ("labels", "tfs", "dls", "pending", "removed", "weights", "bound")

    def __init__(self) -> None:
        self.labels = np.empty(0, dtype=np.int64)
        self.tfs = np.empty(0, dtype=np.float64)
        self.dls = np.empty(0, dtype=np.float64)
        self.pending: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.removed: Optional[Set[int]] = None
        self.weights: Optional[Tuple[float, np.ndarray]] = None
        """``(avgdl, tf / (tf + k1 · (1 − b + b · dl / avgdl)))`` per posting, cached for that avgdl."""
        self.bound = 0
        """One more than the highest settled label (0 when none)."""

    def tf_weights(self, avgdl: float) -> np.ndarray:
        """Each posting's BM25 term-frequency part for ``avgdl`` (cached until the list or avgdl changes)."""
        cached = self.weights
        if cached is not None and cached[0] == avgdl:
            return cached[1]
        tfs = self.tfs
        weights = tfs / (tfs + K1 * (1.0 - B + B * self.dls / avgdl))
        self.weights = (avgdl, weights)
        return weights

    def settle(self) -> None:
        """Join the pending chunks and drop the removed labels (the caller holds the index's mutex)."""
        if self.pending:
            parts = [(self.labels, self.tfs, self.dls)] + self.pending
            self.labels = np.concatenate([p[0] for p in parts])
            self.tfs = np.concatenate([p[1] for p in parts])
            self.dls = np.concatenate([p[2] for p in parts])
            self.pending = []
        if self.removed:
            keep = ~np.isin(self.labels, np.fromiter(self.removed, dtype=np.int64, count=len(self.removed)))
            self.labels, self.tfs, self.dls = self.labels[keep], self.tfs[keep], self.dls[keep]
        self.weights = None
        self.removed = None
        self.bound = int(self.labels.max()) + 1 if len(self.labels) else 0


class TextIndex:
    """The BM25 index of one collection's documents, by record label."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._vocab: Dict[str, int] = {}
        self._terms: List[str] = []
        self._postings: List[_Postings] = []
        self._df = np.zeros(0, dtype=np.int64)
        self._docs: Dict[int, Tuple[np.ndarray, int]] = {}
        """label -> (2×m array of its term ids (ascending) and their counts, its length)."""
        self.total_length = 0
        self._mutex = threading.Lock()
        self._scratch: List[kernels.Slots] = []
        """Reusable query scratches, one per query running at once."""

    # -- statistics -----------------------------------------------------------

    @property
    def count(self) -> int:
        """N: how many documents are indexed."""
        return len(self._docs)

    @property
    def avgdl(self) -> float:
        """The mean document length in terms (0 without documents)."""
        return self.total_length / len(self._docs) if self._docs else 0.0

    def document_frequency(self, term: str) -> int:
        """n_t: how many indexed documents hold ``term`` (an analysed term)."""
        tid = self._vocab.get(term)
        return 0 if tid is None else int(self._df[tid])

    def live_labels(self) -> np.ndarray:
        """The labels of the indexed documents, ascending."""
        return np.sort(np.fromiter(self._docs, dtype=np.int64, count=len(self._docs)))

    # -- changes --------------------------------------------------------------

    def put(self, labels: np.ndarray, documents: Sequence[Optional[str]]) -> None:
        """Index (or re-index) these records' documents; a None document takes the record out."""
        labels = np.asarray(labels, dtype=np.int64)
        self.remove(labels)
        keep = [i for i, d in enumerate(documents) if d is not None]
        if not keep:
            return
        terms = self.analyzer.terms
        token_lists = [terms(documents[i]) for i in keep]
        self.add_terms(labels[keep], token_lists)

    def add_terms(self, labels: np.ndarray, token_lists: List[List[str]]) -> None:
        """Index documents given as analysed terms, for labels not indexed now."""
        n = len(token_lists)
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=n)
        vocab = self._vocab
        flat: List[str] = [tok for toks in token_lists for tok in toks]
        new = [tok for tok in dict.fromkeys(flat) if tok not in vocab]
        if new:
            start = len(self._terms)
            vocab.update(zip(new, range(start, start + len(new))))
            self._terms.extend(new)
            self._postings.extend(_Postings() for _ in new)
            if len(self._terms) > len(self._df):  # grown by doubling, not at every new term
                grown = np.zeros(max(len(self._terms), 2 * len(self._df)), dtype=np.int64)
                grown[: len(self._df)] = self._df
                self._df = grown
        tids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        docs = np.repeat(np.arange(n, dtype=np.int64), lengths)
        keys, tfs = np.unique(tids * n + docs, return_counts=True)  # sorted by term, then document
        self.add_rows(labels, lengths, keys // n, keys % n, tfs.astype(np.int64))

    def add_rows(
        self, labels: np.ndarray, lengths: np.ndarray, row_terms: np.ndarray, row_docs: np.ndarray, tfs: np.ndarray
    ) -> None:
        """Index documents given as rows ``(term id, document position, count)``, sorted by term
        then document (positions index ``labels`` and ``lengths``), for labels not indexed now."""
        n = len(labels)
        per_doc = np.bincount(row_docs, minlength=n)
        doc_ends = np.cumsum(per_doc)
        by_doc = np.lexsort((row_terms, row_docs))
        pairs = np.stack([row_terms[by_doc], tfs[by_doc]])
        for label, s, e, length in zip(labels.tolist(), (doc_ends - per_doc).tolist(), doc_ends.tolist(),
                                       lengths.tolist()):
            self._docs[label] = (pairs[:, s:e], length)
        self.total_length += int(lengths.sum())
        self._df[: len(self._terms)] += np.bincount(row_terms, minlength=len(self._terms))
        row_labels = labels[row_docs]
        row_tfs = tfs.astype(np.float64)
        row_dls = lengths[row_docs].astype(np.float64)
        bounds = np.flatnonzero(np.diff(row_terms)) + 1
        group_starts = np.concatenate([[0], bounds]).astype(np.int64).tolist()
        group_ends = np.concatenate([bounds, [len(row_terms)]]).astype(np.int64).tolist()
        if not len(row_terms):
            return
        with self._mutex:
            for s, e in zip(group_starts, group_ends):
                posting = self._postings[int(row_terms[s])]
                if posting.removed:  # a label being re-indexed may still be in the settled list
                    posting.settle()
                posting.pending.append((row_labels[s:e], row_tfs[s:e], row_dls[s:e]))

    def set_vocabulary(self, terms: List[str]) -> None:
        """Start an empty index with these distinct terms as ids 0, 1, ... (for loading a file)."""
        assert not self._terms
        self._terms = list(terms)
        self._vocab = {t: i for i, t in enumerate(self._terms)}
        self._postings = [_Postings() for _ in self._terms]
        self._df = np.zeros(len(self._terms), dtype=np.int64)

    def remove(self, labels: np.ndarray) -> None:
        """Take these records' documents out (labels not indexed are ignored)."""
        gone = [(label, self._docs.pop(label)) for label in np.asarray(labels, dtype=np.int64).tolist()
                if label in self._docs]
        if not gone:
            return
        with self._mutex:
            for label, (pairs, length) in gone:
                self.total_length -= length
                term_ids = pairs[0]
                self._df[term_ids] -= 1
                for tid in term_ids.tolist():
                    posting = self._postings[tid]
                    if posting.removed is None:
                        posting.removed = {label}
                    else:
                        posting.removed.add(label)

    # -- ranking --------------------------------------------------------------

    def query_terms(self, text: str) -> List[Tuple[int, int]]:
        """``(term id, occurrences)`` of the query's terms that some document holds, in query order."""
        out = []
        for term, occurrences in Counter(self.analyzer.terms(text)).items():
            tid = self._vocab.get(term)
            if tid is not None and self._df[tid] > 0:
                out.append((tid, occurrences))
        return out

    def _settled(self, tid: int) -> _Postings:
        posting = self._postings[tid]
        if posting.pending or posting.removed:
            with self._mutex:
                posting.settle()
        return posting

    def search(
        self, text: str, k: int, allowed: Optional[np.ndarray], order: IdOrder
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The ``k`` best ``(labels, scores)``, best first, equal scores by ascending id, among
        the documents holding a query term (and, when given, whose labels are in ``allowed``).

        Scored, chosen and ordered by :meth:`_best` (ids compared as strings only where
        their keys tie: :func:`vectordb.text.topk.by_full_ids`). No step sorts, or scans
        or allocates an array over every label of the collection."""
        terms = self.query_terms(text)
        if not terms or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        postings = [(self._settled(tid), tid, occurrences) for tid, occurrences in terms]
        bound = max(p.bound for p, _, _ in postings)
        keys = topk.key_array(order, _NO_LABELS, bound)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=np.int64)
            allowed = allowed[(allowed >= 0) & (allowed < bound)]
        labels, scores, exact = self._best(postings, allowed, bound, keys, k)
        if exact:
            return labels, scores
        chosen = topk.by_full_ids(labels, scores, np.arange(len(labels)), exact, k, order, higher_first=True)
        return labels[chosen], scores[chosen]

    def _best(
        self, postings: List[Tuple[_Postings, int, int]], allowed: Optional[np.ndarray], bound: int,
        keys: np.ndarray, k: int,
    ) -> Tuple[np.ndarray, np.ndarray, bool]:
        """The ``k`` best ``(labels, scores, exact)`` of the documents holding one of the query
        terms ``postings`` (those in ``allowed`` when given), ranked by score and id key
        (:func:`vectordb.text.kernels.best_of_terms`, in a scratch of this query's own)."""
        n, avgdl = float(len(self._docs)), self.avgdl
        weighed = [(posting.labels, posting.tf_weights(avgdl), _idf(int(self._df[tid]), n) * occurrences)
                   for posting, tid, occurrences in postings]
        if allowed is None:
            terms = [(labels, weights * coefficient) for labels, weights, coefficient in weighed]
            if len(terms) == 1:  # nothing to add up or filter: no scratch
                return kernels.top_of_term(*terms[0], keys, k)
        scratch = self._take_scratch(bound)
        if allowed is not None:  # the allowed postings first, then their contributions (the same products)
            scratch.mask[allowed] = 1
            try:
                terms = [kernels.masked(labels, weights, coefficient, scratch.mask)
                         for labels, weights, coefficient in weighed]
            finally:
                scratch.mask[allowed] = 0
        result = kernels.best_of_terms(terms, scratch, keys, k)
        self._give_scratch(scratch)  # not after an error: a new one is made instead
        return result

    def _take_scratch(self, bound: int) -> kernels.Slots:
        """A :class:`~vectordb.text.kernels.Slots` of at least ``bound`` labels, this query's
        alone: reused between queries (allocating and faulting in fresh pages for each
        query cost more than the scoring), one per query running at once."""
        with self._mutex:
            while self._scratch:
                scratch = self._scratch.pop()
                if len(scratch.slots) >= bound:
                    return scratch
        return kernels.Slots(max(bound, 1024))

    def _give_scratch(self, scratch: kernels.Slots) -> None:
        with self._mutex:
            self._scratch.append(scratch)

    # -- whole-index views (saving, checking) ---------------------------------

    def export(self) -> Tuple[List[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The whole index as arrays, for saving: ``(terms, doc_labels, doc_lengths, doc_ends,
        row_terms, row_counts)``: the documents by ascending label, each one's rows (a term id
        into ``terms`` and its count) by ascending term id ending at ``doc_ends``; ``terms``
        only those some document holds. One concatenation, no loop over the rows."""
        labels = self.live_labels()
        entries = [self._docs[label] for label in labels.tolist()]
        n = len(entries)
        lengths = np.fromiter((e[1] for e in entries), dtype=np.int64, count=n)
        ends = np.cumsum(np.fromiter((e[0].shape[1] for e in entries), dtype=np.int64, count=n))
        pairs = np.concatenate([e[0] for e in entries], axis=1) if n else np.empty((2, 0), dtype=np.int64)
        used = np.zeros(len(self._terms), dtype=bool)
        used[pairs[0]] = True
        renumbered = np.cumsum(used) - 1  # keeps each document's term ids ascending
        terms = [term for term, held in zip(self._terms, used.tolist()) if held]
        return terms, labels, lengths, ends, renumbered[pairs[0]].astype(np.int64), pairs[1].astype(np.int64)

    def documents(self) -> Iterator[Tuple[int, int, List[str], List[int]]]:
        """``(label, length, terms, counts)`` of every indexed document, by ascending label, its
        terms in alphabetical order (the same whatever order the vocabulary grew in)."""
        for label in self.live_labels().tolist():
            pairs, length = self._docs[label]
            named = sorted(zip([self._terms[t] for t in pairs[0].tolist()], pairs[1].tolist()))
            yield label, length, [t for t, _ in named], [c for _, c in named]


def _idf(df: int, n: float) -> float:
    """BM25's idf of a term held by ``df`` of the ``n`` indexed documents."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))
