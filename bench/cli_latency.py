"""End-to-end latency of the `lode` command, as a user runs it, next to ripgrep on the same tree in the same run.

Measures, each as a fresh process: `lode --help`; warm `lode search --mode lexical` and `--mode hybrid` handed to
a running `lode serve` (the embedded PostgreSQL idling between commands); the same searches without a server
(each command starts the engine, and hybrid loads the embedding model); and `rg` with the query's words. Every
query is distinct, so no result comes from a cache. Reports the median and P95 of wall time and the median CPU
time of the child processes (steadier than wall time on a loaded machine), and the ratio to rg's median.

Usage: python bench/cli_latency.py [--home DIR] [--subset json,email,...|all] [--embedder local|none]
(the tree and its index are kept under --home for reruns; `--subset all` is CPython's whole Lib/)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, percentile  # noqa: E402

REPO = "cpython-lib"
DEFAULT_SUBSET = "json,email,http,logging,asyncio,unittest,urllib,xml,importlib,concurrent"
QUERIES = [
    "parse an email header", "decode json string", "http response status code", "rotate log files",
    "cancel a running task", "assert two lists are equal", "quote url query parameters", "parse xml attributes",
    "find a module spec", "thread pool executor shutdown", "encode base64 mime", "read chunked http body",
    "format log record time", "event loop call later", "skip a test conditionally", "join url path",
    "xml element tree iterate", "import a module by name", "wait for futures to complete", "json pretty print indent",
]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `command` (CPU: user + system of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # rg exits 1 when nothing matches
        raise SystemExit(f"{command} failed: {proc.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@dataclass
class Series:
    name: str
    runs: int
    wall_p50: float
    wall_p95: float
    cpu_p50: float


def series(name: str, commands: list[list[str]], env: dict[str, str]) -> Series:
    runs = [timed(command, env) for command in commands]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return Series(name, len(runs), median(walls), percentile(walls, 95), median(cpus))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "lode-cli-latency")
    parser.add_argument("--subset", default=DEFAULT_SUBSET, help="Lib/ packages to index, or 'all'")
    parser.add_argument("--embedder", default="local", choices=["local", "none"])
    parser.add_argument("--out", type=Path, help="write the results as JSON here too")
    args = parser.parse_args()
    lode = [str(Path(sys.executable).parent / "lode")]
    rg = shutil.which("rg")
    if rg is None:
        raise SystemExit("ripgrep (rg) is needed for the baseline")
    env = {**os.environ, "LODE_HOME": str(args.home), "LODE_EMBEDDER": args.embedder,
           "LODE_EMBEDDED_IDLE_SECONDS": "600"}
    env.pop("LODE_DATABASE_URL", None)
    tree = args.home / "tree"
    if not tree.exists():
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        names = None if args.subset == "all" else args.subset.split(",")
        ignore = shutil.ignore_patterns("site-packages", "__pycache__")
        for entry in ([stdlib] if names is None else [stdlib / n for n in names]):
            shutil.copytree(entry, tree if names is None else tree / entry.name, ignore=ignore, symlinks=True)
    indexed = subprocess.run([*lode, "index", str(tree), "--repo", REPO, "--wait", "--json"], env=env,
                             capture_output=True, text=True, check=True)
    chunks = json.loads(indexed.stdout)["chunks"]
    files = sum(1 for p in tree.rglob("*") if p.is_file())

    def searches(mode: str) -> list[list[str]]:
        # the query cache is emptied first: its L3 lives in the database and would answer a rerun's queries
        subprocess.run([*lode, "cache", "flush", "--json"], env=env, capture_output=True, check=True)
        return [[*lode, "search", q, "--repo", REPO, "--mode", mode, "-k", "10", "--json"] for q in QUERIES]

    results = [series("lode --help", [[*lode, "--help"]] * len(QUERIES), env)]
    results.append(series("rg -i -e WORD ... (per query)",
                          [[rg, "-n", "-i", "--no-heading", *[a for w in q.split() for a in ("-e", w)], str(tree)]
                           for q in QUERIES], env))
    results.append(series("lode search --mode lexical, no server", searches("lexical"), env))
    if args.embedder != "none":
        results.append(series("lode search --mode hybrid, no server", searches("hybrid"), env))
    port = free_port()
    server = subprocess.Popen([*lode, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("lode serve did not become ready") from None
                time.sleep(0.3)
        # one query per mode loads the model and warms the pool; distinct queries follow
        for mode in ("lexical", "hybrid") if args.embedder != "none" else ("lexical",):
            subprocess.run([*lode, "search", "warm up", "--repo", REPO, "--mode", mode], env=env,
                           capture_output=True, check=False)
        results.append(series("lode search --mode lexical, via lode serve", searches("lexical"), env))
        if args.embedder != "none":
            results.append(series("lode search --mode hybrid, via lode serve", searches("hybrid"), env))
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    baseline = next(r.wall_p50 for r in results if r.name.startswith("rg"))
    print(f"{machine()}; load average {os.getloadavg()[0]:.1f}; tree: {files} files, {chunks} chunks "
          f"(Lib/ {args.subset}); {len(QUERIES)} distinct queries per row")
    print("| command | runs | wall P50 | wall P95 | CPU P50 | wall P50 / rg |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.name} | {r.runs} | {r.wall_p50 * 1000:.0f} ms | {r.wall_p95 * 1000:.0f} ms | "
              f"{r.cpu_p50 * 1000:.0f} ms | {r.wall_p50 / baseline:.1f}x |")
    if args.out:
        args.out.write_text(json.dumps({"machine": machine(), "files": files, "chunks": chunks,
                                        "results": [asdict(r) for r in results]}, indent=2))


if __name__ == "__main__":
    main()
