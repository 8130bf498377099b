"""The `lode` command. Thin: parse arguments, call the engine, render (rich on a terminal, JSON with --json)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from lode import background
from lode.api import commands as api_commands
from lode.engine import Lode
from lode.errors import InputError, LodeError

app = typer.Typer(
    name="lode", help="Index a repository, then search it.", no_args_is_help=True, add_completion=False,
    pretty_exceptions_enable=False,
)
repos_app = typer.Typer(help="List indexed repositories, or remove one.", invoke_without_command=True)
app.add_typer(repos_app, name="repos")
graph_app = typer.Typer(help="Who calls what: callers, callees, paths, stats and export.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
cache_app = typer.Typer(help="The query cache: hits and misses per layer, or flush it.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(api_commands.keys_app, name="keys")
jobs_app = typer.Typer(help="Index jobs of the durable queue: list them, show one, cancel one.",
                       invoke_without_command=True)
app.add_typer(jobs_app, name="jobs")
app.command()(api_commands.serve)
app.command()(api_commands.health)

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
RepoOption = Annotated[str | None, typer.Option("--repo", help="Repository name.")]
T = TypeVar("T")


def _run(as_json: bool, action: Callable[[Lode], T], render: Callable[[T], object]) -> None:
    """Run one engine action; map Lode errors to exit codes 1 and 2 with a one-line message."""
    try:
        with Lode() as lode:
            result = action(lode)
    except LodeError as exc:
        if as_json:
            _print_json({"error": {"message": str(exc), "exit_code": exc.exit_code}})
        err.print(f"lode: error: {exc}", markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("lode: interrupted; the index is consistent and the next run resumes", markup=False)
        raise typer.Exit(130) from None
    if as_json:
        _print_json(result)
    else:
        render(result)


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=str, ensure_ascii=False) + "\n")


@app.command()
def index(
    path: Annotated[str, typer.Argument(help="Directory to index.")],
    repo: RepoOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Return when the embedding backfill is done.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Index a directory (incrementally: unchanged files are skipped)."""

    def action(lode: Lode) -> dict[str, Any]:
        if as_json or not err.is_terminal:
            report = lode.index(path, repo, defer_graph=not wait)
        else:
            with Progress(
                TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
                TextColumn("{task.fields[chunks]} chunks"), TextColumn("{task.fields[rate]}"),
                TimeRemainingColumn(), console=err, transient=True,
            ) as bar:
                task = bar.add_task("index", total=None, chunks=0, rate="")

                def on_progress(progress: Any) -> None:
                    elapsed = bar.tasks[task].elapsed or 0
                    rate = f"{progress.files_done / elapsed:.0f} files/s" if elapsed > 0.5 else ""
                    bar.update(task, total=progress.files_total, completed=progress.files_done,
                               chunks=progress.chunks, rate=rate)

                report = lode.index(path, repo, on_progress, defer_graph=not wait)
        if report.graph_pending:
            background.spawn_graph_resolution(lode.settings, report.repo)
        embeddings = {"done": 0, "pending": 0, "failed": 0}
        if lode.settings.embedder != "none" and report.chunks:
            if wait:
                embeddings = asdict(_embed_with_progress(lode, report.repo, as_json))
            else:
                embeddings = lode.embedding_counts(report.repo)
                if embeddings["pending"]:
                    background.spawn_backfill(lode.settings, report.repo)
        return {
            "repo": report.repo, "files_indexed": report.files_indexed, "files_unchanged": report.files_unchanged,
            "files_deleted": report.files_deleted, "files_skipped": report.files_skipped, "chunks": report.chunks,
            "chunks_written": report.chunks_written, "seconds": report.seconds,
            "graph_pending": report.graph_pending, "embeddings": embeddings, "warnings": report.warnings,
        }

    def render(result: dict[str, Any]) -> None:
        emb = result["embeddings"]
        out.print(
            f"[bold]{result['repo']}[/]: {result['files_indexed']} indexed, {result['files_unchanged']} unchanged, "
            f"{result['files_deleted']} deleted, {result['files_skipped']} skipped; "
            f"{result['chunks']} chunks in {result['seconds']:.2f}s; embeddings: {emb['done']} done, "
            f"{emb['pending']} pending{' (filling in the background)' if emb['pending'] and not wait else ''}, "
            f"{emb['failed']} failed"
            + ("; the code graph is resolving in the background" if result["graph_pending"] else "")
        )
        for warning in result["warnings"]:
            err.print(f"[bold red]warning:[/] {warning}")

    _run(as_json, action, render)


def _embed_with_progress(lode: Lode, repo: str, quiet: bool, switch: bool = False) -> Any:
    if quiet or not err.is_terminal:
        return lode.embed(repo, switch=switch)
    with Progress(
        TextColumn("[bold]embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
        TimeRemainingColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task("embed", total=None)

        def on_progress(progress: Any) -> None:
            bar.update(task, total=progress.done + progress.pending + progress.failed, completed=progress.done)

        return lode.embed(repo, switch=switch, on_progress=on_progress)


@app.command()
def embed(
    repo: Annotated[str, typer.Option("--repo", help="Repository name.")],
    switch: Annotated[bool, typer.Option("--switch", help="Re-embed with the configured model, then switch.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Fill a repository's pending embeddings (resumable; one backfill per repository at a time)."""

    def render(result: dict[str, int]) -> None:
        out.print(f"embeddings: {result['done']} done, {result['pending']} pending, {result['failed']} failed")

    _run(as_json, lambda lode: asdict(_embed_with_progress(lode, repo, as_json, switch)), render)


@app.command(name="eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSON lines: {\"query\", \"expected\": [{\"path\", \"name_path\"?}]}")],
    repo: RepoOption = None,
    mode: Annotated[list[str] | None, typer.Option("--mode", help="Modes to run (repeatable); all by default.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Score search on a benchmark file: MRR@10, nDCG@10 and Recall@1/5/10 per mode."""
    from lode.evaluate import METRICS, load_cases
    from lode.evaluate import evaluate as run_eval

    def render(result: dict[str, Any]) -> None:
        table = Table("mode", *METRICS, "degraded", title=f"{result['queries']} queries")
        for name, row in result["modes"].items():
            table.add_row(name, *(f"{row[m]:.3f}" for m in METRICS), ", ".join(row["degraded"]))
        out.print(table)

    _run(as_json, lambda lode: run_eval(lode, load_cases(file), repo, mode or ["lexical", "semantic", "hybrid"]),
         render)


@app.command(name="eval-generate")
def evaluate_generate(
    source: Annotated[Path, typer.Argument(help="A Python tree, e.g. CPython's Lib/.")],
    out_dir: Annotated[Path, typer.Argument(help="Where to write tree/ (docstrings blanked) and queries.jsonl.")],
    limit: Annotated[int, typer.Option("--limit", help="Number of queries.")] = 500,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Generate the self-supervised docstring benchmark: query = a docstring's first sentence."""
    from lode.evaluate import generate_docstring_benchmark

    def action(_: Lode) -> dict[str, Any]:
        if not source.is_dir():
            raise InputError(f"{source}: not a directory")
        return generate_docstring_benchmark(source, out_dir, limit, seed)

    _run(as_json, action, lambda r: out.print(f"{r['cases']} queries in {r['queries']}; index {r['tree']}"))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Plain text; operators and SQL are just words.")],
    repo: RepoOption = None,
    mode: Annotated[str, typer.Option("--mode", help="hybrid | lexical | semantic")] = "hybrid",
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 10,
    lang: Annotated[list[str] | None, typer.Option("--lang", help="Language filter (repeatable).")] = None,
    path: Annotated[str | None, typer.Option("--path", help="Path glob, e.g. 'src/**/*.py'.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="Chunk kind filter (repeatable).")] = None,
    expand: Annotated[bool, typer.Option("--expand", help="Attach each hit's direct callers and callees.")] = False,
    files: Annotated[bool, typer.Option("--files", help="Rank files (-k of them), each with its best hits; "
                                                        "--json adds `files`.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Print each hit's leg ranks, fused score and the "
                                                            "factor of each ranking prior.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Search indexed code. QUERY may be a name, a question or a whole issue text (up to 64 KiB)."""

    def action(lode: Lode) -> dict[str, Any]:
        return lode.search(query, repo=repo, mode=mode, k=k, languages=tuple(lang or ()), path=path,
                           kinds=tuple(kind or ()), expand=expand, group="files" if files else "chunks")

    def render_hit(hit: dict[str, Any], indent: str = "") -> None:
        label = hit["name_path"] or hit["kind"]
        out.print(f"{indent}[bold cyan]{hit['repo']}:{hit['path']}:{hit['start_line']}-{hit['end_line']}[/] "
                  f"[green]{label}[/] [dim]{hit['score']:.3f}[/]", highlight=False)
        if explain:
            out.print(f"{indent}  {_explanation(hit['legs'])}", markup=False, highlight=False)

    def render(result: dict[str, Any]) -> None:
        if result["degraded"]:
            err.print(f"[yellow]degraded legs: {', '.join(result['degraded'])}[/]")
        if explain and result.get("query_kind"):
            out.print(f"query kind: {result['query_kind']}", highlight=False)
        if files:
            if not result["files"]:
                out.print("no files")
            for number, found in enumerate(result["files"], start=1):
                out.print(f"{number}. [bold cyan]{found['repo']}:{found['path']}[/] [dim]{found['score']:.3f}[/]",
                          highlight=False)
                for hit in found["hits"]:
                    render_hit(hit, indent="   ")
            return
        if not result["hits"]:
            out.print("no hits")
        for hit in result["hits"]:
            render_hit(hit)
            out.print(hit["snippet"], markup=False, highlight=False)
            for relation in ("callers", "callees"):
                if hit.get(relation):
                    out.print(f"  [dim]{relation}:[/] " + ", ".join(_place(n) for n in hit[relation]), highlight=False)
            out.print()

    _run(as_json, action, render)


def _explanation(legs: dict[str, Any]) -> str:
    """One line: where each leg ranked the hit, the fused score, and each prior's factor."""
    ranks = ", ".join(f"{leg} #{legs[leg]}" if legs.get(leg) else f"{leg} -" for leg in ("lexical", "text", "code"))
    parts = [f"legs: {ranks}"]
    if legs.get("injected"):
        parts.append(f"added by the {legs['injected']} lookup")
    if legs.get("fused") is not None:
        parts.append(f"fused {legs['fused']:.3f}")
    priors = legs.get("priors") or {}
    parts.append("priors: " + (", ".join(f"{name} x{factor:g}" for name, factor in priors.items()) or "none"))
    return "; ".join(parts)


@app.command()
def symbols(
    name: Annotated[str, typer.Argument(help="A name, a qualified name or a qualified suffix (Class.method).")],
    repo: RepoOption = None,
    limit: Annotated[int, typer.Option("--limit")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Find definitions by exact or qualified name."""

    def render(result: dict[str, Any]) -> None:
        if not result["symbols"]:
            out.print("no symbols" + (f"; did you mean: {', '.join(result['suggestions'])}"
                                      if result["suggestions"] else ""))
        for sym in result["symbols"]:
            out.print(f"[bold cyan]{sym['repo']}:{sym['path']}:{sym['start_line']}-{sym['end_line']}[/] "
                      f"[green]{sym['kind']}[/] {sym['name_path']}", highlight=False)
            if sym["signature"]:
                out.print(f"    {sym['signature']}", markup=False, highlight=False)

    _run(as_json, lambda lode: lode.symbols(name, repo=repo, limit=limit), render)


@app.command()
def status(
    repo: RepoOption = None,
    skipped: Annotated[bool, typer.Option("--skipped", help="List every skipped file with its reason.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show what is indexed, what was skipped and the last run."""

    def render(result: dict[str, Any]) -> None:
        if not result["repos"]:
            out.print("nothing indexed yet: run `lode index PATH`")
        for entry in result["repos"]:
            run = entry["last_run"] or {}
            out.print(f"[bold]{entry['repo']}[/] {entry['root']}")
            out.print(f"  {entry['files']} files, {entry['chunks']} chunks, generation {entry['generation']}, "
                      f"last run: {run.get('status', 'none')}")
            graph = entry["graph"]
            if not graph["enabled"]:
                out.print("  graph: off (LODE_GRAPH=false)")
            else:
                pending = f", resolving {graph['pending_files']} files" if graph["pending_files"] else ""
                out.print(f"  graph: {graph['nodes']} nodes{pending}")
            if entry["empty"]:
                err.print("  [bold red]the index is EMPTY[/]")
            if entry["skipped"]:
                out.print("  skipped: " + ", ".join(f"{n} {reason}" for reason, n in entry["skipped"].items()))
            for item in entry.get("skipped_files", []):
                out.print(f"    {item['reason']:<22} {item['path']}  {item['detail']}", markup=False,
                          highlight=False)

    _run(as_json, lambda lode: lode.status(repo, skipped=skipped), render)


@repos_app.callback()
def repos(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List indexed repositories."""
    if ctx.invoked_subcommand is not None:
        return

    def render(result: list[dict[str, Any]]) -> None:
        table = Table("repo", "root", "chunks", "generation", "updated")
        for row in result:
            table.add_row(row["repo"], row["root"], str(row["chunks"]), str(row["generation"]), row["updated_at"])
        out.print(table)

    _run(as_json, lambda lode: {"repos": lode.repositories()}, lambda r: render(r["repos"]))


@repos_app.command("rm")
def repos_rm(name: Annotated[str, typer.Argument(help="Repository name.")], as_json: JsonOption = False) -> None:
    """Remove a repository and everything indexed for it (one transaction)."""

    def action(lode: Lode) -> dict[str, Any]:
        lode.remove_repository(name)
        return {"removed": name}

    _run(as_json, action, lambda result: out.print(f"removed {result['removed']}"))


def _place(node: dict[str, Any]) -> str:
    if node["external"]:
        return f"{node['name_path']} (external)"
    return f"{node['name_path']} ({node['path']}:{node['start_line']})"


EdgeKinds = Annotated[str, typer.Option("--kinds",
                                        help="Edge kinds, comma-separated: calls,imports,inherits,contains.")]
MinConfidence = Annotated[float, typer.Option("--min-confidence", help="Drop edges below this confidence (0-1).")]


def _kinds(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _neighbours(direction: str, symbol: str, repo: str | None, depth: int, kinds: str, min_confidence: float,
                as_json: bool) -> None:
    def render(result: dict[str, Any]) -> None:
        out.print(f"[bold]{direction} of {_place(result['symbol'])}[/]", highlight=False)
        for hop in result["results"]:
            out.print(f"{'  ' * hop['depth']}{_place(hop)} [dim]{hop['edge']} {hop['confidence']:.2f} at "
                      f"{hop['evidence']}[/]", highlight=False)
        if not result["results"]:
            out.print("  none")
        if result["truncated"]:
            err.print("[yellow]truncated: raise --limit or lower --depth[/]")

    _run(as_json, lambda lode: lode.graph_neighbours(direction, symbol, repo=repo, depth=depth, kinds=_kinds(kinds),
                                                     min_confidence=min_confidence), render)


@graph_app.command("callers")
def graph_callers(
    symbol: Annotated[str, typer.Argument(help="A qualified name or a unique short name.")],
    repo: RepoOption = None,
    depth: Annotated[int, typer.Option("--depth", help="Hops, 1-10.")] = 1,
    kinds: EdgeKinds = "calls",
    min_confidence: MinConfidence = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Who calls SYMBOL (directly, or within --depth hops)."""
    _neighbours("callers", symbol, repo, depth, kinds, min_confidence, as_json)


@graph_app.command("callees")
def graph_callees(
    symbol: Annotated[str, typer.Argument(help="A qualified name or a unique short name.")],
    repo: RepoOption = None,
    depth: Annotated[int, typer.Option("--depth", help="Hops, 1-10.")] = 1,
    kinds: EdgeKinds = "calls",
    min_confidence: MinConfidence = 0.0,
    as_json: JsonOption = False,
) -> None:
    """What SYMBOL calls (directly, or within --depth hops)."""
    _neighbours("callees", symbol, repo, depth, kinds, min_confidence, as_json)


@graph_app.command("path")
def graph_path(
    source: Annotated[str, typer.Argument(help="From this symbol...")],
    target: Annotated[str, typer.Argument(help="...to this one (or back).")],
    repo: RepoOption = None,
    max_depth: Annotated[int, typer.Option("--max-depth")] = 6,
    as_json: JsonOption = False,
) -> None:
    """The shortest chain of edges between two symbols, in either direction."""

    def render(result: dict[str, Any]) -> None:
        if not result["found"]:
            out.print(f"no path between {source} and {target} within {max_depth} hops")
            return
        out.print(f"[bold]{_place(result['from'])}[/] ({result['direction']})", highlight=False)
        for hop in result["path"]:
            out.print(f"  → {_place(hop)} [dim]{hop['edge']} at {hop['evidence']}[/]", highlight=False)

    _run(as_json, lambda lode: lode.graph_path(source, target, repo=repo, max_depth=max_depth), render)


@graph_app.command("resolve")
def graph_resolve(
    repo: Annotated[str, typer.Option("--repo", help="Repository name.")], as_json: JsonOption = False
) -> None:
    """Finish the code graph's queued resolution (`lode index` leaves a large one to the background)."""

    def action(lode: Lode) -> dict[str, Any]:
        lode.resolve_graph(repo)
        return {"repo": repo, "resolved": True}

    _run(as_json, action, lambda result: out.print(f"{result['repo']}: the code graph is resolved"))


@graph_app.command("stats")
def graph_stats(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Counts by kind, top fan-in and fan-out, and import cycles."""
    _run(as_json, lambda lode: lode.graph_stats(repo), lambda result: out.print_json(json.dumps(result, default=str)))


@graph_app.command("export")
def graph_export(
    repo: RepoOption = None,
    fmt: Annotated[str, typer.Option("--format", help="json | dot | mermaid")] = "json",
    kinds: EdgeKinds = "calls,imports,inherits",
    min_confidence: MinConfidence = 0.0,
    include_external: Annotated[bool, typer.Option("--include-external")] = False,
    path: Annotated[str | None, typer.Option("--path", help="Only edges from files matching this glob.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many edges.")] = 5000,
) -> None:
    """Write the graph (filtered) as JSON, Graphviz dot or Mermaid on stdout."""
    from lode.graph import ExportFilters

    filters = ExportFilters(kinds=_kinds(kinds), min_confidence=min_confidence, include_external=include_external,
                            path_glob=path, limit=limit)
    _run(False, lambda lode: lode.graph_export(fmt, filters, repo), lambda text: sys.stdout.write(text + "\n"))


@cache_app.command("stats")
def cache_stats(as_json: JsonOption = False) -> None:
    """Hits, misses, hit rate, bytes and evictions per layer (L1 counts are this process's own)."""

    def render(result: dict[str, Any]) -> None:
        table = Table("layer", "hits", "misses", "errors", "skips", "hit rate", "bytes", "evictions")
        for name, layer in result["layers"].items():
            table.add_row(name, str(layer["hits"]), str(layer["misses"]), str(layer["errors"]), str(layer["skips"]),
                          "-" if layer["hit_rate"] is None else f"{layer['hit_rate']:.1%}",
                          str(layer.get("bytes", layer.get("server", {}).get("used_memory", "-"))),
                          str(layer.get("evictions", layer.get("server", {}).get("evicted_keys", "-"))))
        out.print(table)

    _run(as_json, lambda lode: lode.cache.stats(), render)


@cache_app.command("flush")
def cache_flush(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Drop cached answers of one repository, or everything (then query embeddings too)."""
    _run(as_json, lambda lode: lode.cache.flush(repo),
         lambda result: out.print(f"flushed L1 {result['l1']}, L2 {'off' if result['l2'] is None else result['l2']}, "
                                  f"L3 {result['l3']} entries"))


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs run at once.")] = 1,
) -> None:
    """Consume the job queue (index jobs, embedding batches, graph resolution, garbage collection) until SIGTERM
    or Ctrl-C; a running job then finishes within LODE_QUEUE_SHUTDOWN_GRACE_SECONDS or goes back to the queue."""
    import asyncio

    from lode.queue import run_worker, worker_name

    try:
        with Lode() as lode:
            _ = lode.db  # connect and migrate before taking jobs
            err.print(f"lode: worker {worker_name()} consuming queue {lode.settings.queue.name!r} with concurrency "
                      f"{concurrency}; Ctrl-C stops", markup=False, highlight=False)
            asyncio.run(run_worker(lode, concurrency, install_signal_handlers=True))
    except LodeError as exc:
        err.print(f"lode: error: {exc}", markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None


def _job_line(job: dict[str, Any]) -> str:
    emb = job["embeddings"]
    progress = (f"{job['files_done']}/{job['files_total']} files, {job['chunks']} chunks, embeddings {emb['done']} "
                f"done {emb['pending']} pending {emb['failed']} failed")
    eta = f", eta {job['eta_seconds']:.0f}s" if job["eta_seconds"] is not None else ""
    phase = f" ({job['phase']})" if job["phase"] else ""
    error = f": {job['error']}" if job["error"] else ""
    return f"{job['id']}  {job['repo']}  {job['state']}{phase}  {progress}{eta}  {job['created_at'][:19]}{error}"


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    repo: RepoOption = None,
    state: Annotated[list[str] | None, typer.Option("--state", help="queued, running, succeeded, failed or "
                                                    "cancelled (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List index jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from lode.jobs import Jobs

    def render(result: dict[str, Any]) -> None:
        if not result["jobs"]:
            out.print("no index jobs")
        for job in result["jobs"]:
            out.print(_job_line(job), markup=False, highlight=False)

    _run(as_json, lambda lode: {"jobs": Jobs(lode).list((repo,) if repo else None, limit, tuple(state or ()))},
         render)


@jobs_app.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(help="Job id.")], as_json: JsonOption = False) -> None:
    """One job: state, phase, progress, ETA, error and, once indexed, its report."""
    from lode.jobs import Jobs

    _run(as_json, lambda lode: {"job": Jobs(lode).get(job_id)},
         lambda result: out.print(_job_line(result["job"]), markup=False, highlight=False))


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[str, typer.Argument(help="Job id.")], as_json: JsonOption = False) -> None:
    """Cancel a queued job, or ask a running one (on any worker) to stop between two files."""
    from lode.jobs import Jobs

    _run(as_json, lambda lode: {"job": Jobs(lode).cancel(job_id)},
         lambda result: out.print(_job_line(result["job"]), markup=False, highlight=False))


@app.command()
def mcp(
    repo: Annotated[str | None, typer.Option(
        "--repo", help="The repository tools use when a call names none (default: the one holding the working "
                       "directory).")] = None,
) -> None:
    """Serve the MCP tools (search, symbols, graph, context) over stdio, for Claude Code, Cursor and others."""
    from lode.mcp import run_stdio

    run_stdio(repo=repo)


@app.command()
def errors(
    since: Annotated[float, typer.Option("--since", help="Errors seen within this many hours.")] = 24.0,
    severity: Annotated[str | None, typer.Option("--severity", help="warning | error | critical")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Handled errors recorded by any lode process (error_logs), newest first, with the 24-hour summary."""
    from lode.errorlog import list_errors

    def render(result: dict[str, Any]) -> None:
        if not result["errors"]:
            out.print(f"no errors in the last {since:g} hours")
        for row in result["errors"]:
            out.print(f"[bold]{row['severity']:<8}[/] {row['last_seen'][:19]} x{row['count']} "
                      f"[cyan]{row['component']}[/] {row['category']} {row['error_type']}: ", end="")
            out.print(row["message"], markup=False, highlight=False)

    _run(as_json, lambda lode: list_errors(lode.db, since_hours=since, severity=severity, limit=limit), render)


@app.command()
def alerts(
    ack: Annotated[int | None, typer.Option("--ack", help="Acknowledge the alert with this id.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include acknowledged alerts.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Open alerts raised from error rates (LODE_ALERT_*), or acknowledge one with --ack ID."""
    from lode.errorlog import ack_alert, list_alerts

    def render(result: dict[str, Any]) -> None:
        rows = [result["alert"]] if "alert" in result else result["alerts"]
        if not rows:
            out.print("no open alerts")
        for row in rows:
            state = "acknowledged" if row["acknowledged_at"] else "open"
            out.print(f"#{row['id']} [bold]{row['rule']}[/] {state} since {row['created_at'][:19]}: {row['message']}")

    _run(as_json, lambda lode: ack_alert(lode.db, ack) if ack is not None
         else list_alerts(lode.db, include_acknowledged=show_all), render)


def main() -> None:
    from pydantic import ValidationError

    from lode.config import describe_invalid, get_settings
    from lode.logs import configure_logging

    try:
        settings = get_settings()
    except ValidationError as exc:
        if "--json" in sys.argv:
            _print_json({"error": {"message": describe_invalid(exc), "exit_code": 2}})
        err.print(f"lode: error: {describe_invalid(exc)}", markup=False, highlight=False)
        raise SystemExit(2) from None
    configure_logging(settings.log_level)
    try:
        app()
    finally:
        from lode.errorlog import flush_sentry

        flush_sentry()
