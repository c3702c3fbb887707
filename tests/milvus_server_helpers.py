"""A real Milvus standalone server (the ``milvus`` PyPI package: Milvus 2.3.5) for tests and
benchmarks, in a private network namespace, reached through one port on the host's loopback.

The ``milvus`` package ships the server binary (embedded etcd, local storage, rocksmq)
and pins an old pymilvus, so it lives in a virtual environment of its own
(:data:`VENV`, made on first use: ``milvus==2.3.5`` and ``setuptools<70``, from
:data:`WHEELS` when that folder holds the wheel, else from PyPI). vectordb, in this
interpreter, talks to the server over gRPC with its own pymilvus.

Milvus 2.3 binds its gRPC listeners (proxy, coordinators, nodes) on every interface, and
no setting changes that. So the server runs in a network namespace of its own (``unshare
-rn``: a user and a network namespace, which need no privilege), whose only interface is
its loopback: nothing outside the namespace can reach any of its ports. The one port
vectordb needs, the proxy's gRPC port, is reached through a socket that this process binds
on the host's 127.0.0.1 (a free port) and hands to the namespace's first process, the
*holder*: it accepts there and relays each connection to the proxy inside. The namespace
lives as long as the holder, which lives as long as this process holds its stdin (or,
detached, until a lifeline file is removed); a server killed and started again keeps the
host port (it is the holder's, not the server's).

This file is also the holder and the launcher, run by that venv's Python: it imports only
the standard library at the top. ``python milvus_server_helpers.py hold --listen-fd N``
brings the namespace's loopback up, relays what arrives on fd N, and runs a server on
request (``{"start": BASE_DIR}`` or ``{"kill": true}``, one JSON line each on stdin, one
JSON line back). ``python milvus_server_helpers.py serve BASE_DIR`` is the launcher: it
picks free ports for every listener (the 2.3 defaults, etcd's 2379 and 2380 among them;
free in the namespace, whose ports are its own), records them in ``BASE_DIR/ports.json`` so
that a restart on the same folder listens where the first start did, prints the proxy's
port (``{"port"}``), starts ``milvus.default_server``, prints the binary's process id once
it serves (``{"pid"}``) and then waits: the server is stopped when the launcher's stdin
closes (the holder went away), or, detached (``--until-gone PATH``), when PATH is removed.

One setting differs from Milvus's defaults: ``common.session.ttl`` is 10 s (30 s by
default). A server restarted after a SIGKILL serves only once the dead process's etcd
sessions have expired, so a kill-and-restart test waits ~10 s rather than ~30 s.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional



def _default_venv() -> str:
    """``/opt/milvus-venv`` where it exists or ``/opt`` is writable, else under ``~/.cache``."""
    if os.path.isdir("/opt/milvus-venv") or os.access("/opt", os.W_OK):
        return "/opt/milvus-venv"
    return os.path.join(os.path.expanduser("~"), ".cache", "vectordb", "milvus-venv")


VENV = os.environ.get("VECTORDB_MILVUS_VENV") or _default_venv()
"""The virtual environment holding the ``milvus`` package (made if missing; ``VECTORDB_MILVUS_VENV``)."""
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
        steps.append([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--timeout", "30",
                      "--retries", "2", *links, *REQUIREMENTS])
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
    """A Milvus 2.3 standalone server whose data lives in ``base_dir``, in a network namespace of its
    own, reached on a free port of the host's 127.0.0.1; restartable on the same data and port.

    Args:
        base_dir: its folder (configuration, logs, etcd, rocksmq and segment files).
        detached: the server outlives this process, until ``base_dir/lifeline`` is removed
            (the benchmark's worker makes the store; later processes query it).
    """

    def __init__(self, base_dir: str, detached: bool = False) -> None:
        self.base_dir = os.path.abspath(base_dir)
        self.detached = detached
        self.port = 0
        """The host's port (on 127.0.0.1) that reaches the server's proxy."""
        self.pid = 0
        """The server binary's process id (0 while it is not running)."""
        self._holder: Optional[subprocess.Popen] = None

    @property
    def uri(self) -> str:
        """``http://127.0.0.1:<port>``, what ``vectordb.MilvusClient`` takes."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def lifeline(self) -> str:
        """The file whose removal stops a detached server."""
        return os.path.join(self.base_dir, "lifeline")

    def start(self, timeout: float = START_TIMEOUT_S) -> "MilvusServer":
        """Start the server (again, on the same data and port, after :meth:`kill`); returns self.

        Raises:
            Unavailable: no venv can be made, no private network namespace can be made, or the
                server did not come up in ``timeout`` s.
        """
        python = venv_python()
        os.makedirs(self.base_dir, exist_ok=True)
        if self._holder is None or self._holder.poll() is not None:
            self._open_namespace(python, timeout)
        if self.detached:
            open(self.lifeline, "w").close()
        reply = self._ask({"start": self.base_dir}, timeout)
        if "pid" not in reply:
            self.stop()
            raise Unavailable(f"Milvus did not start within {timeout:.0f} s: {reply.get('error', '')}\n"
                              f"{self.log_tail()}")
        self.pid = int(reply["pid"])
        if self.detached:  # the holder carries on alone (until the lifeline is removed)
            self._release()
        return self

    def _open_namespace(self, python: str, timeout: float) -> None:
        """Start the holder in a new network namespace, with a listening socket on the host's loopback."""
        unshare = shutil.which("unshare")
        if unshare is None:
            raise Unavailable("no 'unshare' command (util-linux) to make a private network namespace, and "
                              "Milvus 2.3 binds every interface: it runs only where none but loopback exists")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", self.port))  # the same port on a restart after stop()
        except OSError:
            listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        args = [python, os.path.abspath(__file__), "hold", "--listen-fd", str(listener.fileno())]
        if self.detached:
            args += ["--until-gone", self.lifeline]
        errors = []
        try:
            for flags in (["-rn"], ["-n"]) if os.geteuid() == 0 else (["-rn"],):
                log = open(os.path.join(self.base_dir, "holder.log"), "w")
                holder = subprocess.Popen([unshare, *flags, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=log, text=True, pass_fds=(listener.fileno(),),
                                          start_new_session=True)
                log.close()
                line = _read_line(holder, timeout)
                if line and json.loads(line).get("ready"):
                    self._holder, self.port = holder, listener.getsockname()[1]
                    return
                _end(holder)
                errors.append(f"unshare {' '.join(flags)}: {line or self._tail('holder.log', 500) or 'no answer'}")
        finally:
            listener.close()  # the holder has its own copy
        raise Unavailable("cannot make a private network namespace for Milvus 2.3 (it binds every interface, so "
                          "it runs only where none but loopback exists): " + "; ".join(errors))

    def _ask(self, request: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        """The holder's answer to ``request`` ({} if it went away or did not answer in ``timeout`` s)."""
        holder = self._holder
        if holder is None or holder.stdin is None:
            return {}
        try:
            holder.stdin.write(json.dumps(request) + "\n")
            holder.stdin.flush()
        except OSError:
            return {}
        line = _read_line(holder, timeout)
        return json.loads(line) if line else {}

    def kill(self) -> None:
        """SIGKILL the server binary (a crash: no flush, no goodbye); the namespace and the port stay."""
        if self._holder is not None and self.pid:
            if not self._ask({"kill": True}, 60).get("killed"):
                self._release(end=True)
        self.pid = 0

    def stop(self) -> None:
        """Stop the server (a kill: tests never need its data after this), its namespace, and, if
        detached, its lifeline."""
        self.kill()
        self._release(end=True)
        if self.detached and os.path.exists(self.lifeline):
            os.remove(self.lifeline)

    def _release(self, end: bool = False) -> None:
        """Close the holder's stdin (which stops an attached one) and, with ``end``, wait for it to exit."""
        holder, self._holder = self._holder, None
        if holder is None:
            return
        if end:
            _end(holder)
        else:
            for pipe in (holder.stdin, holder.stdout):
                if pipe is not None:
                    pipe.close()

    def _tail(self, name: str, chars: int) -> str:
        try:
            with open(os.path.join(self.base_dir, name), errors="replace") as fh:
                return fh.read()[-chars:].strip()
        except OSError:
            return ""

    def log_tail(self, chars: int = 1500) -> str:
        """The end of the holder's, the launcher's and the server's error output, for failure messages."""
        names = ("holder.log", "launcher.log", os.path.join("logs", "milvus-stderr.log"))
        return "\n".join(filter(None, (self._tail(name, chars) for name in names))) or "(no log)"

    def __enter__(self) -> "MilvusServer":
        return self.start() if not self.port else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _end(proc: subprocess.Popen) -> None:
    """Close ``proc``'s stdin (the holder then stops its server and exits), and kill its process
    group if it has not exited after 30 s."""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:
                pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """``proc``'s next stdout line, or "" if it exits or ``timeout`` passes first."""
    import selectors

    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline().strip()


# -- the holder (runs under VENV's Python, first in the namespace) -------------


def _loopback_up() -> None:
    """Bring the namespace's ``lo`` up (SIOCSIFFLAGS; no ``ip`` command needed)."""
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0))[:18])[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 0x1))  # SIOCSIFFLAGS, IFF_UP


def _relay(listener: socket.socket, target: Dict[str, int]) -> None:
    """Relay each connection to ``listener`` (on the host's loopback) to the proxy inside the namespace."""
    import threading

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    dst.shutdown(socket.SHUT_WR)  # a half close, passed on
                    return
                dst.sendall(data)
        except OSError:  # a reset (the server was killed): end both directions
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def connect() -> Optional[socket.socket]:
        """A connection to the proxy; while a server starts (its port known, not yet serving) this
        waits for it, as a client's connection attempt waits; None if no server is running."""
        while True:
            port = target.get("port", 0)
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError as exc:
                if not port or "pid" in target:
                    print(f"{time.strftime('%H:%M:%S')} relay: no server at {port or '-'}: {exc}", file=sys.stderr,
                          flush=True)
                    return None
            time.sleep(0.1)

    def splice(conn: socket.socket) -> None:
        upstream = connect()
        if upstream is None:  # no server (killed, not started): the client sees the connection closed
            conn.close()
            return
        upstream.settimeout(None)
        for s in (conn, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=pump, args=(upstream, conn), daemon=True)
        back.start()
        pump(conn, upstream)
        back.join()
        conn.close()
        upstream.close()

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=splice, args=(conn,), daemon=True).start()


def hold(listen_fd: int, until_gone: Optional[str]) -> int:
    """The namespace's first process: relays the host's port, and starts and kills servers on request."""
    import threading

    try:
        _loopback_up()
        listener = socket.socket(fileno=listen_fd)
    except OSError as exc:
        print(json.dumps({"error": f"cannot bring the namespace's loopback up: {exc}"}), flush=True)
        return 1
    target: Dict[str, int] = {}
    threading.Thread(target=_relay, args=(listener, target), daemon=True).start()
    print(json.dumps({"ready": True}), flush=True)
    launcher: Optional[subprocess.Popen] = None

    def reply(answer: Dict[str, Any]) -> None:
        try:
            print(json.dumps(answer), flush=True)
        except OSError:  # a detached holder's starter has gone
            pass

    def kill() -> None:
        nonlocal launcher
        if launcher is not None:
            if target.get("pid"):
                try:
                    os.kill(target["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                launcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
            launcher = None
        target.clear()

    for line in sys.stdin:
        request = json.loads(line)
        if "start" in request:
            kill()
            base = request["start"]
            args = [sys.executable, os.path.abspath(__file__), "serve", base]
            if until_gone:
                args += ["--until-gone", until_gone]
            with open(os.path.join(base, "launcher.log"), "a") as log:
                launcher = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
            # the proxy's port first (relayed to from then on: a client retrying while the server starts
            # connects as soon as it listens, as it would without the relay), then the binary's pid once it serves
            for _ in range(2):
                started = _read_line(launcher, START_TIMEOUT_S)
                if not started:
                    break
                target.update(json.loads(started))
            if "pid" in target:
                reply({"pid": target["pid"]})
            else:
                kill()
                reply({"error": "the launcher exited or timed out before the server served"})
        elif "kill" in request:
            kill()
            reply({"killed": True})
    # stdin closed: the starter has gone (or, detached, let go): stop, or wait for the lifeline's removal
    if until_gone and launcher is not None:
        launcher.wait()
    kill()
    return 0


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
    """Start Milvus on ``base``, print ``{"port"}`` then ``{"pid"}``, and stop it when told (module docstring)."""
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
    print(json.dumps({"port": ports["proxy_port"]}), flush=True)
    try:
        default_server.start()
    except Exception as exc:  # noqa: BLE001 - reported on stderr, the test reads the log
        print(f"milvus did not start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        default_server.stop()
        return 1
    binary = default_server.server_proc
    print(json.dumps({"pid": binary.pid}), flush=True)
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
    gone = sys.argv[sys.argv.index("--until-gone") + 1] if "--until-gone" in sys.argv else None
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        sys.exit(serve(sys.argv[2], gone))
    if len(sys.argv) >= 4 and sys.argv[1:3] == ["hold", "--listen-fd"]:
        sys.exit(hold(int(sys.argv[3]), gone))
    if sys.argv[1:] == ["provision"]:  # CI, ahead of the tests: make VENV (they make it too where it is missing)
        try:
            print(venv_python())
        except Unavailable as exc:
            print(exc, file=sys.stderr)
            sys.exit(1)
        sys.exit(0)
    print("usage: python milvus_server_helpers.py serve BASE_DIR [--until-gone PATH]\n"
          "       python milvus_server_helpers.py hold --listen-fd FD [--until-gone PATH]\n"
          "       python milvus_server_helpers.py provision", file=sys.stderr)
    sys.exit(2)
