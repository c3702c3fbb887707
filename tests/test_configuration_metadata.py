"""Index settings given as ``configuration`` configure the index and stay out of ``collection.metadata``,
as in Chroma; ``modify(metadata=...)`` replaces the metadata, as in Chroma; stores made before keep theirs.

The expected values are what chromadb 1.5.9 shows for the same calls (checked in
/opt/chroma-venv): ``create_collection(configuration={"hnsw": {"space": "cosine", "ef_search": 20}},
metadata={"x": 1})`` has metadata ``{"x": 1}``; ``modify(metadata={"y": 2})`` leaves
``{"y": 2}`` (replaced, whether the settings came as configuration or as ``hnsw:*``
metadata) and the configuration unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest

import vectordb
from vectordb.configuration import CONFIGURED_KEY, modified_metadata, split_metadata, with_configuration
from vectordb.errors import InvalidArgumentError

COSINE_20 = {"hnsw": {"space": "cosine", "ef_search": 20}}


def hnsw(col):
    return col.configuration["hnsw"]


def cosine_distance_of_a_longer_twin(col):
    """0 under cosine (a vector twice as long as a stored one), not under l2 or ip."""
    col.add(ids=["x", "y"], embeddings=[[1.0, 0.0], [10.0, 10.0]])
    return col.query(query_embeddings=[[2.0, 0.0]], n_results=1)["distances"][0][0]


def test_configured_settings_are_not_metadata_but_configure_the_index(client):
    col = client.create_collection("conf", metadata={"x": 1}, configuration=COSINE_20, embedding_function=None)
    for handle in (col, client.get_collection("conf"), client.get_collection_by_id(col.id)):
        assert handle.metadata == {"x": 1}
        assert hnsw(handle) == {"space": "cosine", "ef_construction": 100, "ef_search": 20, "max_neighbors": 16}
    assert cosine_distance_of_a_longer_twin(col) == pytest.approx(0.0, abs=1e-6)
    bare = client.create_collection("bare", configuration={"hnsw": {"space": "ip", "max_neighbors": 8}},
                                    embedding_function=None)
    assert bare.metadata is None and hnsw(bare)["max_neighbors"] == 8 and hnsw(bare)["space"] == "ip"


def test_modify_metadata_replaces_it_and_the_configuration_stays(client):
    col = client.create_collection("conf", metadata={"x": 1}, configuration=COSINE_20, embedding_function=None)
    col.modify(metadata={"y": 2})
    reopened = client.get_collection("conf")
    assert col.metadata == {"y": 2} and reopened.metadata == {"y": 2}
    assert hnsw(reopened)["space"] == "cosine" and hnsw(reopened)["ef_search"] == 20
    col.modify(metadata={"z": 3}, configuration={"hnsw": {"ef_search": 41}})
    assert client.get_collection("conf").metadata == {"z": 3} and hnsw(client.get_collection("conf"))["ef_search"] == 41
    col.modify(metadata={})  # cleared; the settings stay
    assert client.get_collection("conf").metadata is None and hnsw(client.get_collection("conf"))["ef_search"] == 41
    col.modify(name="conf-renamed")
    renamed = client.get_collection("conf-renamed")
    assert renamed.metadata is None and hnsw(renamed)["space"] == "cosine"
    assert cosine_distance_of_a_longer_twin(renamed) == pytest.approx(0.0, abs=1e-6)


def test_settings_given_as_metadata_stay_metadata_until_replaced(client):
    col = client.create_collection("meta", metadata={"hnsw:space": "cosine", "hnsw:search_ef": 30, "x": 1},
                                   embedding_function=None)
    assert col.metadata == {"hnsw:space": "cosine", "hnsw:search_ef": 30, "x": 1}  # as Chroma shows them
    col.modify(metadata={"y": 2})
    got = client.get_collection("meta")
    assert got.metadata == {"y": 2}  # replaced, as in Chroma; the settings stay in force
    assert hnsw(got)["space"] == "cosine" and hnsw(got)["ef_search"] == 30
    col.modify(metadata={"hnsw:search_ef": 80})  # vectordb: an hnsw:* key of the metadata is a setting
    got = client.get_collection("meta")
    assert got.metadata == {"hnsw:search_ef": 80} and hnsw(got)["ef_search"] == 80 and hnsw(got)["space"] == "cosine"


@pytest.mark.parametrize("metadata, match", [
    ({"hnsw:space": "ip"}, r"hnsw:space.*cannot change the distance metric"),
    ({"hnsw:M": 4}, r"hnsw:M.*cannot change"),
    ({"hnsw:search_ef": 5}, r"ef_search'\] = 41 conflicts with metadata\['hnsw:search_ef'\] = 5"),
])
def test_modify_refuses_changing_a_fixed_setting_and_changes_nothing(client, metadata, match):
    col = client.create_collection("conf", metadata={"x": 1}, configuration=COSINE_20, embedding_function=None)
    with pytest.raises(InvalidArgumentError, match=match):
        col.modify(metadata=metadata, configuration={"hnsw": {"ef_search": 41}})
    got = client.get_collection("conf")
    assert got.metadata == {"x": 1} and hnsw(got)["ef_search"] == 20


@pytest.mark.parametrize("metadata, match", [
    ({"hnsw:configured": "hnsw:space", "hnsw:space": "ip"}, "expected a non-empty list of index setting names"),
    ({"hnsw:configured": []}, "must not be empty"),
    ({"hnsw:configured": ["owner"], "owner": "me"}, "'owner' is not an index setting"),
    ({"hnsw:configured": ["hnsw:M"]}, "names 'hnsw:M', which the metadata does not hold"),
    ({"hnsw:configured": ["hnsw:M", "hnsw:M"], "hnsw:M": 4}, "names a setting twice"),
])
def test_a_malformed_configured_list_is_refused(client, metadata, match):
    with pytest.raises(InvalidArgumentError, match=match):
        client.create_collection("bad", metadata=metadata, embedding_function=None)
    assert client.count_collections() == 0


def test_a_collection_stored_before_keeps_its_metadata_as_stored(tmp_path):
    stored = {"hnsw:space": "cosine", "hnsw:search_ef": 20, "owner": "me"}
    with vectordb.PersistentClient(str(tmp_path)) as client:
        # what create_collection(configuration={"hnsw": {"space": "cosine", "ef_search": 20}}, metadata={"owner":
        # "me"}) stored before configured settings were kept out of the metadata: plain hnsw:* keys
        client.backend.create_collection("old", dict(stored), None, None)
    with vectordb.PersistentClient(str(tmp_path)) as client:
        col = client.get_collection("old")
        assert col.metadata == stored
        assert hnsw(col)["space"] == "cosine" and hnsw(col)["ef_search"] == 20
        assert cosine_distance_of_a_longer_twin(col) == pytest.approx(0.0, abs=1e-6)
        col.modify(metadata={"owner": "you"})
    with vectordb.PersistentClient(str(tmp_path)) as client:
        col = client.get_collection("old")
        assert col.metadata == {"owner": "you"} and hnsw(col)["space"] == "cosine" and hnsw(col)["ef_search"] == 20
        assert col.query(query_embeddings=[[2.0, 0.0]], n_results=1)["distances"][0][0] == pytest.approx(0.0, abs=1e-6)


def test_the_cli_and_integrations_see_the_configured_space(tmp_path):
    from vectordb.cli.commands import describe_collection
    from vectordb.integrations.records import space_of

    with vectordb.PersistentClient(str(tmp_path)) as client:
        col = client.create_collection("conf", configuration=COSINE_20, embedding_function=None)
        assert describe_collection(col)["metric"] == "cosine" and describe_collection(col)["metadata"] is None
        assert space_of(col) == "cosine"


def test_stored_form_helpers():
    stored = with_configuration({"x": 1}, {"hnsw": {"space": "ip", "ef_search": 7}})
    assert stored == {"x": 1, "hnsw:space": "ip", "hnsw:search_ef": 7, CONFIGURED_KEY: ["hnsw:space", "hnsw:search_ef"]}
    assert split_metadata(stored) == ({"x": 1}, {"hnsw:space": "ip", "hnsw:search_ef": 7})
    assert with_configuration(stored, None) == stored  # idempotent: what a server receives from vectordb's client
    assert split_metadata({"hnsw:space": "ip"}) == ({"hnsw:space": "ip"}, {})  # no list: all the user's
    assert split_metadata(None) == (None, {})
    assert modified_metadata(stored, None, None) is None  # nothing to change
    assert modified_metadata(stored, {}, None) == {"hnsw:space": "ip", "hnsw:search_ef": 7,
                                                   CONFIGURED_KEY: ["hnsw:space", "hnsw:search_ef"]}
    assert modified_metadata({"x": 1}, {}, None) == {}  # cleared
    assert modified_metadata(stored, stored, None) == stored  # idempotent too
    assert modified_metadata({"hnsw:search_ef": 9}, None, {"hnsw": {"ef_search": 10}}) == {"hnsw:search_ef": 10}
    with pytest.raises(InvalidArgumentError, match="conflicts with metadata"):
        with_configuration({"hnsw:M": 4}, {"hnsw": {"max_neighbors": 5}})


def test_distances_follow_the_configured_space_on_every_backend(client):
    col = client.create_collection("dot", configuration={"hnsw": {"space": "ip"}}, embedding_function=None)
    col.add(ids=["a"], embeddings=[[2.0, 0.0]])
    assert col.metadata is None
    np.testing.assert_allclose(col.query(query_embeddings=[[3.0, 0.0]], n_results=1)["distances"][0], [1 - 6.0])


def test_copy_keeps_the_configuration_and_the_implied_space(tmp_path, capsys):
    from vectordb.cli import main

    with vectordb.PersistentClient(str(tmp_path / "src")) as src:
        src.create_collection("configured", metadata={"owner": "me"}, configuration={"hnsw": {"space": "ip",
                                                                                              "ef_search": 9}},
                              embedding_function=None).add(ids="a", embeddings=[1.0, 2.0])
        # what create_collection stores for a function whose default_space() is cosine: the metric, no metadata
        src.backend.create_collection("implied", None, None, None, "cosine")
    lite = f"milvus-lite:{tmp_path / 'mid.db'}"
    for source, target in ((str(tmp_path / "src"), lite), (lite, str(tmp_path / "dst"))):  # through Milvus and back
        assert main(["copy", "--from", source, "--to", target, "--no-progress", "--json"]) == 0
        capsys.readouterr()
    with vectordb.PersistentClient(str(tmp_path / "dst")) as dst:
        configured, implied = dst.get_collection("configured"), dst.get_collection("implied")
        assert configured.metadata == {"owner": "me"} and hnsw(configured)["space"] == "ip"
        assert hnsw(configured)["ef_search"] == 9 and configured.count() == 1
        assert implied.metadata is None and hnsw(implied)["space"] == "cosine"
