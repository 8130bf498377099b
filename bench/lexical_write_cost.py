"""What term_stats and the (term, file_id) postings index cost on the write side: the same index runs with two
checkouts of Lode (e.g. main and this branch), each on a fresh embedded PostgreSQL, alternated per repetition.

Per checkout: a first load (lexical only, LODE_GRAPH=false, so the graph's resolution does not blur it; `--graph`
measures lexical + graph indexing instead), a no-op re-index, then `--changed` files edited and re-indexed (each
file's transaction now also keeps term_stats). The summary gives each figure's median over the runs, the first
load in MB/s of source, and each checkout's medians over the first one's.

Each checkout runs on its own .venv when it has one.

Usage: python bench/lexical_write_cost.py --corpus /tmp/lode-bench-work/corpora/lib-x1 \
    --checkout /work/main --checkout . [--changed 100] [--runs 2] [--graph]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def inner(corpus: Path, changed: int, graph: bool) -> dict[str, float]:
    """Runs in a subprocess whose PYTHONPATH starts with the checkout measured."""
    import shutil

    from lode.config import CacheSettings, Settings
    from lode.engine import Lode

    work = Path(tempfile.mkdtemp(prefix="lode-write-cost-"))
    tree = work / "tree"
    shutil.copytree(corpus, tree)
    engine = Lode(Settings(home=work / "home", embedder="none", graph=graph, cache=CacheSettings(enabled=False)))
    _ = engine.db  # the server starts outside the timed regions
    times = {}
    started = time.perf_counter()
    engine.indexing.index(tree, "bench")
    times["first_load_s"] = time.perf_counter() - started
    started = time.perf_counter()
    engine.indexing.index(tree, "bench")
    times["noop_s"] = time.perf_counter() - started
    sources = sorted(tree.rglob("*.py"))
    for path in sources[:: max(1, len(sources) // changed)][:changed]:
        path.write_bytes(path.read_bytes() + b"\n\ndef edited_for_the_benchmark(self):\n    return self\n")
    started = time.perf_counter()
    engine.indexing.index(tree, "bench")
    times[f"changed_{changed}_s"] = time.perf_counter() - started
    engine.close()
    shutil.rmtree(work, ignore_errors=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--checkout", type=Path, action="append", required=True)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--graph", action="store_true", help="index with the graph on (lexical + graph)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(args.corpus, args.changed, args.graph)))
        return
    checkouts = [checkout.resolve() for checkout in args.checkout]
    results: dict[str, list[dict[str, float]]] = {str(c): [] for c in checkouts}
    for _ in range(args.runs):
        for checkout in checkouts:
            env = {**os.environ, "PYTHONPATH": str(checkout), "LODE_EMBEDDER": "none"}
            env.pop("LODE_DATABASE_URL", None)
            own = checkout / ".venv" / "bin" / "python"  # a checkout's own dependencies, when it has them
            out = subprocess.run(
                [str(own) if own.exists() else sys.executable, str(Path(__file__).resolve()),
                 "--corpus", str(args.corpus), "--checkout", str(checkout), "--changed", str(args.changed), "--inner",
                 *(["--graph"] if args.graph else [])],
                capture_output=True, text=True, env=env, check=True, cwd=checkout,
            ).stdout
            results[str(checkout)].append(json.loads(out.strip().splitlines()[-1]))
            print(checkout, results[str(checkout)][-1], flush=True)
    print(json.dumps(results, indent=1))
    summarize(args.corpus, results)


def summarize(corpus: Path, results: dict[str, list[dict[str, float]]]) -> None:
    """Median of each figure per checkout, the first load in MB/s of source, and the ratio to the first checkout."""
    megabytes = sum(path.stat().st_size for path in corpus.rglob("*") if path.is_file()) / 1e6
    medians = {checkout: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
               for checkout, runs in results.items()}
    first = next(iter(medians.values()))
    print(f"{megabytes:.2f} MB of source; medians of {len(next(iter(results.values())))} runs")
    for checkout, figures in medians.items():
        cells = ", ".join(f"{key} {value:.2f} ({value / first[key]:.2f}x)" for key, value in figures.items())
        print(f"{checkout}: {cells}; first load {megabytes / figures['first_load_s']:.2f} MB/s; "
              f"no-op {100 * figures['noop_s'] / figures['first_load_s']:.1f} % of it")


if __name__ == "__main__":
    main()
