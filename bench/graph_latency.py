"""Callers and callees at depth 3 on CPython's Lib/ (≥ 50k graph nodes), in the process.

Samples symbols that have callers and symbols that have callees (seeded), runs each traversal three times and
reports P50/P95 per direction, with the graph's size.

Usage: python bench/graph_latency.py [--home DIR] [--symbols 200]   (the index is kept under --home for reruns)
"""

from __future__ import annotations

import argparse
import random
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, percentile, uncached  # noqa: E402
from bench.index_cpython import copy_lib  # noqa: E402
from lode.engine import Lode  # noqa: E402

REPO = "cpython-lib"


def sample(engine: Lode, column: str, n: int, seed: int) -> list[str]:
    """Unique qualified names of nodes on the given side of a `calls` edge."""
    with engine.db.connection() as conn:
        names = [
            row[0]
            for row in conn.execute(
                f"""SELECT n.name_path FROM graph_nodes n JOIN repositories r ON r.id = n.repo_id
                     WHERE r.name = %s AND EXISTS (SELECT 1 FROM graph_edges e WHERE e.{column} = n.id
                                                   AND e.kind = 'calls')
                     GROUP BY n.name_path HAVING count(*) = 1 ORDER BY n.name_path""",
                (REPO,),
            )
        ]
    return random.Random(seed).sample(names, min(n, len(names)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "lode-graph-home")
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--depth", type=int, default=3)
    args = parser.parse_args()
    engine = Lode(uncached(home=args.home, embedder="none"))
    tree = args.home / "Lib"
    if not tree.exists():
        copy_lib(Path(sysconfig.get_paths()["stdlib"]), tree)
    engine.indexing.index(tree, REPO)
    with engine.db.connection() as conn:
        nodes, edges = conn.execute(
            """SELECT (SELECT count(*) FROM graph_nodes n WHERE n.repo_id = r.id),
                      (SELECT count(*) FROM graph_edges e WHERE e.repo_id = r.id)
                 FROM repositories r WHERE r.name = %s""", (REPO,)
        ).fetchone()
    print(f"{machine()}\ngraph: {nodes} nodes, {edges} edges; depth {args.depth}")
    print("| direction | symbols | results per query (median) | P50 ms | P95 ms |\n| --- | --- | --- | --- | --- |")
    for direction, column in (("callers", "target_id"), ("callees", "source_id")):
        symbols = sample(engine, column, args.symbols, seed=3)
        times, sizes = [], []
        for _ in range(3):
            for symbol in symbols:
                started = time.perf_counter()
                result = engine.graph.neighbours(direction, symbol, repo=REPO, depth=args.depth)
                times.append((time.perf_counter() - started) * 1000)
                sizes.append(len(result["results"]))
        print(f"| {direction} | {len(symbols)} | {median(sizes):.0f} | {median(times):.1f} "
              f"| {percentile(times, 95):.1f} |")
    engine.close()


if __name__ == "__main__":
    main()
