"""What the ranking stage (issue 17) costs: search latency with LODE_RANKING=on against off, in one run, on
indexes that bench/quality.py has built and embedded (its LODE_HOME), all their repositories searched at once.

Each query runs on both engines back to back (the order alternating), so machine noise falls on both alike; the
query cache is off and each query is new to the query-vector cache (a suffix per engine). Queries, per kind:
semble-dev's (natural language and mixed), bare names from the indexes' symbol tables (symbol) and sympy's
SWE-bench issue texts (long, read whole: up to 64 KiB, over 2000 characters for most).

Usage: python -m bench.ranking_latency [--home /work/cache/bench/home] [--mode hybrid] [--per-kind 50]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from bench.common import SHARED, machine, median, percentile, uncached
from lode.engine import Lode
from lode.search.query import classify

SHORT = "all but long"


def queries(engine: Lode, per_kind: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    semble = [entry["query"] for path in sorted((SHARED / "bench" / "semble-dev" / "annotations").glob("*.json"))
              for entry in json.loads(path.read_text())]
    with engine.db.connection() as conn:
        names = [row[0] for row in conn.execute(
            "SELECT DISTINCT name FROM chunks WHERE kind IN ('function', 'method', 'class') AND length(name) > 3 "
            "ORDER BY name")]
    issues = [i["problem_statement"] for i in json.loads((SHARED / "bench" / "swebench-dev" / "instances.json")
                                                         .read_text()) if i["repo"] == "sympy/sympy"]
    picked = rng.sample(semble, min(per_kind * 2, len(semble))) + rng.sample(names, min(per_kind, len(names)))
    return picked + rng.sample(issues, min(per_kind, len(issues)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path("/work/cache/bench/home"))
    parser.add_argument("--mode", default="hybrid", choices=("hybrid", "lexical"))
    parser.add_argument("--per-kind", type=int, default=50)
    args = parser.parse_args()
    embedder = "local" if args.mode == "hybrid" else "none"
    engines = {state: Lode(uncached(home=args.home, embedder=embedder, ranking=state)) for state in ("off", "on")}
    try:
        sample = queries(engines["on"], args.per_kind)
        for state, engine in engines.items():  # warm up: the model, the pools, the buffer cache
            engine.search.query(f"warm up {state}", mode=args.mode)
        times: dict[str, dict[str, list[float]]] = {"off": {}, "on": {}}
        for number, query in enumerate(sample):
            kind = classify(query).value
            order = ("off", "on") if number % 2 else ("on", "off")
            for state in order:
                started = time.perf_counter()
                engines[state].search(f"{query} q{number}{state}", mode=args.mode, k=10)
                times[state].setdefault(kind, []).append((time.perf_counter() - started) * 1000)
                if kind != "long":  # the mix today's engine takes (it refused queries over 2000 characters)
                    times[state].setdefault(SHORT, []).append(times[state][kind][-1])
    finally:
        for engine in engines.values():
            engine.close()
    print(f"Ranking stage cost, {args.mode} search over every repository in {args.home} "
          f"({len(sample)} queries, each on both engines, alternating); {machine()}")
    print("| query kind | queries | off P50 ms | on P50 ms | off P95 ms | on P95 ms | P95 ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind in [SHORT, *sorted(k for k in times["on"] if k != SHORT)]:
        off, on = times["off"][kind], times["on"][kind]
        print(f"| {kind} | {len(on)} | {median(off):.1f} | {median(on):.1f} | {percentile(off, 95):.1f} | "
              f"{percentile(on, 95):.1f} | {percentile(on, 95) / percentile(off, 95):.2f} |")


if __name__ == "__main__":
    main()
