"""The scan of a collection's embeddings (:mod:`vectordb.persistence.scan`) reads rows in bounded
chunks and loads no pyarrow: its libraries would stay in the RSS for the life of the process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

import vectordb
from vectordb.persistence import scan


def test_a_filtered_query_fills_its_matrix_by_the_scan_without_loading_pyarrow(tmp_path):
    path = str(tmp_path / "db")
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3000, 16)).astype(np.float32)
    with vectordb.PersistentClient(path) as client:
        col = client.create_collection("docs", embedding_function=None)
        col.add(ids=[f"r{i}" for i in range(3000)], embeddings=vectors,
                metadatas=[{"part": i % 100} for i in range(3000)])
    child = textwrap.dedent(f"""
        import sys
        import numpy as np
        import vectordb
        from vectordb.persistence import scan
        calls = []
        original = scan.records_since
        def counted(*args, **kwargs):
            calls.append(args[2:])
            return original(*args, **kwargs)
        scan.records_since = counted
        vectors = np.random.default_rng(3).standard_normal((3000, 16)).astype(np.float32)
        with vectordb.PersistentClient({path!r}) as client:
            found = client.get_collection("docs").query(vectors[7:8], n_results=3, where={{"part": 7}})
        assert found["ids"][0][0] == "r7", found
        assert calls, "the exact-search matrix was not filled from the store"
        print("pyarrow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_chunks_are_bounded_whatever_the_caller_asks(tmp_path):
    rng = np.random.default_rng(4)
    count = scan.SCAN_BATCH_ROWS * 2 + 5
    vectors = rng.standard_normal((count, 8)).astype(np.float32)
    with vectordb.PersistentClient(str(tmp_path / "db")) as client:
        col = client.create_collection("docs", embedding_function=None)
        col.add(ids=[f"r{i}" for i in range(count)], embeddings=vectors)
        store = client.backend.engine.store
        with client.backend.engine.turn():
            chunks = list(store.records_since(col.id, -1, chunk=10 * count))
    assert [len(labels) for labels, _, _ in chunks] == [scan.SCAN_BATCH_ROWS, scan.SCAN_BATCH_ROWS, 5]
    labels = np.concatenate([c[0] for c in chunks])
    np.testing.assert_array_equal(np.concatenate([c[2] for c in chunks])[np.argsort(labels)], vectors)
