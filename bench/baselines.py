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

from bench.common import median, percentile
from lode.engine import EF_SEARCH, Lode
from lode.search.filters import Filters
from lode.store.vectors import LEGS, Vectors

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
        done = subprocess.run([RG, "-i", "-l", "--no-messages", "-e", pattern, str(root)],
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
        row = engine._repos_for(conn, repo)[0]
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


def hnsw_vs_exact(engine: Lode, repo: str, queries: list[str], ids: np.ndarray, legs: dict[str, np.ndarray],
                  model: int, k: int = 10) -> dict[str, Any]:
    """Per leg: HNSW recall@k against exact cosine top-k over the same stored vectors, and both latencies
    (HNSW: the SQL query with the engine's ef_search; exact: one numpy matrix-vector product and a partition)."""
    with engine.db.connection() as conn:
        repo_id = engine._repos_for(conn, repo)[0].id
    vectors = [np.asarray(engine.embedder.embed_query(q), dtype=np.float32) for q in queries]
    out: dict[str, Any] = {"ef_search": EF_SEARCH, "vectors": int(len(ids)), "queries": len(queries)}
    for leg in LEGS:
        recalls, hnsw_ms, exact_ms = [], [], []
        for vector in vectors:
            unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
            started = time.perf_counter()
            sims = legs[leg] @ unit
            top = ids[np.argpartition(-sims, min(k, len(sims) - 1))[:k]]
            exact_ms.append((time.perf_counter() - started) * 1000)
            with engine.db.connection() as conn, conn.transaction():
                conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                started = time.perf_counter()
                found = Vectors(conn).nearest(model, leg, vector, [repo_id], Filters(), k)
                hnsw_ms.append((time.perf_counter() - started) * 1000)
            recalls.append(len({c for c, _ in found} & set(top.tolist())) / min(k, len(ids)))
        out[leg] = {"recall_at_10": float(np.mean(recalls)), "hnsw_p50_ms": median(hnsw_ms),
                    "exact_p50_ms": median(exact_ms), "hnsw_speedup": median(exact_ms) / median(hnsw_ms)}
    return out
