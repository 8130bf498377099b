"""Wall time of `lode index` on a small tree: a first index, then incremental runs of one changed file.

Issue #15, item 11 sends every file to a killable worker process, even in runs of one file; this measures what
that costs against a baseline checkout in the same run. Usage:
    .venv/bin/python bench/index_small_run.py --baseline /path/to/main/checkout [--source DIR] [--reps 5]
Each variant runs with PYTHONPATH set to its checkout, in its own repository of one scratch LODE_HOME.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _index(checkout: Path, tree: Path, repo: str, env: dict[str, str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "lode", "index", str(tree), "--repo", repo, "--json"], check=True,
                   capture_output=True, env={**env, "PYTHONPATH": str(checkout)}, timeout=600)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--source", type=Path, default=Path(os.__file__).parent / "email")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    variants = {"baseline": args.baseline.resolve(), "this": Path(__file__).resolve().parents[1]}
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        shutil.copytree(args.source, tree)
        env = {**os.environ, "LODE_HOME": str(Path(scratch) / "home"), "LODE_EMBEDDER": "none"}
        changed = sorted(tree.rglob("*.py"))[0]
        first = {name: _index(checkout, tree, name, env) for name, checkout in variants.items()}
        incremental: dict[str, list[float]] = {name: [] for name in variants}
        for rep in range(args.reps):  # interleaved, so that the machine's load weighs on both alike
            for name, checkout in variants.items():
                with changed.open("a") as handle:
                    handle.write(f"# {name} {rep}\n")
                incremental[name].append(_index(checkout, tree, name, env))
    files = sum(1 for _ in Path(args.source).rglob("*.py"))
    print(f"{files} files from {args.source}; {args.reps} incremental runs of 1 changed file each")
    for name in variants:
        median = statistics.median(incremental[name])
        print(f"{name:9} first index {first[name]:.2f} s; incremental median {median:.2f} s")
    print(f"ratio this/baseline, incremental median: "
          f"{statistics.median(incremental['this']) / statistics.median(incremental['baseline']):.2f}")


if __name__ == "__main__":
    main()
