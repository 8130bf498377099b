"""Hybrid search latency in the process on CPython's Lib/ (≥ 50k chunks, all embedded), including the query
embedding: each of the 200 queries is new to the query-vector cache. Also reports the embedding throughput
of the full backfill.

Usage: python bench/hybrid_latency.py [--home DIR]   (the embedded index is kept under --home for reruns)
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, percentile, uncached  # noqa: E402
from bench.index_cpython import copy_lib, sample_queries  # noqa: E402
from lode.engine import Lode  # noqa: E402

REPO = "cpython-lib-0"  # the name sample_queries draws from


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "lode-hybrid-home")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    engine = Lode(uncached(home=args.home, embedder="local"))
    tree = args.home / "Lib"
    if not tree.exists():
        copy_lib(Path(sysconfig.get_paths()["stdlib"]), tree)
    engine.indexing.index(tree, REPO)
    started = time.perf_counter()
    before = engine.embeddings.counts(REPO).done
    progress = engine.embeddings.embed(REPO)
    seconds = time.perf_counter() - started
    queries = sample_queries(engine, args.queries, seed=2)
    for mode in ("lexical", "semantic", "hybrid"):
        engine.search.query("warm up the buffer cache " + mode, repo=REPO, mode=mode)
    rows = []
    for mode in ("lexical", "semantic", "hybrid"):
        latencies = []
        for q in queries:
            t = time.perf_counter()
            engine.search.query(f"{q} ({mode})", repo=REPO, mode=mode, k=10)  # suffix: a new query vector each time
            latencies.append((time.perf_counter() - t) * 1000)
        rows.append((mode, median(latencies), percentile(latencies, 95)))
    print(f"Search latency on CPython Lib/, {progress.done:,} embedded chunks; {machine()}")
    embedded = progress.done - before
    if embedded:
        print(f"Backfill: {embedded:,} chunks in {seconds:.0f} s = {embedded / seconds:.1f} chunks/s "
              "(two views a chunk, cache hits included)")
    print("| mode | P50 ms | P95 ms |\n| --- | --- | --- |")
    for mode, p50, p95 in rows:
        print(f"| {mode} | {p50:.1f} | {p95:.1f} |")
    engine.close()


if __name__ == "__main__":
    main()
