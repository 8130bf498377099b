"""Pruned top-k lexical search (MaxScore over term_stats, lode/search/lexical.py top_k) against exhaustive scoring
of every posting (term_scores + accumulate + best: what main ran before), on the same index in the same run.

For each size: build the corpus (bench/corpora.py replicas of CPython's Lib/), index it into a fresh embedded
PostgreSQL (or reuse --home), then time both rankings on the same sampled queries, interleaved, twice, at k = 10
(a lexical search) and k = 100 (a hybrid search's lexical leg). Every pruned ranking must equal the exhaustive one
(ids, order and scores); the run stops on the first difference. Also reported: the postings each reads, and the
write-side cost: the term_stats rebuild and the (term, file_id) index against the (term) index it replaces.

Usage: python bench/lexical_pruning.py --scale 1 --scale 4 [--queries 200] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import corpora
from bench.common import fresh_engine, machine, percentile
from bench.index_cpython import sample_queries
from lode.engine import Lode
from lode.search import lexical
from lode.store.repositories import TermStats, postings_partition

DEPTHS = (10, 100)


def exhaustive(conn, query: str, repo_id: int, chunks: int, length: int,  # type: ignore[no-untyped-def]
               limit: int) -> tuple[list[tuple[int, float]], int]:
    postings = lexical.term_scores(conn, query, [repo_id], chunks, length)
    if postings is None:
        return [], 0
    ids, sums = lexical.accumulate(*postings)
    return [(int(ids[i]), float(sums[i])) for i in lexical.best(ids, sums, limit)], len(postings[0])


def time_queries(engine: Lode, repo: str, count: int) -> dict[str, object]:
    with engine.db.connection() as conn:
        repo_id, chunks, length, ready = conn.execute(
            "SELECT id, chunk_count, total_length, term_stats_ready FROM repositories WHERE name = %s", (repo,)
        ).fetchone()
    assert ready, "term_stats not ready: the load did not finish"
    queries = sample_queries(engine, count, seed=3, repo=repo)
    result: dict[str, object] = {"chunks": chunks}
    for depth in DEPTHS:
        times: dict[str, list[float]] = {"exhaustive": [], "pruned": []}
        read: dict[str, list[int]] = {"exhaustive": [], "pruned": []}
        with engine.db.connection() as conn:
            conn.autocommit = True
            for query in queries * 2:
                started = time.perf_counter()
                expected, all_postings = exhaustive(conn, query, repo_id, chunks, length, depth)
                middle = time.perf_counter()
                terms = lexical.query_terms(query)
                pruned = lexical.top_k(conn, terms, [repo_id], chunks, length, depth) if terms else ([], 0)
                assert pruned is not None, "term_stats not ready"
                got, pruned_postings = pruned
                ended = time.perf_counter()
                if got != expected:
                    sys.exit(f"pruned ranking differs from the exhaustive one at k={depth} for {query!r}")
                times["exhaustive"].append((middle - started) * 1000)
                times["pruned"].append((ended - middle) * 1000)
                read["exhaustive"].append(all_postings)
                read["pruned"].append(pruned_postings)
        result[f"k{depth}"] = {
            name: {"p50_ms": percentile(values, 50), "p95_ms": percentile(values, 95),
                   "postings_p50": percentile(read[name], 50), "postings_p95": percentile(read[name], 95)}
            for name, values in times.items()
        }
    return result


def write_costs(engine: Lode, repo: str) -> dict[str, float]:
    """Seconds for the term_stats rebuild (what a first load adds) and for building each postings index."""
    with engine.db.connection() as conn:
        conn.autocommit = True
        (repo_id,) = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()
        table = postings_partition(repo_id)
        costs = {}
        started = time.perf_counter()
        with conn.transaction():
            TermStats(conn).rebuild(repo_id, table)
        costs["term_stats_rebuild_s"] = time.perf_counter() - started
        for name, columns in (("term", "term"), ("term_file", "term, file_id")):
            started = time.perf_counter()
            conn.execute(f"CREATE INDEX bench_{name}_idx ON {table} ({columns})")
            costs[f"index_{name}_s"] = time.perf_counter() - started
            costs[f"index_{name}_mb"] = conn.execute(
                "SELECT pg_relation_size(%s)", (f"bench_{name}_idx",)).fetchone()[0] / 2**20
            conn.execute(f"DROP INDEX bench_{name}_idx")
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, action="append", required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", type=Path, default=Path("/tmp/lode-bench-work"))
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--write-costs", action="store_true", help="also time the term_stats rebuild and indexes")
    args = parser.parse_args()
    print(machine(), flush=True)
    results = []
    for scale in args.scale:
        corpus = corpora.stdlib(args.work / "corpora" / f"lib-x{scale:g}", scale)
        home = args.work / f"pruning-home-x{scale:g}"
        engine = fresh_engine(home)
        repo = f"lib-x{scale:g}"
        point: dict[str, object] = {"corpus": repo}
        if not home.joinpath("indexed").exists():  # an index left by an earlier run is reused
            started = time.perf_counter()
            report = engine.indexing.index(corpus.root, repo)
            point["index_s"] = time.perf_counter() - started
            started = time.perf_counter()
            engine.indexing.index(corpus.root, repo)
            point.update(files=report.files_indexed, noop_s=time.perf_counter() - started)
            home.joinpath("indexed").touch()
        point.update(time_queries(engine, repo, args.queries))
        if args.write_costs:
            point.update(write_costs(engine, repo))
        engine.close()
        print(json.dumps(point), flush=True)
        results.append(point)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
