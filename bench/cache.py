"""The query cache: the same 200 hybrid queries cold, then warm from each layer, then with Redis killed and frozen.

Corpus: CPython's Lib/json and Lib/email, every chunk embedded with the local model. A real redis-server is
started on a free port (tests/support/redis_server.py). Phases, all in this process, k=10, hybrid:
  miss      the cache flushed (L1, L2 and the L3 query vectors): each query is embedded and searched
  L1 hit    the same queries again, same engine
  L2 hit    a new engine (empty L1, as after a restart) on the same Redis
  L3        a new engine without LODE_REDIS_URL: results computed, query vectors from L3
  killed    Redis killed (SIGKILL): 5 searches open the breaker, then each query runs on that engine and on a
            baseline engine without Redis, back to back; failed searches and the added latency
  frozen    the same with Redis stopped by SIGSTOP (connects, then reads time out)

Usage: python bench/cache.py [--home DIR] [--queries 200]   (the index is kept under --home for reruns)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, percentile  # noqa: E402
from bench.index_cpython import sample_queries  # noqa: E402
from lode.config import Settings  # noqa: E402
from lode.engine import Lode  # noqa: E402
from lode.resilience import breaker_states, reset_breakers  # noqa: E402
from lode.store.repositories import Repositories  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402

REPO = "cpython-lib-0"  # the name sample_queries draws from


def timed(engine: Lode, query: str) -> tuple[float, bool]:
    """One hybrid search: its latency in ms, and whether it failed."""
    started = time.perf_counter()
    try:
        engine.search.query(query, repo=REPO, mode="hybrid", k=10)
        failed = False
    except Exception as exc:  # noqa: BLE001 - the benchmark counts failures of any kind
        failed = True
        print(f"failed: {exc!r}", file=sys.stderr)
    return (time.perf_counter() - started) * 1000, failed


def run(engine: Lode, queries: list[str]) -> tuple[list[float], int]:
    """Latencies (ms) of the queries in order, and how many searches failed."""
    results = [timed(engine, q) for q in queries]
    return [ms for ms, _ in results], sum(failed for _, failed in results)


def against_baseline(broken: Lode, baseline: Lode, queries: list[str], embedded_by: Lode) -> dict[str, float]:
    """Each query on the engine with a broken Redis, then on the baseline without Redis, back to back, so that
    the load of the shared machine falls on both alike. The first searches open the breaker; they are reported
    apart. Both engines start with an empty L1 and find every query vector in L3 (`embedded_by` put them there
    first), so both do the same work apart from trying Redis."""
    opening_queries = [f"breaker opening query {i}" for i in range(5)]
    for query in opening_queries + queries:
        embedded_by.search.query(query, repo=REPO, mode="hybrid", k=10)
    broken.repos.all(), baseline.repos.all()  # open both database pools outside the timings
    reset_breakers()  # a closed "redis" breaker: the opening searches below open it
    opening = [timed(broken, q) for q in opening_queries]
    pairs = [(timed(broken, q), timed(baseline, q)) for q in queries]
    added = [b[0] - a[0] for b, a in pairs]
    with broken.db.connection() as conn:
        repos = Repositories(conn).all()
    skip_us = []  # the cascade alone, answers computed as {}: what trying (and skipping) L2 adds to a miss
    for lode in (broken, baseline):
        started = time.perf_counter()
        for i in range(2000):
            lode.cache.through("search", repos, ("skip cost", i), dict)
        skip_us.append((time.perf_counter() - started) / 2000 * 1e6)
    return {"failed": sum(f for _, f in opening) + sum(b[1] for b, _ in pairs),
            "opening_ms": max(ms for ms, _ in opening),
            "p50": median(added), "p95": percentile([b[0] for b, _ in pairs], 95) - percentile(
                [a[0] for _, a in pairs], 95),
            "miss_us": skip_us[0], "miss_baseline_us": skip_us[1],
            "broken_p50": median([b[0] for b, _ in pairs]), "baseline_p50": median([a[0] for _, a in pairs])}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "lode-cache-home")
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    tree = args.home / "corpus"
    if not tree.exists():
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        for package in ("json", "email"):
            shutil.copytree(stdlib / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    server = RedisServer().start()
    try:
        def engine(redis: bool = True) -> Lode:
            return Lode(Settings(home=args.home, embedder="local", redis_url=server.url if redis else None))

        first = engine()
        first.indexing.index(tree, REPO)
        progress = first.embeddings.embed(REPO)
        queries = sample_queries(first, args.queries, seed=3)
        first.search.query("warm up the model and the buffer cache", repo=REPO, mode="hybrid")
        first.cache.flush()

        rows: list[tuple[str, list[float], int]] = []
        rows.append(("miss (cold: embed + search)", *run(first, queries)))
        rows.append(("L1 hit (same engine)", *run(first, queries)))
        rows.append(("L2 hit (new engine, empty L1)", *run(engine(), queries)))
        rows.append(("miss, query vector from L3 (no Redis)", *run(engine(redis=False), queries)))

        faults = {}
        no_redis = engine(redis=False)
        server.kill()
        faults["killed"] = against_baseline(engine(), engine(redis=False), [f"{q} killed" for q in queries], no_redis)
        faults["killed"]["breaker"] = breaker_states()["redis"]["state"]
        server.start()
        server.freeze()
        faults["frozen"] = against_baseline(engine(), engine(redis=False), [f"{q} frozen" for q in queries], no_redis)
        faults["frozen"]["breaker"] = breaker_states()["redis"]["state"]
        server.thaw()
    finally:
        server.close()

    print(f"Query cache on CPython Lib/json + Lib/email, {progress.done:,} embedded chunks, {len(queries)} hybrid "
          f"queries, k=10; {machine()}")
    cold = median(rows[0][1])
    print("| phase | P50 ms | P95 ms | speed-up vs miss (P50) | failed searches |\n| --- | --- | --- | --- | --- |")
    for label, latencies, failed in rows:
        p50 = median(latencies)
        print(f"| {label} | {p50:.2f} | {percentile(latencies, 95):.2f} | {cold / p50:.1f}x | {failed} |")
    print("\n| Redis | failed searches | slowest of the 5 opening searches ms | breaker after "
          "| P50 broken / baseline ms"
          " | added P50 (paired) ms | added P95 ms | cascade miss µs broken / baseline |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, f in faults.items():
        print(f"| {label} | {f['failed']} | {f['opening_ms']:.0f} | {f['breaker']} | {f['broken_p50']:.2f} / "
              f"{f['baseline_p50']:.2f} | {f['p50']:+.2f} | {f['p95']:+.2f} | {f['miss_us']:.0f} / "
              f"{f['miss_baseline_us']:.0f} |")


if __name__ == "__main__":
    main()
