"""vectordb.MilvusClient on a real Milvus server: Milvus 2.3.5 standalone (the ``milvus`` PyPI
package's binary: etcd, rocksmq, segment files) started by the test on loopback ports.

Milvus 2.3 is the oldest server vectordb supports: no nullable fields (records without a
document use the ``flagged`` layout), no expression templates (escaped literals), no
infix ``like``, and a server time tick between a write and the reads that must see it.

The server runs in a network namespace of its own, whose only interface is its loopback
(Milvus 2.3 binds every interface, and the suite's servers bind loopback only), reached
through one free port of the host's 127.0.0.1: see ``milvus_server_helpers.py``. It starts
in ~4 s (a restart after a kill ~10 s more), and is stopped, its namespace with it, at the
end of the module.

``VECTORDB_MILVUS_SERVER_TESTS`` picks what runs:

- unset or ``full`` (the default; ~2 min on 2 cores): the differential script and the
  hostile values of ``test_milvus_server.py``, writes without documents or metadata,
  read-your-writes without the Strong wait, a server killed mid-write (typed errors; every
  acknowledged write there after the restart), the rest of ``test_milvus_server.py``, a
  subset of the shared API tests (their ``client`` fixture is overridden below), a
  ``vectordb copy`` round trip and the stateful test, all on this server;
- ``focused`` (~1 min): the first five of those;
- ``0``: none.

The module is skipped, saying why, where no server can start: no venv with
``milvus==2.3.5`` can be made, or no private network namespace (``unshare -rn``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import test_add
import test_get
import test_milvus_copy as copy_tests
import test_milvus_server as lite
import test_query
import test_upsert_update
import vectordb
from conftest import in_new_process
from milvus_server_helpers import MilvusServer, Unavailable
from test_filters import any_col, ids_where  # noqa: F401  (any_col: a fixture)
from test_get import filled  # noqa: F401  (a fixture)
from test_stateful import VectorDBMachine
from vectordb.cli import main
from vectordb.config import Settings
from vectordb.errors import OutcomeUnknownError, ServerUnreachableError

MODE_ENV = "VECTORDB_MILVUS_SERVER_TESTS"
MODE = os.environ.get(MODE_ENV, "") or "full"
pytestmark = pytest.mark.skipif(MODE in ("0", "off", "no"), reason=f"{MODE_ENV}={MODE} turns these tests off")
full_only = pytest.mark.skipif(MODE == "focused", reason=f"{MODE_ENV}=focused runs only the focused tests")
STATE: Dict[str, str] = {}  # the server's URI, for the stateful machine (not a pytest test: no fixtures)


@pytest.fixture(scope="module")
def milvus(tmp_path_factory) -> Iterator[MilvusServer]:
    """A Milvus 2.3.5 server for this module, in a network namespace of its own, reached on a free
    port of the host's loopback; stopped at the end, its namespace with it."""
    server = MilvusServer(str(tmp_path_factory.mktemp("milvus-2.3")))
    try:
        server.start()
    except Unavailable as exc:
        pytest.skip(f"no Milvus 2.3 server can start here: {exc}")
    STATE["uri"] = server.uri
    yield server
    server.stop()
    shutil.rmtree(server.base_dir, ignore_errors=True)  # ~270 MB: etcd's WAL, rocksmq, segments


@pytest.fixture(scope="module")
def server(milvus: MilvusServer) -> Dict[str, Any]:
    """What test_milvus_server.py's tests expect of their server."""
    return {"uri": milvus.uri}


def _database(uri: str, name: str) -> str:
    """Milvus database ``name`` on the server (made if missing)."""
    from pymilvus import MilvusClient as Admin

    admin = Admin(uri)
    if name not in admin.list_databases():
        admin.create_database(name)
    admin.close()
    return name


@pytest.fixture(scope="module")
def shared_client(milvus: MilvusServer) -> Iterator[vectordb.Client]:
    """One MilvusClient (in a Milvus database of its own) for the module's API tests."""
    database = _database(milvus.uri, "api")
    with vectordb.MilvusClient(milvus.uri, db_name=database, settings=Settings(allow_reset=True)) as c:
        yield c


@pytest.fixture
def client(shared_client: vectordb.Client) -> Iterator[vectordb.Client]:
    """The shared client, emptied after each test (a Milvus database and its catalog take ~2 s to make)."""
    yield shared_client
    shared_client.reset()


# -- test_milvus_server.py's checks, on this server ----------------------------


def test_a_persistent_client_script_runs_unchanged(server, tmp_path):
    lite.test_a_persistent_client_script_runs_unchanged_on_a_milvus_server(server, tmp_path)


def test_hostile_keys_ids_and_values_filter_exactly(server):
    lite.test_hostile_keys_ids_and_values_filter_exactly(server)


@full_only
def test_another_process_rebuilds_the_embedding_function(server):
    lite.test_another_process_rebuilds_the_embedding_function(server)


@full_only
def test_a_collection_dropped_behind_vectordbs_back_is_a_typed_error(server):
    lite.test_a_collection_dropped_behind_vectordbs_back_is_a_typed_error(server)


# -- what Milvus 2.3 needs of vectordb ----------------------------------------


def test_writes_without_documents_or_metadata_read_back_exactly(client):
    backend = client._backend
    assert backend.features.version.startswith("v2.3")
    assert (backend.features.nullable, backend.features.templates, backend.features.infix_like) == (False,) * 3
    col = client.create_collection("no-docs", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]])  # neither documents nor metadata
    assert backend.layout("vdb_" + col.id.replace("-", "")).kind == "flagged"  # no nullable fields on 2.3
    col.add(ids=["c", "d", "e"], embeddings=[[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]],
            documents=["", None, "text"], metadatas=[None, {"k": 1}, None])
    got = col.get(include=["documents", "metadatas"])
    assert got["ids"] == ["a", "b", "c", "d", "e"]
    assert got["documents"] == [None, None, "", None, "text"]  # "" is a document; None is none
    assert got["metadatas"] == [None, None, None, {"k": 1}, None]
    col.update(ids=["c"], metadatas=[{"k": 2}])
    col.upsert(ids=["a"], embeddings=[[1.0, 0.0]], documents=["now one"])
    assert col.get(ids=["a", "c"], include=["documents", "metadatas"])["documents"] == ["now one", ""]
    assert col.get(where_document={"$contains": "o"})["ids"] == ["a"]
    assert col.get(where_document={"$not_contains": "x"})["ids"] == ["a", "b", "c", "d"]  # none: not containing
    q = col.query(query_embeddings=[[1.0, 0.1]], n_results=5, where={"k": {"$gte": 1}})
    assert q["ids"] == [["c", "d"]] and q["documents"] == [["", None]] and q["metadatas"] == [[{"k": 2}, {"k": 1}]]


def _median_ms(fn, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def test_reads_see_this_clients_writes_and_do_not_wait_otherwise(client, milvus):
    col = client.create_collection("ryw", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    rng = np.random.default_rng(5)
    col.add(ids=[f"r{i}" for i in range(300)], embeddings=rng.normal(size=(300, 16)),
            documents=[f"doc {i}" for i in range(300)], metadatas=[{"i": i % 7} for i in range(300)])
    for i in range(4):  # each read right after a write sees it (it waits for that write only)
        vector = rng.normal(size=16)
        col.upsert(ids=[f"new{i}"], embeddings=[vector], documents=[f"new {i}"], metadatas=[{"i": 99}])
        assert col.get(ids=[f"new{i}"], include=["documents"])["documents"] == [f"new {i}"]
        assert col.query(query_embeddings=[vector], n_results=1)["ids"] == [[f"new{i}"]]
        assert col.count() == 301  # 300, each round one new and one deleted
        assert col.delete(ids=[f"r{i}"]) == {"deleted": 1}
        assert col.get(ids=[f"r{i}"])["ids"] == [] and col.count() == 300
        assert col.get(where={"i": 99})["ids"] == [f"new{j}" for j in range(i + 1)]
    time.sleep(0.5)  # the last write is past the server's time tick: nothing left to wait for
    query = rng.normal(size=(1, 16))
    with vectordb.MilvusClient(milvus.uri, db_name="api", consistency="strong") as strong_client:
        strong = strong_client.get_collection("ryw")
        session = [_median_ms(lambda: col.query(query_embeddings=query, n_results=10), 9)]
        waits = _median_ms(lambda: strong.query(query_embeddings=query, n_results=10), 9)
        session.append(_median_ms(lambda: col.query(query_embeddings=query, n_results=10), 9))
    # Strong waits for the next time tick (200 ms apart): ~100 ms on average; Session does not wait
    assert max(session) + 40 < waits, (session, waits)


@full_only
def test_another_process_sees_what_this_one_wrote(client, milvus):
    col = client.create_collection("seen", embedding_function=None)
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], documents=[None, "b doc"])
    col.delete(ids=["a"])
    got = in_new_process(f"""
        import json, vectordb
        col = vectordb.MilvusClient({milvus.uri!r}, db_name="api").get_collection("seen")
        print(json.dumps(col.get(include=["documents"])))
    """)
    assert got["ids"] == ["b"] and got["documents"] == ["b doc"]


def test_a_server_killed_mid_write_gives_typed_errors_and_keeps_every_acknowledged_write(client, milvus):
    col = client.create_collection("crash", embedding_function=None)
    rng = np.random.default_rng(9)
    acknowledged: List[str] = []
    failures: List[BaseException] = []

    def write() -> None:
        for i in range(10_000):
            ids = [f"w{i}-{j}" for j in range(50)]
            try:
                col.add(ids=ids, embeddings=rng.normal(size=(50, 8)),
                        documents=[None if j % 3 else f"doc {i} {j}" for j in range(50)],
                        metadatas=[{"i": i} if j % 2 else None for j in range(50)])
            except BaseException as exc:  # noqa: BLE001 - the test checks its type
                failures.append(exc)
                return
            acknowledged.extend(ids)

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 400 and writer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    milvus.kill()  # SIGKILL, while the writer is sending
    writer.join(timeout=120)
    assert not writer.is_alive() and len(failures) == 1, failures
    assert isinstance(failures[0], (ServerUnreachableError, OutcomeUnknownError)), repr(failures[0])
    for read in (col.count, lambda: col.query(query_embeddings=[[0.0] * 8], n_results=3)):
        with pytest.raises((ServerUnreachableError, OutcomeUnknownError), match="127.0.0.1"):
            read()

    milvus.start()  # the same folder, the same ports
    with vectordb.MilvusClient(milvus.uri, db_name="api") as after:
        stored = after.get_collection("crash").get(include=["documents", "metadatas"])
    by_id = dict(zip(stored["ids"], zip(stored["documents"], stored["metadatas"])))
    assert set(acknowledged) <= set(by_id), "an acknowledged write was lost"
    for record_id in acknowledged:
        i, j = (int(n) for n in record_id[1:].split("-"))
        assert by_id[record_id] == (None if j % 3 else f"doc {i} {j}", {"i": i} if j % 2 else None)
    assert col.count() == len(by_id)  # the client from before the crash works again


# -- a representative subset of the shared API tests (full mode) --------------


@full_only
@pytest.mark.parametrize("space", ["l2", "cosine", "ip"])
def test_query_with_filter_equals_brute_force(client, space):
    test_query.test_query_with_filter_equals_brute_force(client, space)


@full_only
def test_query_after_deletes_and_updates(client):
    test_query.test_query_after_deletes_and_updates(client, "cosine")


@full_only
def test_query_with_few_or_no_filtered_matches(client):
    test_query.test_n_results_larger_than_filtered_matches(client)
    client.reset()
    test_query.test_query_no_match(client)


@full_only
def test_get_where_limit_offset_and_ids(filled):
    test_get.test_get_where(filled)
    test_get.test_get_limit_offset_with_where(filled)
    test_get.test_get_ids_and_where(filled)


@full_only
def test_get_unicode_and_odd_strings(collection):
    test_get.test_get_unicode_and_odd_strings(collection)


@full_only
def test_add_and_upsert_semantics(client, collection, caplog):
    test_add.test_add_existing_id_is_left_unchanged_and_warned(collection, caplog)
    test_add.test_large_batch_keeps_order(client.create_collection("big", embedding_function=None))
    test_upsert_update.test_upsert_of_a_new_id_with_only_none_values_stores_no_metadata(
        client.create_collection("nones", embedding_function=None))


@full_only
def test_filters_and_deletes_by_filter(any_col):  # noqa: F811
    assert ids_where(any_col, where={"$or": [{"year": {"$lt": 2020.5}}, {"flag": True}]}) == ["a", "c", "g"]
    assert ids_where(any_col, where={"genre": {"$nin": ["sf"]}}, where_document={"$contains": "Cat"}) == ["g"]
    any_col.delete(where={"year": {"$gte": 2020}})
    assert ids_where(any_col) == ["a", "e", "f", "g"]


@full_only
def test_copy_round_trip_store_to_the_server_to_store(milvus, tmp_path, capsys):
    """test_milvus_copy.py's round trip (documents and metadata that are None included) through this server."""
    n = 1100  # more than one write batch
    rng = np.random.default_rng(7)
    with vectordb.PersistentClient(str(tmp_path / "src")) as src:
        col = src.create_collection("copied.v1", metadata={"hnsw:space": "cosine", "owner": "me"},
                                    embedding_function=None)
        col.add(ids=[f"id-{i}'" for i in range(n)], embeddings=rng.normal(size=(n, 8)).astype(np.float32),
                metadatas=[None if i % 7 == 0 else {"i": i, "s": f"'{i}\"", "l": [i, i + 1]} for i in range(n)],
                documents=[None if i % 5 == 0 else ("" if i % 5 == 1 else f"doc {i} 50% \\") for i in range(n)])
        want = copy_tests._everything(src, "copied.v1")
    target = "milvus://" + milvus.uri.split("://", 1)[1]
    for _ in range(2):  # a rerun changes nothing
        assert main(["copy", "--from", str(tmp_path / "src"), "--to", target, "--no-progress", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == [{"name": "copied.v1", "records": n}]
    assert main(["copy", "--from", target, "--to", str(tmp_path / "back"), "--no-progress", "copied.v1"]) == 0
    with vectordb.PersistentClient(str(tmp_path / "back")) as back:
        got = copy_tests._everything(back, "copied.v1")
    assert got[:4] == want[:4]
    np.testing.assert_array_equal(got[4], want[4])
    assert got[5:] == want[5:]


class RealServerMachine(VectorDBMachine):
    """test_stateful.py's machine on this server (``BACKEND = "milvus"``: no BM25 rule)."""

    BACKEND = "milvus"

    def _open(self) -> None:
        self.opened = contextlib.ExitStack()
        database = _database(STATE["uri"], "stateful")
        self.client = self.opened.enter_context(
            vectordb.MilvusClient(STATE["uri"], db_name=database, settings=Settings(allow_reset=True)))

    def teardown(self) -> None:
        self.client.reset()
        super().teardown()


RealServerMachine.TestCase.settings = settings(
    max_examples=3, stateful_step_count=15, deadline=None, suppress_health_check=list(HealthCheck))
TestVectorDBOnMilvus23 = full_only(pytest.mark.usefixtures("milvus")(RealServerMachine.TestCase))
