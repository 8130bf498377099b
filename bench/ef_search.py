"""HNSW recall@10 and leg latency against hnsw.ef_search on a repository's real stored vectors, to calibrate
LODE_EF_SEARCH=auto (lode.services.search.ef_search) and compare index build parameters.

    .venv/bin/python -m bench.ef_search --home LODE_HOME --repo NAME [--sizes 10000,30000] [--builds 16:64,16:128]

Every query is Lode's vector-leg query (Vectors.nearest: LEG_DEPTH hits, iterative scan), its top 10 compared with
exact numpy cosine over the same halfvec-rounded vectors. "engine" is the repository's own HNSW indexes, built by
the backfill's inserts; each --sizes entry (a deterministic sample of that many vectors) and each --builds entry
(m:ef_construction, on every vector) gets a bulk-built copy in an unlogged scratch table, dropped afterwards."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from threadpoolctl import threadpool_limits

from bench.common import median, percentile
from bench.scaling import queries_for, read_vectors
from lode.config import Settings
from lode.engine import Lode
from lode.services.base import repos_in_scope
from lode.services.search import LEG_DEPTH, ef_search
from lode.store.vectors import LEGS, to_literal, vectors_table

K = 10
EF_VALUES = (40, 100, 200, 300, 400, 600, 800, 1000)
TARGET = 0.95
TIE_EPS = 1e-3
SCRATCH = "lode_ef_bench"


class Truth:
    """Exact top-10 per leg and query, and each query's 10th-best similarity: a hit at most TIE_EPS below it
    is as near as the exact top 10 (ann-benchmarks' recall with epsilon, for near-duplicate vectors)."""

    def __init__(self, legs: dict[str, np.ndarray], ids: np.ndarray, queries: list[np.ndarray]) -> None:
        self.row = {int(cid): i for i, cid in enumerate(ids.tolist())}
        self.legs, self.top, self.kth = legs, {}, {}
        self.units = [q / max(float(np.linalg.norm(q)), 1e-12) for q in queries]
        with threadpool_limits(1):
            for leg in LEGS:
                self.top[leg], self.kth[leg] = [], []
                for unit in self.units:
                    sims = legs[leg] @ unit
                    best = np.argpartition(-sims, K)[:K]
                    self.top[leg].append(set(ids[best].tolist()))
                    self.kth[leg].append(float(sims[best].min()))

    def recall(self, leg: str, query: int, found: list[int]) -> tuple[float, float]:
        """(strict recall@10, recall@10 with ties within TIE_EPS)"""
        strict = len(set(found) & self.top[leg][query]) / K
        known = [self.row[c] for c in found if c in self.row]  # rows inserted after the snapshot: misses
        sims = self.legs[leg][known] @ self.units[query] if known else np.array([])
        return strict, min(int((sims >= self.kth[leg][query] - TIE_EPS).sum()), K) / K


def sweep(conn: psycopg.Connection, table: str, repo_id: int, queries: list[np.ndarray], truth: Truth,
          efs: tuple[int, ...]) -> list[dict[str, Any]]:
    """Per ef_search: recall@10 (strict and with ties) and P50/P95 ms of the leg query (LEG_DEPTH hits), per leg."""
    rows = []
    for ef in efs:
        row: dict[str, Any] = {"ef_search": ef}
        for leg in LEGS:
            recalls, tied, times = [], [], []
            for i, q in enumerate(queries):
                with conn.transaction():
                    conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    started = time.perf_counter()
                    got = [r[0] for r in conn.execute(
                        f"""SELECT chunk_id FROM {table} WHERE repo_id = ANY(%(repos)s)
                             ORDER BY {leg}_vec <=> %(q)s::halfvec LIMIT %(limit)s""",
                        {"q": to_literal(q), "repos": [repo_id], "limit": LEG_DEPTH})]
                    times.append((time.perf_counter() - started) * 1000)
                strict, with_ties = truth.recall(leg, i, got[:K])
                recalls.append(strict)
                tied.append(with_ties)
            row[leg] = {"recall_at_10": round(float(np.mean(recalls)), 4),
                        "recall_at_10_ties": round(float(np.mean(tied)), 4), "p50_ms": round(median(times), 2),
                        "p95_ms": round(percentile(times, 95), 2)}
        rows.append(row)
    return rows


def held(rows: list[dict[str, Any]]) -> int | None:
    ok = [r["ef_search"] for r in rows if all(r[leg]["recall_at_10"] >= TARGET for leg in LEGS)]  # strict
    return min(ok) if ok else None


def scratch_copy(conn: psycopg.Connection, model: int, repo_id: int, dimension: int, keep: np.ndarray | None,
                 m: int, ef_construction: int) -> float:
    """Copy the repository's vectors (those in `keep`, or all) to SCRATCH and bulk-build both HNSW indexes;
    return the build seconds."""
    conn.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    conn.execute(f"""CREATE UNLOGGED TABLE {SCRATCH} (chunk_id bigint PRIMARY KEY, repo_id int NOT NULL,
                     text_vec halfvec({dimension}) NOT NULL, code_vec halfvec({dimension}) NOT NULL)""")
    conn.execute(f"""INSERT INTO {SCRATCH} SELECT chunk_id, repo_id, text_vec, code_vec FROM {vectors_table(model)}
                      WHERE repo_id = %s AND (%s::bigint[] IS NULL OR chunk_id = ANY(%s::bigint[]))""",
                 (repo_id, None if keep is None else keep.tolist(), None if keep is None else keep.tolist()))
    conn.execute("SET maintenance_work_mem = '512MB'")  # the graph fits in memory: the bulk build's fast path
    started = time.perf_counter()
    for leg in LEGS:
        conn.execute(f"CREATE INDEX ON {SCRATCH} USING hnsw ({leg}_vec halfvec_cosine_ops) "
                     f"WITH (m = {m}, ef_construction = {ef_construction})")
    build = time.perf_counter() - started
    conn.execute(f"ANALYZE {SCRATCH}")
    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="the LODE_HOME holding the embedded repository")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--ef", default=",".join(map(str, EF_VALUES)), help="ef_search values, comma-separated")
    parser.add_argument("--sizes", default="", help="sample sizes to bulk-build with m 16, ef_construction 64")
    parser.add_argument("--builds", default="", help="m:ef_construction pairs bulk-built on every vector")
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    efs = tuple(int(x) for x in args.ef.split(","))
    os.environ["LODE_HOME"] = str(args.home)
    os.environ["LODE_CACHE_ENABLED"] = "false"
    engine = Lode(Settings(home=args.home, embedder="local"))
    try:
        ids, legs, model = read_vectors(engine, args.repo)
        with engine.db.connection() as conn:
            repo = repos_in_scope(conn, args.repo)[0]
            dimension = conn.execute(
                "SELECT dimension FROM embedding_models WHERE id = %s", (model,)).fetchone()[0]
            build_params = conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'",
                (vectors_table(model),)).fetchall()
        texts = queries_for(engine, args.repo, args.queries)
        queries = [np.asarray(engine.embedder.embed_query(q), dtype=np.float32) for q in texts]
        result: dict[str, Any] = {"repo": args.repo, "chunks": repo.chunk_count, "vectors": len(ids),
                                  "queries": len(queries), "dimension": dimension, "k": K,
                                  "leg_depth": LEG_DEPTH, "engine_indexes": [r[0] for r in build_params], "runs": []}
        # a connection of its own, without the pool's statement timeout: index builds take minutes
        with psycopg.connect(engine.db.url, autocommit=True) as conn:
            rows = sweep(conn, vectors_table(model), repo.id, queries, Truth(legs, ids, queries), efs)
            result["runs"].append({"index": "engine (its own indexes, built by the backfill's inserts)",
                                   "vectors": len(ids), "auto_ef": ef_search("auto", len(ids), LEG_DEPTH),
                                   "held_at": held(rows), "sweep": rows})
            log(result["runs"][-1])
            rng = np.random.default_rng(0)
            plans = [(int(n), 16, 64) for n in filter(None, args.sizes.split(","))]
            plans += [(len(ids), *map(int, b.split(":"))) for b in filter(None, args.builds.split(","))]
            try:
                for n, m, efc in plans:
                    pick = np.sort(rng.choice(len(ids), size=min(n, len(ids)), replace=False))
                    keep = None if n >= len(ids) else ids[pick]
                    build_s = scratch_copy(conn, model, repo.id, dimension, keep, m, efc)
                    sub = legs if keep is None else {leg: legs[leg][pick] for leg in LEGS}
                    sub_ids = ids if keep is None else keep
                    rows = sweep(conn, SCRATCH, repo.id, queries, Truth(sub, sub_ids, queries), efs)
                    result["runs"].append({"index": f"bulk m {m}, ef_construction {efc}", "vectors": len(sub_ids),
                                           "build_s": round(build_s, 1),
                                           "auto_ef": ef_search("auto", len(sub_ids), LEG_DEPTH),
                                           "held_at": held(rows), "sweep": rows})
                    log(result["runs"][-1])
            finally:
                conn.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
    finally:
        engine.close()
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


def log(run: dict[str, Any]) -> None:
    cells = ", ".join(
        f"ef {r['ef_search']}: {r['text']['recall_at_10']:.3f}/{r['code']['recall_at_10']:.3f} "
        f"[ties {r['text']['recall_at_10_ties']:.3f}/{r['code']['recall_at_10_ties']:.3f}] "
        f"({r['text']['p50_ms']:.1f}/{r['code']['p50_ms']:.1f} ms)" for r in run["sweep"])
    print(f"{run['index']}, {run['vectors']:,} vectors, build {run.get('build_s', '-')} s, "
          f"0.95 held at ef {run['held_at']}, auto ef {run['auto_ef']}: {cells}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
