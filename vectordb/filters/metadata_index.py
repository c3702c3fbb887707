"""An in-memory, columnar copy of one collection's typed metadata, to answer ``where`` filters.

A filtered query must turn ``where`` into the set of matching labels; asking DuckDB costs
several milliseconds at 100k records, more than the whole search. :class:`MetadataIndex`
holds, per metadata key, arrays indexed by label (a float64 number column, an int32
string-code column, an int8 bool column, each made on first use) plus a live mask, and
answers a parsed filter tree (:mod:`vectordb.filters.tree`) with a few vectorised
comparisons. List values (for ``$contains``) are held apart, per key, as flat arrays of
``(label, item)`` pairs, one per distinct item, mirroring the ``metadata_lists`` table. It mirrors the store's ``metadata`` table and the semantics of the SQL
that :func:`vectordb.filters.to_sql` writes for the same tree exactly (a property test
in tests/test_filter_equivalence.py holds them equal); where float64 cannot compare
exactly (ints beyond ±2**53) it answers None and the caller asks the store. Like the record
cache it is derived data, kept current by each committed write and delete of this client.

A lone equality filter (``{key: value}``, ``{key: {"$in": [...]}}``) scans its column: 0.4 ms
at a million records (0.03 ms from a sorted view). Once one key has been asked :data:`SORTED_AFTER` times while nothing
was written, a sorted view of its column is made (one ``argsort``) and such filters are then
answered in O(log n + matches); any write drops the views.
"""

from __future__ import annotations

import operator
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vectordb.filters.tree import And, Compare, Contains, Member, Node, Or, Scalar

EXACT = 2**53  # ints up to this magnitude are exact in float64
MAX_KEYS = 128  # beyond this many keys the dense columns cost too much; the index gives up
_ORDER = {"$eq": np.equal, "$ne": np.equal, "$in": np.equal, "$nin": np.equal, "$gt": np.greater,
          "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}
_FILL = {"num": np.nan, "code": -1, "flag": -1}
_DTYPE = {"num": np.float64, "code": np.int32, "flag": np.int8}
SORTED_AFTER = 128
"""Equality filters on one key (and kind) asked this many times without a write in between make a
sorted view of its column (read at run time). Making it costs about as much as 100 to 300 scans
(an ``argsort``: about 0.1 s at a million records), so a store written to between every few
queries keeps scanning and never pays for views it would drop at once."""


class _Items:
    """The items of one key's list values: ``(label, value)`` pairs in growable arrays, one per
    kind (a label's items are all of one kind: lists hold one type)."""

    def __init__(self) -> None:
        self.pairs: Dict[str, Tuple[np.ndarray, np.ndarray, int]] = {}  # kind -> (labels, values, count)
        self.top = -1  # the highest label holding items

    def append(self, kind: str, labels: Sequence[int], values: Sequence[Any]) -> None:
        at, vals, n = self.pairs.get(kind) or (np.empty(16, np.int64), np.empty(16, _DTYPE[kind]), 0)
        need = n + len(labels)
        if need > len(at):
            size = max(need, 2 * len(at))
            at, vals = _extend(at, size, 0), _extend(vals, size, _FILL[kind])
        at[n:need] = labels
        vals[n:need] = values
        self.pairs[kind] = (at, vals, need)
        self.top = max(self.top, int(max(labels)))

    def remove(self, labels: np.ndarray) -> None:
        if not len(labels) or int(labels.min()) > self.top:
            return  # only new labels: nothing of theirs is held (the bulk-load case)
        for kind, (at, vals, n) in list(self.pairs.items()):
            keep = ~np.isin(at[:n], labels)
            kept = int(keep.sum())
            if kept < n:
                at[:kept], vals[:kept] = at[:n][keep], vals[:n][keep]
                self.pairs[kind] = (at, vals, kept)

    def holding(self, kind: str, test: Any) -> np.ndarray:
        """The labels with an item of ``kind`` for which ``test(values)`` holds."""
        found = self.pairs.get(kind)
        if found is None:
            return np.empty(0, np.int64)
        at, vals, n = found
        return at[:n][test(vals[:n])]


class _Column:
    """One metadata key's values by label; each kind's array is made on first use."""

    def __init__(self) -> None:
        self.arrays: Dict[str, np.ndarray] = {}
        self.codes: Dict[str, int] = {}
        self.items: Optional[_Items] = None  # list values' items, made on first use
        self.inexact = False  # some stored int is beyond ±2**53: numeric tests go to SQL

    def array(self, kind: str, capacity: int) -> np.ndarray:
        if kind not in self.arrays:
            self.arrays[kind] = np.full(capacity, _FILL[kind], dtype=_DTYPE[kind])
        return self.arrays[kind]

    def code(self, text: str) -> int:
        return self.codes.setdefault(text, len(self.codes))


class MetadataIndex:
    """Live labels and typed metadata columns of one collection, indexed by label.

    ``evaluate`` takes the tree of :func:`vectordb.filters.parse_where` (the collection
    parses the request's filter once, before taking its lock); it does not validate it.
    """

    def __init__(self, capacity: int = 0) -> None:
        self._capacity = max(capacity, 16)
        self._size = 0  # one past the highest label seen
        self._live = np.zeros(self._capacity, dtype=bool)
        self._columns: Dict[str, _Column] = {}
        self._disabled = False
        self._views: Dict[Tuple[str, str], Tuple[np.ndarray, np.ndarray]] = {}
        """Sorted views by (key, kind): labels in value order (stable: ascending within a value), and the values."""
        self._asked: Dict[Tuple[str, str], int] = {}
        """Equality filters asked per (key, kind) since the last write, until a view is made."""

    @classmethod
    def load(cls, columns: Dict[str, Any], capacity: int) -> "MetadataIndex":
        """An index built from :meth:`Store.metadata_columns` (``live``, ``keys``, ``scalars`` and
        the ``list_*`` item columns, whose masked arrays mark NULLs)."""
        live = np.asarray(columns["live"], dtype=np.int64)
        scalars = columns["scalars"]
        item_labels = np.asarray(columns.get("list_label", ()), dtype=np.int64)
        top = max([int(live.max()) if len(live) else -1, int(item_labels.max()) if len(item_labels) else -1]
                  + [int(labels.max()) for _, _, labels, _, _ in scalars if len(labels)])
        index = cls(max(capacity, top + 1))
        index._size = top + 1
        index._live[live] = True
        if len(columns["keys"]) > MAX_KEYS:
            index._disable()
            return index
        for key, column, labels, values, strings in scalars:
            col = index._columns.setdefault(key, _Column())
            if column == "str_value":
                codes = np.array([col.code(s) for s in strings], dtype=np.int32)
                col.array("code", index._capacity)[labels] = codes[values]
            elif column == "bool_value":
                col.array("flag", index._capacity)[labels] = np.asarray(values).astype(np.int8)
            else:
                col.array("num", index._capacity)[labels] = np.asarray(values).astype(np.float64)
                col.inexact |= column == "int_value" and bool(np.any((values > EXACT) | (values < -EXACT)))
        if len(item_labels):
            index._load_items(columns)
        return index

    def _load_items(self, columns: Dict[str, np.ndarray]) -> None:
        """The list items of :meth:`Store.metadata_columns` (its ``list_*`` columns)."""
        labels = np.asarray(columns["list_label"], dtype=np.int64)
        keys = np.asarray(columns["list_key"], dtype=object)
        self._grow(int(labels.max()))
        pending: Dict[Tuple[str, str], Tuple[List[int], List[Any]]] = {}
        for name in ("str_value", "int_value", "float_value", "bool_value"):
            data, present = _present(columns[f"list_{name}"])
            for label, key, value in zip(labels[present].tolist(), keys[present].tolist(), data[present].tolist()):
                kind = "flag" if name == "bool_value" else "code" if name == "str_value" else "num"
                at, values = pending.setdefault((key, kind), ([], []))
                at.append(label)
                values.append(value)
        self._put_items(pending)

    def _column(self, key: str, kind: str, values: List[Any]) -> Tuple["_Column", List[Any]]:
        """The key's column (made on first use) and ``values`` as it stores them: strings as their
        codes; numbers as they are, marking the column inexact for ints beyond ±2**53."""
        col = self._columns.setdefault(key, _Column())
        if kind == "code":
            values = [col.code(s) for s in values]
        elif kind == "num":
            col.inexact |= any(isinstance(x, int) and abs(x) > EXACT for x in values)
        return col, values

    def _put_items(self, pending: Dict[Tuple[str, str], Tuple[List[int], List[Any]]]) -> None:
        for (key, kind), (at, values) in pending.items():
            col, values = self._column(key, kind, values)
            if col.items is None:
                col.items = _Items()
            col.items.append(kind, at, values)

    def put(self, labels: Sequence[int], metadatas: Sequence[Optional[Dict[str, Any]]]) -> None:
        """Record committed rows (new or replacing): their full, validated metadata (plain Python values), or None."""
        labels = np.asarray(labels, dtype=np.int64)
        if self._disabled or not len(labels):
            return
        self._changed()
        self._grow(int(labels.max()))
        self._clear(labels)
        self._live[labels] = True
        pending: Dict[Tuple[str, str], Tuple[List[int], List[Any]]] = {}
        items: Dict[Tuple[str, str], Tuple[List[int], List[Any]]] = {}
        for label, meta in zip(labels.tolist(), metadatas):
            for key, value in (meta or {}).items():
                if value is None:
                    continue
                values_of = [value]
                into = pending
                if type(value) is list:
                    values_of, into = list(dict.fromkeys(value)), items
                kind = _kind(values_of[0])
                at, values = into.setdefault((key, kind), ([], []))
                at.extend([label] * len(values_of))
                values.extend(values_of)
        if len(self._columns.keys() | {key for key, _ in pending} | {key for key, _ in items}) > MAX_KEYS:
            self._disable()
            return
        self._put_items(items)
        for (key, kind), (at, values) in pending.items():
            col, values = self._column(key, kind, values)
            col.array(kind, self._capacity)[at] = values

    def drop(self, labels: Sequence[int]) -> None:
        """Forget deleted rows."""
        labels = np.asarray(labels, dtype=np.int64)
        labels = labels[labels < self._capacity]
        self._changed()
        self._live[labels] = False
        self._clear(labels)

    def evaluate(self, where: Node) -> Optional[np.ndarray]:
        """The live labels matching the parsed ``where`` tree, ascending; None when only SQL
        can answer exactly (ints beyond ±2**53, too many keys, a document condition)."""
        if self._disabled:
            return None
        found = self._equal(where)
        if found is not None:
            return found
        mask = self._node(where)
        if mask is None:
            return None
        labels = np.flatnonzero(mask)  # then the live ones: cheaper than a pass over every label
        return labels[self._live[labels]].astype(np.int64, copy=False)

    def _changed(self) -> None:
        """A write: the sorted views no longer hold."""
        self._views = {}
        self._asked = {}

    def _equal(self, node: Node) -> Optional[np.ndarray]:
        """The live labels of a lone equality filter (``$eq``, ``$in``), ascending, from a sorted view
        of its column; None when there is no view (yet) or the filter is of another shape (then
        :meth:`_node` scans, with the same meaning)."""
        if isinstance(node, Compare) and node.op == "$eq":
            values: Sequence[Scalar] = (node.value,)
        elif isinstance(node, Member) and not node.negated and node.values:
            values = node.values
        else:
            return None
        col = self._columns.get(node.key)
        if col is None:
            return None
        kind = _kind(values[0])
        if kind == "num" and (col.inexact or any(isinstance(x, int) and abs(x) > EXACT for x in values)):
            return None
        array = col.arrays.get(kind)
        if array is None:
            return None
        key = (node.key, kind)
        views = self._views
        view = views.get(key)
        if view is None:
            asked = self._asked.get(key, 0) + 1
            self._asked[key] = asked
            if asked < SORTED_AFTER:
                return None
            now = array[: self._size]
            order = np.argsort(now, kind="stable")
            view = views[key] = (order, now[order])
        order, ordered = view
        if kind == "code":
            targets: List[Any] = sorted({col.codes[s] for s in values if s in col.codes})  # type: ignore[index]
        elif kind == "flag":
            targets = sorted({int(x) for x in values})
        else:
            targets = sorted({float(x) for x in values})
        parts = [order[np.searchsorted(ordered, t, "left"): np.searchsorted(ordered, t, "right")] for t in targets]
        labels = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
        if len(parts) > 1:
            labels.sort()
        return labels[self._live[labels]].astype(np.int64, copy=False)

    def _node(self, node: Node) -> Optional[np.ndarray]:
        """A mask over labels ``[0, size)``; None as soon as any part cannot be answered here."""
        if isinstance(node, (And, Or)):
            combine = operator.and_ if isinstance(node, And) else operator.or_
            result: Optional[np.ndarray] = None
            for child in node.children:
                mask = self._node(child)
                if mask is None:
                    return None
                result = mask if result is None else combine(result, mask)
            return result
        if isinstance(node, Compare):
            return self._test(node.key, node.op, (node.value,))
        if isinstance(node, Contains):
            return self._contains(node.key, node.value, node.negated)
        if isinstance(node, Member):
            return self._test(node.key, "$nin" if node.negated else "$in", node.values)
        return None  # DocContains: documents are not held here

    def _test(self, key: str, op: str, values: Sequence[Scalar]) -> Optional[np.ndarray]:
        col = self._columns.get(key)
        hit = np.zeros(self._size, dtype=bool)
        if col is None:
            return ~hit if op in ("$ne", "$nin") else hit
        first = values[0]
        if isinstance(first, bool):
            flags = col.arrays.get("flag")
            if flags is not None:
                hit = _any_equal(flags[: self._size], {int(x) for x in values})
        elif isinstance(first, str):
            codes = col.arrays.get("code")
            wanted = [col.codes[s] for s in values if s in col.codes]
            if codes is not None and wanted:
                hit = _any_equal(codes[: self._size], wanted)
        else:
            if col.inexact or any(isinstance(x, int) and abs(x) > EXACT for x in values):
                return None
            nums = col.arrays.get("num")
            if nums is not None and op in ("$in", "$nin"):
                hit = _any_equal(nums[: self._size], {float(x) for x in values})
            elif nums is not None:
                hit = _ORDER[op](nums[: self._size], float(first))
        return ~hit if op in ("$ne", "$nin") else hit

    def _contains(self, key: str, value: Scalar, negated: bool) -> Optional[np.ndarray]:
        """Where ``key``'s list value holds an item equal to ``value`` (compared as ``_test`` compares)."""
        col = self._columns.get(key)
        hit = np.zeros(self._size, dtype=bool)
        items = None if col is None else col.items
        if items is not None:
            kind = _kind(value)
            if kind == "num" and (col.inexact or (isinstance(value, int) and abs(value) > EXACT)):
                return None
            if kind == "code":
                wanted = col.codes.get(value)  # type: ignore[arg-type]
                found = items.holding(kind, lambda codes: codes == wanted) if wanted is not None else np.empty(0, np.int64)
            else:
                target = float(value) if kind == "num" else int(value)
                found = items.holding(kind, lambda values: values == target)
            hit[found] = True
        return ~hit if negated else hit

    def _grow(self, max_label: int) -> None:
        self._size = max(self._size, max_label + 1)
        if max_label < self._capacity:
            return
        size = max(max_label + 1, 2 * self._capacity)
        self._live = _extend(self._live, size, False)
        for col in self._columns.values():
            for kind, array in col.arrays.items():
                col.arrays[kind] = _extend(array, size, _FILL[kind])
        self._capacity = size

    def _clear(self, labels: np.ndarray) -> None:
        for col in self._columns.values():
            for kind, array in col.arrays.items():
                array[labels] = _FILL[kind]
            if col.items is not None:
                col.items.remove(labels)

    def _disable(self) -> None:
        self._disabled = True
        self._columns.clear()
        self._changed()


def _kind(value: Any) -> str:
    """The array kind that holds a scalar: "flag" (bool), "code" (str) or "num" (int, float)."""
    return "flag" if isinstance(value, bool) else "code" if isinstance(value, str) else "num"


def _present(column: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """``(values, present)`` of a fetched column; DuckDB marks NULLs with a mask."""
    if isinstance(column, np.ma.MaskedArray):
        return np.asarray(column.data), ~np.ma.getmaskarray(column)
    data = np.asarray(column)
    return data, np.array([x is not None for x in data], dtype=bool) if data.dtype == object else np.ones(len(data), bool)


def _any_equal(array: np.ndarray, values: Any) -> np.ndarray:
    """Where ``array`` equals one of ``values`` (a few comparisons beat ``np.isin``'s sort)."""
    values = list(values)
    if len(values) > 16:
        return np.isin(array, values)
    hit = array == values[0]
    for x in values[1:]:
        hit |= array == x
    return hit


def _extend(array: np.ndarray, size: int, fill: Any) -> np.ndarray:
    out = np.full(size, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out
