"""Indexing throughput on CPython's Lib/ (shipped with the interpreter), then a no-op re-index, then lexical
search latency over 200 queries on that index.

Usage: python bench/index_cpython.py [--lib PATH] [--queries 200]
Lib/ is copied without site-packages to a temporary directory, so the tree is the same on every machine of a kind.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_engine, machine, median, percentile  # noqa: E402


def copy_lib(source: Path, target: Path) -> tuple[int, int]:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True)
    files = [p for p in target.rglob("*") if p.is_file() and not p.is_symlink()]
    return len(files), sum(p.stat().st_size for p in files)


def peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def sample_queries(engine, n: int, seed: int = 1) -> list[str]:  # type: ignore[no-untyped-def]
    """Queries as users type them: docstring first sentences and split identifiers, sampled from the index."""
    with engine.db.connection() as conn:
        docs = [r[0] for r in conn.execute(
            "SELECT split_part(docstring, '.', 1) FROM chunks WHERE docstring IS NOT NULL "
            "AND length(docstring) BETWEEN 20 AND 300 ORDER BY id")]
        names = [r[0] for r in conn.execute("SELECT name FROM chunks WHERE name LIKE '%%\\_%%' ORDER BY id")]
    rng = random.Random(seed)
    picked = rng.sample(docs, n // 2) + [name.replace("_", " ").strip() for name in rng.sample(names, n - n // 2)]
    rng.shuffle(picked)
    return [q[:200] for q in picked]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lode-bench-lib-"))
    tree = work / "Lib"
    files, size = copy_lib(args.lib, tree)
    engine = fresh_engine(work / "home")
    engine.db  # start the server outside the timed region

    started = time.perf_counter()
    report = engine.index(tree, "cpython-lib")
    full = time.perf_counter() - started
    started = time.perf_counter()
    noop = engine.index(tree, "cpython-lib")
    noop_seconds = time.perf_counter() - started

    with engine.db.connection() as conn:
        indexed_bytes = int(conn.execute("SELECT sum(size) FROM files").fetchone()[0])
    queries = sample_queries(engine, args.queries)
    for q in queries[:20]:  # warm the buffer cache
        engine.search(q, repo="cpython-lib", mode="lexical")
    latencies = []
    for q in queries:
        t = time.perf_counter()
        engine.search(q, repo="cpython-lib", mode="lexical", k=10)
        latencies.append((time.perf_counter() - t) * 1000)
    engine.close()

    print(f"CPython Lib/ from {args.lib}; {machine()}")
    print("| measure | value |\n| --- | --- |")
    print(f"| files in tree | {files:,} ({size / 1e6:.1f} MB) |")
    print(f"| files indexed / skipped | {report.files_indexed:,} / {report.files_skipped:,} |")
    print(f"| chunks | {report.chunks:,} |")
    print(f"| source indexed | {indexed_bytes / 1e6:.1f} MB (the rest is skipped: data files over 1 MiB, binaries) |")
    print(f"| full index | {full:.1f} s: {indexed_bytes / 1e6 / full:.2f} MB/s of indexed source, "
          f"{report.files_indexed / full:.0f} files/s |")
    print(f"| peak RSS (largest process) | {peak_rss_mb():.0f} MB |")
    print(f"| no-op re-index | {noop_seconds:.2f} s = {100 * noop_seconds / full:.1f} % of the full index "
          f"({noop.files_unchanged:,} unchanged) |")
    print(f"| lexical search, {len(latencies)} queries | P50 {median(latencies):.1f} ms, "
          f"P95 {percentile(latencies, 95):.1f} ms |")
    shutil.rmtree(tree, ignore_errors=True)  # LODE_HOME stays: its server stops when this process exits


if __name__ == "__main__":
    main()
