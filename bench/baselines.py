"""Side-by-side baselines, run in the same process and on the same data as Lode: ripgrep over the same tree,
bm25s over the same chunks, exact brute-force cosine over the same vectors."""

from __future__ import annotations

import logging
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.common import median, percentile
from lode.engine import Lode
from lode.services.base import repos_in_scope
from lode.services.search import LEG_DEPTH, ef_search
from lode.search.filters import Filters
from lode.store.vectors import LEGS, Vectors, to_literal, vectors_table

RG = "/usr/bin/rg"
WORD = re.compile(r"[A-Za-z0-9_]{2,}")


def rg_pattern(query: str) -> str | None:
    """The query's words as one case-insensitive OR regex, as a user would grep for them."""
    words = list(dict.fromkeys(w.lower() for w in WORD.findall(query)))
    return "|".join(re.escape(w) for w in words) or None


def ripgrep(root: Path, queries: list[str]) -> dict[str, Any]:
    """Wall time of `rg -i -l -e <OR regex> root` per query (files with a match; rg does not rank)."""
    times, files = [], []
    for q in queries:
        pattern = rg_pattern(q)
        if pattern is None:
            continue
        started = time.perf_counter()
        done = subprocess.run([RG, "-i", "-l", "--no-messages", "-e", pattern, str(root)], check=False,
                              capture_output=True, text=True)
        times.append((time.perf_counter() - started) * 1000)
        files.append(done.stdout.count("\n"))
    return {"p50_ms": median(times), "p95_ms": percentile(times, 95), "n": len(times),
            "median_files_matched": median(files)}


def bm25s_latency(engine: Lode, repo: str, queries: list[str]) -> dict[str, Any]:
    """bm25s (its tokenizer, English stop words, Snowball stemmer) over the repository's chunk contents: build
    time and per-query top-10 latency, in memory."""
    import bm25s
    import Stemmer

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    with engine.db.connection() as conn:
        row = repos_in_scope(conn, repo)[0]
        contents = [r[0] for r in conn.execute("SELECT content FROM chunks WHERE repo_id = %s ORDER BY id", (row.id,))]
    stemmer = Stemmer.Stemmer("english")
    started = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(contents, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    build = time.perf_counter() - started
    times = []
    for q in queries:
        started = time.perf_counter()
        tokens = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, show_progress=False)
        if tokens.vocab:
            retriever.retrieve(tokens, k=min(10, len(contents)), show_progress=False)
        times.append((time.perf_counter() - started) * 1000)
    return {"build_s": build, "p50_ms": median(times), "p95_ms": percentile(times, 95), "n": len(times),
            "chunks": len(contents)}


EF_SWEEP = (40, 100, 200, 400, 800)  # hnsw.ef_search values tried at every size (pgvector's maximum is 1000)
RECALL_TARGET = 0.95


def hnsw_vs_exact(engine: Lode, repo: str, queries: list[str], ids: np.ndarray, legs: dict[str, np.ndarray],
                  model: int, ef_values: tuple[int, ...] = EF_SWEEP, k: int = 10) -> dict[str, Any]:
    """Per leg and ef_search: HNSW recall@k against exact cosine top-k over the same stored vectors, and both
    latencies (HNSW: the engine's SQL query; exact: one numpy matrix-vector product and a partition).
    `tuned_ef` is the smallest ef_search holding recall@k >= RECALL_TARGET on both legs (None: none did)."""
    with engine.db.connection() as conn:
        repo_id = repos_in_scope(conn, repo)[0].id
    vectors = [np.asarray(engine.embedder.embed_query(q), dtype=np.float32) for q in queries]
    exact: dict[str, list[set[int]]] = {}
    exact_ms: dict[str, list[float]] = {}
    for leg in LEGS:
        exact[leg], exact_ms[leg] = [], []
        for vector in vectors:  # one BLAS thread: a shared 2-core machine makes more ten times slower
            unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
            with threadpool_limits(1):
                started = time.perf_counter()
                sims = legs[leg] @ unit
                top = ids[np.argpartition(-sims, min(k, len(sims) - 1))[:k]]
                exact_ms[leg].append((time.perf_counter() - started) * 1000)
            exact[leg].append(set(top.tolist()))
    engine_ef = ef_search(engine.settings.ef_search, len(ids), LEG_DEPTH)  # the legs' ef_search at this size
    sweep = []
    for ef in sorted(set(ef_values) | {engine_ef}):
        row: dict[str, Any] = {"ef_search": ef}
        for leg in LEGS:
            recalls, hnsw_ms = [], []
            for vector, truth in zip(vectors, exact[leg]):
                with engine.db.connection() as conn, conn.transaction():
                    conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    started = time.perf_counter()
                    found = Vectors(conn).nearest(model, leg, vector, [repo_id], Filters(), k)
                    hnsw_ms.append((time.perf_counter() - started) * 1000)
                recalls.append(len({c for c, _ in found} & truth) / min(k, len(ids)))
            row[leg] = {"recall_at_10": float(np.mean(recalls)), "hnsw_p50_ms": median(hnsw_ms),
                        "hnsw_p95_ms": percentile(hnsw_ms, 95), "exact_p50_ms": median(exact_ms[leg]),
                        "hnsw_speedup": median(exact_ms[leg]) / median(hnsw_ms)}
        sweep.append(row)
    with engine.db.connection() as conn:  # the plan of Lode's nearest-neighbour query (Vectors.nearest), once
        plan = [r[0] for r in conn.execute(
            f"EXPLAIN SELECT v.chunk_id FROM {vectors_table(model)} v WHERE v.repo_id = ANY(%s) "
            f"ORDER BY v.code_vec <=> %s::halfvec LIMIT 100", ([repo_id], to_literal(vectors[0])))]
    held = [r["ef_search"] for r in sweep if all(r[leg]["recall_at_10"] >= RECALL_TARGET for leg in LEGS)]
    default = next(r for r in sweep if r["ef_search"] == engine_ef)
    return {"ef_search": engine_ef, "vectors": len(ids), "queries": len(queries), "sweep": sweep,
            "uses_hnsw_index": any("hnsw" in line for line in plan),
            "tuned_ef": min(held) if held else None, **{leg: default[leg] for leg in LEGS}}
