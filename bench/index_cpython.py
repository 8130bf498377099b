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


def sample_queries(engine, n: int, seed: int = 1,  # type: ignore[no-untyped-def]
                   repo: str = "cpython-lib-0") -> list[str]:
    """Queries as users type them: docstring first sentences and split identifiers, sampled from the index."""
    with engine.db.connection() as conn:
        scope = "FROM chunks c JOIN repositories r ON r.id = c.repo_id WHERE r.name = %(repo)s"
        docs = [r[0] for r in conn.execute(
            f"SELECT split_part(docstring, '.', 1) {scope} AND docstring IS NOT NULL "
            "AND length(docstring) BETWEEN 20 AND 300 ORDER BY path, start_line", {"repo": repo})]
        names = [r[0] for r in conn.execute(
            f"SELECT c.name {scope} AND c.name LIKE '%%\\_%%' ORDER BY path, start_line", {"repo": repo})]
    rng = random.Random(seed)
    picked = rng.sample(docs, n // 2) + [name.replace("_", " ").strip() for name in rng.sample(names, n - n // 2)]
    rng.shuffle(picked)
    return [q[:200] for q in picked]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3, help="full index runs; the median is reported")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lode-bench-lib-"))
    tree = work / "Lib"
    files, size = copy_lib(args.lib, tree)
    engine = fresh_engine(work / "home")
    _ = engine.db  # start the server outside the timed region

    searchable_runs, graph_runs, full_runs, noop_runs = [], [], [], []
    for run in range(args.runs):  # each run indexes into a new repository, then re-indexes it unchanged
        started = time.perf_counter()
        report = engine.indexing.index(tree, f"cpython-lib-{run}", defer_graph=True)  # as `lode index` returns
        searchable_runs.append(time.perf_counter() - started)
        resolving = time.perf_counter()
        engine.graph.resolve(f"cpython-lib-{run}")  # what the background `lode graph resolve` does
        graph_runs.append(time.perf_counter() - resolving)
        full_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        noop = engine.indexing.index(tree, f"cpython-lib-{run}")
        noop_runs.append(time.perf_counter() - started)
    full, noop_seconds = median(full_runs), median(noop_runs)
    searchable, resolve = median(searchable_runs), median(graph_runs)

    with engine.db.connection() as conn:
        indexed_bytes = int(conn.execute(
            "SELECT sum(size) FROM files f JOIN repositories r ON r.id = f.repo_id WHERE r.name = 'cpython-lib-0'"
        ).fetchone()[0])
    queries = sample_queries(engine, args.queries)
    for q in queries[:20]:  # warm the buffer cache
        engine.search.query(q, repo="cpython-lib-0", mode="lexical")
    latencies = []
    for _ in range(3):
        for q in queries:
            t = time.perf_counter()
            engine.search.query(q, repo="cpython-lib-0", mode="lexical", k=10)
            latencies.append((time.perf_counter() - t) * 1000)
    engine.close()

    print(f"CPython Lib/ from {args.lib}; {machine()}")
    print("| measure | value |\n| --- | --- |")
    print(f"| files in tree | {files:,} ({size / 1e6:.1f} MB) |")
    print(f"| files indexed / skipped | {report.files_indexed:,} / {report.files_skipped:,} |")
    print(f"| chunks | {report.chunks:,} |")
    print(f"| source indexed | {indexed_bytes / 1e6:.1f} MB (the rest is skipped: data files over 1 MiB, binaries) |")
    print(f"| index until searchable (`lode index` returns), median of {args.runs} | {searchable:.1f} s: "
          f"{indexed_bytes / 1e6 / searchable:.2f} MB/s (runs: {', '.join(f'{t:.1f}' for t in searchable_runs)} s) |")
    print(f"| then graph resolution, median | {resolve:.1f} s (runs: {', '.join(f'{t:.1f}' for t in graph_runs)} s) |")
    print(f"| full index with the graph, median of {args.runs} | {full:.1f} s: {indexed_bytes / 1e6 / full:.2f} MB/s "
          f"of indexed source, {report.files_indexed / full:.0f} files/s "
          f"(runs: {', '.join(f'{t:.1f}' for t in full_runs)} s) |")
    print(f"| peak RSS (largest process) | {peak_rss_mb():.0f} MB |")
    print(f"| chunks in the index searched | {report.chunks:,} |")
    print(f"| no-op re-index, median | {noop_seconds:.2f} s = {100 * noop_seconds / full:.1f} % of the full index "
          f"({noop.files_unchanged:,} unchanged) |")
    print(f"| lexical search, {len(queries)} queries x 3 | P50 {median(latencies):.1f} ms, "
          f"P95 {percentile(latencies, 95):.1f} ms |")
    shutil.rmtree(tree, ignore_errors=True)  # LODE_HOME stays: its server stops when this process exits


if __name__ == "__main__":
    main()
