"""The MCP server: Lode's search and code graph as tools for coding agents.

`lode mcp` serves it over stdio; the REST app mounts the same server at /mcp over streamable HTTP (`mount`).
Every tool calls the shared engine (`lode.engine.Lode`), answers in compact text that cites `path:start-end`,
and turns bad input into an MCP tool error (`is_error`) with the engine's one-line message.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from pydantic import Field
from starlette.applications import Starlette
from starlette.types import ASGIApp

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from lode import __version__, background
from lode.chunking.languages import language_for_path
from lode.config import Settings
from lode.engine import MAX_K, Lode
from lode.errors import InputError, LodeError
from lode.search.paths import is_test_path

INSTRUCTIONS = (
    "Lode indexes code repositories. Use search_code to find where something is done, find_symbol for a "
    "definition by name, get_callers/get_callees/find_path to walk the call graph, and get_context for a "
    "token-budgeted bundle (definition, callers, callees, tests) to read before editing. Results cite "
    "path:start-end relative to the repository root."
)

Repo = Annotated[str | None, Field(description="Repository name (see index_status); all repositories when omitted.")]
Symbol = Annotated[str, Field(description="A qualified name (pkg.mod.Class.method), a suffix (Class.method) or a "
                                          "unique short name.")]
Depth = Annotated[int, Field(ge=1, le=10, description="Hops to follow, 1-10.")]
MinConfidence = Annotated[float, Field(ge=0, le=1, description="Drop edges resolved with less confidence (0-1).")]
RepoScope = str | tuple[str, ...] | None  # one repository, an API key's repositories, or all

READ_ONLY = ToolAnnotations(read_only_hint=True)
WRITES_INDEX = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
MIN_BUDGET = 100
MAX_BUDGET = 100_000
T = TypeVar("T")


# ---- token budget ------------------------------------------------------------------------------------------

_PIECES = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """An estimate of LLM tokens, leaning high: one per 3 characters, and never fewer than the words and symbols.

    LLM tokenizers are usually quoted at 3.5-4 characters per token of source code; the word/symbol floor covers
    punctuation-dense text. The client's own tokenizer is unknown here, so budgets hold for this count (README).
    """
    return max(math.ceil(len(text) / 3), len(_PIECES.findall(text)))


# ---- formatting -------------------------------------------------------------------------------------------


def _cite(item: dict[str, Any]) -> str:
    if item.get("external"):
        return "(external)"
    return f"{item['path']}:{item['start_line']}-{item['end_line']}"


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _hop_line(hop: dict[str, Any]) -> str:
    return (f"{'  ' * (hop['depth'] - 1)}{hop['name_path']}  {_cite(hop)}  "
            f"[{hop['edge']} {hop['confidence']:.2f} at {hop['evidence']}]")


def _neighbours_text(result: dict[str, Any]) -> str:
    start = result["symbol"]
    lines = [f"{result['direction']} of {start['name_path']} {_cite(start)} (depth {result['depth']}): "
             f"{len(result['results'])} found"]
    lines += [_hop_line(hop) for hop in result["results"]]
    if result["truncated"]:
        lines.append("(truncated: lower depth or raise min_confidence)")
    return "\n".join(lines)


def _search_text(result: dict[str, Any]) -> str:
    hits = result["hits"]
    head = f"{len(hits)} hits for {_shown_query(result['query'])} ({result['mode']})"
    if result["degraded"]:
        head += f"; legs not used: {', '.join(result['degraded'])}"
    lines = [head]
    for number, hit in enumerate(hits, start=1):
        name = hit["name_path"] or hit["name"] or ""
        lines.append(f"{number}. {_cite(hit)}  {hit['kind']} {name}  [repo {hit['repo']}, {hit['language']}, "
                     f"score {hit['score']:.3f}]")
        lines.append(_indent(hit["snippet"]))
    return "\n".join(lines)


def _files_text(result: dict[str, Any]) -> str:
    found = result["files"]
    head = f"{len(found)} files for {_shown_query(result['query'])} ({result['mode']})"
    if result["degraded"]:
        head += f"; legs not used: {', '.join(result['degraded'])}"
    lines = [head]
    for number, file in enumerate(found, start=1):
        lines.append(f"{number}. {file['path']}  [repo {file['repo']}, {file['language']}, score {file['score']:.3f}]")
        for hit in file["hits"]:
            lines.append(f"   - {_cite(hit)}  {hit['kind']} {hit['name_path'] or hit['name'] or ''}")
            lines.append(_indent(hit["snippet"], "       "))
    return "\n".join(lines)


def _shown_query(query: str) -> str:
    """The query as a header shows it: a long one (an issue body) by its first line and its size."""
    first = query.strip().splitlines()[0] if query.strip() else ""
    return repr(query) if len(query) <= 200 and "\n" not in query else f"{first[:120]!r}... ({len(query)} characters)"


# ---- get_context ------------------------------------------------------------------------------------------

@dataclass
class _Item:
    role: str  # definition | caller | callee | test | hit
    repo: str
    name: str
    path: str
    start_line: int
    end_line: int
    language: str
    focus_line: int  # the line to keep when the text is cut (a caller's call site)
    focus_pattern: re.Pattern[str] | None = None  # or the first line that matches this
    text: str = ""

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.repo, self.path, self.start_line, self.end_line)

    def cite(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def render(self, max_lines: int | None = None) -> str:
        lines = self.text.splitlines()
        shown = f"{self.cite()}"
        if max_lines is not None and max_lines < len(lines):
            first = min(max(0, self.focus_line - self.start_line - max_lines // 2), len(lines) - max_lines)
            lines = lines[first : first + max_lines]
            shown += f", lines {self.start_line + first}-{self.start_line + first + max_lines - 1} shown"
        body = "\n".join(lines)
        return f"### {self.role}: {self.name} ({shown}, repo {self.repo})\n```{self.language}\n{body}\n```"


class ContextPacker:
    """Adds rendered items in priority order while the whole text stays within the budget.

    An item that does not fit whole is cut to the lines around its focus line (at least `min_lines`); one that
    does not fit even so is dropped and listed, with its citation, in the closing lines. Characters and pieces
    add up over blocks joined by blank lines, so the running totals give `count_tokens` of the whole text.
    """

    min_lines = 4
    separator = "\n\n"

    def __init__(self, header: str, budget: int) -> None:
        self.budget = budget
        self.blocks: list[str] = []
        self.chars = self.pieces = 0
        self.dropped: list[_Item] = []
        self.placeholder = 10 ** len(str(budget)) - 1  # as many digits as any count within the budget
        self.reserve = self._footer(dropped_count=99_999)  # the longest unlisted footer
        if not self._fits(header, self.reserve):
            raise InputError(f"budget_tokens={budget} cannot hold even the header; use at least {MIN_BUDGET}")
        self._append(header)

    def _fits(self, *extra: str) -> bool:
        chars = self.chars + sum(len(e) for e in extra) + len(self.separator) * (len(self.blocks) + len(extra) - 1)
        pieces = self.pieces + sum(len(_PIECES.findall(e)) for e in extra)
        return max(math.ceil(chars / 3), pieces) <= self.budget

    def _append(self, block: str) -> None:
        self.blocks.append(block)
        self.chars += len(block)
        self.pieces += len(_PIECES.findall(block))

    def add(self, item: _Item) -> None:
        whole = item.render()
        if self._fits(whole, self.reserve):
            self._append(whole)
            return
        low, high, best = self.min_lines, len(item.text.splitlines()) - 1, None
        while low <= high:  # the most lines around the focus that fit
            middle = (low + high) // 2
            if self._fits(item.render(middle), self.reserve):
                best, low = middle, middle + 1
            else:
                high = middle - 1
        if best is None:
            self.dropped.append(item)
        else:
            self._append(item.render(best))

    def _footer(self, listed: int = 0, dropped_count: int = 0) -> str:
        """The closing lines: the first `listed` dropped items with their citations, then how many more."""
        lines = []
        if listed:
            lines.append("Dropped for the budget: " + "; ".join(
                f"{d.role} {d.name} {d.cite()}" for d in self.dropped[:listed]))
        if dropped_count > listed:
            lines.append(f"{'And' if listed else 'Dropped for the budget:'} {dropped_count - listed} more items.")
        lines.append(f"[~{self.placeholder} of {self.budget} tokens, estimated at 3 characters per token]")
        return "\n".join(lines)

    def text(self) -> str:
        listed = len(self.dropped)
        while listed and not self._fits(self._footer(listed, len(self.dropped))):
            listed -= 1
        footer = self._footer(listed, len(self.dropped))
        draft = self.separator.join([*self.blocks, footer])  # the unlisted form fits: every add kept room for it
        final = draft.replace(f"[~{self.placeholder} of", f"[~{count_tokens(draft)} of")  # no longer: same count
        assert count_tokens(final) <= self.budget
        return final


class ContextBuilder:
    """get_context: seeds from a search or a symbol, expanded along the graph, packed under a token budget."""

    max_seeds = 3
    max_neighbours = 8
    max_tests = 3

    def __init__(self, lode: Lode) -> None:
        self.lode = lode

    def build(self, query: str | None, symbol: str | None, repo: RepoScope, budget: int, mode: str) -> str:
        if (query is None) == (symbol is None):
            raise InputError("pass exactly one of query or symbol")
        if symbol is not None:
            callers = self.lode.graph_neighbours("callers", symbol, repo=repo, limit=self.max_neighbours)
            node = callers["symbol"]
            if node["external"]:
                raise InputError(f"{symbol!r} is defined outside the indexed repositories ({node['name_path']})")
            seeds = [self._item("definition", node)]
            neighbours = {node["name_path"]: callers}
            header = f"Context for symbol {node['name_path']}"
        else:
            found = self.lode.search(query, repo=repo, mode=mode, k=5)
            seeds = [self._item("hit", hit, name=hit["name_path"] or hit["name"] or hit["kind"]) for hit in found["hits"]]
            if not seeds:
                return f"No code matches {query!r}." + (f" (legs not used: {', '.join(found['degraded'])})"
                                                        if found["degraded"] else "")
            neighbours = {}
            header = f"Context for query {query!r} ({found['mode']})"
        packer = ContextPacker(header, budget)
        seen: set[tuple[str, str, int, int]] = set()
        for item in seeds:
            seen.add(item.key)
            self._fill(item)
            packer.add(item)
        expanded = [s for s in seeds if s.role == "definition" or "." in s.name][: self.max_seeds]
        for seed in expanded:
            for item in self._expansion(seed, neighbours.get(seed.name)):
                if item.key not in seen:
                    seen.add(item.key)
                    self._fill(item)
                    packer.add(item)
        return packer.text()

    def _expansion(self, seed: _Item, callers: dict[str, Any] | None) -> list[_Item]:
        try:
            if callers is None:
                callers = self.lode.graph_neighbours("callers", seed.name, repo=seed.repo, limit=self.max_neighbours)
            callees = self.lode.graph_neighbours("callees", seed.name, repo=seed.repo, limit=self.max_neighbours)
        except InputError:  # a hit with no graph node of its own (a window, an ambiguous name)
            return self._tests(seed)
        items = [self._item("caller", hop, focus=_evidence_line(hop)) for hop in callers["results"]]
        items += [self._item("callee", hop) for hop in callees["results"] if not hop["external"]]
        return items + self._tests(seed)

    def _tests(self, seed: _Item) -> list[_Item]:
        short = seed.name.rsplit(".", 1)[-1]
        if not short.isidentifier():
            return []
        mention = re.compile(rf"\b{re.escape(short)}\b")
        hits = self.lode.search(short, repo=seed.repo, mode="lexical", k=50)["hits"]
        tests = [h for h in hits if is_test_path(h["path"]) and mention.search(h["snippet"])]
        items = [self._item("test", h, name=h["name_path"] or h["name"] or h["path"]) for h in tests[: self.max_tests]]
        for item in items:
            item.focus_pattern = mention
        return items

    def _item(self, role: str, node: dict[str, Any], *, name: str | None = None, focus: int | None = None) -> _Item:
        return _Item(role=role, repo=node["repo"], name=name or node["name_path"], path=node["path"],
                     start_line=node["start_line"], end_line=node["end_line"], language=node.get("language") or "",
                     focus_line=focus or node["start_line"])

    def _fill(self, item: _Item) -> None:
        item.text = self.lode.source(item.repo, item.path, item.start_line, item.end_line)
        item.language = item.language or language_for_path(item.path) or ""
        if item.focus_pattern is not None:  # a test: keep the line that mentions the symbol
            lines = item.text.splitlines()
            first = next((i for i, line in enumerate(lines) if item.focus_pattern.search(line)), 0)
            item.focus_line = item.start_line + first


def _evidence_line(hop: dict[str, Any]) -> int | None:
    line = str(hop.get("evidence") or "").rsplit(":", 1)[-1]
    return int(line) if line.isdigit() else None


# ---- the server -------------------------------------------------------------------------------------------


class Access:
    """What a caller may touch. Over stdio the caller is the local user: every repository and directory."""

    def repos(self, ctx: Context, repo: str | None) -> RepoScope:
        _check_text_arguments(repo=repo)
        return repo

    def index_target(self, ctx: Context, lode: Lode, path: str, repo: str | None) -> tuple[Any, str, Any]:
        """(root, repository name, the directory the run is confined to or None)."""
        _check_text_arguments(path=path, repo=repo)
        return (*lode.index_target(path, repo), None)


class HttpAccess(Access):
    """Over HTTP, the REST rules for the request's API key: its repository scope, and LODE_ALLOWED_ROOTS for
    the directories it may index (lode/api/security.py)."""

    def repos(self, ctx: Context, repo: str | None) -> RepoScope:
        from lode.api.security import repo_scope

        super().repos(ctx, repo)
        return _http_rule(lambda: repo_scope(ctx.request_context.request, repo))

    def index_target(self, ctx: Context, lode: Lode, path: str, repo: str | None) -> tuple[Any, str, Any]:
        from lode.api.keys import ApiKeys
        from lode.api.security import check_index_path, require_repo

        _check_text_arguments(path=path, repo=repo)
        request = ctx.request_context.request
        if repo is not None:  # the key's scope first, as POST /v1/index does
            _http_rule(lambda: require_repo(request, repo))
        open_mode = request.app.state.loopback and not ApiKeys(lode.db).any()
        checked, within = _http_rule(lambda: check_index_path(path, lode.settings, open_mode))
        root, name = lode.index_target(checked, repo,
                                       authorize=lambda name: _http_rule(lambda: require_repo(request, name)))
        return root, name, within


def _check_text_arguments(**arguments: str | None) -> None:
    """Refuse a NUL character, as the REST API does: neither PostgreSQL text nor a file name can hold one."""
    for name, value in arguments.items():
        if value is not None and "\x00" in value:
            raise ToolError(f"the argument {name!r} contains a NUL character")


def _http_rule(check: Callable[[], T]) -> T:
    from starlette.exceptions import HTTPException

    try:
        return check()
    except HTTPException as exc:
        raise ToolError(str(exc.detail)) from exc


def _engine_call(action: Callable[[], T]) -> T:
    """Run one engine call; Lode's own errors (bad input, unknown names, timeouts) become tool errors."""
    try:
        return action()
    except LodeError as exc:
        raise ToolError(str(exc)) from exc


def create_server(get_lode: Callable[[], Lode], access: Access | None = None) -> MCPServer:
    """The MCP server over the engine that `get_lode` returns (the REST app's own, when mounted there)."""
    server = MCPServer("lode", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    access = access or Access()
    database_lock = threading.Lock()

    def engine() -> Lode:
        lode = get_lode()
        with database_lock:  # tools run in worker threads: start the database once
            lode.db
        return lode

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def search_code(
        query: Annotated[str, Field(description="What the code does, or words and names in it.")],
        ctx: Context,
        repo: Repo = None,
        mode: Annotated[Literal["hybrid", "lexical", "semantic"], Field(description="hybrid by default.")] = "hybrid",
        k: Annotated[int, Field(ge=1, le=MAX_K, description="Number of hits.")] = 10,
        lang: Annotated[str | None, Field(description="Only this language, e.g. python.")] = None,
        path: Annotated[str | None, Field(description="Only files matching this glob, e.g. src/**/*.py.")] = None,
        kind: Annotated[str | None, Field(description="Only this chunk kind: function, method, class, ...")] = None,
        files: Annotated[bool, Field(description="Rank files instead (k of them), each with its best hits: "
                                                 "which files to open or edit.")] = False,
    ) -> str:
        """Search the indexed code (BM25 + embeddings, then priors: definitions first, tests last). The query may
        be a name, a question or a whole issue with its traceback (up to 64 KiB). Each hit: path:start-end, kind,
        qualified name, snippet; with files=true, files best first with their best hits."""
        _check_text_arguments(path=path)
        scope = access.repos(ctx, repo)
        result = _engine_call(lambda: engine().search(
            query, repo=scope, mode=mode, k=k, languages=(lang,) if lang else (), path=path,
            kinds=(kind,) if kind else (), group="files" if files else "chunks"))
        return _files_text(result) if files else _search_text(result)

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def find_symbol(
        name: Annotated[str, Field(description="Exact name, qualified name or suffix such as Class.method.")],
        ctx: Context,
        repo: Repo = None,
        limit: Annotated[int, Field(ge=1, le=MAX_K)] = 20,
    ) -> str:
        """Find definitions by name: path:start-end, kind, signature and docstring's first line."""
        scope = access.repos(ctx, repo)
        result = _engine_call(lambda: engine().symbols(name, repo=scope, limit=limit))
        if not result["symbols"]:
            hint = f" Close names: {', '.join(result['suggestions'])}." if result["suggestions"] else ""
            return f"No symbol named {name!r}.{hint}"
        lines = [f"{len(result['symbols'])} definitions of {name!r}"]
        for sym in result["symbols"]:
            lines.append(f"{_cite(sym)}  {sym['kind']} {sym['name_path'] or sym['name']}  [repo {sym['repo']}]")
            if sym["signature"]:
                lines.append(f"    {sym['signature']}")
            if sym.get("docstring"):
                lines.append(f"    \"{sym['docstring'].strip().splitlines()[0]}\"")
        return "\n".join(lines)

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def get_callers(symbol: Symbol, ctx: Context, repo: Repo = None, depth: Depth = 1,
                    min_confidence: MinConfidence = 0.0) -> str:
        """Who calls a symbol, up to `depth` hops: each caller with path:start-end and the call site."""
        scope = access.repos(ctx, repo)
        return _neighbours_text(_engine_call(lambda: engine().graph_neighbours(
            "callers", symbol, repo=scope, depth=depth, min_confidence=min_confidence)))

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def get_callees(symbol: Symbol, ctx: Context, repo: Repo = None, depth: Depth = 1,
                    min_confidence: MinConfidence = 0.0) -> str:
        """What a symbol calls, up to `depth` hops; calls outside the repositories show as (external)."""
        scope = access.repos(ctx, repo)
        return _neighbours_text(_engine_call(lambda: engine().graph_neighbours(
            "callees", symbol, repo=scope, depth=depth, min_confidence=min_confidence)))

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def find_path(
        source: Annotated[str, Field(description="From this symbol...")],
        target: Annotated[str, Field(description="...to this one (either direction is searched).")],
        ctx: Context,
        repo: Repo = None,
        max_depth: Annotated[int, Field(ge=1, le=10)] = 6,
    ) -> str:
        """The shortest chain of calls/imports/inheritance between two symbols, each step with its evidence."""
        scope = access.repos(ctx, repo)
        result = _engine_call(lambda: engine().graph_path(source, target, repo=scope, max_depth=max_depth))
        if not result["found"]:
            return f"No path between {source} and {target} within {max_depth} hops."
        start = result["from"]
        lines = [f"{start['name_path']} {_cite(start)} ({result['direction']})"]
        lines += [f"  -> {hop['name_path']} {_cite(hop)}  [{hop['edge']} at {hop['evidence']}]"
                  for hop in result["path"]]
        return "\n".join(lines)

    @server.tool(structured_output=False, annotations=WRITES_INDEX)
    async def index_repository(
        path: Annotated[str, Field(description="Directory to index, on the machine that runs Lode.")],
        ctx: Context,
        repo: Annotated[str | None, Field(description="Repository name; the directory's name by default.")] = None,
    ) -> str:
        """Index (or incrementally re-index) a directory; reports progress. Embeddings fill in afterwards."""
        last = [0.0]

        def on_progress(progress: Any) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                anyio.from_thread.run(ctx.report_progress, progress.files_done, progress.files_total or None,
                                      f"{progress.files_done} files, {progress.chunks} chunks")

        def run() -> tuple[Any, dict[str, int]]:
            lode = engine()
            root, name, within = access.index_target(ctx, lode, path, repo)
            report = lode.index(root, name, on_progress, within=within)
            embeddings = {"done": 0, "pending": 0, "failed": 0}
            if lode.settings.embedder != "none" and report.chunks:
                embeddings = lode.embedding_counts(report.repo)
                if embeddings["pending"]:
                    background.spawn_backfill(lode.settings, report.repo)  # as `lode index` does
            return report, embeddings

        report, embeddings = await anyio.to_thread.run_sync(lambda: _engine_call(run))
        text = (f"Indexed {report.repo}: {report.files_indexed} files indexed, {report.files_unchanged} unchanged, "
                f"{report.files_deleted} deleted, {report.files_skipped} skipped; {report.chunks} chunks in "
                f"{report.seconds:.1f}s. Embeddings: {embeddings['done']} done, {embeddings['pending']} pending, "
                f"{embeddings['failed']} failed.")
        return "\n".join([text, *(f"warning: {w}" for w in report.warnings)])

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def index_status(ctx: Context, repo: Repo = None) -> str:
        """Indexed repositories: files, chunks, languages, embeddings, last run and skipped files by reason."""
        scope = access.repos(ctx, repo)
        result = _engine_call(lambda: engine().status(scope))
        if not result["repos"]:
            return "No repositories are indexed yet; call index_repository."
        lines = []
        for r in result["repos"]:
            emb, run = r["embeddings"], r["last_run"] or {}
            languages = ", ".join(f"{lang} {n}" for lang, n in r["languages"].items())
            skipped = ", ".join(f"{reason} {n}" for reason, n in r["skipped"].items()) or "none"
            lines.append(f"{r['repo']}: {r['root']} — {r['files']} files ({languages}), {r['chunks']} chunks, "
                         f"generation {r['generation']}, updated {r['updated_at']}")
            lines.append(f"    embeddings ({r['embedding_model'] or 'no model'}): {emb['done']} done, "
                         f"{emb['pending']} pending, {emb['failed']} failed; last run: {run.get('status', 'none')}; "
                         f"skipped: {skipped}")
        return "\n".join(lines)

    @server.tool(structured_output=False, annotations=READ_ONLY)
    def get_context(
        ctx: Context,
        query: Annotated[str | None, Field(description="What you are looking for (or pass symbol).")] = None,
        symbol: Annotated[str | None, Field(description="A symbol to centre on (or pass query).")] = None,
        repo: Repo = None,
        budget_tokens: Annotated[int, Field(ge=MIN_BUDGET, le=MAX_BUDGET,
                                            description="The answer stays within this many tokens (estimated).")] = 4000,
        mode: Annotated[Literal["hybrid", "lexical", "semantic"], Field(description="Search mode for query.")] = "hybrid",
    ) -> str:
        """Code to read before a change, within a token budget: the definitions found, then their callers,
        callees and related tests, each cited path:start-end; what did not fit is listed at the end."""
        scope = access.repos(ctx, repo)
        return _engine_call(lambda: ContextBuilder(engine()).build(query, symbol, scope, budget_tokens, mode))

    return server


# ---- transports -------------------------------------------------------------------------------------------


def transport_security() -> TransportSecuritySettings:
    """The SDK's own Host/Origin check is off: the REST app's HostGuard (lode/api/hosts.py) applies the same
    allow-list to every route, /mcp included, so one place decides which names and origins are accepted."""
    return TransportSecuritySettings(enable_dns_rebinding_protection=False)


def mount(app: Starlette, path: str = "/mcp") -> MCPServer:
    """Serve the MCP server at `path` of the REST app, over the engine its lifespan puts in `app.state.lode`,
    with the session manager running inside that lifespan and the REST rules for API keys (HttpAccess)."""
    server = create_server(lambda: app.state.lode, HttpAccess())
    http_app = server.streamable_http_app(streamable_http_path=path, transport_security=transport_security())
    app.router.routes[0:0] = http_app.routes  # ahead of any catch-all mount
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(asgi_app: ASGIApp) -> AsyncIterator[Any]:
        async with server.session_manager.run():
            async with outer(asgi_app) as state:
                yield state

    app.router.lifespan_context = lifespan
    return server


def run_stdio(settings: Settings | None = None) -> None:
    """`lode mcp`: serve over stdin/stdout. The SDK points fd 1 at stderr while serving, so nothing but MCP
    messages reaches stdout, whatever a library or child process prints."""
    with Lode(settings) as lode:
        anyio.run(create_server(lambda: lode).run_stdio_async)
