"""Tune hybrid fusion on the public CoSQA dev set: the legs' rankings are computed once, then fused offline.

Usage: python -m bench.fusion_tuning [--home DIR]
The index (with embeddings) is kept under --home, so a second run skips indexing and embedding. Each query's
legs come from SearchService.legs, the rankings a hybrid search fuses (top 100 of each leg); the table shows each
leg alone, equal-weight RRF, the shipped weights (lode.search.fusion.WEIGHTS) and the three best of each method.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import machine
from bench.cosqa import index_corpus, load
from lode.config import Settings
from lode.engine import Lode
from lode.evaluate import mean, score
from lode.search.fusion import WEIGHTS, fuse
from lode.services.search import LEG_DEPTH
from lode.store.search_rows import SearchRows

Legs = dict[str, list[tuple[int, float]]]
Run = tuple[Legs, str]  # a query's legs, and the path of its target function


def rrf(legs: Legs, weights: dict[str, float], k: int = 60) -> list[int]:
    scores: dict[int, float] = {}
    for leg, ranking in legs.items():
        for rank, (cid, _) in enumerate(ranking, start=1):
            scores[cid] = scores.get(cid, 0.0) + weights[leg] / (k + rank)
    return sorted(scores, key=lambda c: (-scores[c], c))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "lode-cosqa-home")
    args = parser.parse_args()
    corpus, queries = load(None)
    engine = Lode(Settings(home=args.home, embedder="local"))
    if "cosqa" not in {r["repo"] for r in engine.repos.all()}:
        index_corpus(engine, corpus, args.home / "corpus")
    engine.embeddings.embed("cosqa")  # a no-op once every chunk has its vectors
    runs: list[Run] = [(engine.search.legs(q["query"], repo="cosqa", depth=LEG_DEPTH), f"f{q['target']}.py")
                       for q in queries]
    ids = sorted({cid for legs, _ in runs for ranking in legs.values() for cid, _ in ranking})
    with engine.db.read() as conn:
        paths = {cid: row[2] for cid, row in SearchRows(conn).hits(ids).items()}

    def quality(rank_ids: Callable[[Run], list[int]]) -> dict[str, float]:
        rows = []
        for run in runs:
            ranked_paths = list(dict.fromkeys(paths[c] for c in rank_ids(run)))[:10]  # a split file counts once
            rows.append(score([0 if p == run[1] else None for p in ranked_paths], 1))
        return mean(rows)

    def line(name: str, weights: dict[str, float] | None, m: dict[str, float]) -> str:
        cells = [str(weights[leg]) if weights else "" for leg in ("lexical", "text", "code")]
        cells += [f"{m[metric]:.3f}" for metric in ("MRR@10", "nDCG@10", "R@10")]
        return f"| {name} | {' | '.join(cells)} |"

    print(f"CoSQA dev-500 fusion grid, {len(queries)} queries, {len(corpus)} functions; {machine()}")
    print("| fusion | lexical | text | code | MRR@10 | nDCG@10 | R@10 |\n| --- | --- | --- | --- | --- | --- | --- |")
    for leg in ("lexical", "text", "code"):
        print(line(f"{leg} alone", None, quality(lambda run, leg=leg: [c for c, _ in run[0][leg]])))
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]
    results = []
    for wl, wt in itertools.product(grid, grid):
        weights = {"lexical": wl, "text": wt, "code": 1.0}
        min_max = quality(lambda run, weights=weights: [f.chunk_id for f in fuse(run[0], weights)])
        results.append(("min-max", weights, min_max))
        results.append(("weighted RRF", weights, quality(lambda run, weights=weights: rrf(run[0], weights))))
    equal = {"lexical": 1.0, "text": 1.0, "code": 1.0}
    print(line("RRF, equal weights", dict.fromkeys(equal, 1), quality(lambda run: rrf(run[0], equal))))
    print(line("min-max, shipped (WEIGHTS)", WEIGHTS,
               quality(lambda run: [f.chunk_id for f in fuse(run[0], WEIGHTS)])))
    for method in ("min-max", "weighted RRF"):
        best = sorted((r for r in results if r[0] == method), key=lambda r: -r[2]["MRR@10"])[:3]
        for _, w, m in best:
            print(line(method, w, m))
    engine.close()


if __name__ == "__main__":
    main()
