"""Pure checks and normalisation of user input; no I/O.

Every public argument passes through here before anything is embedded or written,
so that a call that raises changes nothing. Messages name the argument, the position
and the value, e.g. ``metadatas[3]['year']: expected str, int, float, bool or a list of
one of them, got dict``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from vectordb.errors import DuplicateIDError, InvalidArgumentError, InvalidDimensionError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
GET_INCLUDE = ("embeddings", "metadatas", "documents")
QUERY_INCLUDE = ("embeddings", "metadatas", "documents", "distances")
METRICS = ("l2", "cosine", "ip")
HNSW_SPACE_KEY = "hnsw:space"
HNSW_INT_KEYS = ("hnsw:M", "hnsw:construction_ef", "hnsw:search_ef")
"""The ``hnsw:*`` collection settings and the values they take; what they mean for the index
(defaults, which are fixed at build time) is in :mod:`vectordb.index.settings`, which the
rest of the package reads them through (this module cannot import the index package)."""
HNSW_RECALL_TARGET_KEY = "hnsw:recall_target"
"""The recall@10 a collection's index aims for when ``hnsw:search_ef`` is not given: a number in (0, 1]."""
HNSW_CONFIGURED_KEY = "hnsw:configured"
"""Stored in a collection's metadata beside the ``hnsw:*`` settings given as ``configuration`` (or
kept when ``modify`` replaced the metadata): the list of those keys, which are index settings
only and so are kept out of ``Collection.metadata`` (see :mod:`vectordb.configuration`)."""
TEXT_INDEX_KEY = "text:index"
TEXT_ANALYZER_KEY = "text:analyzer"
TEXT_ANALYZERS = ("default", "english", "identifiers")
"""The ``text:*`` collection settings, fixed at creation: whether the collection keeps a
full-text (BM25) index (a bool, default True) and the analyzer it uses (see :mod:`vectordb.text.analyzer`)."""
DEFAULT_TEXT_ANALYZER = "identifiers"
"""The analyzer of a collection created without ``text:analyzer`` (the catalog records it)."""
LEGACY_TEXT_ANALYZER = "default"
"""The analyzer of a collection made before the catalog recorded one and created without
``text:analyzer``: what it was built with then, so that its text ranking never changes under it."""
QUERY_MODES = ("vector", "text", "hybrid")
TEXT_QUERY_INCLUDE = ("embeddings", "metadatas", "documents", "scores")
"""What ``query(mode="text" | "hybrid")`` may include (``scores``, higher is better, instead of ``distances``)."""


def _type_name(value: Any) -> str:
    return type(value).__name__


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_collection_name(name: Any) -> str:
    """Collection names: 3–512 characters of [A-Za-z0-9._-], starting and ending with a letter or digit."""
    if not isinstance(name, str):
        raise InvalidArgumentError(f"name: expected str, got {_type_name(name)}")
    if not _NAME.fullmatch(name):  # fullmatch: '$' alone would accept a trailing newline
        raise InvalidArgumentError(
            f"name: {_short(name)} is not a valid collection name: use 3-512 characters of "
            "[A-Za-z0-9._-], starting and ending with a letter or digit"
        )
    return name


def check_text(text: str, where: str) -> str:
    """A string that can be stored: encodable as UTF-8 (no lone surrogates such as '\\ud800')."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"{where}: not valid Unicode text ({exc.reason} at position {exc.start})") from None
    return text


def as_list(value: Any, arg: str, item_types: tuple) -> List[Any]:
    """One item or a list of items → a list (one-or-many normalisation)."""
    if isinstance(value, item_types):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise InvalidArgumentError(f"{arg}: expected one item or a list, got {_type_name(value)}")


def validate_ids(ids: Any, arg: str = "ids", unique: bool = True, allow_empty: bool = False) -> List[str]:
    """A non-empty list (empty too with ``allow_empty``) of non-empty string ids; repeated ids
    raise :class:`DuplicateIDError`."""
    if ids is None:
        raise InvalidArgumentError(f"{arg}: required")
    if not isinstance(ids, (str, list, tuple)):
        raise InvalidArgumentError(f"{arg}: expected one item or a list, got {_type_name(ids)} (an ID is a string)")
    items = as_list(ids, arg, (str,))
    if not items and not allow_empty:
        raise InvalidArgumentError(f"{arg}: expected at least one id, got an empty list")
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise InvalidArgumentError(
                f"{arg}[{i}]: expected str, got {_type_name(item)} {_short(item)} (an ID is a string)"
            )
        if not item:
            raise InvalidArgumentError(f"{arg}[{i}]: ids must be non-empty strings")
        check_text(item, f"{arg}[{i}]")
    if unique and len(set(items)) != len(items):
        repeated = [k for k, n in Counter(items).items() if n > 1]
        raise DuplicateIDError(f"{arg}: repeated in one call: {', '.join(map(repr, repeated[:10]))}")
    return items


def validate_embeddings(embeddings: Any, arg: str = "embeddings") -> np.ndarray:
    """One embedding or many (lists of numbers or a numpy array) → finite float32 (n, d)."""
    if isinstance(embeddings, np.ndarray):
        arr = embeddings
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise InvalidArgumentError(f"{arg}: expected a 1-D or 2-D array, got {arr.ndim}-D")
        if arr.dtype.kind not in "fiu":
            raise InvalidArgumentError(f"{arg}: expected numbers, got an array of {arr.dtype}")
    else:
        if not isinstance(embeddings, (list, tuple)) or not embeddings:
            raise InvalidArgumentError(
                f"{arg}: expected a non-empty list of floats, a list of them or a numpy array, "
                f"got {_short(embeddings)}"
            )
        rows = embeddings
        if not isinstance(embeddings[0], (list, tuple, np.ndarray)):
            rows = [embeddings]
        try:
            arr = np.asarray(rows)
        except ValueError:
            arr = np.empty(0, dtype=object)
        if arr.ndim != 2 or arr.dtype.kind not in "fiu":
            _explain_bad_rows(rows, arg)
            raise InvalidArgumentError(f"{arg}: expected lists of numbers of one length")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InvalidArgumentError(f"{arg}: expected at least one embedding of at least one dimension")
    with np.errstate(over="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        i, j = (int(v) for v in np.argwhere(~np.isfinite(out))[0])
        raise InvalidArgumentError(f"{arg}[{i}][{j}]: NaN or infinite value ({float(arr[i, j])!r}) is not allowed")
    return np.ascontiguousarray(out)


def _explain_bad_rows(rows: Sequence[Any], arg: str) -> None:
    """Find and name the first bad row or value (slow path, only on bad input)."""
    dim = None
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple, np.ndarray)):
            raise InvalidArgumentError(f"{arg}[{i}]: expected a list of floats, got {_type_name(row)}")
        for j, x in enumerate(row):
            if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.number)):
                raise InvalidArgumentError(f"{arg}[{i}][{j}]: expected a number, got {_type_name(x)} {_short(x)}")
        if dim is None:
            dim = len(row)
        elif len(row) != dim:
            raise InvalidArgumentError(f"{arg}[{i}]: has {len(row)} values, but {arg}[0] has {dim}")


def validate_metadata_value(value: Any, where: str, allow_none: bool = False, lists: bool = False) -> Any:
    """A scalar metadata value: str, int (int64), finite float or bool; None only where it means 'remove'.

    ``lists`` only words the error for a place where lists are also allowed (a record's metadata).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, str):
        return check_text(value, where)
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, np.integer)):
        if not INT64_MIN <= int(value) <= INT64_MAX:
            raise InvalidArgumentError(f"{where}: int {value} is outside the 64-bit range")
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(float(value)):
            raise InvalidArgumentError(f"{where}: NaN or infinite float is not allowed")
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    allowed = "str, int, float, bool or a list of one of them" if lists else "str, int, float or bool"
    raise InvalidArgumentError(f"{where}: expected {allowed}, got {_type_name(value)}")


def validate_list_value(value: List[Any], where: str) -> List[Any]:
    """A list metadata value (as Chroma 1.x): non-empty, every item a str, int, float or bool, all of one type.

    Ints and floats do not mix in one list, nor bools and ints; numpy scalars become
    plain Python values.
    """
    if not value:
        raise InvalidArgumentError(f"{where}: a list value must not be empty")
    items = []
    for i, item in enumerate(value):
        if item is None or isinstance(item, (list, tuple, dict, np.ndarray)):
            raise InvalidArgumentError(
                f"{where}[{i}]: list items must be str, int, float or bool, got {_type_name(item)}"
            )
        items.append(validate_metadata_value(item, f"{where}[{i}]"))
    kinds = set(map(type, items))
    if len(kinds) > 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        raise InvalidArgumentError(f"{where}: all items of a list value must be of one type, got {names}")
    return items


def validate_metadata(meta: Any, where: str, allow_none_values: bool = False) -> Dict[str, Any]:
    """One metadata dict: string keys, valid values (scalars, or lists of one scalar type)."""
    if not isinstance(meta, dict):
        raise InvalidArgumentError(f"{where}: expected a dict, got {_type_name(meta)}")
    out: Dict[str, Any] = {}
    for key, value in meta.items():
        if type(key) is not str or not key or key[0] == "$" or not key.isascii():
            _check_key(key, where)
        kind = type(value)
        if (kind is str and value.isascii()) or kind is bool:
            out[key] = value  # the common cases, checked without building a message
        elif kind is int and INT64_MIN <= value <= INT64_MAX:
            out[key] = value
        elif kind is float and math.isfinite(value):
            out[key] = value
        elif kind is list:
            out[key] = validate_list_value(value, f"{where}[{key!r}]")
        else:
            out[key] = validate_metadata_value(value, f"{where}[{key!r}]", allow_none_values, lists=True)
    return out


def _check_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key:
        raise InvalidArgumentError(f"{where}: keys must be non-empty strings, got {_short(key)}")
    if key.startswith("$"):
        raise InvalidArgumentError(f"{where}: key {key!r} may not start with '$' (reserved for filters)")
    check_text(key, f"{where}: key {key!r}")


def validate_metadatas(metadatas: Any, n: int, allow_none_values: bool = False) -> List[Optional[Dict[str, Any]]]:
    """One dict or a list of n dicts (None items allowed: no metadata)."""
    items = as_list(metadatas, "metadatas", (dict,))
    _check_length(items, n, "metadatas")
    if _plain_columns(items):
        return [dict(m) for m in items]
    return [
        None if m is None else validate_metadata(m, f"metadatas[{i}]", allow_none_values) for i, m in enumerate(items)
    ]


def uniform_columns(metadatas: Sequence[Any]) -> Optional[List[Tuple[str, type, List[Any]]]]:
    """``(key, type, values)`` for each key when every item is a dict with the same keys and each
    key's values share one type (the usual bulk load); None for any other batch."""
    first = metadatas[0] if len(metadatas) else None
    if type(first) is not dict or not first:
        return None
    keys = first.keys()
    if not all(type(m) is dict and m.keys() == keys for m in metadatas):
        return None
    columns = []
    for key in keys:
        values = [m[key] for m in metadatas]
        kinds = set(map(type, values))
        if len(kinds) != 1:
            return None
        columns.append((key, kinds.pop(), values))
    return columns


def _plain_columns(items: List[Any]) -> bool:
    """Whether ``items`` form a uniform batch (:func:`uniform_columns`) of plain keys whose values,
    key by key, are all ASCII str, all bool, all int64 or all finite float: checked a column at
    a time. Anything else (None values, mixed types, non-ASCII text, numpy scalars) goes
    through the per-record checks, which also name what is wrong.
    """
    columns = uniform_columns(items)
    if columns is None:
        return False
    for key, kind, values in columns:
        if type(key) is not str or not key or key[0] == "$" or not key.isascii():
            return False
        if kind is str:
            ok = all(map(str.isascii, values))
        elif kind is int:
            ok = INT64_MIN <= min(values) and max(values) <= INT64_MAX
        elif kind is float:
            ok = all(map(math.isfinite, values))
        else:
            ok = kind is bool
        if not ok:
            return False
    return True


def validate_documents(documents: Any, n: int) -> List[Optional[str]]:
    """One string or a list of n items, each a string or None (a record without a document, as in
    Chroma; for upsert and update, None leaves the stored document as it is)."""
    items = as_list(documents, "documents", (str,))
    _check_length(items, n, "documents")
    for i, doc in enumerate(items):
        if doc is None:
            continue
        if not isinstance(doc, str):
            raise InvalidArgumentError(f"documents[{i}]: expected str or None, got {_type_name(doc)}")
        check_text(doc, f"documents[{i}]")
    return items


def _check_length(items: Sequence[Any], n: int, arg: str) -> None:
    if len(items) != n:
        raise InvalidArgumentError(f"{arg}: expected {n} items (one per id), got {len(items)}")


def validate_include(include: Any, allowed: Sequence[str]) -> List[str]:
    """A list of field names out of ``allowed``."""
    items = as_list(include, "include", (str,))
    for item in items:
        if not isinstance(item, str) or item not in allowed:
            raise InvalidArgumentError(
                f"include: {_short(item)} is not one of {', '.join(allowed)}"
            )
    return items


def validate_positive_int(value: Any, arg: str) -> int:
    """An int ≥ 1 (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidArgumentError(f"{arg}: expected a positive int, got {_short(value)}")
    return int(value)


def validate_optional_count(value: Any, arg: str) -> Optional[int]:
    """None or an int ≥ 0 (for limit and offset)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InvalidArgumentError(f"{arg}: expected an int >= 0, got {_short(value)}")
    return min(int(value), INT64_MAX)


def validate_collection_metadata(metadata: Any) -> Optional[Dict[str, Any]]:
    """Collection metadata, including the ``hnsw:*`` settings it may carry."""
    if metadata is None:
        return None
    meta = validate_metadata(metadata, "metadata")
    space = meta.get(HNSW_SPACE_KEY)
    if HNSW_SPACE_KEY in meta and space not in METRICS:
        raise InvalidArgumentError(f"metadata[{HNSW_SPACE_KEY!r}]: expected one of {', '.join(METRICS)}, got {_short(space)}")
    for key in HNSW_INT_KEYS:
        if key in meta:
            validate_positive_int(meta[key], f"metadata[{key!r}]")
    if HNSW_RECALL_TARGET_KEY in meta:
        validate_recall_target(meta[HNSW_RECALL_TARGET_KEY], f"metadata[{HNSW_RECALL_TARGET_KEY!r}]")
    known = (HNSW_SPACE_KEY, HNSW_CONFIGURED_KEY, HNSW_RECALL_TARGET_KEY) + HNSW_INT_KEYS
    unknown = [k for k in meta if k.startswith("hnsw:") and k not in known]
    if unknown:
        raise InvalidArgumentError(
            f"metadata: unknown index setting {unknown[0]!r} "
            f"(known: {HNSW_SPACE_KEY}, {', '.join(HNSW_INT_KEYS)}, {HNSW_RECALL_TARGET_KEY})"
        )
    if HNSW_CONFIGURED_KEY in meta:
        _validate_configured(meta)
    _validate_text_settings(meta)
    return meta


def validate_recall_target(value: Any, arg: str) -> float:
    """A recall target: a number (not a bool) greater than 0 and at most 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 < float(value) <= 1:
        raise InvalidArgumentError(f"{arg}: expected a number greater than 0 and at most 1, got {_short(value)}")
    return float(value)


def _validate_configured(meta: Dict[str, Any]) -> None:
    """``hnsw:configured``: a list of distinct ``hnsw:*`` settings that the metadata holds."""
    names = meta[HNSW_CONFIGURED_KEY]
    where = f"metadata[{HNSW_CONFIGURED_KEY!r}]"
    settings = (HNSW_SPACE_KEY,) + HNSW_INT_KEYS
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidArgumentError(f"{where}: expected a non-empty list of index setting names, got {_short(names)}")
    for name in names:
        if name not in settings:
            raise InvalidArgumentError(f"{where}: {name!r} is not an index setting (known: {', '.join(settings)})")
        if name not in meta:
            raise InvalidArgumentError(f"{where}: names {name!r}, which the metadata does not hold")
    if len(set(names)) != len(names):
        raise InvalidArgumentError(f"{where}: names a setting twice: {_short(names)}")


def _validate_text_settings(meta: Dict[str, Any]) -> None:
    """The ``text:*`` keys: ``text:index`` a bool, ``text:analyzer`` a known name, no other."""
    if TEXT_INDEX_KEY in meta and not isinstance(meta[TEXT_INDEX_KEY], bool):
        raise InvalidArgumentError(f"metadata[{TEXT_INDEX_KEY!r}]: expected a bool, got {_short(meta[TEXT_INDEX_KEY])}")
    if TEXT_ANALYZER_KEY in meta and meta[TEXT_ANALYZER_KEY] not in TEXT_ANALYZERS:
        raise InvalidArgumentError(
            f"metadata[{TEXT_ANALYZER_KEY!r}]: expected one of {', '.join(TEXT_ANALYZERS)}, "
            f"got {_short(meta[TEXT_ANALYZER_KEY])}"
        )
    unknown = [k for k in meta if k.startswith("text:") and k not in (TEXT_INDEX_KEY, TEXT_ANALYZER_KEY)]
    if unknown:
        raise InvalidArgumentError(
            f"metadata: unknown text setting {unknown[0]!r} (known: {TEXT_INDEX_KEY}, {TEXT_ANALYZER_KEY})"
        )


def validate_mode(mode: Any) -> str:
    """A query mode: one of :data:`QUERY_MODES`."""
    if not isinstance(mode, str) or mode not in QUERY_MODES:
        raise InvalidArgumentError(f"mode: expected one of {', '.join(QUERY_MODES)}, got {_short(mode)}")
    return mode


def dimension_error(arg: str, got: int, expected: int) -> InvalidDimensionError:
    """The error for vectors of the wrong dimension, naming the argument they came from."""
    return InvalidDimensionError(f"{arg}: dimension {got} does not match the collection's dimension {expected}")
