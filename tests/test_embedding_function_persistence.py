"""The collection's embedding function: persisted by name and config, rebuilt in a new process."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import in_new_process

import vectordb
from vectordb.embedding_functions import describe, register_embedding_function
from vectordb.errors import EmbeddingFunctionConflictError, InvalidArgumentError

MODULE = '''
import numpy as np
from vectordb.embedding_functions import register_embedding_function


def _vector(text, dim, seed):
    rng = np.random.default_rng([seed] + [ord(c) for c in text])
    return rng.normal(size=dim).tolist()


@register_embedding_function
class HashEmbedding:
    """Deterministic vectors from text; ``embed_query`` marks queries by flipping the sign."""

    def __init__(self, dim=5, seed=0):
        self.dim, self.seed = dim, seed

    @staticmethod
    def name():
        return "test-hash"

    def get_config(self):
        return {"dim": self.dim, "seed": self.seed}

    @classmethod
    def build_from_config(cls, config):
        return cls(**config)

    def __call__(self, input):
        return [_vector(t, self.dim, self.seed) for t in input]

    def embed_query(self, input):
        return [[-x for x in _vector(t, self.dim, self.seed)] for t in input]


class Unconfigured:
    """A custom function with no config: it cannot be rebuilt."""

    def __call__(self, input):
        return [[float(len(t)), 1.0, 0.0] for t in input]
'''


@pytest.fixture
def efmod(tmp_path, monkeypatch):
    """The module above, importable here and (through sys.path) in child processes."""
    folder = tmp_path / "efmod"
    folder.mkdir()
    (folder / "hash_ef.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(folder))
    import importlib

    import hash_ef

    return importlib.reload(hash_ef)


def child(path, body):
    return in_new_process(
        f"""
        import json, vectordb
        client = vectordb.PersistentClient({str(path)!r})
        """
        + textwrap.indent(textwrap.dedent(body), "        ")
    )


def test_registered_function_round_trips_in_new_process(tmp_path, efmod):
    path = tmp_path / "db"
    with vectordb.PersistentClient(str(path)) as client:
        col = client.create_collection("docs", embedding_function=efmod.HashEmbedding(dim=5, seed=3))
        col.add(ids=["a", "b", "c"], documents=["red apple", "green pear", "blue sky"])
        expected = col.query(query_texts=["green pear", "blue"], n_results=3, include=["distances"])
        stored = col.get(include=["embeddings"])["embeddings"]
    np.testing.assert_allclose(stored[1], efmod.HashEmbedding(5, 3)(["green pear"])[0], rtol=1e-6)
    out = child(
        path,
        """
        import hash_ef
        col = client.get_collection("docs")
        fn = col.embedding_function
        col.add(ids="d", documents="yellow sun")
        print(json.dumps({
            "type": type(fn).__name__, "config": fn.get_config(),
            "query": col.query(query_texts=["green pear", "blue"], n_results=3, include=["distances"]),
            "d": col.get(ids="d", include=["embeddings"])["embeddings"][0].tolist(),
        }))
    """,
    )
    assert out["type"] == "HashEmbedding"
    assert out["config"] == {"dim": 5, "seed": 3}
    np.testing.assert_allclose(out["d"], efmod.HashEmbedding(5, 3)(["yellow sun"])[0], rtol=1e-6)
    # the query answers over the original three are the same in the new process
    for got_ids, got_d, exp_ids, exp_d in zip(
        out["query"]["ids"], out["query"]["distances"], expected["ids"], expected["distances"]
    ):
        kept = [(i, d) for i, d in zip(got_ids, got_d) if i != "d"]
        assert [i for i, _ in kept] == exp_ids[: len(kept)]
        np.testing.assert_allclose([d for _, d in kept], exp_d[: len(kept)], rtol=1e-5, atol=1e-6)


def test_embed_query_is_used_for_query_texts(client, efmod):
    fn = efmod.HashEmbedding(dim=4, seed=1)
    col = client.create_collection("docs", embedding_function=fn, metadata={"hnsw:space": "ip"})
    col.add(ids=["a", "b"], documents=["one", "two"])
    result = col.query(query_texts="one", n_results=2, include=["distances"])
    q = np.array(fn.embed_query(["one"])[0])
    vectors = np.array(fn(["one", "two"]))
    expected = 1 - vectors @ q
    order = np.argsort(expected)
    assert result["ids"][0] == [["a", "b"][i] for i in order]
    np.testing.assert_allclose(result["distances"][0], expected[order], rtol=1e-5, atol=1e-5)


def test_different_function_conflicts_naming_both(client, efmod):
    client.create_collection("docs", embedding_function=efmod.HashEmbedding(dim=5, seed=3))
    with pytest.raises(EmbeddingFunctionConflictError) as info:
        client.get_collection("docs", embedding_function=efmod.Unconfigured())
    message = str(info.value)
    assert "test-hash" in message and "Unconfigured" in message and "docs" in message
    with pytest.raises(EmbeddingFunctionConflictError, match=r"'seed': 3.*'seed': 4"):
        client.get_or_create_collection("docs", embedding_function=efmod.HashEmbedding(dim=5, seed=4))
    with pytest.raises(EmbeddingFunctionConflictError):
        client.create_collection("docs", embedding_function=efmod.HashEmbedding(dim=6, seed=3), get_or_create=True)
    same = client.get_collection("docs", embedding_function=efmod.HashEmbedding(dim=5, seed=3))
    assert same.embedding_function.get_config() == {"dim": 5, "seed": 3}


def test_conflict_in_new_process(tmp_path, efmod):
    path = tmp_path / "db"
    with vectordb.PersistentClient(str(path)) as client:
        client.create_collection("docs", embedding_function=efmod.HashEmbedding(dim=5, seed=3))
    out = child(
        path,
        """
        import hash_ef
        try:
            client.get_collection("docs", embedding_function=hash_ef.HashEmbedding(dim=5, seed=9))
            print(json.dumps(None))
        except vectordb.errors.EmbeddingFunctionConflictError as exc:
            print(json.dumps(str(exc)))
    """,
    )
    assert out is not None and "'seed': 3" in out and "'seed': 9" in out


def test_custom_function_without_config_must_be_passed_again(tmp_path, efmod):
    path = tmp_path / "db"
    with vectordb.PersistentClient(str(path)) as client:
        col = client.create_collection("docs", embedding_function=efmod.Unconfigured())
        col.add(ids="a", documents="hello")
    assert describe(efmod.Unconfigured()) == ("custom:Unconfigured", None)
    out = child(
        path,
        """
        import hash_ef
        col = client.get_collection("docs")
        result = {}
        try:
            col.add(ids="b", documents="more")
        except vectordb.errors.InvalidArgumentError as exc:
            result["error"] = str(exc)
        col.add(ids="c", embeddings=[1.0, 2.0, 3.0])  # explicit embeddings need no function
        again = client.get_collection("docs", embedding_function=hash_ef.Unconfigured())
        again.add(ids="b", documents="more")
        result["ids"] = again.get()["ids"]
        result["b"] = again.get(ids="b", include=["embeddings"])["embeddings"][0].tolist()
        print(json.dumps(result))
    """,
    )
    assert "pass it again" in out["error"] and "Unconfigured" in out["error"] and "docs" in out["error"]
    assert out["ids"] == ["a", "c", "b"]
    assert out["b"] == [4.0, 1.0, 0.0]


def test_registered_function_not_imported_in_new_process(tmp_path, efmod):
    path = tmp_path / "db"
    with vectordb.PersistentClient(str(path)) as client:
        client.create_collection("docs", embedding_function=efmod.HashEmbedding()).add(ids="a", documents="x")
    out = child(
        path,
        """
        col = client.get_collection("docs")
        try:
            col.query(query_texts="x", n_results=1)
            print(json.dumps(None))
        except vectordb.errors.InvalidArgumentError as exc:
            print(json.dumps(str(exc)))
    """,
    )
    assert out is not None and "test-hash" in out and "not registered" in out


def test_none_function_refuses_documents(tmp_path):
    path = tmp_path / "db"
    with vectordb.PersistentClient(str(path)) as client:
        col = client.create_collection("plain", embedding_function=None)
        with pytest.raises(InvalidArgumentError, match="'plain' has no embedding function: pass embeddings="):
            col.add(ids="a", documents="text")
        with pytest.raises(InvalidArgumentError, match="no embedding function"):
            col.query(query_texts="text")
        col.add(ids="a", documents="text", embeddings=[1.0, 2.0])
        assert col.count() == 1
    out = child(
        path,
        """
        col = client.get_collection("plain")
        try:
            col.upsert(ids="b", documents="other")
            error = None
        except vectordb.errors.InvalidArgumentError as exc:
            error = str(exc)
        print(json.dumps({"fn": repr(col.embedding_function), "error": error, "count": col.count()}))
    """,
    )
    assert out["fn"] == "None" and out["count"] == 1
    assert "no embedding function" in out["error"]


def test_none_function_collection_conflicts_with_a_function(client, efmod):
    client.create_collection("plain", embedding_function=None)
    with pytest.raises(EmbeddingFunctionConflictError, match="None"):
        client.get_collection("plain", embedding_function=efmod.HashEmbedding())
    assert client.get_collection("plain").embedding_function is None


def test_register_requires_the_three_methods():
    class Incomplete:
        def __call__(self, input):
            return [[0.0] for _ in input]

    with pytest.raises(InvalidArgumentError, match="Incomplete lacks name"):
        register_embedding_function(Incomplete)


def test_registered_function_reembeds_only_changed_documents(client, efmod):
    calls = []

    class Counting(efmod.HashEmbedding):
        @staticmethod
        def name():
            return "test-counting-hash"

        def __call__(self, input):
            calls.append(list(input))
            return super().__call__(input)

    col = client.create_collection("docs", embedding_function=Counting())
    col.add(ids=["a", "b"], documents=["x", "y"])
    col.upsert(ids=["a", "b"], documents=["x", "y2"], metadatas=[{"m": 1}, {"m": 2}])
    col.update(ids=["a", "b"], documents=["x", "y2"])
    assert sorted(t for c in calls for t in c) == ["x", "y", "y2"]
    assert json.loads(json.dumps(col.get()["metadatas"])) == [{"m": 1}, {"m": 2}]
