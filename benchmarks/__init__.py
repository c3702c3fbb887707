"""Benchmark harness: vectordb against raw hnswlib (the ceiling) and chromadb.

Run ``python -m benchmarks --n 100000``. The parent process makes the data and the
exact ground truth, then runs each system's workload in a subprocess of its own
(:mod:`benchmarks.worker`), times cold opens and imports in fresh processes
(:mod:`benchmarks.cold`), and writes a table, a JSON file and a PNG plot
(:mod:`benchmarks.report`).

This ``__init__`` imports nothing: the chromadb runner executes this package under a
separate interpreter that has only numpy and chromadb installed.
"""
