"""Reading the documentation for tests/test_docs_examples.py: pages, code blocks, links, anchors.

Nothing here runs anything: it parses Markdown (the README and docs/*.md) into fenced
code blocks with their line numbers, relative links, and the anchors GitHub gives
headings, tells which python blocks are written for Chroma's own client
(``is_chroma_block``), and turns a block's claimed outputs (``print(x)  # [['1']]``,
``console.log(x);  // [["1"]]``) into checks.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

LANGUAGES = {"python": "python", "bash": "bash", "js": "js", "text": "text"}
"""The fence tags a page may use: ``python``, ``bash`` and ``js`` blocks are run (or
allow-listed), ``text`` is shown as it is. An untagged or other fence is an error, so that
no snippet escapes the test by its tag."""

_FENCE_OPEN = re.compile(r"^```(\S*)\s*$")
_FENCE_CLOSE = re.compile(r"^```\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"(?<!!)\[(?:[^\]]*)\]\(([^)\s]+)\)")
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_PRINT_CLAIM = re.compile(r"^(?P<indent>\s*)print\((?P<expr>.*)\)\s*#\s*(?P<claim>\S.*?)\s*$")
_TRAILING_COMMENT = re.compile(r"\s+#\s.*$")
_LOG_CLAIM = re.compile(r"^(?P<indent>\s*)console\.log\((?P<expr>.*)\);?\s*//\s*(?P<claim>\S.*?)\s*$")


def pages() -> List[Path]:
    """Every page whose code blocks are tested: the README, then docs/*.md in name order."""
    return [ROOT / "README.md"] + sorted(DOCS.glob("*.md"))


def rel(path: Path) -> str:
    """A page's path relative to the repository, as it is named in messages and test ids."""
    return path.resolve().relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Block:
    """One fenced code block: its page, tag, the line of its first code line (1-based) and its code."""

    page: Path
    language: str
    line: int
    code: str

    @property
    def where(self) -> str:
        return f"{rel(self.page)}:{self.line}"


def blocks(page: Path) -> List[Block]:
    """The fenced code blocks of ``page``, in order; raises ValueError on an unclosed fence."""
    found: List[Block] = []
    language: Optional[str] = None
    start = 0
    body: List[str] = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        if language is None:
            opened = _FENCE_OPEN.match(line)
            if opened:
                language, start, body = opened.group(1), number + 1, []
        elif _FENCE_CLOSE.match(line):
            found.append(Block(page, language, start, "\n".join(body) + "\n"))
            language = None
        else:
            body.append(line)
    if language is not None:
        raise ValueError(f"{rel(page)}:{start - 1}: a ``` fence is never closed")
    return found


def _prose_lines(page: Path) -> List[Tuple[int, str]]:
    """``(line number, text)`` of the lines outside code blocks, HTML comments blanked."""
    text = _HTML_COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), page.read_text(encoding="utf-8"))
    out: List[Tuple[int, str]] = []
    in_code = False
    for number, line in enumerate(text.splitlines(), start=1):
        if (_FENCE_CLOSE.match(line) if in_code else _FENCE_OPEN.match(line)):
            in_code = not in_code
            continue
        if not in_code:
            out.append((number, line))
    return out


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> Set[str]:
    """Every anchor of ``page``'s headings (a repeated heading gets ``-1``, ``-2``, ... as on GitHub)."""
    seen: Dict[str, int] = {}
    out: Set[str] = set()
    for _, line in _prose_lines(page):
        heading = _HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return out


def relative_links(page: Path) -> List[Tuple[int, str]]:
    """``(line, target)`` of every link of ``page`` that is not a URL (``http:``, ``mailto:``, ...)."""
    out = []
    for number, line in _prose_lines(page):
        for target in _LINK.findall(_INLINE_CODE.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue
            out.append((number, target))
    return out


def broken_link(page: Path, target: str) -> Optional[str]:
    """Why ``target`` (a relative link on ``page``) does not resolve, or None if it does."""
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page.resolve()
    if not dest.exists():
        return f"{path} does not exist"
    if anchor:
        if dest.suffix != ".md":
            return f"{path} is not a Markdown page, so it has no #{anchor}"
        if anchor not in anchors(dest):
            return f"{rel(dest)} has no heading whose anchor is #{anchor}"
    return None


def with_checked_prints(code: str, checker: str) -> str:
    """``code`` with each one-line ``print(expr)  # claim`` whose claim is a Python literal made
    into ``checker(expr, "claim", line)``, which prints the value and checks that it prints as claimed.

    Lines keep their numbers, so tracebacks still point at the page.
    """
    out = []
    for number, line in enumerate(code.splitlines(), start=1):
        claim = _PRINT_CLAIM.match(line)
        if claim and _is_literal(claim.group("claim")):
            line = f"{claim.group('indent')}{checker}(({claim.group('expr')}), {claim.group('claim')!r}, {number})"
        out.append(line)
    return "\n".join(out) + "\n"


def with_checked_logs(code: str, checker: str) -> str:
    """The JavaScript counterpart of :func:`with_checked_prints`: each one-line
    ``console.log(expr);  // claim`` whose claim is JSON becomes ``checker(expr, "claim", line);``."""
    out = []
    for number, line in enumerate(code.splitlines(), start=1):
        claim = _LOG_CLAIM.match(line)
        if claim and _is_json(claim.group("claim")):
            line = f"{claim.group('indent')}{checker}(({claim.group('expr')}), {json.dumps(claim.group('claim'))}, {number});"
        out.append(line)
    return "\n".join(out) + "\n"


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def first_import(code: str) -> Optional[str]:
    """The module the first ``import`` / ``from ... import`` of ``code`` names (in source
    order, at any depth), or None if it has none or does not parse."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    if not imports:
        return None
    first = min(imports, key=lambda node: (node.lineno, node.col_offset))
    if isinstance(first, ast.Import):
        return first.names[0].name
    return ("." * first.level) + (first.module or "")


def is_chroma_block(block: Block) -> bool:
    """A ``python`` block written for Chroma's own client: its first import is ``import
    chromadb`` or ``from chromadb...`` (it runs under the Chroma oracle's python)."""
    module = first_import(block.code) if block.language == "python" else None
    return module is not None and (module == "chromadb" or module.startswith("chromadb."))


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def commands(block: Block) -> List[Tuple[int, str]]:
    """``(line, command)`` of each command of a bash block (continuation lines joined, blank
    lines and comment lines left out); the command keeps its trailing comment."""
    out: List[Tuple[int, str]] = []
    pending = ""
    first = 0
    for offset, line in enumerate(block.code.splitlines()):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if not pending:
            first = block.line + offset
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append((first, pending + stripped))
        pending = ""
    if pending:
        out.append((first, pending.strip()))
    return out


def command_key(command: str) -> str:
    """A command as the allow-list names it: its trailing ``# comment`` dropped, spaces collapsed."""
    return " ".join(_TRAILING_COMMENT.sub("", command).split())


def vectordb_argv(command: str) -> Optional[List[str]]:
    """The arguments of a ``vectordb ...`` or ``python -m vectordb ...`` command, or None for any other command."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return None
    if words[:1] == ["vectordb"]:
        return words[1:]
    if words[:3] == ["python", "-m", "vectordb"]:
        return words[3:]
    return None
