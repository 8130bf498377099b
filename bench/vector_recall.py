"""Vector-leg recall@10 and latency on ~125k real vectors, unfiltered and under path filters: main's query (one
HNSW scan joined to the filter) against Vectors.nearest, side by side in one run.

    .venv/bin/python -m bench.vector_recall --cache DIR [--queries 200] [--out FILE]

The corpus is CPython's Lib/ (this interpreter's stdlib without site-packages): every .py file cut into windows of
WINDOW lines every STRIDE lines, about 125k. Each window is embedded once with Lode's static embedder into
DIR/windows-v1.npz (reused while the stdlib is the same), then loaded into an embedded Lode database under
DIR/home as one repository's files, chunks and vectors (reused too). A window's vector fills both legs' columns;
only the code leg's HNSW index is built (pgvector's bulk build at Lode's m and ef_construction), and only that
leg is queried. Queries are docstring first sentences and split function names from the windows, embedded with
embed_query. Every query asks for LEG_DEPTH hits at Lode's auto ef_search under relaxed iterative scans, as the
engine's vector leg does; its top 10 is compared with exact numpy cosine over the same halfvec-rounded vectors
(bench.ef_search.Truth: strict, and with ties within 1e-3 for duplicate windows)."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

from bench.common import machine, median, percentile, uncached
from bench.corpora import stdlib_dir
from bench.ef_search import Truth
from lode.engine import Lode
from lode.services.search import LEG_DEPTH, ef_search
from lode.search.filters import Filters, glob_to_regex
from lode.store.repositories import Files, Repositories, chunk_id
from lode.store.vectors import HNSW_EF_CONSTRUCTION, HNSW_M, Vectors, to_literal, vectors_table

WINDOW, STRIDE = 14, 7
REPO = "cpython-lib"
LEG = "code"
ARTIFACT = "windows-v1.npz"
# (name, path glob): one file (0.04 % of the windows), packages of 1.2 % and 4 % (either side of EXACT_MAX), and
# the tests (54 %)
FILTER_SETS = (("unfiltered", None), ("json/decoder.py", "json/decoder.py"), ("email/**", "email/**"),
               ("idlelib/**", "idlelib/**"), ("test/**", "test/**"))
DOCSTRING = re.compile(r'^\s*(?:"""|\'\'\')\s*([A-Z][^.\n]{19,200})')
FUNCTION = re.compile(r"^\s*def ([a-z]+(?:_[a-z]+)+)\(")


def sources(lib: Path) -> list[Path]:
    return sorted(p for p in lib.rglob("*.py")
                  if not {"site-packages", "__pycache__"} & set(p.relative_to(lib).parts[:-1]))


def windows(lib: Path) -> tuple[list[str], list[tuple[int, int, int]], list[str]]:
    """(relative paths, (file index, start line, end line) per window, window texts)."""
    paths, spans, texts = [], [], []
    for path in sources(lib):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        if not lines:
            continue
        paths.append(str(path.relative_to(lib)))
        for start in range(0, max(len(lines) - WINDOW + STRIDE, 1), STRIDE):
            spans.append((len(paths) - 1, start + 1, min(start + WINDOW, len(lines))))
            texts.append("\n".join(lines[start:start + WINDOW]))
    return paths, spans, texts


def corpus_key(lib: Path) -> str:
    files = sources(lib)
    return hashlib.sha256("\n".join(f"{p}:{p.stat().st_size}" for p in files).encode()).hexdigest()[:16]


def artifact(engine: Lode, cache: Path, lib: Path) -> dict[str, Any]:
    """The windows and their vectors (float16, as halfvec stores them), embedded once per stdlib."""
    target = cache / ARTIFACT
    key = corpus_key(lib)
    if target.exists():
        stored = np.load(target)
        if str(stored["key"]) == key:
            return {name: stored[name] for name in stored.files}
    paths, spans, texts = windows(lib)
    embedder = engine.embedder
    assert embedder is not None
    started = time.perf_counter()
    vectors = np.stack([embedder.embed_query(text) for text in texts]).astype(np.float16)
    print(f"embedded {len(texts):,} windows in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    queries = query_texts(texts)
    query_vectors = np.stack([embedder.embed_query(q) for q in queries]).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(target.with_suffix(".tmp.npz"), key=key, paths=np.array(paths), spans=np.array(spans, dtype=np.int64),
             vectors=vectors, queries=np.array(queries), query_vectors=query_vectors)
    target.with_suffix(".tmp.npz").rename(target)
    return artifact(engine, cache, lib)


def query_texts(texts: list[str], n: int = 1000) -> list[str]:
    """Docstring first sentences and split function names, as users type them (bench.index_cpython's sampler)."""
    docs, names = set(), set()
    for text in texts:
        for line in text.splitlines():
            if m := DOCSTRING.match(line):
                docs.add(m.group(1).strip())
            elif m := FUNCTION.match(line):
                names.add(m.group(1).replace("_", " "))
    rng = random.Random(3)
    picked = rng.sample(sorted(docs), n // 2) + rng.sample(sorted(names), n - n // 2)
    rng.shuffle(picked)
    return picked


def load(engine: Lode, data: dict[str, Any], lib: Path) -> tuple[int, int, np.ndarray]:
    """(repository id, model id, chunk id per window) of the windows loaded as one repository (once)."""
    embedder = engine.embedder
    assert embedder is not None
    paths, spans, vectors = data["paths"].tolist(), data["spans"], data["vectors"]
    # a connection of its own, without the pool's statement timeout: the index build takes minutes
    with psycopg.connect(engine.db.url) as conn:
        repo = Repositories(conn).get_or_create(REPO, str(lib))
        model = Vectors(conn).register_model(embedder.model_id, embedder.dimension)
        by_path: dict[str, int] = dict(
            conn.execute("SELECT path, id FROM files WHERE repo_id = %s", (repo.id,)).fetchall())
        if repo.chunk_count == len(spans):
            return repo.id, model, chunk_ids([by_path[p] for p in paths], spans)
        assert not by_path, f"{REPO} is partly loaded: remove {engine.settings.home} and run again"
        started = time.perf_counter()
        Repositories(conn).set_embedding_models(repo.id, model, None)
        file_ids = Files(conn).reserve_ids(len(paths))
        ids = chunk_ids(file_ids, spans)
        with conn.cursor().copy("COPY files (id, repo_id, path, language, size, mtime_ns, content_hash) "
                                "FROM STDIN") as copy:
            for file_id, path in zip(file_ids, paths):
                copy.write_row((file_id, repo.id, path, "python", (lib / path).stat().st_size, 0, ""))
        lines = {}
        with conn.cursor().copy("COPY chunks (id, file_id, repo_id, path, language, kind, start_line, end_line, "
                                "start_byte, end_byte, content, content_hash, length) FROM STDIN") as copy:
            for chunk, (file_index, start, end) in zip(ids.tolist(), spans.tolist()):
                path = paths[file_index]
                if path not in lines:
                    lines = {path: (lib / path).read_text(encoding="utf-8", errors="replace").splitlines()}
                copy.write_row((chunk, file_ids[file_index], repo.id, path, "python", "window", start, end, 0, 0,
                                "\n".join(lines[path][start - 1:end]), "", 0))
        Repositories(conn).record_change(repo.id, len(ids), 0)
        table = vectors_table(model)
        for leg in ("text", "code"):
            conn.execute(f"DROP INDEX IF EXISTS {table}_{leg}_hnsw")
        literal = "[" + ",".join(["%.5g"] * vectors.shape[1]) + "]"  # float16 round-trips at 5 digits
        with conn.cursor().copy(f"COPY {table} (chunk_id, repo_id, text_vec, code_vec) FROM STDIN") as copy:
            for chunk, vector in zip(ids.tolist(), vectors.astype(np.float64).tolist()):
                text = literal % tuple(vector)
                copy.write_row((chunk, repo.id, text, text))
        conn.commit()
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '2GB'")
        conn.execute(f"CREATE INDEX {table}_{LEG}_hnsw ON {table} USING hnsw ({LEG}_vec halfvec_cosine_ops) "
                     f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
        for name in ("files", "chunks", table):
            conn.execute(f"ANALYZE {name}")
        conn.commit()
        print(f"loaded {len(ids):,} windows in {loaded:.0f} s, built the HNSW index in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        return repo.id, model, ids


def chunk_ids(file_ids: list[int], spans: np.ndarray) -> np.ndarray:
    """A window's chunk id: its file's id and its ordinal within the file, as Lode lays ids out."""
    ordinal = np.zeros(len(spans), dtype=np.int64)
    for i in range(1, len(spans)):
        ordinal[i] = ordinal[i - 1] + 1 if spans[i][0] == spans[i - 1][0] else 0
    return np.array([chunk_id(file_ids[f], int(o)) for f, o in zip(spans[:, 0].tolist(), ordinal)], dtype=np.int64)


Nearest = Callable[[psycopg.Connection, int, np.ndarray, list[int], Filters, int], list[tuple[int, float]]]


def main_nearest(conn: psycopg.Connection, model: int, query: np.ndarray, repo_ids: list[int], filters: Filters,
                 limit: int) -> list[tuple[int, float]]:
    """The vector leg as main has it (the baseline): one HNSW scan, joined to chunks for the filters."""
    where, params = filters.sql("c")
    join = f"JOIN chunks c ON c.id = v.chunk_id AND {where}" if where != "TRUE" else ""
    rows = conn.execute(
        f"""SELECT v.chunk_id, 1 - (v.{LEG}_vec <=> %(q)s::halfvec) FROM {vectors_table(model)} v {join}
             WHERE v.repo_id = ANY(%(repos)s)
             ORDER BY v.{LEG}_vec <=> %(q)s::halfvec LIMIT %(limit)s""",
        {"q": to_literal(query), "repos": repo_ids, "limit": limit, **params})
    return [(int(cid), float(sim)) for cid, sim in rows]


def lode_nearest(conn: psycopg.Connection, model: int, query: np.ndarray, repo_ids: list[int], filters: Filters,
                 limit: int) -> list[tuple[int, float]]:
    return Vectors(conn).nearest(model, LEG, query, repo_ids, filters, limit)


STRATEGIES: dict[str, Nearest] = {"main": main_nearest, "lode": lode_nearest}


def measure(conn: psycopg.Connection, model: int, repo_id: int, ef: int, filters: Filters, queries: np.ndarray,
            truth: Truth) -> dict[str, dict[str, Any]]:
    """Per strategy: recall@10 (strict and with ties), short answers, and P50/P95 ms of the leg query, as the
    engine runs it. The strategies take turns on each query, first one then the other, so that the load of a
    shared machine falls on both alike."""
    recalls: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    tied: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    times: dict[str, list[float]] = {name: [] for name in STRATEGIES}
    short = dict.fromkeys(STRATEGIES, 0)
    for warm in (True, False):  # a first pass warms the buffer cache, then the timed one
        for i, query in enumerate(queries):
            for name in list(STRATEGIES)[:: 1 if i % 2 else -1]:
                with conn.transaction():
                    conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
                    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
                    started = time.perf_counter()
                    hits = STRATEGIES[name](conn, model, query, [repo_id], filters, LEG_DEPTH)
                    elapsed = (time.perf_counter() - started) * 1000
                if warm:
                    continue
                times[name].append(elapsed)
                strict, with_ties = truth.recall(LEG, i, [c for c, _ in hits[:10]])
                recalls[name].append(strict)
                tied[name].append(with_ties)
                short[name] += len(hits) < min(LEG_DEPTH, len(truth.row))
    return {name: {"recall_at_10": round(float(np.mean(recalls[name])), 4),
                   "recall_at_10_ties": round(float(np.mean(tied[name])), 4), "short_answers": short[name],
                   "p50_ms": round(median(times[name]), 1), "p95_ms": round(percentile(times[name], 95), 1)}
            for name in STRATEGIES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, required=True, help="the artifact and the database live here")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args(argv)
    lib = stdlib_dir()
    engine = Lode(uncached(home=args.cache / "home", embedder="static"))
    try:
        data = artifact(engine, args.cache, lib)
        repo_id, model, ids = load(engine, data, lib)
        stored = data["vectors"].astype(np.float32)
        stored /= np.maximum(np.linalg.norm(stored, axis=1, keepdims=True), 1e-12)
        queries = data["query_vectors"][:args.queries]
        paths = data["paths"][data["spans"][:, 0]]
        ef = ef_search("auto", len(ids), LEG_DEPTH)
        result: dict[str, Any] = {"machine": machine(), "vectors": len(ids), "queries": len(queries), "k": 10,
                                  "leg_depth": LEG_DEPTH, "ef_search": ef, "load_average_before": os.getloadavg(),
                                  "sets": {}}
        with psycopg.connect(engine.db.url) as conn:
            for name, glob in FILTER_SETS:
                keep = np.ones(len(ids), dtype=bool)
                if glob:
                    pattern = re.compile(glob_to_regex(glob))
                    keep = np.array([bool(pattern.search(p)) for p in paths.tolist()])
                filters = Filters(path_glob=glob)
                truth = Truth({"text": stored[keep], LEG: stored[keep]}, ids[keep], list(queries))
                row: dict[str, Any] = {"glob": glob, "vectors": int(keep.sum())}
                row |= measure(conn, model, repo_id, ef, filters, queries, truth)
                result["sets"][name] = row
                print(f"{name} ({row['vectors']:,} vectors): " + "; ".join(
                    f"{s} recall {row[s]['recall_at_10']:.3f} (ties {row[s]['recall_at_10_ties']:.3f}), "
                    f"P50 {row[s]['p50_ms']} ms, P95 {row[s]['p95_ms']} ms, short {row[s]['short_answers']}"
                    for s in STRATEGIES), file=sys.stderr, flush=True)
    finally:
        engine.close()
    result["load_average_after"] = os.getloadavg()  # the machine is shared: a busy one slows both strategies
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
