"""A client dropped without ``close()`` and collected while the engine registry is busy does not deadlock.

Found by Chroma's own ``test_persist_index_get_or_create_embedding_function`` (run by
tests/chroma_scripts/run_chroma_api_tests.py): its fixture drops a PersistentClient
without closing it, and a garbage collection that started while ``open_store`` held
the registry lock ran the dropped handle's finalizer in the same thread, which waited
for that lock forever.
"""

from __future__ import annotations

import gc
import threading

from vectordb.engine import local, registry


def test_a_handle_collected_under_the_registry_lock_gives_its_share_back(tmp_path):
    handle = local.open_store(str(tmp_path))
    engine = handle.engine
    handle.cycle = handle  # only the cyclic collector frees it, at a moment nobody chooses
    del handle
    done = threading.Event()

    def collect_holding_the_lock() -> None:
        with registry.LOCK:  # as open_store holds it while it builds an engine
            gc.collect()  # runs the handle's finalizer in this thread
        done.set()

    worker = threading.Thread(target=collect_holding_the_lock, daemon=True)
    worker.start()
    assert done.wait(30), "the finalizer of a collected handle deadlocked on the registry lock"
    assert engine.holders == 0  # its share was given back
    again = local.open_store(str(tmp_path))  # and the folder opens again, on the same engine
    assert again.engine is engine
    again.close()
