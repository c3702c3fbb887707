"""The import graph of the ``vectordb`` package has no cycle, between modules or between folders.

Data flows one way (API → validation → embedding → backend → engine → store and
indexes), and the imports must say so. Every ``import`` in the package counts, also
those inside functions (an import deferred to call time is still a dependency); only
imports under ``if TYPE_CHECKING:`` are left out, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import vectordb

PACKAGE = Path(vectordb.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: Set[str]) -> Set[str]:
    """The vectordb modules ``module`` imports (``from vectordb import x`` counts as ``vectordb.x`` when x is one)."""
    found: Set[str] = set()
    base = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "vectordb")
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                target = ".".join(anchor + ([target] if target else []))
            if target.split(".")[0] == "vectordb":
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    found.add(sub if sub in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def _graph() -> Dict[str, Set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {_module_name(p) for p in paths}
    return {
        _module_name(p): _imports(ast.parse(p.read_text(encoding="utf-8")), _module_name(p), p.name == "__init__.py", known)
        for p in paths
    }


def _cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of ``graph`` (a path that comes back to its start), or None."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def walk(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = walk(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def _folder(module: str) -> str:
    """The node of ``module`` in the folder graph: ``vectordb.engine.local`` → ``vectordb.engine``;
    a top-level module stands for itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_the_graph_is_read():
    graph = _graph()
    assert "vectordb.engine.local" in graph["vectordb.client"]
    assert "vectordb.persistence.store" in graph["vectordb.engine.local"]
    assert "vectordb.collection" in graph["vectordb.client"]


def test_no_import_cycle_between_modules():
    graph = {m: deps for m, deps in _graph().items() if m != "vectordb"}  # the root only re-exports
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_no_import_cycle_between_folders():
    folders: Dict[str, Set[str]] = {}
    for module, deps in _graph().items():
        if module == "vectordb":
            continue
        node = _folder(module)
        folders.setdefault(node, set()).update(_folder(d) for d in deps if _folder(d) not in (node, "vectordb"))
    assert _cycle(folders) is None, f"import cycle between folders: {' -> '.join(_cycle(folders) or [])}"


def test_a_cycle_is_found():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
