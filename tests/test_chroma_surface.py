"""Chroma 1.x's client surface, with Chroma's meaning, on memory, disk and HTTP.

``configuration=`` and ``Collection.configuration``; results keyed ``included`` with
embeddings as float64 numpy arrays (the shapes and dtypes chromadb 1.5.9 returns);
``delete`` returning ``{"deleted": n}`` and taking ``limit``; ``query(ids=...)``;
``list_collections(limit, offset)``; ``get_version``, ``get_max_batch_size``,
``get_collection_by_id``; ``reset`` (opt-in); ``settings`` / ``tenant`` / ``database``;
``None`` documents; ``embedding_function=None`` for an existing collection. The
expected values were checked against the chromadb 1.5.9 oracle where Chroma defines them.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import vectordb
from conftest import BACKENDS, CountingEmbedding, backend_client, snapshot
from vectordb.config import Settings
from vectordb.errors import (
    CollectionNotFoundError,
    EmbeddingFunctionConflictError,
    InvalidArgumentError,
    ResetDisabledError,
)

HNSW = {"space": "cosine", "ef_construction": 64, "ef_search": 32, "max_neighbors": 8}


@pytest.fixture
def filled(collection):
    collection.add(ids=[f"r{i}" for i in range(10)], embeddings=[[float(i), 1.0] for i in range(10)],
                   metadatas=[{"i": i, "even": i % 2 == 0} for i in range(10)])
    return collection


# -- configuration -------------------------------------------------------------------


def test_configuration_sets_the_index_and_stays_out_of_the_metadata(client):
    col = client.create_collection("conf", configuration={"hnsw": HNSW}, embedding_function=None)
    for handle in (col, client.get_collection("conf"), client.list_collections()[0]):
        assert handle.metadata is None  # as in Chroma: configuration is not metadata
        assert handle.configuration == {"hnsw": HNSW, "spann": None, "embedding_function": None}
        assert handle.get_model()["metadata"] is None
    col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [1.0, 1.0]])
    got = col.query(query_embeddings=[[2.0, 0.0]], n_results=2, include=["distances"])
    np.testing.assert_allclose(got["distances"][0], [0.0, 1 - 1 / np.sqrt(2)], atol=1e-6)  # cosine


def test_configuration_defaults_and_metadata_spelling(client):
    plain = client.create_collection("plain", embedding_function=None)
    assert plain.configuration["hnsw"] == {"space": "l2", "ef_construction": 100, "ef_search": 50, "max_neighbors": 16}
    meta = client.create_collection("meta", metadata={"hnsw:space": "ip", "hnsw:M": 5}, embedding_function=None)
    assert meta.configuration["hnsw"] == {"space": "ip", "ef_construction": 100, "ef_search": 50, "max_neighbors": 5}
    both = client.create_collection("both", metadata={"hnsw:space": "ip", "owner": "me"},
                                    configuration={"hnsw": {"space": "ip", "ef_search": 7}}, embedding_function=None)
    assert both.metadata == {"hnsw:space": "ip", "owner": "me"}  # what the metadata gave, as in Chroma
    assert both.configuration["hnsw"] == {"space": "ip", "ef_construction": 100, "ef_search": 7, "max_neighbors": 16}
    ignored = client.create_collection("tuned", configuration={"hnsw": {"sync_threshold": 10, "resize_factor": 1.5,
                                                                         "num_threads": 2, "batch_size": 5}},
                                       embedding_function=None)
    assert ignored.metadata is None and ignored.configuration["hnsw"]["space"] == "l2"


def test_spann_configuration_is_taken_as_chromas_single_node_takes_it(client):
    col = client.create_collection("spann", configuration={"spann": {"space": "ip", "search_nprobe": 8, "ef_search": 9}},
                                   embedding_function=None)
    assert col.configuration["hnsw"]["space"] == "ip" and col.configuration["spann"] is None  # an HNSW index
    assert col.configuration["hnsw"]["ef_search"] == 50  # the other SPANN settings have no effect
    plain = client.create_collection("spann2", configuration={"spann": {"write_nprobe": 4}}, embedding_function=None)
    assert plain.configuration["hnsw"]["space"] == "l2"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(metadata={"hnsw:space": "ip"}, configuration={"hnsw": {"space": "cosine"}}),
         r"configuration\['hnsw'\]\['space'\] = 'cosine' conflicts with metadata\['hnsw:space'\] = 'ip'"),
        (dict(metadata={"hnsw:M": 8}, configuration={"hnsw": {"max_neighbors": 9}}), r"conflicts with metadata\['hnsw:M'\]"),
        (dict(configuration={"hnsw": {"space": "manhattan"}}), r"configuration\['hnsw'\]\['space'\]: expected one of"),
        (dict(configuration={"hnsw": {"ef_search": 0}}), r"configuration\['hnsw'\]\['ef_search'\]: expected a positive int"),
        (dict(configuration={"hnsw": {"ef_search": "7"}}), r"ef_search'\]: expected a positive int"),
        (dict(configuration={"hnsw": {"foo": 1}}), r"configuration\['hnsw'\]\['foo'\]: unknown setting"),
        (dict(configuration={"hnsw": []}), r"configuration\['hnsw'\]: expected a dict"),
        (dict(configuration={"spann": {"space": "l2"}, "hnsw": {}}), r"configuration: give 'hnsw' or 'spann', not both"),
        (dict(configuration={"spann": {"nprobe": 2}}), r"configuration\['spann'\]\['nprobe'\]: unknown setting"),
        (dict(configuration={"spann": {"space": "dot"}}), r"configuration\['spann'\]\['space'\]: expected one of"),
        (dict(configuration={"bogus": {}}), r"configuration: unknown key 'bogus'"),
        (dict(configuration="cosine"), r"configuration: expected a dict, got str"),
    ],
)
def test_bad_configuration_is_refused_and_creates_nothing(client, kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        client.create_collection("conf", embedding_function=None, **kwargs)
    assert client.count_collections() == 0


def test_configuration_embedding_function_and_get_or_create(client):
    fn = CountingEmbedding()
    col = client.create_collection("withfn", configuration={"embedding_function": fn, "hnsw": {"space": "ip"}})
    assert col.embedding_function is fn and col.configuration["embedding_function"] is fn
    with pytest.raises(InvalidArgumentError, match="name different functions"):
        client.create_collection("other", configuration={"embedding_function": fn}, embedding_function=CountingEmbedding())
    again = client.get_or_create_collection("withfn", configuration={"hnsw": {"space": "l2"}}, embedding_function=fn)
    assert again.id == col.id and again.configuration["hnsw"]["space"] == "ip"  # an existing collection is kept


def test_modify_configuration_changes_ef_search_only(client):
    col = client.create_collection("conf", configuration={"hnsw": HNSW}, metadata={"owner": "me"},
                                   embedding_function=None)
    col.modify(configuration={"hnsw": {"ef_search": 77}})
    assert client.get_collection("conf").configuration["hnsw"] == {**HNSW, "ef_search": 77}
    assert client.get_collection("conf").metadata == {"owner": "me"}
    for key, value in (("space", "l2"), ("max_neighbors", 4), ("ef_construction", 10)):
        with pytest.raises(InvalidArgumentError, match=rf"\['{key}'\]: cannot change it once the collection exists"):
            col.modify(configuration={"hnsw": {key: value}})
    assert client.get_collection("conf").configuration["hnsw"] == {**HNSW, "ef_search": 77}


# -- results ----------------------------------------------------------------------


def test_results_are_keyed_included_with_numpy_embeddings(filled):
    got = filled.get(ids=["r3", "r1"], include=["embeddings", "documents"])
    assert got["included"] == ["embeddings", "documents"] and "include" not in got
    assert isinstance(got["embeddings"], np.ndarray)
    assert got["embeddings"].dtype == np.float64 and got["embeddings"].shape == (2, 2)
    np.testing.assert_array_equal(got["embeddings"], [[3.0, 1.0], [1.0, 1.0]])
    found = filled.query(query_embeddings=[[0.0, 1.0], [9.0, 1.0]], n_results=3, include=["embeddings", "distances"])
    assert found["included"] == ["embeddings", "distances"]
    assert isinstance(found["embeddings"], list) and len(found["embeddings"]) == 2
    assert all(e.dtype == np.float64 and e.shape == (3, 2) for e in found["embeddings"])
    np.testing.assert_array_equal(found["embeddings"][1][0], [9.0, 1.0])
    assert filled.get(include=[])["included"] == []


def test_empty_results_have_chromas_shapes(filled):
    got = filled.get(ids=["nope"], include=["embeddings"])
    assert got["embeddings"].shape == (0,) and got["embeddings"].dtype == np.float64
    found = filled.query(query_embeddings=[0.0, 1.0], where={"i": 99}, include=["embeddings"])
    assert found["ids"] == [[]] and found["embeddings"][0].shape == (0,)


def test_documents_may_hold_none(collection):
    collection.add(ids=["a", "b"], embeddings=[[1.0], [2.0]], documents=[None, "hello"])
    assert collection.get()["documents"] == [None, "hello"]
    collection.upsert(ids=["b"], embeddings=[[3.0]], documents=[None])  # None keeps the stored document
    assert collection.get(ids="b")["documents"] == ["hello"]
    assert collection.get(where_document={"$not_contains": "hel"})["ids"] == ["a"]
    with pytest.raises(InvalidArgumentError, match=r"add: new id 'c' needs an embedding or a document"):
        collection.add(ids=["c"], documents=[None])


# -- delete and query(ids) ------------------------------------------------------------


def test_delete_returns_how_many_it_removed(filled):
    assert filled.delete(ids=["r1", "r2", "missing"]) == {"deleted": 2}
    assert filled.delete(where={"i": {"$gte": 8}}) == {"deleted": 2}
    assert filled.delete(ids=["r1"]) == {"deleted": 0}
    assert filled.count() == 6


def test_delete_limit_takes_the_first_matches(filled):
    assert filled.delete(where={"even": True}, limit=2) == {"deleted": 2}
    assert filled.get(where={"even": True})["ids"] == ["r4", "r6", "r8"]
    assert filled.delete(where={"even": True}, limit=0) == {"deleted": 0}
    assert filled.delete(ids=["r9", "r7", "r5"], where={"even": False}, limit=2) == {"deleted": 2}
    assert filled.get(where={"even": False})["ids"] == ["r1", "r3", "r5"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ids=["r1"], limit=1), "limit can only be specified when where or where_document is given"),
        (dict(limit=1), "give ids, where or where_document"),
        (dict(where={"even": True}, limit=-1), r"limit: expected an int >= 0"),
        (dict(where={"even": True}, limit="2"), r"limit: expected an int >= 0"),
    ],
)
def test_bad_delete_limit_changes_nothing(filled, kwargs, match):
    before = snapshot(filled)
    with pytest.raises(InvalidArgumentError, match=match):
        filled.delete(**kwargs)
    assert snapshot(filled) == before


@pytest.mark.parametrize("mode, args", [("vector", dict(query_embeddings=[0.0, 1.0])),
                                        ("text", dict(query_texts="r")),
                                        ("hybrid", dict(query_texts="r", query_embeddings=[0.0, 1.0]))])
def test_query_ids_not_stored_raise_as_in_chroma(filled, mode, args):
    """chromadb 1.5.9 raises ``Error finding id`` for an id that is not stored (its
    test_query_id_filtering_e2e checks for those words), a deleted one included."""
    filled.delete(ids=["r1"])
    for ids, match in ((["r7", "missing"], r"ids: Error finding id 'missing': collection 'test-collection' holds no record"),
                       (["r1"], r"Error finding id 'r1'"),
                       (["x", "r2", "y", "x"], r"Error finding id 'x' \(and 1 more\)")):
        with pytest.raises(InvalidArgumentError, match=match):
            filled.query(mode=mode, ids=ids, **args)


def test_query_ids_restricts_the_candidates(filled):
    got = filled.query(query_embeddings=[0.0, 1.0], n_results=10, ids=["r7", "r4", "r4"], include=["distances"])
    assert got["ids"] == [["r4", "r7"]] and got["distances"] == [[16.0, 49.0]]
    both = filled.query(query_embeddings=[[0.0, 1.0], [9.0, 1.0]], n_results=2, ids=["r7", "r4", "r6"],
                        where={"even": True}, include=[])
    assert both["ids"] == [["r4", "r6"], ["r6", "r4"]]
    assert filled.query(query_embeddings=[0.0, 1.0], ids="r9", include=[])["ids"] == [["r9"]]
    assert filled.query(query_embeddings=[[0.0, 1.0]] * 2, ids=[], include=[])["ids"] == [[], []]  # as Chroma: none
    with pytest.raises(InvalidArgumentError, match=r"ids: expected at least one id"):
        filled.get(ids=[])  # as Chroma, which refuses an empty list here


# -- the client ---------------------------------------------------------------------


def test_list_collections_limit_and_offset(client):
    names = [f"col{i}" for i in range(5)]
    for name in names:
        client.create_collection(name, embedding_function=None)
    listed = lambda **kw: [c.name for c in client.list_collections(**kw)]  # noqa: E731
    assert listed() == names and listed(limit=2) == names[:2] and listed(limit=2, offset=1) == names[1:3]
    assert listed(offset=4) == names[4:] and listed(limit=0) == [] and listed(offset=9) == []
    for bad in ({"limit": -1}, {"offset": -1}, {"limit": "2"}):
        with pytest.raises(InvalidArgumentError, match=next(iter(bad))):
            client.list_collections(**bad)


def test_version_batch_size_and_collection_by_id(client):
    assert client.get_version() == vectordb.__version__
    assert isinstance(client.get_max_batch_size(), int) and client.get_max_batch_size() >= 1000
    col = client.create_collection("byid", embedding_function=None)
    assert client.get_collection_by_id(col.id).name == "byid"
    assert client.get_collection_by_id(uuid.UUID(col.id)).id == col.id
    missing = str(uuid.uuid4())
    with pytest.raises(vectordb.errors.NotFoundError, match=rf"^Collection \[{missing}\] does not exist$"):
        client.get_collection_by_id(missing)
    with pytest.raises(InvalidArgumentError, match="expected a collection id"):
        client.get_collection_by_id("nope")


def test_missing_collection_has_chromas_words(client):
    for call in (lambda: client.get_collection("missing"), lambda: client.delete_collection("missing")):
        with pytest.raises(CollectionNotFoundError, match=r"^Collection \[missing\] does not exist$"):
            call()


def test_reset_is_refused_without_allow_reset(client):
    client.create_collection("kept", embedding_function=None)
    with pytest.raises(ResetDisabledError, match=r"Settings\(allow_reset=True\)") as err:
        client.reset()
    assert isinstance(err.value, vectordb.errors.AuthorizationError) and err.value.http_status == 403
    assert [c.name for c in client.list_collections()] == ["kept"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reset_deletes_every_collection(tmp_path, backend):
    with backend_client(backend, str(tmp_path), settings=Settings(allow_reset=True)) as client:
        col = client.create_collection("one", embedding_function=None)
        col.add(ids="a", embeddings=[1.0])
        client.create_collection("two", embedding_function=None)
        assert client.reset() is True
        assert client.list_collections() == [] and client.count_collections() == 0
        with pytest.raises(CollectionNotFoundError):
            col.count()
        fresh = client.create_collection("one", embedding_function=None)
        assert fresh.count() == 0


def test_a_server_refuses_reset_unless_started_to_allow_it(tmp_path):
    with backend_client("http", str(tmp_path), settings=Settings(allow_reset=True), server_settings=Settings()) as client:
        client.create_collection("kept", embedding_function=None)
        with pytest.raises(ResetDisabledError, match="this server refuses reset"):
            client.reset()
        assert client.count_collections() == 1


def test_embedding_function_none_for_an_existing_collection(client):
    fn = CountingEmbedding()
    client.create_collection("docs", embedding_function=fn).add(ids="a", documents="hello")
    for handle in (client.get_collection("docs", embedding_function=None),
                   client.get_or_create_collection("docs", embedding_function=None)):
        assert handle.embedding_function is None  # as Chroma: the handle has no function, and no conflict
        assert handle.query(query_embeddings=[1.0, 0.0, 0.0, 0.0], n_results=1, include=[])["ids"] == [["a"]]
        with pytest.raises(InvalidArgumentError, match="has no embedding function"):
            handle.query(query_texts=["hello"])
    assert client.get_collection("docs", embedding_function=fn).embedding_function is fn
    with pytest.raises(EmbeddingFunctionConflictError):
        client.get_collection("docs", embedding_function=lambda input: [[1.0]] * len(input))


# -- settings, tenant, database -------------------------------------------------------


def test_settings_tenant_and_database_are_accepted(tmp_path):
    settings = Settings(anonymized_telemetry=False, allow_reset=True, chroma_server_host="x", migrations="apply")
    with vectordb.Client(settings) as client:  # positional, as chromadb.Client(Settings())
        assert client.get_settings() is settings and client.path is None
        assert (client.tenant, client.database) == ("default_tenant", "default_database")
        client.set_tenant("default_tenant", "default_database")
        client.set_database("default_database")
    with vectordb.EphemeralClient(settings=Settings(), tenant="default_tenant", database="default_database") as client:
        assert client.count_collections() == 0
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path, Settings(persist_directory="/elsewhere"), "default_tenant") as client:
        assert client.path == path  # the path wins over persist_directory
    with vectordb.Client(Settings(is_persistent=True, persist_directory=str(tmp_path / "viaset"))) as client:
        assert client.path == str(tmp_path / "viaset")
        client.create_collection("kept", embedding_function=None)
    with vectordb.PersistentClient(str(tmp_path / "viaset")) as client:
        assert [c.name for c in client.list_collections()] == ["kept"]
    assert settings.chroma_server_host == "x"


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: vectordb.Client(tenant="acme"), r"tenant: vectordb has one tenant, 'default_tenant'; got 'acme'"),
        (lambda: vectordb.EphemeralClient(database="other"), r"database: vectordb has one database"),
        (lambda: vectordb.PersistentClient("./never", tenant="acme"), r"tenant: vectordb has one tenant"),
        (lambda: vectordb.HttpClient("127.0.0.1", 9, database="other"), r"database: vectordb has one database"),
        (lambda: vectordb.Client("./db"), r"settings: expected vectordb.config.Settings, got str .*PersistentClient"),
        (lambda: Settings(allow_rest=True), r"Settings: unknown field 'allow_rest'"),
        (lambda: Settings(allow_reset="yes"), r"Settings.allow_reset: expected a bool"),
        (lambda: vectordb.EphemeralClient(Settings(is_persistent=True)), r"use PersistentClient"),
    ],
)
def test_bad_settings_tenant_or_database(tmp_path, monkeypatch, make, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgumentError, match=match):
        make()
    assert not (tmp_path / "never").exists()  # refused before anything was opened


def test_set_tenant_and_database_refuse_others():
    with vectordb.Client() as client:
        with pytest.raises(InvalidArgumentError, match="tenant"):
            client.set_tenant("acme")
        with pytest.raises(InvalidArgumentError, match="database"):
            client.set_database("other")


# -- second round: results, handles, errors and defaults in Chroma's shape -------------


def test_results_carry_uris_and_data_as_none(filled):
    got = filled.get(ids=["r1"])
    assert got["uris"] is None and got["data"] is None and "uris" not in got["included"]
    assert filled.peek(1)["uris"] is None
    found = filled.query(query_embeddings=[1.0, 1.0], n_results=1)
    assert found["uris"] is None and found["data"] is None


def test_results_of_text_queries_carry_uris_and_data(local_client):
    col = local_client.create_collection("texts", embedding_function=None)
    col.add(ids=["a"], embeddings=[[1.0, 0.0]], documents=["a cat"])
    found = col.query(query_texts=["cat"], mode="text", n_results=1)
    assert found["ids"] == [["a"]] and found["uris"] is None and found["data"] is None


def test_a_handle_to_a_deleted_collection_has_chromas_words(client):
    col = client.create_collection("gone", embedding_function=None)
    client.delete_collection("gone")
    for call in (col.count, lambda: col.add(ids="a", embeddings=[1.0]), lambda: col.get(), lambda: col.modify(name="new")):
        with pytest.raises(vectordb.errors.NotFoundError, match=r"^Collection \[.+\] does not exist"):
            call()  # the name (over HTTP the server names it by its id)


def test_error_message_is_a_string_that_may_be_called(client):
    with pytest.raises(CollectionNotFoundError) as err:
        client.get_collection("missing")
    assert err.value.message == "Collection [missing] does not exist" == err.value.message()  # Chroma calls it
    assert isinstance(err.value.message, str)


@pytest.mark.parametrize("call, match", [
    (lambda c: c.add(ids=[1], embeddings=[[1.0, 0.0]]), r"ids\[0\]: expected str, got int 1 \(an ID is a string\)"),
    (lambda c: c.get(where_document={"$lt": 2}), r"unknown operator '\$lt' \(a where document takes one of"),
    (lambda c: c.get(where_document={"$contains": 2}), r"expected a string, got int 2 \(where document operators"),
])
def test_messages_in_chromas_shape(collection, call, match):
    with pytest.raises(InvalidArgumentError, match=match):
        call(collection)


def test_empty_collection_metadata_is_refused_as_in_chroma(client):
    for call in (lambda: client.create_collection("empty", metadata={}),
                 lambda: client.get_or_create_collection("empty", metadata={})):
        with pytest.raises(InvalidArgumentError, match=r"metadata: expected a non-empty dict or None, got \{\}"):
            call()
    assert client.count_collections() == 0
    col = client.create_collection("cleared", metadata={"a": 1}, embedding_function=None)
    col.modify(metadata={})  # vectordb's way to clear it, kept
    assert col.metadata is None


def test_get_model_in_chromas_shape(client):
    col = client.create_collection("model", metadata={"k": "v"}, embedding_function=None)
    col.add(ids="a", embeddings=[1.0, 2.0])
    model = col.get_model()
    assert model["version"] == 0 and model.log_position == 0  # keys read as attributes too, as in Chroma
    assert (model["id"], model["name"], model["metadata"], model["dimension"]) == (col.id, "model", {"k": "v"}, 2)
    assert model.configuration_json["hnsw"]["space"] == "l2" and "embedding_function" not in model["configuration_json"]
    with pytest.raises(AttributeError, match="no field 'nope'"):
        model.nope
    assert (model["tenant"], model["database"]) == ("default_tenant", "default_database")


def test_chroma_settings_fields_not_given_read_as_none():
    settings = Settings(chroma_server_host="x")
    assert settings.chroma_server_host == "x" and settings.chroma_api_impl is None and settings.migrations is None
    with pytest.raises(AttributeError, match="no field 'allow_rest'"):
        settings.allow_rest
    vectordb.Client.clear_system_cache()  # Chroma's class method: nothing to clear here


def test_get_or_create_survives_concurrent_deletes(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with vectordb.PersistentClient(str(tmp_path)) as client:
        def churn(i: int) -> None:
            assert client.get_or_create_collection("churn", embedding_function=None).name == "churn"
            if i % 2 == 0:
                try:
                    client.delete_collection("churn")
                except CollectionNotFoundError:
                    pass

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(churn, range(64)))  # as Chroma's test_multithreaded_get_or_create: no error escapes


def test_persistent_client_defaults_to_chromas_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with vectordb.PersistentClient() as client:
        assert client.path == str(tmp_path / "chroma")
        client.create_collection("kept", embedding_function=None)
    assert (tmp_path / "chroma" / "vectordb.duckdb").is_file()


def test_persistent_client_without_path_keeps_opening_an_old_default_store(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with vectordb.PersistentClient("./vectordb_data") as client:  # made when that was the default
        client.create_collection("old", embedding_function=None)
    with vectordb.PersistentClient() as client:
        assert client.path == str(tmp_path / "vectordb_data")
        assert [c.name for c in client.list_collections()] == ["old"]
    assert "the old default" in caplog.text and not (tmp_path / "chroma").exists()
