"""Peak memory of an index run (lexical + graph) against corpus size, for one or more checkouts of Lode.

Each (size, checkout) runs in a fresh process on its own embedded PostgreSQL: `lode index` until searchable, then
the graph's resolution, while a thread samples every 0.1 s the memory of the process and its children (the
index workers, their forkserver, forked graph resolvers; PostgreSQL is measured apart). Reported per phase:
- PSS: proportional set size, summed over the processes. Pages shared between a parent and its forks count
  once in all, so this is what the run costs the machine. The issue's "added RSS" target is read on it.
- RSS: resident set size, summed the same way: shared pages count once per process (the figure of the older
  scaling tables).
- the indexing process's own RSS.
"Added" is the peak minus the first sample, taken with the database up and Lode imported. Sizes are replicas of
CPython's Lib/ (bench/corpora.py). Each checkout runs on its own .venv when it has one; LODE_MEMORY_BUDGET_MB
passes through.

Usage: python -m bench.memory --checkout /work/main [--checkout OTHER] [--sizes 0.15,1,4,8] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

PHASES = ("index", "resolve")


class Sampler:
    """Peak PSS and RSS sums of this process and its children, per phase (PostgreSQL's processes excluded)."""

    def __init__(self) -> None:
        self.phase = "start"
        self.peaks: dict[str, dict[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        me = psutil.Process()
        pss = rss = own = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                if proc.name().startswith("postgres"):
                    continue
                info = proc.memory_full_info()
            except psutil.Error:
                continue
            pss, rss = pss + info.pss, rss + info.rss
            own = info.rss if proc.pid == me.pid else own
        peak = self.peaks.setdefault(self.phase, {"pss_mb": 0.0, "rss_mb": 0.0, "own_rss_mb": 0.0})
        for key, value in (("pss_mb", pss), ("rss_mb", rss), ("own_rss_mb", own)):
            peak[key] = max(peak[key], value / 2**20)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self._sample()


def inner(corpus: Path) -> dict[str, Any]:
    """Runs in a subprocess whose PYTHONPATH starts with the checkout measured."""
    from lode.config import CacheSettings, Settings
    from lode.engine import Lode

    work = Path(tempfile.mkdtemp(prefix="lode-memory-"))
    engine = Lode(Settings(home=work / "home", embedder="none", cache=CacheSettings(enabled=False)))
    _ = engine.db  # the server starts before the first sample
    result: dict[str, Any] = {}
    try:
        with Sampler() as sampler:
            sampler.phase = "index"
            started = time.perf_counter()
            report = engine.indexing.index(corpus, "bench", defer_graph=True)
            result["index_s"] = time.perf_counter() - started
            sampler.phase = "resolve"
            started = time.perf_counter()
            if not engine.graph.resolve("bench"):
                raise RuntimeError("the graph resolution did not run")
            result["resolve_s"] = time.perf_counter() - started
        result["chunks"] = report.chunks
        start = sampler.peaks["start"]
        for phase in PHASES:
            for key, value in sampler.peaks[phase].items():
                result[f"{phase}_{key}"] = value
            result[f"{phase}_pss_added_mb"] = sampler.peaks[phase]["pss_mb"] - start["pss_mb"]
        result["pss_added_mb"] = max(result[f"{phase}_pss_added_mb"] for phase in PHASES)
        result["rss_added_mb"] = max(sampler.peaks[phase]["rss_mb"] for phase in PHASES) - start["rss_mb"]
    finally:
        engine.close()
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, action="append", required=True)
    parser.add_argument("--sizes", default="0.15,1,4,8", help="replicas of CPython's Lib/, comma-separated")
    parser.add_argument("--work", type=Path, default=Path("/tmp/lode-bench-work/corpora"))
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(inner(args.inner)))
        return
    from bench import corpora

    rows = []
    for size in [float(s) for s in args.sizes.split(",")]:
        corpus = corpora.stdlib(args.work / f"lib-x{size:g}", size)
        for checkout in [c.resolve() for c in args.checkout]:
            env = {**os.environ, "PYTHONPATH": str(checkout), "LODE_EMBEDDER": "none"}
            env.pop("LODE_DATABASE_URL", None)
            own = checkout / ".venv" / "bin" / "python"
            out = subprocess.run(
                [str(own) if own.exists() else sys.executable, str(Path(__file__).resolve()), "--checkout",
                 str(checkout), "--inner", str(corpus.root)],
                capture_output=True, text=True, env=env, check=True, cwd=checkout,
            ).stdout
            row = {"corpus": corpus.name, "source_mb": corpus.bytes / 1e6, "checkout": str(checkout),
                   **json.loads(out.strip().splitlines()[-1])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    report(rows)


def report(rows: list[dict[str, Any]]) -> None:
    print("\n| checkout | corpus | chunks | index s | resolve s | MB/s | PSS added MB (index / resolve) "
          "| RSS sum added MB | indexing process RSS MB (index / resolve) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {Path(r['checkout']).name} | {r['corpus']} | {r['chunks']:,} | {r['index_s']:.1f} "
              f"| {r['resolve_s']:.1f} | {r['source_mb'] / (r['index_s'] + r['resolve_s']):.2f} "
              f"| {r['index_pss_added_mb']:,.0f} / {r['resolve_pss_added_mb']:,.0f} | {r['rss_added_mb']:,.0f} "
              f"| {r['index_own_rss_mb']:,.0f} / {r['resolve_own_rss_mb']:,.0f} |")
    for checkout in dict.fromkeys(r["checkout"] for r in rows):
        points = [(r["chunks"], r["pss_added_mb"]) for r in rows if r["checkout"] == checkout]
        if len(points) > 1:
            exponent = np.polyfit(np.log([p[0] for p in points]), np.log([p[1] for p in points]), 1)[0]
            print(f"\n{Path(checkout).name}: peak PSS added against chunks, log-log exponent {exponent:.2f}")


if __name__ == "__main__":
    main()
