"""Where a full index's wall time goes, seen from the indexing process: the wait for the first worker outcome
(the worker server starting and importing the indexer, then the first files), the per-file writes, the graph
resolution and the postings' finish_load beside it. Timers wrap the indexer's methods; nothing else changes.

Usage: python bench/index_phases.py --corpus DIR [--workers N]  (LODE_EMBEDDER is forced to none)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=None, help="LODE_INDEX_WORKERS (default: the cores)")
    args = parser.parse_args()

    import lode.indexer as indexer
    from lode.config import CacheSettings, Settings
    from lode.engine import Lode

    seconds: dict[str, float] = defaultdict(float)
    started = [0.0]

    def timed(owner: Any, name: str, label: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - begin
        setattr(owner, name, wrapper)

    timed(indexer._Run, "_replace", "per-file writes (parent)")
    timed(indexer._Run, "maintain", "finish_load (beside the resolution)")
    timed(indexer.Indexer, "_resolve", "graph resolution")
    process = indexer._Run._process

    def first_outcome(self: Any, jobs: list[Any]) -> Iterator[Any]:
        begin, first = time.perf_counter(), True
        seconds["before the workers"] += begin - started[0]
        for outcome in process(self, jobs):
            if first:
                seconds["wait for the first outcome"] += time.perf_counter() - begin
                first = False
            yield outcome
    indexer._Run._process = first_outcome  # type: ignore[method-assign]

    work = Path(tempfile.mkdtemp(prefix="lode-index-phases-"))
    try:
        tree = work / "tree"
        shutil.copytree(args.corpus, tree)
        settings = Settings(home=work / "home", embedder="none", cache=CacheSettings(enabled=False),
                            **({"index_workers": args.workers} if args.workers else {}))
        engine = Lode(settings)
        _ = engine.db  # the server starts outside the timing
        started[0] = time.perf_counter()
        engine.indexing.index(tree, "bench")
        total = time.perf_counter() - started[0]
        engine.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"full index {total:.2f} s ({settings.index_workers} workers)")
    for label, value in seconds.items():
        print(f"  {label:38} {value:6.2f} s  {100 * value / total:4.1f} %")


if __name__ == "__main__":
    main()
