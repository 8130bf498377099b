"""Discovery and reading speed on a large tree: listing and classifying every path (walk mode, or git mode when
the tree is a git work tree), then reading every candidate in one process in path order, as an inline index run
does. Each pass is repeated; the medians of wall time and of this process's CPU time (user + system: what the
pass itself costs, less sensitive to other load on the machine) are printed.

Usage: python bench/discovery.py PATH [--runs 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median
from lode.config import Settings
from lode.discover import SourceTree, discover
from lode.model import Candidate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("path", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(home=Path("/tmp"))
    listed, read = [], []
    for _ in range(args.runs):
        started = time.perf_counter(), time.process_time()
        found = list(discover(args.path, settings))
        listed.append((time.perf_counter() - started[0], time.process_time() - started[1]))
        candidates = [item for item in found if isinstance(item, Candidate)]
        started = time.perf_counter(), time.process_time()
        with SourceTree(args.path) as tree:
            for candidate in candidates:
                tree.read(candidate, settings)
        read.append((time.perf_counter() - started[0], time.process_time() - started[1]))
    print(f"{machine()}\n{args.path}: {len(found):,} paths, {len(candidates):,} candidates, {args.runs} runs")
    for name, times in (("discover", listed), ("read", read)):
        wall, cpu = [t[0] for t in times], [t[1] for t in times]
        print(f"{name:8} wall median {median(wall):.3f} s, CPU median {median(cpu):.3f} s "
              f"(wall {', '.join(f'{s:.3f}' for s in wall)})")


if __name__ == "__main__":
    main()
