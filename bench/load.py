"""Load on the REST server over loopback: hybrid search requests/s and latency percentiles at N concurrent
clients, first on an idle server, then while an index job re-indexes the same repository.

A real `lode serve` process indexes a copy of some CPython stdlib packages (embedded with the configured
provider, `local` by default), then `wrk` (if installed: `apt-get install -y wrk`; else a thread pool of httpx
clients) sends hybrid searches cycling over queries sampled from the index. The query cache is off
(LODE_CACHE_ENABLED=false) so every request runs the legs, query embedding included.

Usage: python bench/load.py [--clients 8] [--seconds 20] [--packages json email http ...] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, percentile  # noqa: E402
from bench.corpora import stdlib_dir  # noqa: E402
from bench.index_cpython import sample_queries  # noqa: E402
from lode.config import Settings  # noqa: E402
from lode.engine import Lode  # noqa: E402

REPO = "load-corpus"
PACKAGES = ("json", "email", "http", "logging", "concurrent", "urllib", "importlib")
WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%f %%f %%f\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_job(base: str, job_id: str) -> dict:
    while True:
        job = httpx.get(f"{base}/v1/index/{job_id}", timeout=30).json()["job"]
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.5)


def run_wrk(paths: list[str], base: str, clients: int, seconds: float) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
    out = subprocess.run(["wrk", "-t", "2", "-c", str(clients), "-d", f"{int(seconds)}s", "--timeout", "30s",
                          "-s", script.name, base], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    requests, errors, micros, p50, p95, p99 = re.search(r"RESULT (\S+) (\S+) (\S+) (\S+) (\S+) (\S+)", out).groups()
    return {"requests": int(requests), "errors": int(errors), "rps": round(int(requests) / (int(micros) / 1e6), 1),
            "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1), "p99_ms": round(float(p99), 1)}


def run_pool(paths: list[str], base: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    def client(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            i = offset
            while time.monotonic() < deadline:
                started = time.perf_counter()
                ok = http.get(paths[i % len(paths)]).status_code == 200
                latencies.append((time.perf_counter() - started) * 1000)
                errors[0] += not ok
                i += clients

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {"requests": len(latencies), "errors": errors[0], "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(percentile(latencies, 50), 1), "p95_ms": round(percentile(latencies, 95), 1),
            "p99_ms": round(percentile(latencies, 99), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--packages", nargs="+", default=list(PACKAGES))
    parser.add_argument("--embedder", default="local", choices=("local", "none"))
    parser.add_argument("--home", type=Path, default=None, help="LODE_HOME (default: a new temporary one)")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="lode-load-"))
    corpus = home / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    for package in args.packages:
        shutil.copytree(stdlib_dir() / package, corpus / package, ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "LODE_HOME": str(home), "LODE_ALLOWED_ROOTS": str(corpus), "LODE_RATE_LIMIT": "off",
           "LODE_EMBEDDER": args.embedder, "LODE_CACHE_ENABLED": "false", "LODE_LOG_LEVEL": "WARNING"}
    env.pop("LODE_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "lode", "serve", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/readyz", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("lode serve did not start") from None
                time.sleep(0.5)
        started = time.monotonic()
        job = httpx.post(f"{base}/v1/index", json={"path": str(corpus), "repo": REPO}, timeout=30).json()["job"]
        job = wait_job(base, job["id"])
        assert job["state"] == "succeeded", job
        print(f"indexed {job['files_done']} files, {job['chunks']} chunks, embeddings {job['embeddings']} "
              f"in {time.monotonic() - started:.0f}s", file=sys.stderr)

        os.environ["LODE_HOME"] = str(home)  # the engine below attaches to the server's embedded PostgreSQL
        with Lode(Settings(home=home, embedder="none")) as engine:
            queries = sample_queries(engine, args.queries, repo=REPO)
        paths = ["/v1/search?" + urlencode({"q": q, "repo": REPO, "mode": "hybrid", "k": 10}) for q in queries]
        load = run_wrk if shutil.which("wrk") else run_pool
        load(paths[:20], base, args.clients, 3)  # warm-up: connections, model, buffers
        idle = load(paths, base, args.clients, args.seconds)

        files = sorted(corpus.rglob("*.py"))
        for path in files:  # every file changes: the job re-reads, re-chunks and re-stores all of them
            path.write_bytes(path.read_bytes() + b"\n# load benchmark edit\n")  # some test files are latin-1
        job = httpx.post(f"{base}/v1/index", json={"path": str(corpus), "repo": REPO}, timeout=30).json()["job"]
        during = load(paths, base, args.clients, args.seconds)
        state = httpx.get(f"{base}/v1/index/{job['id']}", timeout=30).json()["job"]
        during["job_at_end"] = {k: state[k] for k in ("state", "files_done", "files_total", "phase")}
        finished = wait_job(base, job["id"])
        result = {"tool": "wrk" if load is run_wrk else "httpx thread pool", "clients": args.clients,
                  "seconds": args.seconds, "chunks": finished["chunks"], "embedder": args.embedder,
                  "idle": idle, "during_index": during, "reindex_job": finished["state"], "machine": machine()}
        print(json.dumps(result, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=60)
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
