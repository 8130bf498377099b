"""Scaling measurements: one fresh embedded PostgreSQL per corpus size, indexed once (lexical, then the graph),
optionally embedded, then queried; incremental re-index against the number of changed files; and a fitted
power-law exponent for every curve."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import numpy as np
import psutil
import psycopg

from bench.common import median, percentile
from bench.corpora import Corpus
from bench.index_cpython import sample_queries
from lode.config import Settings, Timeouts
from lode.engine import Lode
from lode.services.base import repos_in_scope
from lode.store.vectors import LEGS, vectors_table

MODES = ("lexical", "semantic", "hybrid")
# The guards' defaults (30 s a statement, 120 s a transaction, 600 s a graph resolution) are sized for
# interactive work on a busy 2-core machine; a 500k-chunk first load measures the work, not the guard.
BENCH_TIMEOUTS = Timeouts(db_query=600, db_transaction=3600, graph_build=3600)


def fit_exponent(xs: list[float], ys: list[float]) -> dict[str, float] | None:
    """Least-squares fit of log y = a log x + b: y ≈ e^b x^a. None with fewer than two distinct positive points."""
    pairs = [(x, y) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({x for x, _ in pairs}) < 2:
        return None
    lx, ly = np.log([p[0] for p in pairs]), np.log([p[1] for p in pairs])
    exponent, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (exponent * lx + intercept)
    total = ((ly - ly.mean()) ** 2).sum()
    return {"exponent": float(exponent), "coefficient": float(np.exp(intercept)),
            "r2": float(1 - (residual ** 2).sum() / total) if total > 0 else 1.0}


class PeakRss:
    """Samples the resident memory of this process with its children (the index workers) and, separately, of the
    engine's PostgreSQL server (postmaster and backends), keeping the peak of each sum. The suite runs in one
    process, so `added_python_mb` (peak minus the start) is the figure to compare across sizes. RSS sums count
    the pages a parent shares with its forks once per process; PSS (`added_pss_python_mb`) counts them once."""

    def __init__(self, pgdata: Path, interval: float = 0.2) -> None:
        self.pgdata, self.interval = pgdata, interval
        self.python_mb = self.postgres_mb = self.pss_python_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self.start_python_mb = self._tree_mb(psutil.Process())  # what earlier stages of this process left
        self.start_pss_python_mb = self._tree_mb(psutil.Process(), pss=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @staticmethod
    def _tree_mb(root: psutil.Process, pss: bool = False) -> float:
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_full_info().pss if pss else proc.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _sample(self) -> None:
        self.python_mb = max(self.python_mb, self._tree_mb(psutil.Process()))
        self.pss_python_mb = max(self.pss_python_mb, self._tree_mb(psutil.Process(), pss=True))
        server = postmaster(self.pgdata)
        if server is not None:
            self.postgres_mb = max(self.postgres_mb, self._tree_mb(server))

    @property
    def added_python_mb(self) -> float:
        return self.python_mb - self.start_python_mb

    @property
    def added_pss_python_mb(self) -> float:
        return self.pss_python_mb - self.start_pss_python_mb

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()


def database_bytes(engine: Lode) -> int:
    with engine.db.connection() as conn:
        return int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])


def share_models(home: Path, models: Path) -> None:
    """Point home/models at one directory, so the bundled model is exported to ONNX once per suite run."""
    models.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "models").exists():
        (home / "models").symlink_to(models.resolve(), target_is_directory=True)


@contextmanager
def engine_at(home: Path, models: Path, keep: bool = False, **settings: Any) -> Iterator[Lode]:
    """An engine on its own embedded server under `home` (removed afterwards unless keep), query cache off so
    every search is measured; `settings` override Settings fields."""
    share_models(home, models)
    os.environ["LODE_HOME"] = str(home)
    os.environ["LODE_CACHE_ENABLED"] = "false"
    engine = Lode(Settings(home=home, embedder="local", timeouts=BENCH_TIMEOUTS, **settings))
    try:
        _ = engine.db  # the server starts outside every timed region
        yield engine
    finally:
        engine.close()
        if not keep:
            stop_server(home / "pgdata")
            shutil.rmtree(home, ignore_errors=True)


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The embedded server's postmaster under `pgdata` (from postmaster.pid); None when it is not running."""
    try:
        return psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def stop_server(pgdata: Path, wait: float = 60.0) -> None:
    """Fast-stop the embedded server of `pgdata` (it would otherwise run until this process exits, one per size)."""
    server = postmaster(pgdata)
    if server is None:
        return
    try:
        server.send_signal(signal.SIGINT)
        server.wait(wait)
    except psutil.Error:
        pass


def index_point(engine: Lode, corpus: Corpus, repo: str, embed: bool) -> dict[str, Any]:
    """Index `corpus` as `repo` (until searchable, then the graph), re-index it unchanged, optionally embed it;
    times, peak RSS, sizes."""
    pgdata = Path(engine.settings.home) / "pgdata"
    empty = database_bytes(engine)
    load_average = " ".join(f"{x:.1f}" for x in os.getloadavg())  # the machine is shared: note how busy it was
    with PeakRss(pgdata) as rss:
        started = time.perf_counter()
        report = engine.indexing.index(corpus.root, repo, defer_graph=True)
        searchable = time.perf_counter() - started
        if not engine.graph.resolve(repo):
            raise RuntimeError(f"graph resolution of {repo} did not run: another process holds the repository")
        full = time.perf_counter() - started
    point: dict[str, Any] = {
        "corpus": corpus.name, "files": corpus.files, "source_bytes": corpus.bytes,
        "files_indexed": report.files_indexed, "chunks": report.chunks,
        "searchable_s": searchable, "graph_s": full - searchable, "index_s": full,
        "peak_rss_python_mb": rss.python_mb, "rss_added_python_mb": rss.added_python_mb,
        "pss_added_python_mb": rss.added_pss_python_mb,
        "peak_rss_postgres_mb": rss.postgres_mb,
        "db_bytes_lexical_graph": database_bytes(engine) - empty,
        "load_average_at_start": load_average,
    }
    started = time.perf_counter()
    engine.indexing.index(corpus.root, repo)  # nothing changed: the no-op re-index
    point["noop_s"] = time.perf_counter() - started
    point["noop_share"] = point["noop_s"] / full
    point["db_ratio_lexical_graph"] = point["db_bytes_lexical_graph"] / corpus.bytes
    if embed:
        with PeakRss(pgdata) as rss:
            started = time.perf_counter()
            progress = engine.embeddings.embed(repo)
            point["embed_s"] = time.perf_counter() - started
        point["embedded"] = progress.done
        point["embed_chunks_per_s"] = progress.done / point["embed_s"]
        point["rss_added_embed_python_mb"] = rss.added_python_mb
        point["db_bytes_with_vectors"] = database_bytes(engine) - empty
        point["db_ratio_with_vectors"] = point["db_bytes_with_vectors"] / corpus.bytes
    return point


def read_vectors(engine: Lode, repo: str) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    """(chunk ids, {leg: unit-norm float32 matrix}, model id) of a repository's serving model."""
    with engine.db.connection() as conn:
        row = repos_in_scope(conn, repo)[0]
        model = row.embedding_model
        rows = conn.execute(
            f"SELECT chunk_id, text_vec::vector::real[], code_vec::vector::real[] FROM {vectors_table(model)} "
            "WHERE repo_id = %s ORDER BY chunk_id", (row.id,)).fetchall()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    legs = {}
    for i, leg in enumerate(LEGS):
        matrix = np.array([r[1 + i] for r in rows], dtype=np.float32)
        legs[leg] = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return ids, legs, model


def fill_synthetic_vectors(engine: Lode, repo: str, pool: dict[str, np.ndarray],
                           seed: int = 0) -> tuple[dict[str, float], np.ndarray, dict[str, np.ndarray]]:
    """Give every chunk of `repo` a vector made from `pool` (real vectors of an embedded corpus, per leg), so
    vector search can be timed at sizes too large to embed here: real vector i moved a random share (0 to 1/2)
    of the way towards another random real vector j, normalised. The points stay on the real vectors' manifold
    without duplicates. (Tried first: noisy copies of the real vectors, whose clusters of near-duplicates held
    HNSW recall@10 at 0.80 at ef_search 100 on 59k; and a Gaussian with the real mean and covariance, whose
    points are nearly equidistant from any real query, the worst case for any index.) The HNSW indexes are
    dropped for the load and rebuilt once, then the table is analysed, as a bulk load would. Returns the load and
    rebuild seconds, and (chunk ids, {leg: unit-norm float32 matrix}) of the vectors as stored (rounded to
    halfvec), for exact search."""
    rng = np.random.default_rng(seed)
    with engine.db.connection() as conn:
        row = repos_in_scope(conn, repo)[0]
    _, model, _ = engine.embeddings.plan(repo, batch_chunks=len(pool["text"]))  # registers the model
    table = vectors_table(model)
    timings = {}
    # a connection of its own, without the pool's statement and transaction timeouts: a bulk load and an index
    # build over 500k vectors take minutes
    with psycopg.connect(engine.db.url) as conn:
        ids = np.array([r[0] for r in conn.execute("SELECT id FROM chunks WHERE repo_id = %s ORDER BY id",
                                                   (row.id,))], dtype=np.int64)
        indexes = [r[0] for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef ILIKE '%%USING hnsw%%'", (table,))]
        for definition in indexes:
            conn.execute(f"DROP INDEX {definition.split()[2]}")
        started = time.perf_counter()
        size, dimension = pool["text"].shape
        stored = {leg: np.empty((len(ids), dimension), dtype=np.float16) for leg in LEGS}
        # float16 values printed with 5 significant digits parse back to the same halfvec components
        literal = "[" + ",".join(["%.5g"] * dimension) + "]"
        with conn.cursor().copy(f"COPY {table} (chunk_id, repo_id, text_vec, code_vec) FROM STDIN") as copy:
            for start in range(0, len(ids), 5000):
                batch = ids[start:start + 5000]
                rows = {}
                base = np.arange(start, start + len(batch)) % size  # every real vector in turn
                towards = rng.integers(0, size, len(batch))
                share = rng.uniform(0, 0.5, (len(batch), 1))
                for leg in LEGS:
                    drawn = (1 - share) * pool[leg][base] + share * pool[leg][towards]
                    drawn /= np.linalg.norm(drawn, axis=1, keepdims=True)
                    stored[leg][start:start + len(batch)] = drawn.astype(np.float16)
                    rows[leg] = stored[leg][start:start + len(batch)].astype(np.float64).tolist()
                for j, chunk in enumerate(batch.tolist()):
                    copy.write_row((chunk, row.id, literal % tuple(rows["text"][j]), literal % tuple(rows["code"][j])))
        timings["vector_load_s"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '2GB'")
        for definition in indexes:
            conn.execute(definition)
        timings["hnsw_build_s"] = time.perf_counter() - started
        conn.execute(f"ANALYZE {table}")
        conn.commit()
    legs = {}
    for leg in LEGS:
        matrix = stored.pop(leg).astype(np.float32)
        legs[leg] = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    return timings, ids, legs


def query_latencies(engine: Lode, repo: str, queries: list[str], modes: tuple[str, ...] = MODES) -> dict[str, Any]:
    """P50/P95 ms per mode; every query is run once per mode (the cache is off, so each pays its embedding)."""
    out = {}
    for mode in modes:
        engine.search.query("warm up the buffer cache", repo=repo, mode=mode)
        times = []
        for q in queries:
            started = time.perf_counter()
            engine.search.query(q, repo=repo, mode=mode, k=10)
            times.append((time.perf_counter() - started) * 1000)
        out[mode] = {"p50_ms": median(times), "p95_ms": percentile(times, 95), "n": len(times)}
    return out


def incremental(engine: Lode, corpus: Corpus, repo: str, counts: list[int]) -> list[dict[str, Any]]:
    """Re-index time (graph included) after appending a line to N Python files, spread evenly over the tree."""
    python = sorted(corpus.root.rglob("*.py"))
    rows = []
    for round_, count in enumerate(counts):
        if count > len(python):
            continue
        step = len(python) / count
        for i in range(count):
            path = python[int(i * step)]
            with path.open("ab") as handle:
                handle.write(f"\n# lode-bench edit {round_}\n".encode())
        started = time.perf_counter()
        report = engine.indexing.index(corpus.root, repo)
        rows.append({"changed_files": count, "files_indexed": report.files_indexed,
                     "seconds": time.perf_counter() - started})
    return rows


def queries_for(engine: Lode, repo: str, n: int) -> list[str]:
    """n sampled queries (bench/index_cpython.py's sampler), fewer if a small corpus has too few to draw from.
    Blank samples (a docstring opening with a full stop, a name of underscores) are dropped: Lode refuses them."""
    while n > 1:
        try:
            return [q for q in sample_queries(engine, n, seed=3, repo=repo) if q.strip()]
        except ValueError:
            n //= 2
    raise ValueError(f"repository {repo} has too few docstrings and names to sample queries from")
