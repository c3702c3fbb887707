"""Every code block of the README and of docs/*.md runs, and every link between the pages resolves.

The rules (one test per page, ``test_page[<page>]``):

- **Which blocks.** Every fenced block of ``README.md`` and ``docs/*.md`` must be tagged
  ``python``, ``bash`` or ``text`` (an untagged fence fails: no snippet escapes by its tag).
  ``text`` blocks are shown, not run.
- **One page, one namespace, in order.** A page's blocks run top to bottom in one fresh
  namespace, in a fresh temporary working directory (``./db`` is the page's own), so a
  block may use what an earlier block of the same page defined (``client``, ``col``,
  ``embedding_functions``), never anything from another page. Python blocks are compiled
  under the page's path with their own line numbers, so a traceback names the page and
  the line. They run in this process, not a subprocess, so the default model loads once
  for all pages (that keeps the file fast); the clients a page leaves in its namespace
  are closed after it.
- **Claimed output is checked.** A one-line ``print(x)  # [['1']]`` whose comment is a
  Python literal must print exactly that comment (``docs_helpers.with_checked_prints``).
- **Bash blocks.** Each ``vectordb ...`` / ``python -m vectordb ...`` command runs in the
  same process, through ``vectordb.cli.main`` (the function the ``vectordb`` script
  calls), in the page's working directory, after the page's earlier blocks, and must exit
  0. Every other command, and a ``vectordb`` command that is not cheap or safe, must be
  in ``NOT_RUN`` below with the reason it is not run; an unlisted one fails, and so does
  an entry no page holds any more. The files the command-line examples read
  (``notes.jsonl``, ``vecs.parquet``) are written into every page's directory first
  (``INPUT_FILES``).
- **Hosted providers and models run offline.** The environment points the real SDKs at the
  suite's local wire servers (``tests/providers/``): ``OPENAI_API_KEY`` +
  ``OPENAI_BASE_URL`` (read by the ``openai`` SDK), ``AZURE_OPENAI_API_KEY``,
  ``CO_API_KEY`` + ``CO_API_URL`` (read by the ``cohere`` SDK), ``GOOGLE_API_KEY``. Where a
  page names something that cannot exist here (the Azure resource, Google's endpoint,
  which no environment variable moves, the INSTRUCTOR checkpoint, the port of a server
  the reader started), ``REWRITES`` swaps that text for a local one before the block
  runs, one line for one line; each entry says why, and must still match its page. The
  default model is the bundled all-MiniLM-L6-v2 (``HF_HUB_OFFLINE=1``).
- **Known bugs.** An example that is right but fails because of a bug in vectordb goes
  in ``KNOWN_BUGS`` (page -> the bug): the page is then a strict xfail that names the bug
  in the test report, and starts failing (XPASS) once the bug is fixed.

Other tests: every relative link (and ``#anchor``) between the pages resolves, the index
``docs/README.md`` lists every page, the README stays short, and the README's two set-up
commands are the ones ``.ci/run`` and the project rely on.
"""

from __future__ import annotations

import contextlib
import gc
import json
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

import docs_helpers as dh

NOT_RUN: Dict[str, str] = {
    # README.md: the two set-up commands
    'python -m pip install torch==2.13.0 && python -m pip install -e ".[default]" && HF_HUB_OFFLINE=1 python -m vectordb demo':
        "installs torch and the package from the network; the demo it then runs is tests/test_demo.py",
    'python -m pip install torch==2.13.0 && python -m pip install -e ".[all,test]" && HF_HUB_OFFLINE=1 python -m pytest -q -n 2 --dist loadfile':
        "installs everything and runs the whole suite, this file included (it is what .ci/run runs)",
    # docs/development.md
    "HF_HUB_OFFLINE=1 python -m pytest -q tests/test_query.py tests/test_filters.py":
        "runs other test files, which the suite runs anyway",
    # docs/embedding-functions.md
    'pip install "vectordb[openai]"':
        "installs from the network (the openai SDK is installed here already)",
    "export OPENAI_API_KEY=sk-...":
        "a placeholder key; this test sets OPENAI_API_KEY to its local OpenAI-protocol server's key",
    # docs/performance.md
    "python -m venv /opt/chroma-venv && /opt/chroma-venv/bin/pip install chromadb==1.5.9 numpy":
        "makes a virtual environment outside the repository and installs chromadb from the network",
    "python -m benchmarks --n 100000 --chroma-python /opt/chroma-venv/bin/python":
        "the 100k benchmark takes minutes; tests/test_benchmarks_smoke.py runs the harness small",
    # docs/server-and-cli.md
    "vectordb serve --path ./db --port 8000":
        "runs until stopped; this test starts this same command on a free port "
        "(server_helpers.running_server) for the page's HttpClient example",
    "vectordb serve --path ./db --host 0.0.0.0 --auth-token s3cret --max-body-mb 64":
        "runs until stopped and listens on every interface; tokens and body limits are tests/test_server.py's",
    "vectordb demo --path ./demo_db":
        "embeds about 1,800 docstrings (minutes on 2 cores); tests/test_demo.py runs the demo on a few modules",
    # docs/scaling-out.md
    "vectordb copy --from ./db --to milvus://127.0.0.1:19530 notes":
        "needs a Milvus server on port 19530; tests/test_milvus_copy.py copies to and from Milvus",
}
"""Commands of bash blocks that are not run, by ``docs_helpers.command_key``, with the reason."""

KNOWN_BUGS: Dict[str, str] = {}
"""Pages whose examples are right but fail because of a bug in vectordb: page -> the bug."""

OPENAI_KEY = "sk-docs-test-key"
AZURE_KEY = "azure-docs-test-key"
COHERE_KEY = "docs-test-cohere-key"
GOOGLE_KEY = "docs-test-google-key"
AZURE_DEPLOYMENT = "my-embedding-deployment"

PROVIDER_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "AZURE_OPENAI_API_KEY",
                      "CO_API_KEY", "COHERE_API_KEY", "CO_API_URL", "GOOGLE_API_KEY", "GEMINI_API_KEY")


# -- what a page may use: local servers, a tiny model, input files ---------------------------


class Resources:
    """What the pages' examples run against, made on first use and closed with the module."""

    def __init__(self, stack: contextlib.ExitStack, scratch: Path) -> None:
        self._stack = stack
        self._scratch = scratch
        self._made: Dict[str, Any] = {}

    def _once(self, name: str, make: Callable[[], Any]) -> Any:
        if name not in self._made:
            self._made[name] = make()
        return self._made[name]

    def openai(self) -> Any:
        def make() -> Any:
            from providers.openai_server import OpenAIServer

            return self._stack.enter_context(OpenAIServer(
                api_key=OPENAI_KEY, azure_api_key=AZURE_KEY, azure_deployments=(AZURE_DEPLOYMENT,)))
        return self._once("openai", make)

    def cohere(self) -> Any:
        def make() -> Any:
            from providers.cohere_server import CohereServer

            return self._stack.enter_context(CohereServer(api_key=COHERE_KEY))
        return self._once("cohere", make)

    def google(self) -> Any:
        def make() -> Any:
            from providers.google_server import GoogleServer

            return self._stack.enter_context(GoogleServer(api_key=GOOGLE_KEY))
        return self._once("google", make)

    def instructor_model(self) -> str:
        def make() -> str:
            from tiny_models import build_tiny_model

            return str(build_tiny_model(self._scratch / "instructor"))
        return self._once("instructor", make)

    def vectordb_server(self) -> Any:
        def make() -> Any:
            from server_helpers import running_server

            folder = self._scratch / "served"
            folder.mkdir()
            return self._stack.enter_context(running_server(str(folder / "db")))
        return self._once("server", make)


REWRITES: Dict[str, List[Tuple[str, Callable[[Resources], str], str]]] = {
    "docs/embedding-functions.md": [
        ('"hkunlp/instructor-base"', lambda r: repr(r.instructor_model()),
         "the INSTRUCTOR checkpoint is not available offline: a tiny INSTRUCTOR-shaped model "
         "(tests/tiny_models.py, as tests/test_ef_instructor.py uses) stands in"),
        ('"https://my-resource.openai.azure.com"', lambda r: repr(r.openai().url),
         "the reader's Azure resource: the local OpenAI-protocol server also speaks Azure's"),
        ("GoogleGenerativeAiEmbeddingFunction(", lambda r: f"GoogleGenerativeAiEmbeddingFunction(api_base={r.google().url!r}, ",
         "the Google SDK reads no endpoint variable, so the local Gemini-protocol server is passed as api_base"),
    ],
    "docs/server-and-cli.md": [
        ("port=8000", lambda r: f"port={r.vectordb_server().port}",
         "the server the reader started with `vectordb serve --path ./db --port 8000`: this test "
         "starts the same command on a free port"),
    ],
}
"""Per page: (text, its local stand-in, why). Applied to the page's python blocks before they run."""


def _write_notes(path: Path) -> None:
    rows = [
        {"id": "n1", "text": "a cat sat on the mat", "year": 2021, "tag": "pets"},
        {"id": "n2", "text": "ERR_1042 when saving a draft", "year": 2024, "tag": "bugs"},
        {"id": "n3", "text": "stock prices fell", "year": 2019, "tag": "finance"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _write_vectors(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({
        "id": ["v1", "v2", "v3"],
        "embedding": [[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [1.0, 0.0, 0.0]],
    }), str(path))


INPUT_FILES: Dict[str, Callable[[Path], None]] = {
    "notes.jsonl": _write_notes,
    "vecs.parquet": _write_vectors,
}
"""Files the command-line examples read, written into each page's working directory first."""


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Resources]:
    with contextlib.ExitStack() as stack:
        yield Resources(stack, tmp_path_factory.mktemp("docs-resources"))


# -- running a page ----------------------------------------------------------------------------


def _rewritten(block: dh.Block, resources: Resources) -> str:
    code = block.code
    for old, new, _why in REWRITES.get(dh.rel(block.page), []):
        if old in code:
            code = code.replace(old, new(resources))
    return code


def _run_python(block: dh.Block, code: str, namespace: Dict[str, Any]) -> None:
    page = dh.rel(block.page)

    def expect(value: Any, claim: str, offset: int) -> None:
        text = str(value)
        print(text)
        line = block.line + offset - 1
        assert text == claim, f"{page}:{line}: prints {text!r}, but the page says it prints {claim!r}"

    namespace["__docs_expect__"] = expect
    checked = dh.with_checked_prints(code, "__docs_expect__")
    compiled = compile("\n" * (block.line - 1) + checked, str(block.page), "exec")
    failure = None
    try:
        exec(compiled, namespace)
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
        failure = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    if failure is not None:
        pytest.fail(f"{block.where}: this ```python block failed:\n{failure}", pytrace=False)


def _run_command(block: dh.Block, line: int, command: str) -> str:
    """Run one command of a bash block; returns what happened, for the test's output."""
    key = dh.command_key(command)
    if key in NOT_RUN:
        return f"not run: {key} ({NOT_RUN[key]})"
    argv = dh.vectordb_argv(command)
    if argv is None:
        pytest.fail(
            f"{dh.rel(block.page)}:{line}: `{key}` is not a vectordb command, so it cannot run here; "
            "make it one, or add it to NOT_RUN in tests/test_docs_examples.py with the reason",
            pytrace=False,
        )
    from vectordb.cli import main

    try:
        status = main(argv)
    except SystemExit as exit:  # argparse: a usage error, or --help / --version
        status = exit.code if isinstance(exit.code, int) else 1
    assert status == 0, f"{dh.rel(block.page)}:{line}: `{key}` exited with status {status}"
    return f"ran: {key}"


def _close_clients(namespace: Dict[str, Any]) -> None:
    import vectordb

    for value in list(namespace.values()):
        if isinstance(value, vectordb.Client):
            with contextlib.suppress(Exception):
                value.close()
    namespace.clear()
    gc.collect()


def _pages() -> List[Any]:
    """Every page, those in KNOWN_BUGS as strict xfails that name the bug."""
    return [
        pytest.param(page, id=dh.rel(page), marks=[pytest.mark.xfail(
            strict=True, reason=f"known bug in vectordb: {KNOWN_BUGS[dh.rel(page)]}")] if dh.rel(page) in KNOWN_BUGS else [])
        for page in dh.pages()
    ]


@pytest.mark.parametrize("page", _pages())
def test_page(page: Path, resources: Resources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = dh.rel(page)
    found = dh.blocks(page)
    untagged = [b.where for b in found if b.language not in dh.LANGUAGES]
    assert not untagged, f"fences tagged neither python, bash nor text: {untagged}"
    runnable = [b for b in found if b.language in ("python", "bash")]
    if not runnable:
        return

    for variable in PROVIDER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VECTORDB_PROGRESS", "0")
    if name == "docs/embedding-functions.md":
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", resources.openai().url + "/v1")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
        monkeypatch.setenv("CO_API_KEY", COHERE_KEY)
        monkeypatch.setenv("CO_API_URL", resources.cohere().url)
        monkeypatch.setenv("GOOGLE_API_KEY", GOOGLE_KEY)
    monkeypatch.chdir(tmp_path)
    for file_name, write in INPUT_FILES.items():
        write(tmp_path / file_name)

    namespace: Dict[str, Any] = {"__name__": "__docs__"}
    log: List[str] = []
    try:
        for block in runnable:
            if block.language == "python":
                _run_python(block, _rewritten(block, resources), namespace)
                log.append(f"ran: python block at {block.where}")
            else:
                for line, command in dh.commands(block):
                    log.append(_run_command(block, line, command))
    finally:
        _close_clients(namespace)
        print("\n".join(log))


# -- the rules above stay honest ---------------------------------------------------------------


def _bash_commands() -> List[str]:
    return [dh.command_key(c) for page in dh.pages() for b in dh.blocks(page) if b.language == "bash"
            for _, c in dh.commands(b)]


def test_every_not_run_entry_is_still_on_a_page() -> None:
    stale = sorted(set(NOT_RUN) - set(_bash_commands()))
    assert not stale, f"NOT_RUN names commands no page has any more (remove them): {stale}"


def test_every_rewrite_still_matches_its_page() -> None:
    for page, rules in REWRITES.items():
        code = "".join(b.code for b in dh.blocks(dh.ROOT / page) if b.language == "python")
        for old, _new, _why in rules:
            assert old in code, f"REWRITES[{page!r}]: {old!r} is no longer in the page's python blocks"


def test_relative_links_resolve() -> None:
    broken = []
    for page in dh.pages():
        for line, target in dh.relative_links(page):
            why = dh.broken_link(page, target)
            if why:
                broken.append(f"{dh.rel(page)}:{line}: ({target}): {why}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_index_lists_every_page() -> None:
    index = dh.DOCS / "README.md"
    linked = {(index.parent / target.partition("#")[0]).resolve() for _, target in dh.relative_links(index)}
    missing = [dh.rel(p) for p in sorted(dh.DOCS.glob("*.md")) if p != index and p.resolve() not in linked]
    assert not missing, f"docs/README.md does not link these pages: {missing}"


def test_the_readme_stays_short() -> None:
    lines = len((dh.ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines <= 250, f"README.md has {lines} lines: keep it a newcomer's page and move details into docs/"


def test_the_set_up_commands_are_the_ones_ci_runs() -> None:
    """The README's second command is what .ci/run runs, character for character; the first is the demo's."""
    readme = [b for b in dh.blocks(dh.ROOT / "README.md") if b.language == "bash"]
    commands = [dh.command_key(c) for b in readme for _, c in dh.commands(b)]
    assert commands[:2] == [
        'python -m pip install torch==2.13.0 && python -m pip install -e ".[default]" && HF_HUB_OFFLINE=1 python -m vectordb demo',
        'python -m pip install torch==2.13.0 && python -m pip install -e ".[all,test]" && HF_HUB_OFFLINE=1 python -m pytest -q -n 2 --dist loadfile',
    ]
    ci = (dh.ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in [line.strip() for line in ci], ".ci/run no longer runs the README's test command"
