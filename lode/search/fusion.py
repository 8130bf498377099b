"""Fusing the legs' rankings into one.

Each leg's scores are min-max normalised over its own candidates (so a leg's best hit counts 1 and its worst
0), then combined as a weighted sum; a chunk missing from a leg gets 0 there. The weights were tuned on the
public CoSQA dev set (python -m bench.fusion_tuning); docs/benchmarks.md has the grid and why this beat weighted RRF.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTS = {"lexical": 0.2, "text": 0.4, "code": 1.0}
# By query kind (lode/search/query.py), with the ranking stage on: a name is found by its letters, an issue's
# text by its rare words more than by its first 256 word pieces (bench/quality.py, docs/benchmarks.md)
KIND_WEIGHTS = {
    "natural": WEIGHTS,
    "mixed": {"lexical": 0.5, "text": 0.4, "code": 1.0},
    "symbol": {"lexical": 1.0, "text": 0.3, "code": 0.6},
    "long": {"lexical": 1.0, "text": 0.2, "code": 0.4},
}


@dataclass(slots=True)
class Fused:
    chunk_id: int
    score: float
    ranks: dict[str, int | None]


def fuse(legs: dict[str, list[tuple[int, float]]], weights: dict[str, float] | None = None) -> list[Fused]:
    weights = weights or WEIGHTS
    fused: dict[int, Fused] = {}
    for leg, ranking in legs.items():
        if not ranking:
            continue
        scores = [score for _, score in ranking]
        low, high = min(scores), max(scores)
        span = high - low
        for rank, (chunk_id, score) in enumerate(ranking, start=1):
            entry = fused.get(chunk_id)
            if entry is None:
                entry = fused[chunk_id] = Fused(chunk_id, 0.0, dict.fromkeys(legs))
            entry.ranks[leg] = rank
            entry.score += weights.get(leg, 0.0) * ((score - low) / span if span > 0 else 1.0)
    return sorted(fused.values(), key=lambda f: (-f.score, f.chunk_id))
