"""PersistentClient: a new process sees the same records, answers and collections."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import in_new_process, run_python

import vectordb
from vectordb.errors import CollectionNotFoundError, StoreLockedError

ALL = ["embeddings", "metadatas", "documents"]
QUERY_ALL = ["embeddings", "metadatas", "documents", "distances"]


READ_BACK = """
    import json, vectordb
    client = vectordb.PersistentClient({path!r})
    out = {{"collections": [c.name for c in client.list_collections()], "data": {{}}}}
    queries = {queries!r}
    for col in client.list_collections():
        out["data"][col.name] = {{
            "metadata": col.metadata,
            "count": col.count(),
            "get": col.get(include=["embeddings", "metadatas", "documents"]),
            "query": col.query(query_embeddings=queries, n_results=5,
                               include=["embeddings", "metadatas", "documents", "distances"]) if col.count() else None,
            "filtered": col.query(query_embeddings=queries, n_results=3, where={{"k": {{"$gte": 2}}}})["ids"]
                        if col.count() else None,
        }}
    client.close()
    print(json.dumps(out, default=lambda array: array.tolist()))
"""


def describe_in_process(client, queries):
    out = {"collections": [c.name for c in client.list_collections()], "data": {}}
    for col in client.list_collections():
        out["data"][col.name] = {
            "metadata": col.metadata,
            "count": col.count(),
            "get": col.get(include=ALL),
            "query": col.query(query_embeddings=queries, n_results=5, include=QUERY_ALL) if col.count() else None,
            "filtered": col.query(query_embeddings=queries, n_results=3, where={"k": {"$gte": 2}})["ids"]
            if col.count()
            else None,
        }
    return json.loads(json.dumps(out, default=lambda array: array.tolist()))


def populate(client, rng):
    for name, space in [("zeta", "l2"), ("alpha", "cosine"), ("mid", "ip"), ("empty-one", "l2")]:
        col = client.create_collection(name, metadata={"hnsw:space": space, "owner": name}, embedding_function=None)
        if name == "empty-one":
            continue
        vectors = rng.normal(size=(40, 6)).astype(np.float32)
        col.add(
            ids=[f"{name}-{i}" for i in range(40)],
            embeddings=vectors,
            metadatas=[{"k": i % 5, "f": i / 3, "b": i % 2 == 0, "s": f"s{i}"} for i in range(40)],
            documents=[f"document {i} of {name}" for i in range(40)],
        )
        col.delete(ids=[f"{name}-{i}" for i in range(0, 40, 7)])
        col.update(ids=f"{name}-1", embeddings=rng.normal(size=6), metadatas={"k": None, "new": "yes"})
        col.upsert(ids=[f"{name}-2", f"{name}-new"], embeddings=rng.normal(size=(2, 6)), documents=["two", "new doc"])


def test_reopen_in_new_process_gives_same_data_and_answers(tmp_path):
    path = str(tmp_path / "db")
    rng = np.random.default_rng(7)
    queries = rng.normal(size=(3, 6)).astype(np.float32).tolist()
    client = vectordb.PersistentClient(path)
    populate(client, rng)
    client.get_collection("mid").modify(name="middle", metadata={"hnsw:space": "ip", "renamed": True})
    expected = describe_in_process(client, queries)
    client.close()
    assert in_new_process(READ_BACK.format(path=path, queries=queries)) == expected
    assert expected["collections"] == ["zeta", "alpha", "middle", "empty-one"]
    assert expected["data"]["middle"]["metadata"] == {"hnsw:space": "ip", "renamed": True}
    # and once more: the second open starts from the indexes the first saved
    assert in_new_process(READ_BACK.format(path=path, queries=queries)) == expected


def test_unclean_exit_loses_nothing_committed(tmp_path):
    """A process that dies without close(): records survive and the index catches up on open."""
    path = str(tmp_path / "db")
    code = f"""
        import os, numpy as np, vectordb
        client = vectordb.PersistentClient({path!r})
        col = client.create_collection("crash", embedding_function=None)
        rng = np.random.default_rng(3)
        col.add(ids=[str(i) for i in range(300)], embeddings=rng.normal(size=(300, 4)),
                metadatas=[{{"i": i}} for i in range(300)])
        col.delete(ids=[str(i) for i in range(0, 300, 3)])
        col.update(ids="1", embeddings=[9.0, 9.0, 9.0, 9.0])
        os._exit(0)
    """
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    client = vectordb.PersistentClient(path)
    col = client.get_collection("crash")
    assert col.count() == 200
    assert col.get(ids="1", include=["embeddings"])["embeddings"].tolist() == [[9.0, 9.0, 9.0, 9.0]]
    assert col.query(query_embeddings=[9.0, 9.0, 9.0, 9.0], n_results=1)["ids"] == [["1"]]
    result = col.query(query_embeddings=[0.0, 0.0, 0.0, 0.0], n_results=300)
    assert sorted(result["ids"][0], key=int) == [str(i) for i in range(300) if i % 3]
    client.close()


def test_saved_index_catches_up_after_unclean_exit(tmp_path):
    """Index saved on close, then changes and a crash: the next open replays them from the store."""
    path = str(tmp_path / "db")
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(200, 4)).astype(np.float32)
    with vectordb.PersistentClient(path) as client:
        client.create_collection("crash", embedding_function=None).add(
            ids=[str(i) for i in range(200)], embeddings=vectors
        )
    proc = run_python(f"""
        import os, vectordb
        col = vectordb.PersistentClient({path!r}).get_collection("crash")
        col.delete(ids=[str(i) for i in range(0, 200, 2)])
        col.update(ids="1", embeddings=[50.0, 50.0, 50.0, 50.0])
        col.add(ids=["new"], embeddings=[[-50.0, -50.0, -50.0, -50.0]])
        os._exit(0)
    """)
    assert proc.returncode == 0, proc.stderr
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("crash")
        assert col.count() == 101
        assert col.query(query_embeddings=[50.0] * 4, n_results=1)["ids"] == [["1"]]
        assert col.query(query_embeddings=[-50.0] * 4, n_results=1)["ids"] == [["new"]]
        everything = col.query(query_embeddings=[0.0] * 4, n_results=500)["ids"][0]
        assert sorted(everything) == sorted([str(i) for i in range(1, 200, 2)] + ["new"])


def test_collections_listed_in_creation_order_after_reopen(tmp_path):
    path = str(tmp_path / "db")
    names = ["c-three", "a-one", "b-two", "0-zero"]
    with vectordb.PersistentClient(path) as client:
        for name in names:
            client.create_collection(name, embedding_function=None)
        client.delete_collection("a-one")
        client.create_collection("a-one", embedding_function=None)
    listed = in_new_process(f"""
        import json, vectordb
        print(json.dumps([c.name for c in vectordb.PersistentClient({path!r}).list_collections()]))
    """)
    assert listed == ["c-three", "b-two", "0-zero", "a-one"]


def test_delete_collection_removes_its_files(tmp_path):
    path = tmp_path / "db"
    client = vectordb.PersistentClient(str(path))
    keep = client.create_collection("keep", embedding_function=None)
    gone = client.create_collection("gone", embedding_function=None)
    for col in (keep, gone):
        col.add(ids=[str(i) for i in range(50)], embeddings=np.random.default_rng(0).normal(size=(50, 3)))
    client.close()  # saves both indexes
    gone_dir = path / "index" / gone.id
    assert gone_dir.is_dir() and (path / "index" / keep.id).is_dir()
    client = vectordb.PersistentClient(str(path))
    client.delete_collection("gone")
    assert not gone_dir.exists()
    assert (path / "index" / keep.id).is_dir()
    client.close()
    remaining = in_new_process(f"""
        import json, vectordb
        client = vectordb.PersistentClient({str(path)!r})
        try:
            client.get_collection("gone")
            found = True
        except vectordb.errors.CollectionNotFoundError:
            found = False
        print(json.dumps({{"found": found, "names": [c.name for c in client.list_collections()],
                          "count": client.get_collection("keep").count()}}))
    """)
    assert remaining == {"found": False, "names": ["keep"], "count": 50}
    assert not gone_dir.exists()


def test_reopen_same_process(tmp_path):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("books", metadata={"hnsw:space": "cosine"}, embedding_function=None)
        col.add(ids=["a", "b"], embeddings=[[1.0, 0.0], [0.0, 1.0]], metadatas=[{"k": 1}, {"k": 2}])
    with vectordb.PersistentClient(path) as client:
        col = client.get_collection("books")
        assert col.metadata == {"hnsw:space": "cosine"}
        assert col.dimension == 2
        assert col.get()["metadatas"] == [{"k": 1}, {"k": 2}]
        result = col.query(query_embeddings=[3.0, 0.0], n_results=2)
        assert result["ids"] == [["a", "b"]]
        assert result["distances"][0] == pytest.approx([0.0, 1.0], abs=1e-6)
        from vectordb.errors import InvalidDimensionError

        with pytest.raises(InvalidDimensionError):
            col.add(ids="c", embeddings=[1.0, 2.0, 3.0])


def test_corrupt_index_file_is_rebuilt(tmp_path):
    path = tmp_path / "db"
    with vectordb.PersistentClient(str(path)) as client:
        col = client.create_collection("books", embedding_function=None)
        col.add(ids=[str(i) for i in range(20)], embeddings=np.arange(40, dtype=np.float32).reshape(20, 2))
    index_file = path / "index" / col.id / "index.bin"
    index_file.write_bytes(b"garbage" * 10)
    with vectordb.PersistentClient(str(path)) as client:
        col = client.get_collection("books")
        assert col.query(query_embeddings=[10.2, 11.2], n_results=2)["ids"] == [["5", "6"]]


def test_changing_search_ef_keeps_the_saved_index(tmp_path, caplog):
    path = str(tmp_path / "db")
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("books", metadata={"hnsw:search_ef": 20}, embedding_function=None)
        col.add(ids=[str(i) for i in range(30)], embeddings=np.arange(60, dtype=np.float32).reshape(30, 2))
    with vectordb.PersistentClient(path) as client:
        client.get_collection("books").modify(metadata={"hnsw:search_ef": 80})
    with caplog.at_level("WARNING", logger="vectordb"):
        with vectordb.PersistentClient(path) as client:
            col = client.get_collection("books")
            assert col.metadata == {"hnsw:search_ef": 80}
            assert col.query(query_embeddings=[20.2, 21.2], n_results=2)["ids"] == [["10", "11"]]
    assert not [r for r in caplog.records if "rebuild" in r.getMessage()]


def test_a_second_writer_process_shares_the_store(tmp_path):
    path = str(tmp_path / "db")
    client = vectordb.PersistentClient(path)
    books = client.create_collection("books", embedding_function=None)
    books.add(ids="mine", embeddings=[1.0, 0.0])
    proc = run_python(f"""
        import vectordb
        client = vectordb.PersistentClient({path!r})
        col = client.get_collection("books")
        col.add(ids="theirs", embeddings=[0.0, 1.0])
        print(sorted(col.get()["ids"]))
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['mine', 'theirs']"
    assert sorted(books.get()["ids"]) == ["mine", "theirs"]  # seen here at once, without reopening
    client.close()


def test_deleted_collection_handle_raises(tmp_path):
    with vectordb.PersistentClient(str(tmp_path / "db")) as client:
        col = client.create_collection("books", embedding_function=None)
        client.delete_collection("books")
        with pytest.raises(CollectionNotFoundError):
            col.add(ids="a", embeddings=[1.0])


def _duckdb_table_mib(store) -> float:
    rows = store.con.execute(
        "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'BASE_TABLE'"
    ).fetchone()
    return rows[0] / 2**20


def test_reading_all_embeddings_leaves_no_copy_in_duckdb_memory(tmp_path):
    """Filling an index or the exact-search matrix reads every embedding; DuckDB must not keep them cached."""
    from vectordb.persistence.store import CollectionRow, RecordBatch, Store

    store = Store(str(tmp_path))
    default_limit = store.con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    row = store.insert_collection(CollectionRow("c", "vectors", None, "l2", 384, None, None, 0, 0, 0))
    vectors = np.random.default_rng(0).random((40_000, 384), dtype=np.float32)  # 61 MiB of embeddings
    batch = RecordBatch(np.arange(40_000), [f"r{i}" for i in range(40_000)], vectors, [None] * 40_000, [None] * 40_000)
    store.write(row, batch, np.empty(0, dtype=np.int64), 384)
    store.con.execute("CHECKPOINT")
    store.close()

    store = Store(str(tmp_path))  # a fresh buffer pool
    seen = np.zeros((40_000, 384), dtype=np.float32)
    for labels, chunk in store.vectors_since("c", -1, chunk=8192):
        seen[labels] = chunk
    np.testing.assert_array_equal(seen, vectors)
    assert _duckdb_table_mib(store) < 40  # a plain scan leaves all 61 MiB cached
    assert store.con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == default_limit
    store.con.execute("SELECT sum(octet_length(embedding)) FROM records").fetchone()  # and the control:
    assert _duckdb_table_mib(store) > 55
    store.close()
