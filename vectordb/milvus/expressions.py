"""Milvus boolean expressions: how a parsed vectordb filter narrows a Milvus query, safely.

This module owns three things, and no I/O:

- **Keys.** Metadata is kept in one JSON field, ``metadata``, under *encoded* keys
  (:func:`encode_key`: ``"k"`` + the key's UTF-8 bytes in hex). An expression names a key
  as ``metadata["k6b6579"]``: whatever a user's key holds (quotes, backslashes, brackets,
  any Unicode), only hex digits reach the expression text, and the key maps back exactly.
- **Values.** An expression is built as a *template*: every value is a placeholder
  (``{p0}``) with its value in a separate parameters dict, sent to Milvus as
  ``filter_params`` (expression templates, Milvus 2.5+). Servers without templates
  (Milvus Lite 3.x ignores ``filter_params``) get :func:`render`: each placeholder
  replaced by a literal written by :func:`literal` from the value's Python type alone
  (numbers by ``repr``, strings quoted with every quote, backslash and line break
  escaped), so a value can never end its literal early.
- **Narrowing.** :func:`narrowing` writes a filter tree as an expression that matches
  *at least* the records the filter matches (a superset). Milvus engines differ on the
  fine points (is ``True == 1``? does ``not`` of a missing key hold?), so the backend
  never trusts the expression alone: it checks the candidates exactly with vectordb's own
  interpreters (:mod:`vectordb.milvus.matching`). Conditions whose negation Milvus may
  get wrong (``$ne``, ``$nin``, ``$not_contains``, a document's ``$not_contains``) and any
  node this module does not know (a future operator) narrow nothing: the exact check
  alone decides them, so no condition is ever dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from vectordb.filters.tree import And, Compare, Contains, DocContains, Filter, Member, Node, Or

Params = Dict[str, Any]
Expr = Tuple[str, Params]

EXACT = 2**53  # numbers of this magnitude or more narrow nothing (engines compare them as doubles, or not)
MAX_TERMS = 64  # an $in with more values narrows nothing (Milvus has no `in` on JSON paths everywhere)
_OPS = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_PLACEHOLDER = re.compile(r"\{(p\d+)\}")
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def encode_key(key: str) -> str:
    """The JSON key under which metadata ``key`` is stored (and named in expressions)."""
    return "k" + key.encode("utf-8").hex()


def decode_key(stored: str) -> str:
    """The user's key back from :func:`encode_key`'s form."""
    return bytes.fromhex(stored[1:]).decode("utf-8")


def encode_metadata(metadata: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Metadata as stored in the ``metadata`` JSON field (None for none)."""
    return {encode_key(k): v for k, v in metadata.items()} if metadata else None


def decode_metadata(stored: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Metadata as users see it, from the JSON field."""
    return {decode_key(k): v for k, v in stored.items()} or None if stored else None


def path(key: str) -> str:
    """The expression that reads metadata ``key`` (hex only: nothing of the key is spliced)."""
    return f'metadata["{encode_key(key)}"]'


def literal(value: Any) -> str:
    """A Milvus literal for a bool, int, float, str or list of them (for servers without templates).

    Only the value's type chooses the form; a string is double-quoted with ``\\``, ``"``
    and line breaks escaped, so its literal ends exactly where it should.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no Milvus literal for {value!r}")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    raise TypeError(f"no Milvus literal for a {type(value).__name__}")


def render(expr: Expr) -> str:
    """The template's text with each placeholder replaced by its value's literal."""
    text, params = expr
    return _PLACEHOLDER.sub(lambda m: literal(params[m.group(1)]), text)


class _Builder:
    """Collects the parameters of one template (and knows whether the server takes infix patterns)."""

    def __init__(self, infix_like: bool = True) -> None:
        self.params: Params = {}
        self.infix_like = infix_like

    def value(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return "{" + name + "}"


def one_of(field: str, values: Sequence[Any]) -> Expr:
    """``field in [values]`` for a scalar field (``id``, ``seq``) as a template."""
    builder = _Builder()
    return f"{field} in {builder.value(list(values))}", builder.params


def narrowing(filter: Optional[Filter], infix_like: bool = True) -> Optional[Expr]:
    """An expression matching a superset of ``filter``'s records; None when it narrows nothing.

    ``infix_like``: the server takes ``like "%text%"`` (Milvus 2.4+; 2.3 takes prefix
    patterns only): without it a document's ``$contains`` narrows nothing.
    """
    if filter is None:
        return None
    builder = _Builder(infix_like)
    parts = [text for text in (_node(n, builder) for n in (filter.where, filter.document) if n is not None) if text]
    if not parts:
        return None
    return (parts[0] if len(parts) == 1 else " and ".join(f"({p})" for p in parts)), builder.params


def _node(node: Node, builder: _Builder) -> Optional[str]:
    """One node's superset expression, or None (no narrowing) where Milvus might not hold a superset."""
    if isinstance(node, (And, Or)):
        parts = [_node(child, builder) for child in node.children]
        if isinstance(node, And):
            kept = [p for p in parts if p]
            return None if not kept else " and ".join(f"({p})" for p in kept)
        return None if any(p is None for p in parts) else " or ".join(f"({p})" for p in parts)
    if isinstance(node, Compare) and node.op in _OPS and _narrowable(node.value):
        return f"{path(node.key)} {_OPS[node.op]} {builder.value(node.value)}"
    if isinstance(node, Member) and not node.negated and len(node.values) <= MAX_TERMS:
        if all(_narrowable(v) for v in node.values):
            return " or ".join(f"{path(node.key)} == {builder.value(v)}" for v in node.values)
        return None
    if isinstance(node, Contains) and not node.negated and _narrowable(node.value):
        return f"json_contains({path(node.key)}, {builder.value(node.value)})"
    if isinstance(node, DocContains) and not node.negated and builder.infix_like:
        return f"doc like {builder.value(like_pattern(node.text))}"
    return None  # negations and unknown nodes: decided by the exact check alone


def like_pattern(text: str) -> str:
    """A LIKE pattern matching every document that contains ``text`` (and possibly more).

    ``%``, ``_`` and ``\\`` in the text become ``_`` (any one character): the pattern
    then needs no escapes, whose rules differ between Milvus engines, and still matches
    every document holding the text; the exact check removes the rest.
    """
    return "%" + re.sub(r"[%_\\]", "_", text) + "%"


def _narrowable(value: Any) -> bool:
    """Whether engines compare ``value`` as vectordb does for the records it should match.

    Below 2**53 in magnitude, comparing a stored int with ``value`` exactly and as doubles
    (vectordb's rule for an int beside a float) agree; at 2**53 they do not (2**53 + 1 as a
    double is 2**53), so from there on a number narrows nothing.
    """
    if isinstance(value, bool) or isinstance(value, str):
        return True
    return abs(value) < EXACT


def joined(*exprs: Optional[Expr]) -> Optional[Expr]:
    """Expressions ANDed, their placeholders renumbered apart (None for none)."""
    texts: List[str] = []
    params: Params = {}
    for expr in exprs:
        if expr is None:
            continue
        text, own = expr
        offset = len(params)
        mapping = {name: f"p{offset + i}" for i, name in enumerate(own)}
        texts.append(_PLACEHOLDER.sub(lambda m: "{" + mapping[m.group(1)] + "}", text))
        params.update({mapping[name]: value for name, value in own.items()})
    if not texts:
        return None
    return (texts[0] if len(texts) == 1 else " and ".join(f"({t})" for t in texts)), params
