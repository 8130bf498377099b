"""The self-supervised stdlib benchmark: queries are docstring first sentences, the index has docstrings blanked.

Usage: python bench/stdlib_docstrings.py [--home DIR] [--limit 300]
Source: the top-level modules of CPython's Lib/ (shipped with the interpreter), so the corpus is the same on
every machine of a kind and small enough to embed in a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from lode.config import Settings  # noqa: E402
from lode.engine import Lode  # noqa: E402
from lode.evaluate import METRICS, evaluate, generate_docstring_benchmark, load_cases  # noqa: E402


def run(home: Path, limit: int, modules: int | None = None) -> dict:
    """Generate the benchmark under home/bench once (from the first `modules` top-level modules of Lib/, all if
    None), index and embed it, and evaluate the three modes."""
    work = home / "bench"
    if not (work / "queries.jsonl").exists():
        source = work / "source"
        source.mkdir(parents=True, exist_ok=True)
        for module in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:modules]:
            shutil.copy(module, source / module.name)
        generate_docstring_benchmark(source, work, limit, seed=0)
    engine = Lode(Settings(home=home, embedder="local"))
    try:
        engine.indexing.index(work / "tree", "stdlib-docs")
        engine.embeddings.embed("stdlib-docs")
        return evaluate(engine, load_cases(work / "queries.jsonl"), "stdlib-docs", ["lexical", "semantic", "hybrid"])
    finally:
        engine.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "lode-stdlib-home")
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    result = run(args.home, args.limit)
    print(f"stdlib docstring benchmark: {result['queries']} queries over Lib/*.py with docstrings blanked; {machine()}")
    print("| mode | " + " | ".join(METRICS) + " |\n| --- |" + " --- |" * len(METRICS))
    for mode, row in result["modes"].items():
        print(f"| {mode} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")

if __name__ == "__main__":
    main()
