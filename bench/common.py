"""Shared helpers for the benchmarks: a fresh engine, retrieval metrics, percentiles, machine facts."""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from lode.config import Settings
from lode.engine import Lode

SHARED = Path(__file__).resolve().parents[2] / "shared"


def fresh_engine(home: Path | None = None) -> Lode:
    """An engine on its own embedded PostgreSQL under a temporary LODE_HOME, unless LODE_DATABASE_URL is set."""
    home = home or Path(tempfile.mkdtemp(prefix="lode-bench-"))
    os.environ["LODE_HOME"] = str(home)
    return Lode(Settings(home=home, embedder="none"))


def reciprocal_rank(ranked: list[str], target: str, k: int = 10) -> float:
    for i, item in enumerate(ranked[:k], start=1):
        if item == target:
            return 1.0 / i
    return 0.0


def ndcg(ranked: list[str], target: str, k: int = 10) -> float:
    for i, item in enumerate(ranked[:k], start=1):
        if item == target:
            return 1.0 / math.log2(i + 1)
    return 0.0


def recall(ranked: list[str], target: str, k: int) -> float:
    return 1.0 if target in ranked[:k] else 0.0


def quality(rankings: list[tuple[list[str], str]]) -> dict[str, float]:
    n = len(rankings)
    return {
        "MRR@10": sum(reciprocal_rank(r, t) for r, t in rankings) / n,
        "nDCG@10": sum(ndcg(r, t) for r, t in rankings) / n,
        "R@1": sum(recall(r, t, 1) for r, t in rankings) / n,
        "R@5": sum(recall(r, t, 5) for r, t in rankings) / n,
        "R@10": sum(recall(r, t, 10) for r, t in rankings) / n,
    }


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = "?"
    return (f"{platform.node()} ({os.cpu_count()} cores, Python {platform.python_version()}), "
            f"{date.today().isoformat()}, commit {commit or '?'}")
