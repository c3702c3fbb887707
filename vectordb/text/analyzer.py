"""How a text becomes the terms that the full-text index counts and a text query looks up.

``identifiers`` (what a new collection gets unless it names another): the terms of
``default`` below, plus each identifier kept whole and each camelCase word cut into its
humps, so an exact name or code outranks documents that share only a part of it:

- an identifier is runs of letters and digits joined by underscores (any number), or by
  one ``.`` or ``-``; it adds its whole, lowercased: ``ERR_1042`` → ``err``, ``1042``,
  ``err_1042``; ``max_batch_size`` → ``max``, ``batch``, ``size``, ``max_batch_size``;
  ``os.path.join`` → ``os``, ``path``, ``join``, ``os.path.join``; ``v2.1.0`` → ``v2``,
  ``1``, ``0``, ``v2.1.0``;
- a run of letters and digits with humps adds each hump, lowercased (the whole run is
  already a ``default`` term): ``getElementById`` → ``getelementbyid``, ``get``,
  ``element``, ``by``, ``id``; ``HTTPServer`` → ``httpserver``, ``http``, ``server``. A
  hump starts at an uppercase letter that follows a lowercase one, or that is followed by
  a lowercase one and is not the run's first character.

A plain word (``Saving``) is one term, as in ``default``. Queries go through the same
analyzer, so ``ERR_1042 on save`` looks up ``err_1042`` besides ``err`` and ``1042``: a
document holding the whole code scores for that rare term, one holding only ``ERR_2000``
does not. No stemming, no stop words.

``default``: Unicode-aware lowercasing (``str.lower``), then the runs of letters and digits
(characters for which ``str.isalnum()`` holds, in any script) are the terms; everything
else (spaces, punctuation, ``_``, symbols) separates them. No stemming, no stop words, so
``ERR_1042`` gives the terms ``err`` and ``1042`` (nothing of the whole code). The
analyzer of collections created before ``identifiers`` existed (they keep it).

``english``: the terms of ``default``, each reduced by the Snowball English stemmer
(PyStemmer, the ``stemmer`` extra), so ``running`` and ``runs`` meet at ``run``. Still no
stop words, and no whole identifiers: ``english`` stays exactly what it was, since a saved
index records only its analyzer's name (a name's terms can never change).

A collection chooses its analyzer once, at creation (``metadata={"text:analyzer": ...}``);
documents and queries always go through the same one.
"""

from __future__ import annotations

import re
import threading
from typing import Callable, Dict, List

from vectordb.errors import InvalidArgumentError, MissingDependencyError
from vectordb.validation import TEXT_ANALYZERS

_TERM = re.compile(r"[^\W_]+")
"""A run of Unicode letters and digits (``\\w`` without the underscore): the terms, as a pattern."""


class _Table(dict):
    """``str.translate`` table mapping each character to ``classify(character)`` (a code point).

    Filled lazily, one entry per distinct character met (at most ``_TABLE_MAX`` kept), so
    splitting a text is one C-level translate and one ``split``: about twice as fast as
    ``_TERM.findall``, with the same terms.
    """

    def __init__(self, classify: Callable[[str], str]) -> None:
        super().__init__()
        self.classify = classify

    def __missing__(self, code: int) -> int:
        mapped = ord(self.classify(chr(code)))
        if len(self) < _TABLE_MAX:
            self[code] = mapped
        return mapped


def _shape(ch: str) -> str:
    """A character's class in a text's shape: ``A`` uppercase, ``a`` lowercase, ``0`` another
    letter or digit, the joiners ``_ . -`` as themselves, a space for anything else."""
    if not ch.isalnum():
        return ch if ch in "_.-" else " "
    return "A" if ch.isupper() else "a" if ch.islower() else "0"


_TABLE_MAX = 1 << 16
_SEPARATORS = _Table(lambda ch: ch if ch.isalnum() else " ")
_SHAPES = _Table(_shape)
_ASCII_SHAPES = bytes(ord(_shape(chr(code))) for code in range(256))
"""The shapes of the ASCII characters, for ``bytes.translate`` (several times faster than ``str.translate``)."""


def _shape_of(text: str) -> str:
    """``text`` with each character replaced by its class (see :func:`_shape`): same length, same positions."""
    if text.isascii():
        return text.encode("ascii").translate(_ASCII_SHAPES).decode("ascii")
    return text.translate(_SHAPES)


_MARK = re.compile(r"[A_.\-](?:(?<=[Aa0]A)|(?<=[_.\-])(?=[Aa0]))")
"""In a shape: what only an identifier shows (an uppercase letter inside a run, or a joiner
before a letter or digit). A character set first, so the scan for it is fast."""
_JOINED = re.compile(r"(?<![Aa0])[Aa0]+(?:(?:_+|[.\-])[Aa0]+)+")
"""In a shape: an identifier with parts (runs joined by underscores, or by one dot or hyphen)."""
_HUMPED = re.compile(r"(?<![Aa0])[Aa0][a0]*A[Aa0]*")
"""In a shape: a run of letters and digits with an uppercase letter after its first character."""
_HUMP = re.compile(r"(?<=a)A|(?<=.)A(?=a)")
"""In a run's shape: where a camelCase hump starts (``getElement``, ``HTTPServer``, ``Base64Encode``)."""


def default_terms(text: str) -> List[str]:
    """The terms of ``text`` for the ``default`` analyzer, in order (repeats kept)."""
    return text.lower().translate(_SEPARATORS).split()


def identifier_terms(text: str) -> List[str]:
    """The terms of ``text`` for the ``identifiers`` analyzer: those of ``default`` in order,
    then, for each word that holds identifiers, its whole identifiers and its humps (repeats kept).

    The text's shape (one class letter per character, so positions match the text's) is
    scanned in C for the marks of an identifier; only the words around them are looked at
    further (once per distinct word, then remembered), so prose costs little more than ``default``.
    """
    terms = default_terms(text)
    shape = _shape_of(text)
    found = _MARK.search(shape)
    while found is not None:
        start = shape.rfind(" ", 0, found.start()) + 1
        end = shape.find(" ", found.end())
        end = len(shape) if end < 0 else end
        word = text[start:end]
        extra = _EXTRAS.get(word)
        if extra is None:
            extra = _extras(word, shape[start:end])
            if len(_EXTRAS) >= _EXTRAS_MAX:
                _EXTRAS.clear()
            _EXTRAS[word] = extra
        terms.extend(extra)
        found = _MARK.search(shape, end)
    return terms


_EXTRAS: Dict[str, List[str]] = {}
"""The whole identifiers and humps of words met lately (identifiers repeat: a code, a name)."""
_EXTRAS_MAX = 1 << 16


def _extras(word: str, shape: str) -> List[str]:
    """The whole identifiers and the humps of one word (no spaces) whose shape is ``shape``."""
    out = [word[m.start(): m.end()].lower() for m in _JOINED.finditer(shape)]
    for run in _HUMPED.finditer(shape):
        start, end = run.span()
        cuts = [start] + [start + m.start() for m in _HUMP.finditer(shape[start:end])] + [end]
        if len(cuts) > 2:
            out.extend(word[a:b].lower() for a, b in zip(cuts, cuts[1:]))
    return out


class Analyzer:
    """A named function from a text to its terms (in order, repeats kept)."""

    def __init__(self, name: str, terms: Callable[[str], List[str]]) -> None:
        self.name = name
        self.terms = terms

    def __repr__(self) -> str:
        return f"Analyzer({self.name!r})"


def _english() -> Analyzer:
    try:
        import Stemmer  # PyStemmer
    except ImportError:
        raise MissingDependencyError("PyStemmer", "stemmer", 'the "english" text analyzer') from None
    local = threading.local()  # a Stemmer object is not safe to share between threads

    def terms(text: str) -> List[str]:
        stemmer = getattr(local, "stemmer", None)
        if stemmer is None:
            stemmer = local.stemmer = Stemmer.Stemmer("english")
        return stemmer.stemWords(default_terms(text))

    return Analyzer("english", terms)


_MADE: Dict[str, Analyzer] = {}


def analyzer(name: str) -> Analyzer:
    """The analyzer called ``name`` (one of :data:`vectordb.validation.TEXT_ANALYZERS`).

    Raises InvalidArgumentError for an unknown name, and MissingDependencyError when the
    analyzer needs a package that is not installed (``english``: PyStemmer).
    """
    found = _MADE.get(name)
    if found is None:
        if name == "default":
            found = Analyzer("default", default_terms)
        elif name == "identifiers":
            found = Analyzer("identifiers", identifier_terms)
        elif name == "english":
            found = _english()
        else:
            raise InvalidArgumentError(f"text analyzer: expected one of {', '.join(TEXT_ANALYZERS)}, got {name!r}")
        _MADE[name] = found
    return found
