"""How fast an open "embedder" circuit breaker fails: 1000 calls against a local stub answering 500.

    .venv/bin/python bench/breaker_failfast.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["LODE_BREAKER_FAILURE_THRESHOLD"] = "2"

from lode.embedding.base import ProviderUnavailable  # noqa: E402
from lode.embedding.http import HttpEmbedder  # noqa: E402
from tests.support.resilience_stubs import FaultyEmbedder  # noqa: E402


def main(calls: int = 1000) -> None:
    with FaultyEmbedder() as stub:
        stub.mode = "500"
        embedder = HttpEmbedder(stub.url, stub.model, dimension=64, retry_attempts=1, query_retry_attempts=1)
        for _ in range(2):  # two failures open the breaker
            try:
                embedder.embed_query("a")
            except ProviderUnavailable:
                pass
        opened_after = stub.requests
        timings = []
        for _ in range(calls):
            started = time.perf_counter()
            try:
                embedder.embed(["a"])
            except ProviderUnavailable:
                pass
            timings.append(time.perf_counter() - started)
        timings.sort()
        print(f"open breaker, {calls} calls: median {statistics.median(timings) * 1e6:.0f} µs, "
              f"p99 {timings[int(calls * 0.99)] * 1e6:.0f} µs; requests reaching the service while open: "
              f"{stub.requests - opened_after}")


if __name__ == "__main__":
    main()
