"""Start ``vectordb serve`` for real in a subprocess on a free loopback port, and a test embedding function.

Usable from tests (``running_server``) and from client subprocesses (``python -c``
with this folder on ``sys.path``), which import ``HashEmbedding`` to register it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List, Optional

import httpx

from vectordb.embedding_functions import register_embedding_function

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
START_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env() -> Dict[str, str]:
    """The environment for child processes: this repository and this folder importable, no network models."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([ROOT, HERE, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["HF_HUB_OFFLINE"] = "1"
    env["VECTORDB_PROGRESS"] = "0"
    return env


class Server:
    """A running server: its URL, port, process and log file."""

    def __init__(self, process: subprocess.Popen, port: int, log_path: str, token: Optional[str]) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.token = token

    @property
    def headers(self) -> Dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def alive(self) -> bool:
        return self.process.poll() is None and httpx.get(
            self.url + "/api/v1/heartbeat", headers=self.headers, timeout=5
        ).status_code == 200


@contextlib.contextmanager
def running_server(path: str, *extra: str, token: Optional[str] = None) -> Iterator[Server]:
    """Run ``python -m vectordb serve --path PATH`` on a free port until the block ends."""
    port = free_port()
    log_path = os.path.join(os.path.dirname(os.path.abspath(path)), f"server-{port}.log")
    args = [sys.executable, "-m", "vectordb", "serve", "--path", path, "--port", str(port), *extra]
    if token:
        args += ["--auth-token", token]
    with open(log_path, "w") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=subprocess_env(), cwd=ROOT)
    server = Server(process, port, log_path, token)
    try:
        _wait_until_up(server)
        yield server
    finally:
        stop(process)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if httpx.get(server.url + "/api/v1/heartbeat", headers=server.headers, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server did not answer within {START_TIMEOUT_S} s:\n{server.log()}")


def stop(process: subprocess.Popen) -> None:
    """Stop a child process: Ctrl+C first (the server saves and closes its store), then kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextlib.contextmanager
def serving_in_thread(client: Any) -> Iterator[str]:
    """Serve ``client`` with uvicorn on a free loopback port in a thread of this process; yields the URL.

    The requests still cross a real socket and the whole HTTP stack (the same app
    ``vectordb serve`` runs); only the process is shared, which makes a server per
    test cheap enough for the shared ``client`` fixture.
    """
    import threading

    import uvicorn

    from vectordb.server.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(client), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"vectordb-test-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the in-process server on port {port} did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@register_embedding_function
class HashEmbedding:
    """A tiny deterministic embedding: letter counts, normalised (similar texts, near vectors)."""

    def __init__(self, dim: int = 8) -> None:
        self.dim = dim
        self.calls: List[List[str]] = []

    def __call__(self, input: List[str]) -> List[List[float]]:
        self.calls.append(list(input))
        return [embed_text(text, self.dim) for text in input]

    @staticmethod
    def name() -> str:
        return "test-server-hash"

    def get_config(self) -> Dict[str, Any]:
        return {"dim": self.dim}

    @classmethod
    def build_from_config(cls, config: Dict[str, Any]) -> "HashEmbedding":
        return cls(int(config["dim"]))


def embed_text(text: str, dim: int = 8) -> List[float]:
    """HashEmbedding's vector for one text."""
    vector = [0.0] * dim
    for ch in text.lower():
        if ch.isalpha():
            vector[(ord(ch) - ord("a")) % dim] += 1.0
    norm = sum(x * x for x in vector) ** 0.5 or 1.0
    return [x / norm for x in vector]
