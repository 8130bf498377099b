"""Tune hybrid fusion on the public CoSQA dev set: the legs' rankings are computed once, then fused offline.

Usage: python bench/fusion_tuning.py [--home DIR]
The index (with embeddings) is kept under --home, so a second run skips indexing and embedding.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine  # noqa: E402
from bench.cosqa import load  # noqa: E402
from lode.config import Settings  # noqa: E402
from lode.engine import Lode  # noqa: E402
from lode.services.base import repos_in_scope  # noqa: E402
from lode.services.search import _RunningStatements  # noqa: E402
from lode.evaluate import mean, score  # noqa: E402
from lode.search.filters import Filters  # noqa: E402
from lode.search.fusion import fuse  # noqa: E402

DEPTH = 100


def rrf(legs: dict[str, list[tuple[int, float]]], weights: dict[str, float], k: int = 60) -> list[int]:
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
        root = args.home / "corpus"
        root.mkdir(parents=True, exist_ok=True)
        for ident, code in corpus.items():
            (root / f"f{ident}.py").write_text(code)
        engine.indexing.index(root, "cosqa")
    engine.embeddings.embed("cosqa")
    with engine.db.connection() as conn:
        repo = repos_in_scope(conn, "cosqa")[0]
        paths = dict(conn.execute("SELECT id, path FROM chunks WHERE repo_id = %s", (repo.id,)).fetchall())
    runs, statements = [], _RunningStatements()
    for q in queries:
        search = engine.search
        vector = search._query_vector(engine.embedder, q["query"])
        legs = {
            "lexical": search._lexical_leg(q["query"], [repo], Filters(), DEPTH, statements),
            "text": search._vector_leg(repo.embedding_model, "text", vector, [repo.id], Filters(), DEPTH, statements),
            "code": search._vector_leg(repo.embedding_model, "code", vector, [repo.id], Filters(), DEPTH, statements),
        }
        runs.append((legs, f"f{q['target']}.py"))

    def quality(rank_ids) -> dict[str, float]:  # type: ignore[no-untyped-def]
        rows = []
        for (_, target), ids in zip(runs, map(rank_ids, runs)):
            ranked_paths = list(dict.fromkeys(paths[c] for c in ids))[:10]
            rows.append(score([0 if p == target else None for p in ranked_paths], 1))
        return mean(rows)

    print(f"CoSQA dev-500 fusion grid; {machine()}")
    print("| fusion | lexical | text | code | MRR@10 | nDCG@10 | R@10 |\n| --- | --- | --- | --- | --- | --- | --- |")
    singles = {leg: quality(lambda run, leg=leg: [c for c, _ in run[0][leg]]) for leg in ("lexical", "text", "code")}
    for leg, m in singles.items():
        print(f"| {leg} alone | | | | {m['MRR@10']:.3f} | {m['nDCG@10']:.3f} | {m['R@10']:.3f} |")
    grid = [0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0]
    results = []
    for wl, wt in itertools.product(grid, grid):
        weights = {"lexical": wl, "text": wt, "code": 1.0}
        min_max = quality(lambda run, weights=weights: [f.chunk_id for f in fuse(run[0], weights)])
        results.append(("min-max", weights, min_max))
        results.append(("weighted RRF", weights, quality(lambda run, weights=weights: rrf(run[0], weights))))
    equal = quality(lambda run: rrf(run[0], {"lexical": 1.0, "text": 1.0, "code": 1.0}))
    print(f"| RRF, equal weights | 1 | 1 | 1 | {equal['MRR@10']:.3f} | {equal['nDCG@10']:.3f} | {equal['R@10']:.3f} |")
    for method in ("min-max", "weighted RRF"):
        best = sorted((r for r in results if r[0] == method), key=lambda r: -r[2]["MRR@10"])[:3]
        for _, w, m in best:
            print(f"| {method} | {w['lexical']} | {w['text']} | {w['code']} | {m['MRR@10']:.3f} | "
                  f"{m['nDCG@10']:.3f} | {m['R@10']:.3f} |")
    engine.close()


if __name__ == "__main__":
    main()
