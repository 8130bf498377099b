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

from lode.config import CacheSettings, Settings
from lode.engine import Lode
from lode.evaluate import mean, score

SHARED = Path(__file__).resolve().parents[2] / "shared"


def uncached(**settings: object) -> Settings:
    """Settings with the query cache off: a latency benchmark repeats its queries and must measure the work."""
    return Settings(cache=CacheSettings(enabled=False), **settings)


def fresh_engine(home: Path | None = None) -> Lode:
    """An engine on its own embedded PostgreSQL under a temporary LODE_HOME, unless LODE_DATABASE_URL is set."""
    home = home or Path(tempfile.mkdtemp(prefix="lode-bench-"))
    os.environ["LODE_HOME"] = str(home)
    return Lode(uncached(home=home, embedder="none"))


def quality(rankings: list[tuple[list[str], str]]) -> dict[str, float]:
    """Lode's own metrics (lode.evaluate) for rankings of ids against one target each."""
    return mean(score([0 if item == target else None for item in ranked], 1) for ranked, target in rankings)


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
