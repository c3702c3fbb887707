"""A real Milvus standalone server (the ``milvus`` PyPI package: Milvus 2.3.5) on loopback, for tests and benchmarks.

The ``milvus`` package ships the server binary (embedded etcd, local storage, rocksmq)
and pins an old pymilvus, so it lives in a virtual environment of its own
(:data:`VENV`, made on first use: ``milvus==2.3.5`` and ``setuptools<70``, from
:data:`WHEELS` when that folder holds the wheel, else from PyPI). vectordb, in this
interpreter, talks to the server over gRPC with its own pymilvus.

This file is also the launcher, run by that venv's Python (``python
milvus_server_helpers.py serve BASE_DIR``): it imports only the standard library at the
top. The launcher picks free ports for every listener (the 2.3 defaults, etcd's 2379
and 2380 among them, would collide with any other server on the machine), records them
in ``BASE_DIR/ports.json`` so that a restart on the same folder listens where the first
start did, starts ``milvus.default_server``, prints one JSON line (``{"port", "pid"}``)
and then waits: the server is stopped when the launcher's stdin closes (the test
process went away), or, detached (``--until-gone PATH``), when PATH is removed.

Milvus 2.3 binds its gRPC listeners on every interface; the addresses it advertises,
etcd's listeners and everything vectordb dials are 127.0.0.1.

One setting differs from Milvus's defaults: ``common.session.ttl`` is 10 s (30 s by
default). A server restarted after a SIGKILL serves only once the dead process's etcd
sessions have expired, so a kill-and-restart test waits ~10 s rather than ~30 s.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

VENV = os.environ.get("VECTORDB_MILVUS_VENV", "/opt/milvus-venv")
"""The virtual environment holding the ``milvus`` package (made if missing)."""
WHEELS = os.environ.get("VECTORDB_MILVUS_WHEELS", "/tmp/milvuswheel")
"""A folder searched for the ``milvus`` wheel before PyPI (the wheel is ~60 MB)."""
REQUIREMENTS = ["milvus==2.3.5", "setuptools<70"]
SESSION_TTL_S = 10
"""``common.session.ttl`` of the test servers (see the module docstring)."""
START_TIMEOUT_S = 240.0
"""How long a start may take (the first one unpacks ~250 MB of binaries; a loaded machine is slow)."""
_COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")


class Unavailable(RuntimeError):
    """A Milvus server cannot be started here (the message says why)."""


def venv_python() -> str:
    """The Python of :data:`VENV`, made (once, under a lock) if it is missing or lacks ``milvus``."""
    import fcntl

    python = os.path.join(VENV, "bin", "python")
    os.makedirs(os.path.dirname(VENV.rstrip("/")) or ".", exist_ok=True)
    with open(VENV.rstrip("/") + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _has_milvus(python):
            return python
        steps: List[List[str]] = []
        if not os.path.exists(python):
            steps.append([sys.executable, "-m", "venv", VENV])
        links = ["--find-links", WHEELS] if os.path.isdir(WHEELS) else []
        steps.append([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *links, *REQUIREMENTS])
        for step in steps:
            try:
                proc = subprocess.run(step, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise Unavailable(f"cannot make {VENV}: {' '.join(step)}: {exc}") from None
            if proc.returncode != 0:
                raise Unavailable(f"cannot make {VENV}: {' '.join(step)}: {(proc.stderr or proc.stdout)[-500:]}")
        if not _has_milvus(python):
            raise Unavailable(f"{VENV} has no usable 'milvus' package after installing {REQUIREMENTS}")
        return python


def _has_milvus(python: str) -> bool:
    if not os.path.exists(python):
        return False
    proc = subprocess.run([python, "-c", "import milvus"], capture_output=True, timeout=60)
    return proc.returncode == 0


class MilvusServer:
    """A Milvus 2.3 standalone server whose data lives in ``base_dir``; restartable on the same data.

    Args:
        base_dir: its folder (configuration, logs, etcd, rocksmq and segment files).
        detached: the server outlives this process, until ``base_dir/lifeline`` is removed
            (the benchmark's worker makes the store; later processes query it).
    """

    def __init__(self, base_dir: str, detached: bool = False) -> None:
        self.base_dir = os.path.abspath(base_dir)
        self.detached = detached
        self.port = 0
        self.pid = 0
        self._launcher: Optional[subprocess.Popen] = None

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:<port>``, what ``vectordb.MilvusClient`` takes."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def lifeline(self) -> str:
        """The file whose removal stops a detached server."""
        return os.path.join(self.base_dir, "lifeline")

    def start(self, timeout: float = START_TIMEOUT_S) -> "MilvusServer":
        """Start the server (again, on the same data and ports, after :meth:`kill`); returns self.

        Raises:
            Unavailable: no venv can be made, or the server did not come up in ``timeout`` s.
        """
        python = venv_python()
        os.makedirs(self.base_dir, exist_ok=True)
        args = [python, os.path.abspath(__file__), "serve", self.base_dir]
        if self.detached:
            open(self.lifeline, "w").close()
            args += ["--until-gone", self.lifeline]
        log = open(os.path.join(self.base_dir, "launcher.log"), "a")
        self._launcher = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                          text=True, start_new_session=True)
        log.close()
        line = _read_line(self._launcher, timeout)
        if not line:
            self._launcher.kill()
            self._launcher.wait()
            raise Unavailable(f"Milvus did not start within {timeout:.0f} s: {self.log_tail()}")
        started = json.loads(line)
        self.port, self.pid = int(started["port"]), int(started["pid"])
        return self

    def kill(self) -> None:
        """SIGKILL the server binary (a crash: no flush, no goodbye), and wait for its launcher."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.pid = 0
        if self._launcher is not None:
            try:
                self._launcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._launcher.kill()
                self._launcher.wait()
            self._launcher = None

    def stop(self) -> None:
        """Stop the server (a kill: tests never need its data after this) and, if detached, its lifeline."""
        self.kill()
        if self.detached and os.path.exists(self.lifeline):
            os.remove(self.lifeline)

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the launcher's and the server's error output, for failure messages."""
        out = []
        for name in ("launcher.log", os.path.join("logs", "milvus-stderr.log")):
            try:
                with open(os.path.join(self.base_dir, name), errors="replace") as fh:
                    out.append(fh.read()[-chars:])
            except OSError:
                pass
        return "\n".join(out).strip() or "(no log)"

    def __enter__(self) -> "MilvusServer":
        return self.start() if not self.port else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The launcher's first stdout line, or "" if it exits or ``timeout`` passes first."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline().strip()


# -- the launcher (runs under VENV's Python) ----------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports(base: str, keys: List[str]) -> Dict[str, int]:
    """Every listener's port: those of the first start if recorded, else free ones now."""
    path = os.path.join(base, "ports.json")
    if os.path.exists(path):
        with open(path) as fh:
            return json.load(fh)
    ports = {key: _free_port() for key in keys}
    with open(path, "w") as fh:
        json.dump(ports, fh)
    return ports


def _shared_binaries() -> str:
    """The server's binaries, unpacked once into the venv (not once per server folder)."""
    import fcntl

    from milvus import _initialize_data_files  # type: ignore[import-not-found]

    shared = os.path.join(VENV, "milvus-binaries")
    os.makedirs(shared, exist_ok=True)
    with open(shared + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _initialize_data_files(shared)
    return os.path.join(shared, "bin")


def serve(base: str, until_gone: Optional[str]) -> int:
    """Start Milvus on ``base``, print ``{"port", "pid"}``, and stop it when told (see the module docstring)."""
    import milvus  # type: ignore[import-not-found]
    from milvus import default_server

    def bind_reusing(self: Any, port: int) -> Optional[socket.socket]:  # a restart re-binds ports in TIME_WAIT
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen()
            return sock
        except OSError:
            sock.close()
            return None

    milvus.MilvusServerConfig.try_bind_port = bind_reusing
    config = default_server.config
    default_server.set_base_dir(base)
    bin_dir = os.path.join(base, "bin")
    if not os.path.exists(bin_dir):
        os.symlink(_shared_binaries(), bin_dir)
    keys = sorted(k for k in config.configurable_items if k.endswith("_port")) + ["etcd_peer", "web"]
    ports = _ports(base, keys)
    config.update(**{k: v for k, v in ports.items() if k.endswith("_port")})  # exact: fails if taken
    default_server.webservice_port = ports["web"]
    etcd_yaml = os.path.join(base, "configs", "etcd.yaml")
    client, peer = f"http://127.0.0.1:{ports['etcd_port']}", f"http://127.0.0.1:{ports['etcd_peer']}"
    with open(etcd_yaml, "w") as fh:  # etcd's own listeners (2.3 cannot configure the peer port otherwise)
        fh.write(f"name: default\nlisten-client-urls: {client}\nadvertise-client-urls: {client}\n"
                 f"listen-peer-urls: {peer}\ninitial-advertise-peer-urls: {peer}\ninitial-cluster: default={peer}\n")
    config.template_text = config.template_text.replace(
        "  use:\n    embed: true", f"  config:\n    path: {etcd_yaml}\n  use:\n    embed: true", 1)
    config.template_text = config.template_text.replace("localhost:{{ etcd_port", "127.0.0.1:{{ etcd_port")
    for component in _COMPONENTS:
        config.set(f"{component}.ip", "127.0.0.1")
    config.set("common.session.ttl", SESSION_TTL_S)
    try:
        default_server.start()
    except Exception as exc:  # noqa: BLE001 - reported on stderr, the test reads the log
        print(f"milvus did not start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        default_server.stop()
        return 1
    binary = default_server.server_proc
    print(json.dumps({"port": ports["proxy_port"], "pid": binary.pid}), flush=True)
    if until_gone is None:  # attached: stdin closes when the test process exits, however it exits
        import threading

        threading.Thread(target=lambda: (sys.stdin.read(), binary.kill()), daemon=True).start()
    while binary.poll() is None:
        if until_gone is not None and not os.path.exists(until_gone):
            binary.kill()
        time.sleep(0.2)
    default_server.server_proc = None
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        gone = sys.argv[sys.argv.index("--until-gone") + 1] if "--until-gone" in sys.argv else None
        sys.exit(serve(sys.argv[2], gone))
    print("usage: python milvus_server_helpers.py serve BASE_DIR [--until-gone PATH]", file=sys.stderr)
    sys.exit(2)
