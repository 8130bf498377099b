"""Lexical search split into its two costs on an existing index: fetching the query terms' postings, and ranking
them. The ranking of lode/search/lexical.py (`accumulate` + `best`) is timed next to the way it ranked before
(np.unique, then a lexsort of every matching chunk) on the same fetched postings, and both must agree.

Usage: LODE_HOME=DIR python bench/lexical_ranking.py --repo NAME [--queries 100]
(index a corpus first, e.g. `lode index /tmp/lode-bench-work/corpora/lib-x1.5 --repo x15` with LODE_EMBEDDER=none)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, percentile, uncached
from bench.index_cpython import sample_queries
from lode.engine import Lode
from lode.search.lexical import accumulate, best, term_scores

DEPTH = 100  # what a hybrid search asks of its lexical leg


def postings(engine: Lode, repo_id: int, corpus_size: int, total_length: float,
             query: str) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(fetch milliseconds, chunk ids, BM25 term scores) of the query's terms, as lexical.search computes them."""
    with engine.db.connection() as conn:
        started = time.perf_counter()
        got = term_scores(conn, query, [repo_id], corpus_size, total_length)
        fetched = (time.perf_counter() - started) * 1000
    return None if got is None else (fetched, *got)


def sort_everything(ids: np.ndarray, scores: np.ndarray) -> list[int]:
    distinct, inverse = np.unique(ids, return_inverse=True)
    sums = np.bincount(inverse, weights=scores)
    return [int(distinct[i]) for i in np.lexsort((distinct, -sums))[:DEPTH]]


def top_only(ids: np.ndarray, scores: np.ndarray) -> list[int]:
    distinct, sums = accumulate(ids, scores)
    return [int(distinct[i]) for i in best(distinct, sums, DEPTH)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    engine = Lode(uncached(embedder="none"))
    with engine.db.connection() as conn:
        row = conn.execute("SELECT id, chunk_count, total_length FROM repositories WHERE name = %s",
                           (args.repo,)).fetchone()
    if row is None:
        sys.exit(f"no repository {args.repo!r} under this LODE_HOME")
    repo_id, chunks, total_length = row
    queries = sample_queries(engine, args.queries, seed=3, repo=args.repo)
    times: dict[str, list[float]] = {"fetch": [], "rank, sort everything (before)": [], "rank, top k only (now)": []}
    matched = []
    for query in queries * 2:
        got = postings(engine, repo_id, chunks, total_length, query)
        if got is None:
            continue
        fetched, ids, scores = got
        times["fetch"].append(fetched)
        matched.append(len(ids))
        started = time.perf_counter()
        before = sort_everything(ids, scores)
        middle = time.perf_counter()
        now = top_only(ids, scores)
        times["rank, sort everything (before)"].append((middle - started) * 1000)
        times["rank, top k only (now)"].append((time.perf_counter() - middle) * 1000)
        assert before == now, query
    engine.close()
    print(f"{machine()}; repository {args.repo}: {chunks:,} chunks; {len(matched)} query runs, "
          f"postings per query P50 {percentile(matched, 50):,.0f}, P95 {percentile(matched, 95):,.0f}")
    print("| step | P50 ms | P95 ms |\n| --- | --- | --- |")
    for name, values in times.items():
        print(f"| {name} | {percentile(values, 50):.2f} | {percentile(values, 95):.2f} |")


if __name__ == "__main__":
    main()
