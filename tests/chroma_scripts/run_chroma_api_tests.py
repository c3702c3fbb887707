"""Run chromadb 1.5.9's own API test files against vectordb and against chromadb itself, and count.

    HF_HUB_OFFLINE=1 python tests/chroma_scripts/run_chroma_api_tests.py            # both, compared
    HF_HUB_OFFLINE=1 python tests/chroma_scripts/run_chroma_api_tests.py --target vectordb   # one system
    python tests/chroma_scripts/run_chroma_api_tests.py --target vectordb -k test_add --show-errors  # a subset

The test files are copied out of the installed chromadb wheel (the site-packages of
``--venv``, by default ``/opt/chroma-venv``) into a temporary folder (``--keep DIR`` keeps them). For ``--target vectordb``
their imports of Chroma's public modules (:data:`PUBLIC_MODULES`: ``chromadb``,
``chromadb.api``, ``chromadb.api.types``, ``chromadb.api.models.Collection``,
``chromadb.config``, ``chromadb.errors``, ``chromadb.utils.embedding_functions``) are
changed to vectordb's (less ``chromadb.config.System``, Chroma's machinery, which one file
imports for type hints); nothing else in them changes. Chroma's test helpers (hypothesis
strategies, invariants, batch utilities, the Search expression classes) stay Chroma's own,
imported from the wheel. ``harness_conftest.py`` gives them a ``client`` fixture: a
client of the target, empty, allowing ``reset()``, in memory and on disk (each client case
runs on both), and adapts the few places where Chroma's helpers read Chroma's internals.

A *client case* is a collected test that uses the ``client`` fixture (the API under
test); the others test Chroma's internal functions or need Chroma's servers. With both
targets (the default) the runner reports on identical cases: the client cases collected
for both, and among them the *counted* cases, those chromadb's own run does not skip (the
tests skip themselves where a feature is Chroma Cloud's, and one is marked xfail by
Chroma): for each system, how many of those pass, then every counted case that does not
pass on a system, with the first line of its message and, where known, why
(:data:`WHY`). With ``--show-errors``, the whole messages. One target alone prints its own
counts and failing client cases.
Exit status: 0 when it ran (whatever the counts), 2 when it could not run.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TEST_FILES = [
    "test_api.py",
    "property/test_add.py",
    "property/test_filtering.py",
    "property/test_embeddings.py",
    "property/test_collections.py",
    "api/test_limit_offset.py",
    "api/test_numpy_list_inputs.py",
    "api/test_invalid_update.py",
    "api/test_collection.py",
    "api/test_types.py",
]
"""Chroma's API test files, relative to ``chromadb/test``."""
PUBLIC_MODULES = (
    "chromadb",
    "chromadb.api",
    "chromadb.api.types",
    "chromadb.api.models",
    "chromadb.api.models.Collection",
    "chromadb.config",
    "chromadb.errors",
    "chromadb.utils",
    "chromadb.utils.embedding_functions",
)
"""The modules whose imports become vectordb's (the surface a Chroma app imports)."""
CHROMA_INTERNALS = {"chromadb.config": {"System"}}
"""Names of those modules that are Chroma's machinery, not its API (a test file imports
``System`` for its type hints): imported from chromadb still."""
DEFAULT_VENV = "/opt/chroma-venv"
TARGETS = ("vectordb", "chromadb")
WHY = {
    "vectordb": {
        "test_invalid_n_results_param": "the test wants a bare TypeError (exc.type == TypeError) for n_results=-1; "
                                        "vectordb raises InvalidArgumentError, a ValueError, as for every bad input "
                                        "(docs/api.md, Differences from Chroma)",
        "test_add_large_exceeding": "Chroma refuses a batch over get_max_batch_size(); vectordb takes any batch (the "
                                    "size is advice: docs/api.md, Differences from Chroma)",
        "test_filterable_metadata_get_limit_offset": "get(ids=...) answers in the order asked (Chroma: storage order, "
                                                     "which this test assumes; Chroma's own test_out_of_order_ids, "
                                                     "marked xfail, asks for the order asked)",
    },
    "chromadb": {
        "test_collection_query_with_invalid_collection_throws": "Chroma's default embedding function downloads its "
                                                                "model at first use, and this machine is offline",
        "test_collection_update_with_invalid_collection_throws": "Chroma's default embedding function downloads its "
                                                                 "model at first use, and this machine is offline",
        "test_persist_index_loading_params": "the test reads hnswlib.Index.file_handle_count, which Chroma's own "
                                             "hnswlib build has and the venv's hnswlib has not",
    },
}
"""Why a client case fails on a system, where the reason is known (by test function)."""


def find_site(venv: str) -> Optional[str]:
    """The site-packages folder of ``venv`` holding chromadb, or None."""
    for site in sorted(glob.glob(os.path.join(venv, "lib", "python3*", "site-packages"))):
        if os.path.isdir(os.path.join(site, "chromadb", "test")):
            return site
    return None


_IMPORT = re.compile(r"^(?P<indent>[ \t]*)import (?P<module>chromadb(?:\.[\w.]+)?)(?P<alias> as \w+)?[ \t]*$")
_FROM = re.compile(r"^(?P<indent>[ \t]*)from (?P<module>chromadb(?:\.[\w.]+)?) import ")


def to_vectordb(source: str) -> str:
    """``source`` with its imports of :data:`PUBLIC_MODULES` changed to vectordb's.

    ``import chromadb`` becomes ``import vectordb as chromadb``; an import of another
    chromadb module without ``as`` gets an alias, so that it never rebinds the name
    ``chromadb``.
    """
    lines = []
    for line in source.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        end = line[len(body):]
        match = _IMPORT.match(body)
        if match:
            module, alias, indent = match["module"], match["alias"], match["indent"]
            if module == "chromadb" and not alias:
                body = f"{indent}import vectordb as chromadb"
            elif module in PUBLIC_MODULES:
                body = f"{indent}import vectordb{module[len('chromadb'):]}{alias or ''}"
            elif not alias:
                body = f"{indent}import {module} as _{module.replace('.', '_')}"
        else:
            match = _FROM.match(body)
            if match and match["module"] in PUBLIC_MODULES:
                body = _split_internals(body, match["module"], match["indent"])
        lines.append(body + end)
    return "".join(lines)


def _split_internals(body: str, module: str, indent: str) -> str:
    """``from chromadb.X import a, b`` as vectordb's import, less the names of :data:`CHROMA_INTERNALS`
    (a one-line import naming some keeps them from chromadb, on a line of their own)."""
    internal = CHROMA_INTERNALS.get(module, set())
    names = [n.strip() for n in body.split(" import ", 1)[1].split(",")]
    kept = [n for n in names if n.split(" as ")[0] in internal]
    if not kept or "(" in body:
        return "vectordb".join(body.split("chromadb", 1))
    ours = [n for n in names if n not in kept]
    out = [f"{indent}from {module} import {', '.join(kept)}"]
    if ours:
        out.append(f"{indent}from vectordb{module[len('chromadb'):]} import {', '.join(ours)}")
    return "\n".join(out)


def prepare(site: str, target: str, folder: Path) -> List[str]:
    """Copy the test files and the conftest into ``folder``; the copied paths."""
    copied = []
    for relative in TEST_FILES:
        source = Path(site, "chromadb", "test", relative).read_text()
        dest = folder / relative.replace("/", "__")
        dest.write_text(to_vectordb(source) if target == "vectordb" else source)
        copied.append(dest.name)
    shutil.copy(HERE / "harness_conftest.py", folder / "conftest.py")
    return copied


def outcomes(report: Path) -> Dict[str, Tuple[str, str]]:
    """``{nodeid: (outcome, message)}`` from pytest's JUnit XML."""
    result: Dict[str, Tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "")
        parts = module.split(".")
        file = parts[0] + ".py"
        klass = "::".join(parts[1:])
        nodeid = "::".join(p for p in (file, klass, case.get("name", "")) if p)
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (found.get("message") or "").strip()
                if tag == "failure" or outcome == "error":
                    break
        if nodeid in result and result[nodeid][0] != "passed":
            continue  # a teardown error after a failure: keep the failure
        result[nodeid] = (outcome, message)
    return result


def summarize(label: str, results: Dict[str, Tuple[str, str]]) -> str:
    counts = {k: sum(1 for o, _ in results.values() if o == k) for k in ("passed", "failed", "error", "skipped")}
    return (f"{label}: {len(results)} cases, {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['error']} errors, {counts['skipped']} skipped")


def run_target(site: str, target: str, folder: Path, k: Optional[str], workers: str) -> Optional[Tuple[dict, Set[str]]]:
    """Run the copied test files on ``target`` in ``folder``: ``({nodeid: (outcome, message)}, client case ids)``,
    or None when pytest gave no report (its output is printed)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = prepare(site, target, folder)
    report, items = folder / "report.xml", folder / "items.json"
    for stale in (report, items):
        if stale.exists():
            stale.unlink()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
           "CHROMA_HARNESS_TARGET": target, "CHROMA_SITE_PACKAGES": site,
           "CHROMA_HARNESS_ITEMS": str(items), "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               "--rootdir", str(folder), "-o", "addopts=", "-o", "asyncio_mode=auto",
               f"--junitxml={report}", "-W", "ignore"]
    if workers != "0":
        command += ["-n", workers]
    if k:
        command += ["-k", k]
    proc = subprocess.run(command + files, cwd=folder, env=env, capture_output=True, text=True)
    if not report.exists() or not items.exists():
        print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
        return None
    fixtures = json.loads(items.read_text())
    return outcomes(report), {node for node, names in fixtures.items() if "client" in names}


def _test_name(node: str) -> str:
    return node.split("::")[-1].split("[")[0]


def _first_line(message: str) -> str:
    line = " ".join(next((l for l in message.splitlines() if l.strip()), "").split())
    return line if len(line) <= 200 else line[:197] + "..."


def _failing(label: str, results: Dict[str, Tuple[str, str]], nodes: List[str], show_errors: bool,
             others: Dict[str, Dict[str, Tuple[str, str]]]) -> List[str]:
    """One entry per case of ``nodes`` that does not pass on ``label``: outcome, message, why."""
    lines = []
    for node in nodes:
        outcome, message = results[node]
        if outcome == "passed":
            continue
        beside = ", ".join(f"{o}: {r[node][0]}" for o, r in others.items() if node in r)
        lines.append(f"  {label} {outcome.upper()} {node}" + (f" ({beside})" if beside else ""))
        lines.append(f"      reason: {_first_line(message) or outcome}")
        why = WHY.get(label, {}).get(_test_name(node))
        if why:
            lines.append(f"      why: {why}")
        if show_errors and message:
            lines.extend("        " + l for l in message[:2000].splitlines())
    return lines


def compare(runs: Dict[str, Tuple[Dict[str, Tuple[str, str]], Set[str]]], show_errors: bool = False) -> List[str]:
    """The report on identical cases of every target in ``runs`` (``{target: (results, client case ids)}``)."""
    targets = list(runs)
    common = set.intersection(*(clients & set(results) for results, clients in runs.values()))
    lines = []
    for target, (results, clients) in runs.items():
        alone = sorted((clients & set(results)) - common)
        if alone:
            lines.append(f"client cases collected for {target} only (left out): {len(alone)}: {', '.join(alone[:5])}")
    tests = {node.split("[")[0] for node in common}
    lines.append(f"identical client cases (collected for {' and '.join(targets)}): {len(common)} "
                 f"(of {len(tests)} test functions, each case run in memory and on disk)")
    for target, (results, _) in runs.items():
        lines.append("  " + summarize(target, {n: results[n] for n in common}))
    oracle = runs["chromadb"][0] if "chromadb" in runs else None
    skipped = sorted(n for n in common if oracle is not None and oracle[n][0] == "skipped")
    counted = sorted(common - set(skipped))
    if oracle is not None:
        reasons = Counter(_first_line(oracle[n][1]) for n in skipped)
        lines.append(f"counted client cases (identical, and not skipped by chromadb's own run): {len(counted)} "
                     f"({len(skipped)} skipped there: {'; '.join(f'{n} x {r}' for r, n in sorted(reasons.items()))})")
    for target, (results, _) in runs.items():
        passed = sum(1 for n in counted if results[n][0] == "passed")
        lines.append(f"  {target}: {passed} passed of {len(counted)} counted client cases")
    failing: List[str] = []
    for target, (results, _) in runs.items():
        others = {o: runs[o][0] for o in targets if o != target}
        failing += _failing(target, results, counted, show_errors, others)
    lines.append("counted client cases that do not pass:" if failing else "every counted client case passes")
    return lines + failing


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("both",) + TARGETS, default="both")
    parser.add_argument("--venv", default=DEFAULT_VENV, help="the venv whose site-packages hold chromadb 1.5.9")
    parser.add_argument("-k", default=None, help="pytest -k expression (a subset)")
    parser.add_argument("-n", "--workers", default="2", help="pytest-xdist workers (0: none)")
    parser.add_argument("--show-errors", action="store_true", help="print each failing client case's message")
    parser.add_argument("--keep", default=None, help="copy the prepared files here (to rerun by hand)")
    args = parser.parse_args(argv)

    site = find_site(args.venv)
    if site is None:
        print(f"no chromadb test files under {args.venv} (install chromadb==1.5.9 there)", file=sys.stderr)
        return 2
    targets = TARGETS if args.target == "both" else (args.target,)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="chroma-api-tests-") as tmp:
        base = Path(args.keep or tmp)
        for target in targets:
            ran = run_target(site, target, base / target if len(targets) > 1 else base, args.k, args.workers)
            if ran is None:
                return 2
            runs[target] = ran
    print(f"chromadb test files from {site}, target {args.target}")
    if len(runs) > 1:
        print("\n".join(compare(runs, args.show_errors)))
        return 0
    results, client_ids = runs[targets[0]]
    client_results = {node: r for node, r in results.items() if node in client_ids}
    print(summarize("client cases", client_results))
    print(summarize("all cases", results))
    bad = sorted(node for node, r in client_results.items() if r[0] in ("failed", "error"))
    if bad:
        print("failing client cases:")
        print("\n".join(_failing(targets[0], results, bad, args.show_errors, {})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
