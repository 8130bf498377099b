"""Scoring for the search-quality dev sets (bench/quality.py): file rankings against their targets.

- semble-dev: file nDCG@10 exactly as /work/shared/bench/semble-dev/README.md defines it (binary gain, T = the
  number of targets, paths match when equal or when one ends with "/" + the other);
- swebench-dev: Acc@k (every gold file among the first k distinct files) and MRR@10 (best-ranked gold file);
- CoSQA and the symbol set: MRR@10 and hit@k against one target file;
- symbol set: def@1, the first hit is the definition's chunk (its file, and a span holding the definition's line).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any


def distinct_files(paths: Iterable[str], limit: int | None = None) -> list[str]:
    """The paths in order of first appearance (a file with several hits counts once), cut at `limit`."""
    ranked = list(dict.fromkeys(paths))
    return ranked if limit is None else ranked[:limit]


def paths_match(found: str, target: str) -> bool:
    """semble's rule: equal, or one path ends with "/" followed by the other."""
    return found == target or found.endswith("/" + target) or target.endswith("/" + found)


def file_ndcg_at_10(ranked: Sequence[str], targets: Sequence[str]) -> float:
    """semble-dev's file nDCG@10: a target is found at the rank of the first file matching it; each rank's gain is
    1 when some target is found there; the ideal DCG has min(10, T) gains."""
    if not targets:
        raise ValueError("a query needs at least one target")
    files = distinct_files(ranked, 10)
    found_at: set[int] = set()
    for target in targets:
        rank = next((r for r, path in enumerate(files) if paths_match(path, target)), None)
        if rank is not None:
            found_at.add(rank)
    dcg = sum(1 / math.log2(rank + 2) for rank in found_at)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(targets))))
    return dcg / ideal


def rank_of_first(ranked: Sequence[str], targets: Sequence[str], depth: int = 10) -> int | None:
    """1-based rank of the first distinct file matching any target within `depth`, else None."""
    for rank, path in enumerate(distinct_files(ranked, depth), start=1):
        if any(paths_match(path, t) for t in targets):
            return rank
    return None


def mrr_at_10(ranked: Sequence[str], targets: Sequence[str]) -> float:
    rank = rank_of_first(ranked, targets, 10)
    return 0.0 if rank is None else 1.0 / rank


def acc_at_k(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    """1.0 when every gold file is among the first k distinct files, else 0.0."""
    if not gold:
        raise ValueError("an instance needs at least one gold file")
    top = distinct_files(ranked, k)
    return 1.0 if all(any(paths_match(path, g) for path in top) for g in gold) else 0.0


def hit_at_k(ranked: Sequence[str], targets: Sequence[str], k: int) -> float:
    return 1.0 if rank_of_first(ranked, targets, k) is not None else 0.0


def is_definition_hit(hit: dict[str, Any], path: str, line: int) -> bool:
    """A hit is the definition when it is in the definition's file and its line span holds the definition line."""
    return paths_match(hit["path"], path) and hit["start_line"] <= line <= hit["end_line"]


def mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
