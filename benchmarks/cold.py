"""Cold open in a fresh process: import the library, open the store, run one query.

Usage (by the harness): ``python -m benchmarks.cold SYSTEM STORE_DIR QUERY.json``; prints
one JSON line ``{"import_s", "open_s", "query_s", "total_s"}``. The query vector is read
with the standard library before the clock starts; the import time includes numpy,
which every system needs.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    system, store_dir, query_file = sys.argv[1:4]
    with open(query_file) as fh:
        vector = json.load(fh)
    t0 = time.perf_counter()
    from benchmarks import systems

    module = systems.load(system)
    module.import_library()
    t1 = time.perf_counter()
    store = module.Store.open(store_dir, len(vector))
    t2 = time.perf_counter()
    rows = store.query(vector, 10, None)
    t3 = time.perf_counter()
    print(json.dumps({
        "import_s": t1 - t0, "open_s": t2 - t1, "query_s": t3 - t2, "total_s": t3 - t0, "found": len(rows),
    }))


if __name__ == "__main__":
    main()
