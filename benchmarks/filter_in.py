"""Time ``$in`` / ``$nin`` filters with many values, on the SQL path and the in-memory index.

``python -m benchmarks.filter_in`` builds an in-memory collection of ``--records``
records (metadata ``{"s": "v<i>", "n": <i>, "x": <i>.5}``) and times
``get(where={key: {op: values}}, include=[])`` for each list size, kind and operator,
printing one table row per case. The ``sql`` path uses a copy of the collection with
one extra record carrying more than ``MAX_KEYS`` metadata keys, which makes the
in-memory metadata index give up so that every filter is answered by DuckDB; the
``index`` path uses the plain collection. Half the listed values exist in the
collection, half do not. Only the public API is used, so the same script times any
version of vectordb.

Example::

    python -m benchmarks.filter_in --sizes 2000,16000,100000 --kinds str,int,float
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, List, Optional

import numpy as np

import vectordb

PAD_KEYS = 130  # more than vectordb.filters.metadata_index.MAX_KEYS (128)
KINDS = {
    "str": ("s", lambda j: f"v{j}"),
    "int": ("n", lambda j: j),
    "float": ("x", lambda j: j + 0.5),
}


def build(client: Any, name: str, records: int, pad: bool) -> Any:
    """A collection of ``records`` records; with ``pad``, one more with ``PAD_KEYS`` keys."""
    col = client.create_collection(name, embedding_function=None)
    rng = np.random.default_rng(0)
    chunk = 5000
    for start in range(0, records, chunk):
        ids = list(range(start, min(records, start + chunk)))
        col.add(
            ids=[f"r{i}" for i in ids],
            embeddings=rng.random((len(ids), 8), dtype=np.float32),
            metadatas=[{"s": f"v{i}", "n": i, "x": i + 0.5} for i in ids],
        )
    if pad:
        col.add(ids="pad", embeddings=rng.random((1, 8), dtype=np.float32), metadatas={f"p{k}": k for k in range(PAD_KEYS)})
    return col


def timed(call: Callable[[], Any], repeat: int) -> "tuple[float, Any]":
    """Best wall time of ``repeat`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: Optional[List[str]] = None) -> None:
    """Parse the options, build the collections, print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.filter_in", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000, help="records in the collection (default 20000)")
    parser.add_argument("--sizes", default="2000,16000,100000", help="list sizes, comma-separated")
    parser.add_argument("--kinds", default="str,int,float", help=f"value kinds out of {','.join(KINDS)}")
    parser.add_argument("--ops", default="$in,$nin", help="operators, comma-separated")
    parser.add_argument("--paths", default="sql,index", help="sql and/or index")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per case (default 3)")
    args = parser.parse_args(argv)
    client = vectordb.Client()
    paths = args.paths.split(",")
    cols = {path: build(client, path, args.records, pad=path == "sql") for path in paths}
    print(f"vectordb {vectordb.__file__}; {args.records} records")
    print(f"{'path':<6} {'kind':<6} {'op':<5} {'values':>8} {'matches':>8} {'seconds':>9}")
    for size in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            key, make = KINDS[kind]
            offset = args.records - size // 2  # half the values exist
            values = [make(j) for j in range(offset, offset + size)]
            for op in args.ops.split(","):
                for path in paths:
                    col = cols[path]
                    seconds, got = timed(lambda: col.get(where={key: {op: values}}, include=[]), args.repeat)
                    print(f"{path:<6} {kind:<6} {op:<5} {size:>8} {len(got['ids']):>8} {seconds:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
