"""HTTP faults: a request that never reached the server is told apart from one whose answer
was lost, and every write gives the same result when sent again.

A real TCP proxy stands between the client and a real server: it forwards each request
and, when told to, withholds the server's answer (the client's read times out) or drops
the connection after the server has answered. The write was applied all the same; the
client must say "outcome unknown", and sending the same write again must change nothing.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Dict, List

import numpy as np
import pytest

import vectordb
from server_helpers import free_port, serving_in_thread
from vectordb.errors import OutcomeUnknownError, ServerUnreachableError


class AnswerLosingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; in ``mode`` "withhold" or "drop" it loses the answers."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stop = threading.Event()
        self._held: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
        self._pipe(upstream, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if answers and self.mode == "withhold":
                    self._held.append(sink)  # keep the connection open, say nothing
                    continue
                if answers and self.mode == "drop":
                    sink.shutdown(socket.SHUT_RDWR)
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            if sink not in self._held:
                for s in (source, sink):
                    try:
                        s.close()
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        for s in self._held:
            s.close()


@pytest.fixture
def served(tmp_path):
    """(direct client, proxied client with a short timeout, proxy) over one real server."""
    store = vectordb.PersistentClient(str(tmp_path / "db"))
    with serving_in_thread(store) as url:
        proxy = AnswerLosingProxy(int(url.rsplit(":", 1)[1]))
        direct = vectordb.HttpClient(url)
        proxied = vectordb.HttpClient(proxy.url, timeout=1.0)
        yield direct, proxied, proxy
        proxied.close()
        direct.close()
        proxy.close()
    store.close()


def _state(col: Any) -> Dict[str, Any]:
    got = col.get(include=["embeddings", "metadatas", "documents"])
    return {**got, "embeddings": got["embeddings"].tolist()}


WRITES = {
    "add": lambda col: col.add(ids=["n1", "n2"], embeddings=[[0.1, 0.2], [0.3, 0.4]], metadatas=[{"k": 1}, {"k": 2}]),
    "upsert": lambda col: col.upsert(ids=["a", "n3"], embeddings=[[0.5, 0.5], [0.9, 0.1]], metadatas=[{"k": 7}, None]),
    "update": lambda col: col.update(ids=["b"], embeddings=[[0.2, 0.8]], metadatas={"k": None, "tag": "x"},
                                     documents="changed"),
    "delete": lambda col: col.delete(where={"k": 1}),
}


@pytest.mark.parametrize("mode", ["withhold", "drop"])
@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_lost_answer_is_outcome_unknown_and_the_write_is_safe_to_send_again(served, mode, write):
    direct, proxied, proxy = served
    col = direct.create_collection("faults", embedding_function=None)
    col.add(ids=["a", "b", "c"], embeddings=np.eye(2)[[0, 1, 0]], metadatas=[{"k": 1}, {"k": 2}, {"k": 3}],
            documents=["one", "two", "three"])
    via_proxy = proxied.get_collection("faults")
    proxy.mode = mode
    with pytest.raises(OutcomeUnknownError, match="may have been applied") as raised:
        WRITES[write](via_proxy)
    assert not isinstance(raised.value, ServerUnreachableError)
    applied = _state(col)  # the server applied it although the client never heard back
    expected = direct.create_collection("expected", embedding_function=None)
    expected.add(ids=["a", "b", "c"], embeddings=np.eye(2)[[0, 1, 0]], metadatas=[{"k": 1}, {"k": 2}, {"k": 3}],
                 documents=["one", "two", "three"])
    WRITES[write](expected)
    assert applied == _state(expected)
    proxy.mode = "pass"
    WRITES[write](via_proxy)  # the retry
    assert _state(col) == applied


def test_a_server_that_is_not_there_is_unreachable_and_nothing_was_sent():
    client = vectordb.HttpClient("127.0.0.1", free_port(), timeout=2)
    with pytest.raises(ServerUnreachableError, match="was not sent"):
        client.list_collections()
