"""The `lode` command. Thin: parse arguments, call the engine, render (rich on a terminal, JSON with --json).

Startup is part of the interface: `lode --help` and `--version` import nothing beyond typer, and every heavy module
(the engine, numpy, psycopg, rich's renderers, settings) is imported by the command that needs it.
"""

from __future__ import annotations

import json
import sys
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from lode import __version__
from lode import cli_server
from lode.cli_output import (
    JsonOption,
    engine_result,
    err,
    fail,
    load_settings,
    out,
    print_json,
    reader_took_enough,
    run_action,
)
from lode.errors import InputError, LodeError
from lode.model import EDGE_KINDS, Mode

if TYPE_CHECKING:

    from lode.config import Settings
    from lode.engine import Lode

app = typer.Typer(
    name="lode", help="Index a repository, then search it.", no_args_is_help=True,
    pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,  # plain help: flags shown as flags (rich's panels print `--wait <bool>`), and no rich import
)
repos_app = typer.Typer(help="List indexed repositories, or remove one.", invoke_without_command=True)
app.add_typer(repos_app, name="repos")
graph_app = typer.Typer(help="Who calls and uses what: callers, callees, refs, paths, stats and export.",
                        no_args_is_help=True)
app.add_typer(graph_app, name="graph")
cache_app = typer.Typer(help="The query cache: hits and misses per layer, or flush it.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
app.add_typer(cli_server.keys_app, name="keys")
jobs_app = typer.Typer(help="Index jobs of the durable queue: list them, show one, cancel one.",
                       invoke_without_command=True)
app.add_typer(jobs_app, name="jobs")
app.command()(cli_server.serve)
app.command()(cli_server.health)


RepoOption = Annotated[str | None, typer.Option("--repo", help="Repository name.")]
EACH = "<str>"  # a repeatable option's metavar: one value each time (typer would print `<list[str]>`)


def _show_version(show: bool) -> None:
    if show:
        sys.stdout.write(f"lode {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", is_eager=True, callback=_show_version,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Index a repository, then search it."""


@app.command()
def index(
    path: Annotated[str, typer.Argument(help="Directory to index.")],
    repo: RepoOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Return when the embedding backfill is done.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Index a directory (incrementally: unchanged files are skipped)."""
    run_action(as_json, lambda lode: _index_once(lode, path, repo, wait, as_json), lambda r: _render_index(r, wait))


def _index_once(lode: Lode, path: str, repo: str | None, wait: bool, quiet: bool) -> dict[str, Any]:
    """One incremental index run; the graph resolution and embedding backfill it leaves go to the background, or
    are done before it returns with --wait."""
    from lode.services.indexing import Schedule, run_index

    rest = Schedule.INLINE if wait else Schedule.DETACHED
    with _progress_bars(quiet) as bars:
        outcome = run_index(lode, path, repo, graph=rest, embeddings=rest,
                            on_progress=bars.files if bars else None,
                            on_embed_progress=bars.embeddings if bars else None)
    return outcome.as_dict()


def _render_index(result: dict[str, Any], wait: bool) -> None:
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


@app.command()
def watch(
    path: Annotated[str, typer.Argument(help="Directory to index, then keep indexed.")],
    repo: RepoOption = None,
    debounce: Annotated[int, typer.Option(
        "--debounce", metavar="<int>", min=50, max=60_000,
        help="Milliseconds of quiet to wait for after a change, so a burst of saves is one run.")] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print each run's report as one JSON line.")] = False,
) -> None:
    """Index PATH, then re-index it whenever files under it change (debounced), until Ctrl-C."""
    import watchfiles

    settings = load_settings()
    from lode.engine import Lode

    def report(result: dict[str, Any]) -> None:
        if as_json:
            print_json(result)
            sys.stdout.flush()
        else:
            _render_index(result, wait=False)

    try:
        with Lode(settings) as lode:
            root, _ = lode.indexing.target(path, repo)  # a bad PATH or --repo fails before any watching
            watching = False
            # The first (empty) yield comes once the watcher runs: the first report follows it, so a change made
            # after that report is never missed. watchfiles' default filter skips .git, __pycache__,
            # node_modules and editors' swap files.
            for changes in watchfiles.watch(root, debounce=debounce, step=50, rust_timeout=200,
                                            yield_on_timeout=True, raise_interrupt=False):
                if changes or not watching:
                    report(_index_once(lode, path, repo, wait=False, quiet=True))
                if not watching and not as_json:
                    err.print(f"lode: watching {path}; Ctrl-C stops", markup=False, highlight=False)
                watching = True
    except LodeError as exc:
        fail(exc, as_json)
    except (KeyboardInterrupt, _Terminated):
        # Ctrl-C or SIGTERM is how watching ends, whether it comes while watchfiles waits (which then returns) or
        # while a run or a report is under way; every file indexed so far is committed
        pass


class _ProgressBars:
    """Transient progress bars on stderr: one for the files of an index run, then one for the embeddings."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._phase = ""
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> _ProgressBars:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self, phase: str, *columns: Any, **fields: Any) -> None:
        """Replace the bar of the previous phase by this phase's, once."""
        if phase == self._phase:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._stack.close()
        self._stack = ExitStack()
        self._phase = phase
        self._bar = self._stack.enter_context(Progress(
            TextColumn(f"[bold]{phase}"), BarColumn(), MofNCompleteColumn(), *columns, TimeRemainingColumn(),
            console=err, transient=True))
        self._task = self._bar.add_task(phase, total=None, **fields)

    def files(self, progress: Any) -> None:
        from rich.progress import TextColumn

        self._open("indexing", TextColumn("files"), TextColumn("{task.fields[chunks]} chunks"),
                   TextColumn("{task.fields[rate]}"), chunks=0, rate="")
        elapsed = self._bar.tasks[self._task].elapsed or 0
        rate = f"{progress.files_done / elapsed:.0f} files/s" if elapsed > 0.5 else ""
        self._bar.update(self._task, total=progress.files_total, completed=progress.files_done,
                         chunks=progress.chunks, rate=rate)

    def embeddings(self, progress: Any, final: bool = False) -> None:
        from rich.progress import TextColumn

        self._open("embedding", TextColumn("chunks"))
        self._bar.update(self._task, total=progress.done + progress.pending + progress.failed,
                         completed=progress.done)


def _progress_bars(quiet: bool) -> AbstractContextManager[_ProgressBars | None]:
    """Bars on a terminal; nothing with --json or when stderr is not one."""
    return nullcontext() if quiet or not err.is_terminal else _ProgressBars()


def _embed_with_progress(lode: Lode, repo: str, quiet: bool, switch: bool = False) -> Any:
    with _progress_bars(quiet) as bars:
        return lode.embeddings.embed(repo, switch=switch, on_progress=bars.embeddings if bars else None)


@app.command()
def embed(
    repo: Annotated[str, typer.Option("--repo", help="Repository name.")],
    switch: Annotated[bool, typer.Option("--switch", help="Re-embed with the configured model, then switch.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Fill a repository's pending embeddings (resumable; one backfill per repository at a time)."""

    def render(result: dict[str, int]) -> None:
        out.print(f"embeddings: {result['done']} done, {result['pending']} pending, {result['failed']} failed")

    run_action(as_json, lambda lode: asdict(_embed_with_progress(lode, repo, as_json, switch)), render)


@app.command(name="eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSON lines: {\"query\", \"expected\": [{\"path\", \"name_path\"?}]}")],
    repo: RepoOption = None,
    mode: Annotated[list[str] | None, typer.Option("--mode", metavar=EACH,
                                                   help="Modes to run (repeatable); all by default.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Score search on a benchmark file: MRR@10, nDCG@10 and Recall@1/5/10 per mode."""
    from lode.evaluate import METRICS, load_cases
    from lode.evaluate import evaluate as run_eval

    def render(result: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table("mode", *METRICS, "degraded", title=f"{result['queries']} queries")
        for name, row in result["modes"].items():
            table.add_row(name, *(f"{row[m]:.3f}" for m in METRICS), ", ".join(row["degraded"]))
        out.print(table)

    modes = mode or [Mode.LEXICAL, Mode.SEMANTIC, Mode.HYBRID]
    run_action(as_json, lambda lode: run_eval(lode, load_cases(file), repo, modes), render)


@app.command(name="eval-generate")
def evaluate_generate(
    source: Annotated[Path, typer.Argument(help="A Python tree, e.g. CPython's Lib/.")],
    out_dir: Annotated[Path, typer.Argument(help="Where to write tree/ (docstrings blanked) and queries.jsonl.")],
    limit: Annotated[int, typer.Option("--limit", help="Number of queries.")] = 500,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the query sample.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Generate the self-supervised docstring benchmark: query = a docstring's first sentence."""
    from lode.evaluate import generate_docstring_benchmark

    def action(_: Lode) -> dict[str, Any]:
        if not source.is_dir():
            raise InputError(f"{source}: not a directory")
        return generate_docstring_benchmark(source, out_dir, limit, seed)

    run_action(as_json, action, lambda r: out.print(f"{r['cases']} queries in {r['queries']}; index {r['tree']}"))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Plain text; operators and SQL are just words.")],
    repo: RepoOption = None,
    mode: Annotated[str, typer.Option("--mode", help=" | ".join(Mode))] = Mode.HYBRID,
    k: Annotated[int, typer.Option("-k", help="Number of hits.")] = 10,
    lang: Annotated[list[str] | None, typer.Option(
        "--lang", metavar=EACH,
        help="Language filter (repeatable): python, javascript, typescript, go, rust, java, c, cpp, csharp, ruby, "
             "php, markdown...; aliases such as py or Python work.")] = None,
    path: Annotated[str | None, typer.Option(
        "--path", help="Path glob, e.g. 'src/**/*.py'; a leading ! excludes: '!tests/**'.")] = None,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", metavar=EACH,
        help="Chunk kind filter (repeatable): function, method, class, struct, interface, trait, enum, module, "
             "window.")] = None,
    expand: Annotated[bool, typer.Option("--expand", help="Attach each hit's direct callers and callees.")] = False,
    files: Annotated[bool, typer.Option("--files", help="Rank files (-k of them), each with its best hits; "
                                                        "--json adds `files`.")] = False,
    explain: Annotated[bool, typer.Option("--explain", help="Print each hit's leg ranks, fused score and the "
                                                            "factor of each ranking prior.")] = False,
    as_json: JsonOption = False,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="Print one JSON hit per line, as each is ready.")] = False,
    vimgrep: Annotated[bool, typer.Option("--vimgrep", help="Print `path:line:col: text` lines, one per hit, "
                                          "for editors' quickfix lists.")] = False,
) -> None:
    """Search indexed code. QUERY may be a name, a question or a whole issue text (up to 64 KiB). Runs through a
    running `lode serve` when there is one (see README "Fast CLI")."""
    group = "files" if files else "chunks"
    params = {"q": query, "repo": repo, "mode": mode, "k": k, "lang": lang or [], "path": path, "kind": kind or [],
              "expand": str(expand).lower(), "group": group}
    from lode import local_server

    server = local_server.find()
    result = local_server.search(server, params) if server else None
    if result is None:
        settings = load_settings()
        result = engine_result(as_json, lambda lode: lode.search.query(
            query, repo=repo, mode=mode, k=k, languages=tuple(lang or ()), path=path, kinds=tuple(kind or ()),
            expand=expand, group=group), settings)
        if not result["hits"]:
            _say_if_nothing_indexed(settings, repo)
    if as_json:
        print_json(result)
        return
    if result["degraded"]:
        err.print(f"[yellow]degraded legs: {', '.join(result['degraded'])}[/]")
    if jsonl:
        for hit in result["hits"]:
            sys.stdout.write(json.dumps(hit, default=str, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        return
    if vimgrep:
        for hit in result["hits"]:
            line, column, text = _match_position(hit)
            sys.stdout.write(f"{hit['path']}:{line}:{column}: {text}\n")
        return
    if explain and result.get("query_kind"):
        out.print(f"query kind: {result['query_kind']}", highlight=False)
    if files:
        if not result["files"]:
            out.print("no files")
        for number, found in enumerate(result["files"], start=1):
            out.print(f"{number}. [bold cyan]{found['path']}[/] [dim]{found['repo']}, score {found['score']:.3f}[/]",
                      highlight=False)
            for hit in found["hits"]:
                _print_hit_header(hit, explain, indent="   ")
        return
    if not result["hits"]:
        out.print("no hits")
    for hit in result["hits"]:
        _print_hit_header(hit, explain)
        out.print(hit["snippet"], markup=False, highlight=False)
        for relation in ("callers", "callees"):
            if hit.get(relation):
                out.print(f"  [dim]{relation}:[/] " + ", ".join(_place(n) for n in hit[relation]), highlight=False)
        out.print()


def _print_hit_header(hit: dict[str, Any], explain: bool, indent: str = "") -> None:
    """`path:line name`, then the lines and repository dimmed (and with --explain, the legs and priors)."""
    label = hit["name_path"] or hit["kind"]
    out.print(f"{indent}[bold cyan]{hit['path']}:{hit['start_line']}[/] [green]{label}[/] "
              f"[dim]lines {hit['start_line']}-{hit['end_line']} of {hit['repo']}, score {hit['score']:.3f}[/]",
              highlight=False)
    if explain:
        out.print(f"{indent}  {_explanation(hit['legs'])}", markup=False, highlight=False)


def _match_position(hit: dict[str, Any]) -> tuple[int, int, str]:
    """The line, 1-based column and text of a hit's first highlighted match (its snippet's first line without one)."""
    lines = hit["snippet"].split("\n")
    index, start = (hit["highlights"][0][0], hit["highlights"][0][1]) if hit.get("highlights") else (0, 0)
    first = hit.get("snippet_line", hit["start_line"])
    return first + index, start + 1, lines[index] if index < len(lines) else ""


def _say_if_nothing_indexed(settings: Settings, repo: str | None) -> None:
    """An empty result on an empty index says what to run, rather than "no hits" (on stderr: stdout stays data)."""
    from lode.engine import Lode

    if repo is None:
        with Lode(settings) as lode:
            if not lode.repos.all():
                err.print("lode: nothing is indexed yet: run `lode index PATH` first", markup=False,
                          highlight=False)


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
    limit: Annotated[int, typer.Option("--limit", help="At most this many definitions.")] = 20,
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

    run_action(as_json, lambda lode: lode.search.symbols(name, repo=repo, limit=limit), render)


@app.command()
def context(
    query: Annotated[str | None, typer.Argument(help="What you are looking for (or pass --symbol).")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="A symbol to centre on instead of a query: "
                                                                "pkg.mod.Class.method, Class.method or a short "
                                                                "name.")] = None,
    repo: RepoOption = None,
    budget: Annotated[int | None, typer.Option("--budget", help="Tokens the text stays within, estimated at 3 "
                                                               "characters each (100-100000; 4000 when "
                                                               "omitted).")] = None,
    mode: Annotated[str, typer.Option("--mode", help=" | ".join(Mode))] = Mode.HYBRID,
    as_json: JsonOption = False,
) -> None:
    """Code to read before a change, within a token budget: the definitions a query or a symbol finds, then their
    callers, callees and tests, each cited path:start-end (MCP's get_context, GET /v1/context)."""
    run_action(as_json, lambda lode: lode.context.build(query, symbol, repo=repo, budget=budget, mode=mode),
               lambda result: out.print(result["text"], markup=False, highlight=False))


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

    run_action(as_json, lambda lode: lode.repos.status(repo, skipped=skipped), render)


@app.command()
def stop(as_json: JsonOption = False) -> None:
    """Stop the embedded PostgreSQL now (it otherwise stops LODE_EMBEDDED_IDLE_SECONDS after its last user)."""
    from lode.store import embedded

    settings = load_settings()
    if settings.database_url:
        result = {"stopped": False, "reason": "LODE_DATABASE_URL selects an external server; Lode does not stop it"}
    else:
        try:
            stopped = embedded.stop(settings.home)
        except LodeError as exc:
            fail(exc, as_json)
        result = {"stopped": stopped, "reason": None if stopped else "the embedded server was not running"}
    if as_json:
        print_json(result)
    else:
        out.print("stopped the embedded server" if result["stopped"] else str(result["reason"]), markup=False)


@repos_app.callback()
def repos(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List indexed repositories."""
    if ctx.invoked_subcommand is not None:
        return

    def render(result: list[dict[str, Any]]) -> None:
        from rich.table import Table

        table = Table("repo", "root", "chunks", "generation", "updated")
        for row in result:
            table.add_row(row["repo"], row["root"], str(row["chunks"]), str(row["generation"]), row["updated_at"])
        out.print(table)

    run_action(as_json, lambda lode: {"repos": lode.repos.all()}, lambda r: render(r["repos"]))


@repos_app.command("rm")
def repos_rm(name: Annotated[str, typer.Argument(help="Repository name.")], as_json: JsonOption = False) -> None:
    """Remove a repository and everything indexed for it (one transaction)."""

    def action(lode: Lode) -> dict[str, Any]:
        lode.repos.remove(name)
        return {"removed": name}

    run_action(as_json, action, lambda result: out.print(f"removed {result['removed']}"))


def _place(node: dict[str, Any]) -> str:
    if node["external"]:
        return f"{node['name_path']} (external)"
    return f"{node['name_path']} ({node['path']}:{node['start_line']})"


EdgeKinds = Annotated[str, typer.Option("--kinds", help=f"Edge kinds, comma-separated: {','.join(EDGE_KINDS)}.")]
ALL_KINDS = ",".join(EDGE_KINDS)
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

    run_action(as_json, lambda lode: lode.graph.neighbours(
        direction, symbol, repo=repo, depth=depth, kinds=_kinds(kinds), min_confidence=min_confidence), render)


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


@graph_app.command("refs")
def graph_refs(
    symbol: Annotated[str, typer.Argument(help="A qualified name or a unique short name.")],
    repo: RepoOption = None,
    kinds: EdgeKinds = ALL_KINDS,
    min_confidence: MinConfidence = 0.0,
    limit: Annotated[int, typer.Option("--limit", help="At most this many uses, 1-10000.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """Every use of SYMBOL: calls, imports, base classes, type annotations and decorators, with their kind."""

    def render(result: dict[str, Any]) -> None:
        out.print(f"[bold]uses of {_place(result['symbol'])}[/]", highlight=False)
        for use in result["refs"]:
            out.print(f"  {use['evidence']}  {use['kind']} in {use['name_path']} [dim]{use['confidence']:.2f}[/]",
                      highlight=False)
        if not result["refs"]:
            out.print("  none")
        if result["truncated"]:
            err.print("[yellow]truncated: raise --limit[/]")

    run_action(as_json, lambda lode: lode.graph.refs(
        symbol, repo=repo, kinds=_kinds(kinds), min_confidence=min_confidence, limit=limit), render)


@graph_app.command("path")
def graph_path(
    source: Annotated[str, typer.Argument(help="From this symbol...")],
    target: Annotated[str, typer.Argument(help="...to this one (or back).")],
    repo: RepoOption = None,
    max_depth: Annotated[int, typer.Option("--max-depth", metavar="<int>", min=1, max=10,
                                           help="Give up beyond this many hops.")] = 6,
    as_json: JsonOption = False,
) -> None:
    """The shortest chain of edges between two symbols, in either direction."""

    def render(result: dict[str, Any]) -> None:
        if not result["found"]:
            out.print(f"no path between {source} and {target} within {max_depth} hops")
            return
        # a backward path runs from the target to the start: its hops end at the start
        first = result["from"] if result["direction"] == "forward" else result["to"]
        out.print(f"[bold]{_place(first)}[/] ({result['direction']})", highlight=False)
        for hop in result["path"]:
            out.print(f"  → {_place(hop)} [dim]{hop['edge']} at {hop['evidence']}[/]", highlight=False)

    run_action(as_json, lambda lode: lode.graph.path(source, target, repo=repo, max_depth=max_depth), render)


@graph_app.command("resolve")
def graph_resolve(
    repo: Annotated[str, typer.Option("--repo", help="Repository name.")], as_json: JsonOption = False
) -> None:
    """Finish the code graph's queued resolution (`lode index` leaves a large one to the background)."""

    def action(lode: Lode) -> dict[str, Any]:
        lode.graph.resolve(repo)
        return {"repo": repo, "resolved": True}

    run_action(as_json, action, lambda result: out.print(f"{result['repo']}: the code graph is resolved"))


@graph_app.command("stats")
def graph_stats(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Counts by kind, top fan-in and fan-out, and import cycles."""

    def render(result: dict[str, Any]) -> None:
        nodes = ", ".join(f"{n} {kind}" for kind, n in result["nodes"].items())
        out.print(f"nodes: {nodes or 'none'}; {result['external_nodes']} external names", highlight=False)
        for kind, counts in result["edges"].items():
            out.print(f"{kind}: {counts['internal']} resolved, {counts['external']} to external names",
                      highlight=False)
        for title, key, count in (("most called", "top_fan_in", "callers"), ("most calling", "top_fan_out", "callees")):
            if result[key]:
                out.print(f"{title}:")
                for entry in result[key]:
                    out.print(f"  {entry[count]:>5}  {_place(entry['symbol'])}", markup=False, highlight=False)
        cycles = result["import_cycles"]
        out.print(f"import cycles: {len(cycles) or 'none'}")
        for cycle in cycles:
            out.print("  " + " → ".join(cycle), markup=False, highlight=False)

    run_action(as_json, lambda lode: lode.graph.stats(repo), render)


@graph_app.command("export")
def graph_export(
    repo: RepoOption = None,
    fmt: Annotated[str, typer.Option("--format", help="json | dot | mermaid")] = "json",
    kinds: EdgeKinds = "calls,imports,inherits",
    min_confidence: MinConfidence = 0.0,
    include_external: Annotated[bool, typer.Option(
        "--include-external", help="Keep edges to names outside the index (library calls, builtins).")] = False,
    path: Annotated[str | None, typer.Option("--path", help="Only edges from files matching this glob.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many edges.")] = 5000,
) -> None:
    """Write the graph (filtered) as JSON, Graphviz dot or Mermaid on stdout."""
    from lode.graph import ExportFilters

    filters = ExportFilters(kinds=_kinds(kinds), min_confidence=min_confidence, include_external=include_external,
                            path_glob=path, limit=limit)
    run_action(False, lambda lode: lode.graph.export(fmt, filters, repo), print)


@cache_app.command("stats")
def cache_stats(as_json: JsonOption = False) -> None:
    """Hits, misses, hit rate, bytes and evictions per layer (L1 counts are this process's own)."""

    def render(result: dict[str, Any]) -> None:
        from rich.table import Table

        table = Table("layer", "hits", "misses", "errors", "skips", "hit rate", "bytes", "evictions")
        for name, layer in result["layers"].items():
            table.add_row(name, str(layer["hits"]), str(layer["misses"]), str(layer["errors"]), str(layer["skips"]),
                          "-" if layer["hit_rate"] is None else f"{layer['hit_rate']:.1%}",
                          str(layer.get("bytes", layer.get("server", {}).get("used_memory", "-"))),
                          str(layer.get("evictions", layer.get("server", {}).get("evicted_keys", "-"))))
        out.print(table)

    run_action(as_json, lambda lode: lode.cache.stats(), render)


@cache_app.command("flush")
def cache_flush(repo: RepoOption = None, as_json: JsonOption = False) -> None:
    """Drop cached answers of one repository, or everything (then query embeddings too)."""
    run_action(as_json, lambda lode: lode.cache.flush(repo), lambda result: out.print(
        f"flushed L1 {result['l1']}, L2 {'off' if result['l2'] is None else result['l2']}, L3 {result['l3']} entries"))


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", metavar="<int>", min=1, help="Jobs run at once.")] = 1,
) -> None:
    """Consume the job queue (index jobs, embedding batches, graph resolution, garbage collection) until SIGTERM
    or Ctrl-C; a running job then finishes within LODE_QUEUE_SHUTDOWN_GRACE_SECONDS or goes back to the queue."""
    import asyncio

    from lode.engine import Lode
    from lode.queue import run_worker, worker_name

    settings = load_settings()
    try:
        with Lode(settings) as lode:
            _ = lode.db  # connect and migrate before taking jobs
            err.print(f"lode: worker {worker_name()} consuming queue {lode.settings.queue.name!r} with concurrency "
                      f"{concurrency}; Ctrl-C stops", markup=False, highlight=False)
            asyncio.run(run_worker(lode, concurrency, install_signal_handlers=True))
    except LodeError as exc:
        err.print(f"lode: error: {exc}", markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None


def _job_line(job: dict[str, Any]) -> str:
    emb = job["embeddings"]
    # a run that found no file to read (nothing changed) is done, not "0/0 files" (as on the web UI's status page)
    files = ("nothing changed" if job["state"] == "succeeded" and not job["files_total"]
             else f"{job['files_done']}/{job['files_total']} files")
    progress = (f"{files}, {job['chunks']} chunks, embeddings {emb['done']} done {emb['pending']} pending "
                f"{emb['failed']} failed")
    eta = f", eta {job['eta_seconds']:.0f}s" if job["eta_seconds"] is not None else ""
    phase = f" ({job['phase']})" if job["phase"] else ""
    error = f": {job['error']}" if job["error"] else ""
    return f"{job['id']}  {job['repo']}  {job['state']}{phase}  {progress}{eta}  {job['created_at'][:19]}{error}"


@jobs_app.callback()
def jobs(
    ctx: typer.Context,
    repo: RepoOption = None,
    state: Annotated[list[str] | None, typer.Option(
        "--state", metavar=EACH, help="queued, running, succeeded, failed or cancelled (repeatable).")] = None,
    limit: Annotated[int, typer.Option("--limit", metavar="<int>", min=1, max=1000,
                                       help="At most this many jobs.")] = 50,
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

    run_action(as_json, lambda lode: {"jobs": Jobs(lode).list((repo,) if repo else None, limit, tuple(state or ()))},
               render)


@jobs_app.command("show")
def jobs_show(job_id: Annotated[str, typer.Argument(help="Job id.")], as_json: JsonOption = False) -> None:
    """One job: state, phase, progress, ETA, error and, once indexed, its report."""
    from lode.jobs import Jobs

    run_action(as_json, lambda lode: {"job": Jobs(lode).get(job_id)},
               lambda result: out.print(_job_line(result["job"]), markup=False, highlight=False))


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[str, typer.Argument(help="Job id.")], as_json: JsonOption = False) -> None:
    """Cancel a queued job, or ask a running one (on any worker) to stop between two files."""
    from lode.jobs import Jobs

    run_action(as_json, lambda lode: {"job": Jobs(lode).cancel(job_id)},
               lambda result: out.print(_job_line(result["job"]), markup=False, highlight=False))


@app.command()
def mcp(
    repo: Annotated[str | None, typer.Option(
        "--repo", help="The repository tools use when a call names none (default: the one holding the working "
                       "directory).")] = None,
) -> None:
    """Serve the MCP tools (search, symbols, graph, context) over stdio, for Claude Code, Cursor and others."""
    load_settings()
    from lode.mcp import run_stdio

    run_stdio(repo=repo)


@app.command()
def errors(
    since: Annotated[float, typer.Option("--since", help="Errors seen within this many hours.")] = 24.0,
    severity: Annotated[str | None, typer.Option("--severity", help="warning | error | critical")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many errors.")] = 100,
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

    run_action(as_json, lambda lode: list_errors(lode.db, since_hours=since, severity=severity, limit=limit), render)


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

    run_action(as_json, lambda lode: ack_alert(lode.db, ack) if ack is not None
               else list_alerts(lode.db, include_acknowledged=show_all), render)


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has exited (`lode search x | head -1`): poll reports POLLERR."""
    import select

    poller = select.poll()
    poller.register(sys.__stdout__.fileno() if sys.__stdout__ else 1, select.POLLERR)
    return any(events & select.POLLERR for _, events in poller.poll(0))


class _Terminated(SystemExit):
    """SIGTERM: unwinds like Ctrl-C and exits 128 + 15, unless the command ends that way by design (`lode watch`)."""


def _terminated(signum: int, frame: object) -> NoReturn:
    raise _Terminated(128 + signum)


def main() -> None:
    # SIGTERM (`kill`, `timeout`, a supervisor) unwinds like Ctrl-C instead of ending the process on the spot, so
    # the exit hooks run: among them leaving the embedded server's list of users (lode/store/embedded.py)
    import signal

    signal.signal(signal.SIGTERM, _terminated)
    try:
        app(prog_name="lode")  # also under `python -m lode`
    except SystemExit as exc:
        # click turns a write to a closed pipe into exit 1; for a reader that took what it wanted, it is success
        if exc.code == 1 and _stdout_reader_gone():
            reader_took_enough()
        raise
    finally:
        if "lode.errorlog" in sys.modules:  # only a process that recorded errors has any to send
            from lode.errorlog import flush_sentry

            flush_sentry()
