"""Embedding backfill throughput through the job queue: 1 `lode worker` against 2, on this machine.

Usage: python bench/queue_backfill.py [--provider local|stub] [--reps 3] [--packages json,http,logging]
                                      [--stub-delay 0.1] [--batch-chunks 64]
One standalone embedded PostgreSQL server (reached by URL, as in server mode) holds one repository: copies of
CPython stdlib packages, indexed once without embeddings. Each run deletes the repository's vectors and the
model's vector cache, starts N workers (`lode worker --concurrency 1`), submits an index job (the files are
unchanged, so the job is its embedding backfill, split into batches that the workers share) and takes
chunks / (job finished - job started). Runs alternate 1, 2, 2, 1, ... workers; medians of --reps each.
`local` is the bundled model on ONNX Runtime (it already uses every core in one process); `stub` is the HTTP
stub of tests/ with a fixed delay per request, standing for a remote provider.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median
from lode.config import Settings
from lode.engine import Lode
from lode.jobs import Jobs
from lode.store import embedded
from lode.store.vectors import cache_table, vectors_table

REPO = "backfill"


def start_workers(env: dict[str, str], count: int, logs: Path) -> list[subprocess.Popen]:
    procs = []
    for _ in range(count):
        with open(logs / f"worker-{len(list(logs.iterdir()))}.log", "wb") as out:
            procs.append(subprocess.Popen([sys.executable, "-m", "lode", "worker", "--concurrency", "1"],
                                          stdout=out, stderr=out, env=env, start_new_session=True))
    return procs


def wait_registered(lode: Lode, count: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        with lode.db.connection() as conn:
            if conn.execute("SELECT count(*) FROM procrastinate_workers").fetchone()[0] >= count:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not register")
        time.sleep(0.1)


def reset_vectors(lode: Lode) -> None:
    with lode.db.connection() as conn:
        repo_id, model = conn.execute("SELECT id, embedding_model FROM repositories WHERE name = %s",
                                      (REPO,)).fetchone()
        if model is not None:
            conn.execute(f"DELETE FROM {vectors_table(model)} WHERE repo_id = %s", (repo_id,))
            conn.execute(f"TRUNCATE {cache_table(model)}")
            conn.execute("DELETE FROM embedding_failures WHERE repo_id = %s", (repo_id,))


def one_run(lode: Lode, env: dict[str, str], root: Path, workers: int, logs: Path) -> dict[str, float]:
    reset_vectors(lode)
    procs = start_workers(env, workers, logs)
    try:
        wait_registered(lode, workers)
        job, _ = Jobs(lode).submit(root, REPO)
        while job["state"] in ("queued", "running"):
            time.sleep(0.2)
            job = Jobs(lode).get(job["id"])
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=120)
    if job["state"] != "succeeded" or job["embeddings"]["pending"]:
        raise RuntimeError(f"the backfill job did not finish: {job}")
    with lode.db.connection() as conn:
        seconds = conn.execute("SELECT extract(epoch FROM finished_at - started_at) FROM jobs WHERE id = %s",
                               (job["id"],)).fetchone()[0]
    return {"workers": workers, "chunks": job["embeddings"]["done"], "seconds": float(seconds),
            "chunks_per_second": job["embeddings"]["done"] / float(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", choices=("local", "stub"), default="local")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--packages", default="json,http,logging")
    parser.add_argument("--stub-delay", type=float, default=0.1)
    parser.add_argument("--batch-chunks", type=int, default=64)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="lode-bench-queue-"))
    home = Path(os.environ.get("LODE_HOME") or base / "home")  # keeps the exported local model between runs
    url = embedded.start(base / "pg")
    root = base / "corpus"
    for package in args.packages.split(","):
        shutil.copytree(Path(sysconfig.get_paths()["stdlib"]) / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "LODE_HOME": str(home), "LODE_DATABASE_URL": url,
           "LODE_QUEUE_POLL_SECONDS": "0.2", "LODE_QUEUE_EMBED_BATCH_CHUNKS": str(args.batch_chunks),
           "LODE_EMBEDDER": "local" if args.provider == "local" else "http"}
    stub = None
    if args.provider == "stub":
        from tests.support.embedding_stub import start_stub

        stub, stub_url = start_stub("--delay", str(args.stub_delay))
        env.update({"LODE_EMBED_URL": stub_url, "LODE_EMBED_MODEL": "stub-a"})
    logs = base / "logs"
    logs.mkdir()
    lode = Lode(Settings(database_url=url, home=home, embedder="none"))
    try:
        lode.indexing.index(root, REPO)
        order = [n for rep in range(args.reps) for n in ((1, 2) if rep % 2 == 0 else (2, 1))]
        runs = [one_run(lode, env, root, n, logs) for n in order]
    finally:
        lode.close()
        if stub is not None:
            stub.kill()
    by_workers = {n: [r["chunks_per_second"] for r in runs if r["workers"] == n] for n in (1, 2)}
    result = {
        "provider": args.provider if args.provider == "local" else f"http stub, {args.stub_delay}s per request",
        "packages": args.packages, "chunks": runs[0]["chunks"], "batch_chunks": args.batch_chunks,
        "median_chunks_per_second": {str(n): round(median(v), 1) for n, v in by_workers.items()},
        "speedup_2_over_1": round(median(by_workers[2]) / median(by_workers[1]), 2),
        "runs": [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in runs],
        "machine": machine(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
