"""What building the code graph adds to a full lexical index (issue #4: at most 30 %), with the baseline measured
in the same run: `lode index --wait` of CPython's Lib/ into a new repository, each run in its own process, in
pairs of LODE_GRAPH=false and LODE_GRAPH=true (off-on, on-off, ...: the machine's speed drifts), on one embedded
PostgreSQL; each repository is removed after its run, and the database vacuumed and checkpointed, so every run
starts from the same state.

Per run: wall seconds of the `lode index` process; CPU seconds of its whole process tree (its own, the index
workers' and the graph resolvers': this process is made the subreaper of its descendants, so the forkserver's
workers are waited for and counted by RUSAGE_CHILDREN even when their indexer exits first), plus the PostgreSQL
server's (postmaster, backends and background processes, those that exited included), before/after deltas.

Usage: python bench/graph_cost.py [--scale 1.0] [--runs 5] [--workdir DIR] [--keep] [--json PATH]
Smoke run: --scale 0.05 --runs 1. LODE_DATABASE_URL is ignored: the server's CPU is measured, so it is embedded.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.pop("LODE_DATABASE_URL", None)

from bench.common import fresh_engine, machine, median
from bench.corpora import stdlib
from bench.scaling import postmaster, stop_server

MODES = ("off", "on")
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Orphaned descendants (the forkserver and its workers, when `lode` exits before them) are re-parented to
    this process instead of init, so reaping them adds their CPU time to RUSAGE_CHILDREN. Linux only."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_descendants(existing: set[int], timeout: float = 30.0) -> None:
    """Wait for the children this process did not have before a run (re-parented orphans) to exit, reaping them."""
    me = psutil.Process()
    deadline = time.monotonic() + timeout
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        left = [child.pid for child in me.children() if child.pid not in existing]
        if not left:
            return
        if time.monotonic() > deadline:
            print(f"warning: processes {left} outlived their run by {timeout:.0f}s; their CPU is not counted",
                  file=sys.stderr)
            return
        time.sleep(0.05)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Postgres:
    """CPU seconds of the embedded server under `pgdata`: every process of it that is alive (postmaster and its
    children) plus what the postmaster has reaped (exited backends)."""

    def __init__(self, pgdata: Path) -> None:
        server = postmaster(pgdata)
        if server is None:
            raise SystemExit(f"no embedded PostgreSQL is running under {pgdata}")
        self.postmaster = server

    def children(self) -> set[int]:
        return {child.pid for child in self.postmaster.children()}

    def cpu(self) -> float:
        times = self.postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.postmaster.children():
            try:
                child_times = child.cpu_times()
            except psutil.Error:  # exited meanwhile: now in children_*; a few ms at most are missed
                continue
            total += child_times.user + child_times.system
        return total

    def settle(self, before: set[int], timeout: float = 10.0) -> None:
        """Wait for the backends of a finished run to exit, so their time is in the postmaster's children_*."""
        deadline = time.monotonic() + timeout
        while self.children() - before and time.monotonic() < deadline:
            time.sleep(0.05)


def quiesce(engine: Any) -> None:
    """Vacuum what the last removed repository left and checkpoint: no run pays for its predecessor."""
    with engine.db.connection() as conn:
        conn.autocommit = True
        conn.execute("VACUUM")
        conn.execute("CHECKPOINT")
        conn.autocommit = False


def graph_files(engine: Any, repo: str) -> int:
    with engine.db.connection() as conn:
        return conn.execute(
            "SELECT count(*) FROM graph_files g JOIN repositories r ON r.id = g.repo_id WHERE r.name = %s", (repo,)
        ).fetchone()[0]


def edge_set(engine: Any, repo: str) -> dict[str, Any]:
    """The repository's edges as sorted rows (source, target or external name, kind, confidence, line) and their
    SHA-1: equal digests mean equal graphs, across runs and across commits."""
    with engine.db.connection() as conn:
        rows = conn.execute(
            """SELECT s.name_path, coalesce(t.name_path, '@' || e.target_name), e.kind, e.confidence, e.line
                 FROM graph_edges e JOIN repositories r ON r.id = e.repo_id
                 JOIN graph_nodes s ON s.id = e.source_id LEFT JOIN graph_nodes t ON t.id = e.target_id
                WHERE r.name = %s""", (repo,)).fetchall()
    lines = sorted("\t".join(map(str, row)) for row in rows)
    return {"edges": len(lines), "external": sum(1 for row in rows if row[1].startswith("@")),
            "digest": hashlib.sha1("\n".join(lines).encode()).hexdigest()}


def index_once(engine: Any, postgres: Postgres, corpus: Path, home: Path, mode: str, number: int) -> dict[str, Any]:
    repo = f"graph-cost-{number}-{mode}-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "LODE_HOME": str(home), "LODE_EMBEDDER": "none", "LODE_GRAPH": str(mode == "on").lower()}
    quiesce(engine)
    existing = {child.pid for child in psutil.Process().children()}
    backends = postgres.children()
    pg_before, lode_before = postgres.cpu(), children_cpu()
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lode", "index", str(corpus), "--repo", repo, "--wait", "--json"],
                          capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - started
    reap_descendants(existing)
    lode_cpu = children_cpu() - lode_before
    postgres.settle(backends)
    pg_cpu = postgres.cpu() - pg_before
    if proc.returncode != 0:
        raise SystemExit(f"lode index failed ({proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout)
    built = graph_files(engine, repo)
    if report["graph_pending"] or (built > 0) != (mode == "on"):
        raise SystemExit(f"run {repo}: LODE_GRAPH={mode} but {built} graph_files rows, pending "
                         f"{report['graph_pending']}")
    graph = edge_set(engine, repo) if mode == "on" else None
    engine.repos.remove(repo)  # the database does not grow run after run
    return {"run": number, "mode": mode, "repo": repo, "wall_s": wall, "cpu_lode_s": lode_cpu,
            "cpu_postgres_s": pg_cpu, "cpu_s": lode_cpu + pg_cpu, "files_indexed": report["files_indexed"],
            "chunks": report["chunks"], "report_seconds": report["seconds"], "graph": graph}


def increase(on: float, off: float) -> str:
    return f"{100 * (on / off - 1):+.1f} %" if off > 0 else "n/a"


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("wall_s", "cpu_s", "cpu_lode_s", "cpu_postgres_s")
    medians = {mode: {key: median([r[key] for r in runs if r["mode"] == mode]) for key in keys} for mode in MODES}
    pairs = [(on, off) for off in runs if off["mode"] == "off"
             for on in runs if on["mode"] == "on" and on["run"] == off["run"]]
    pair_ratios = {key: median([on[key] / off[key] - 1 for on, off in pairs if off[key] > 0] or [float("nan")])
                   for key in ("wall_s", "cpu_s")}
    return {"medians": medians, "pair_ratios": pair_ratios}


def graph_line(runs: list[dict[str, Any]]) -> str:
    graphs = [r["graph"] for r in runs if r["graph"] is not None]
    if len({g["digest"] for g in graphs}) != 1:
        return "**The graph differs between runs with the same code and tree:** " + ", ".join(
            f"{g['edges']:,} edges ({g['digest'][:12]})" for g in graphs)
    g = graphs[0]
    return (f"The same graph in every run with it: {g['edges']:,} edges ({g['external']:,} external), "
            f"SHA-1 of the sorted edge rows `{g['digest'][:12]}` (compare it across commits).")


def render(runs: list[dict[str, Any]], summary: dict[str, Any], facts: dict[str, Any]) -> str:
    med, pairs = summary["medians"], summary["pair_ratios"]
    count = {mode: sum(1 for r in runs if r["mode"] == mode) for mode in MODES}
    lines = [
        "# What the code graph adds to a full lexical index (issue #4: at most +30 %)",
        "",
        (f"- corpus: {facts['corpus']} ({facts['files']:,} files, {facts['bytes'] / 1e6:.1f} MB), "
         f"{facts['files_indexed']:,} files indexed, {facts['chunks']:,} chunks"),
        ("- each run: `lode index --wait --json` in its own process (LODE_EMBEDDER=none), a new repository, "
         "removed afterwards; LODE_GRAPH alternating false/true, one embedded PostgreSQL"),
        "- CPU s: the `lode index` process tree (workers and resolvers included) plus the PostgreSQL server",
        f"- machine: {facts['machine']}; started {facts['date']}; load average at start {facts['load_average']}",
        "",
        "| mode | runs | wall s (median) | CPU s (median) | lode CPU s | PostgreSQL CPU s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        m = med[mode]
        lines.append(f"| graph {mode} | {count[mode]} | {m['wall_s']:.2f} | {m['cpu_s']:.2f} | "
                     f"{m['cpu_lode_s']:.2f} | {m['cpu_postgres_s']:.2f} |")
    on, off = med["on"], med["off"]
    lines.append(f"| on / off | | {increase(on['wall_s'], off['wall_s'])} | {increase(on['cpu_s'], off['cpu_s'])} | "
                 f"{increase(on['cpu_lode_s'], off['cpu_lode_s'])} | "
                 f"{increase(on['cpu_postgres_s'], off['cpu_postgres_s'])} |")
    lines += [
        "",
        (f"Median of the per-pair increases (run k on against run k off): wall {100 * pairs['wall_s']:+.1f} %, "
         f"CPU {100 * pairs['cpu_s']:+.1f} %."),
        "",
        graph_line(runs),
        "",
        "| run | mode | wall s | lode CPU s | PostgreSQL CPU s | CPU s | files indexed | chunks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        lines.append(f"| {r['run']} | {r['mode']} | {r['wall_s']:.2f} | {r['cpu_lode_s']:.2f} | "
                     f"{r['cpu_postgres_s']:.2f} | {r['cpu_s']:.2f} | {r['files_indexed']:,} | {r['chunks']:,} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="copies of Lib/ (bench.corpora.stdlib)")
    parser.add_argument("--runs", type=int, default=5, help="pairs of runs (off-on, then on-off, ...)")
    parser.add_argument("--workdir", type=Path, help="corpus and LODE_HOME go here (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the database afterwards")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if args.runs < 1 or args.scale <= 0:
        parser.error("--runs must be at least 1 and --scale positive")

    work = args.workdir or Path(tempfile.mkdtemp(prefix="lode-bench-graph-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    created = [work / "corpus", work / "corpus.complete", work / "home"]
    load_average = " ".join(f"{x:.2f}" for x in os.getloadavg())
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    corpus = stdlib(work / "corpus", args.scale)
    engine = fresh_engine(work / "home")
    pgdata = work / "home" / "pgdata"
    runs: list[dict[str, Any]] = []
    server = None
    try:
        _ = engine.db  # the server starts before this process becomes a subreaper: it is no child of ours
        if not become_subreaper():
            print("warning: not a subreaper (not Linux?): workers outliving `lode` are not counted", file=sys.stderr)
        postgres = Postgres(pgdata)
        server = postgres.postmaster
        for number in range(1, args.runs + 1):
            for mode in MODES if number % 2 else MODES[::-1]:  # off-on, on-off, ...: a drift in speed cancels out
                runs.append(index_once(engine, postgres, corpus.root, work / "home", mode, number))
                print(f"run {number} graph {mode}: {runs[-1]['wall_s']:.2f} s wall, {runs[-1]['cpu_s']:.2f} CPU s",
                      file=sys.stderr, flush=True)
    finally:
        engine.close()
        stop_server(pgdata)  # it would otherwise stop only when this process exits
        if server is not None and server.is_running():
            print(f"warning: the embedded server of {pgdata} is still running", file=sys.stderr)
        if not args.keep:
            for path in created:
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)

    facts = {"corpus": corpus.name, "files": corpus.files, "bytes": corpus.bytes, "machine": machine(), "date": date,
             "load_average": load_average, "files_indexed": runs[0]["files_indexed"], "chunks": runs[0]["chunks"],
             "scale": args.scale}
    summary = summarise(runs)
    print(render(runs, summary, facts))
    if args.json:
        args.json.write_text(json.dumps({**facts, **summary, "runs": runs}, indent=2))
    if len({r["graph"]["digest"] for r in runs if r["graph"] is not None}) > 1:
        raise SystemExit(1)  # the graph must not depend on the run


if __name__ == "__main__":
    main()
