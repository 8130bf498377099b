"""Side-by-side tables of bench/quality.py runs, one column per run: the ranking stage's ablations and its
before/after figures (docs/benchmarks.md, issue 17).

Usage: python -m bench.ranking_report --set semble --mode hybrid --metric ndcg10 --facets repo,language,kind \
           "on=results/quality-...-on.json" "off=results/quality-...-off.json" ...
Each run's own summary is read (bench/quality.py writes it per set, mode and facet); a cell a run lacks is "–".
A run given as LABEL=RESULT.json@MODE is read in that mode instead of --mode (e.g. the bm25s baseline of a run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cell(summary: dict[str, Any], set_name: str, mode: str, facet: str, key: str, metric: str) -> str:
    by_mode = summary.get(set_name, {}).get(mode, {})
    entry = by_mode.get("overall") if facet == "overall" else by_mode.get(facet, {}).get(key)
    value = entry.get(metric) if entry else None
    if facet == "overall" and metric in ("ndcg10",) and entry:
        value = entry.get("mean_of_repos", value)
    return "–" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", metavar="LABEL=RESULT.json")
    parser.add_argument("--set", default="semble")
    parser.add_argument("--mode", default="hybrid")
    parser.add_argument("--metric", default="ndcg10")
    parser.add_argument("--facets", default="repo,language,kind")
    args = parser.parse_args()
    runs, modes = [], []
    for spec in args.runs:
        label, _, path = spec.partition("=")
        path, _, mode = path.partition("@")
        runs.append((label, json.loads(Path(path).read_text())))
        modes.append(mode or args.mode)
    keys: list[tuple[str, str]] = [("overall", "mean of repositories" if args.set == "semble" else "all")]
    for facet in filter(None, args.facets.split(",")):
        seen = sorted({k for (_, run), mode in zip(runs, modes) for k in run["summary"].get(args.set, {})
                       .get(mode, {}).get(facet, {})})
        keys += [(facet, k) for k in seen]
    labels = [label for label, _ in runs]
    print(f"{args.set}, {args.mode}, {args.metric}; runs: " + "; ".join(
        f"{label}: `{run['meta']['command']}` ({run['meta']['date']}, {run['meta']['machine'].split(', commit ')[-1]})"
        for label, run in runs))
    print()
    print("| facet | " + " | ".join(labels) + " |")
    print("| --- | " + " | ".join("---" for _ in labels) + " |")
    for facet, key in keys:
        name = key if facet == "overall" else f"{facet}: {key}"
        print(f"| {name} | " + " | ".join(cell(run["summary"], args.set, mode, facet, key, args.metric)
                                          for (_, run), mode in zip(runs, modes)) + " |")


if __name__ == "__main__":
    main()
