"""The MCP server: Lode's search and code graph as tools for coding agents.

`lode mcp` serves it over stdio; the REST app mounts the same server at /mcp over streamable HTTP (`mount`).
Every tool calls a service of the shared engine (`lode.engine.Lode`, lode/services), answers in compact text that
cites `path:start-end`, and turns bad input into an MCP tool error (`is_error`) with the engine's one-line message.
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import ASGIApp

from lode import __version__
from lode.api import models
from lode.api.models import Doc
from lode.config import Settings
from lode.engine import Lode
from lode.errors import LodeError
from lode.languages import LANGUAGES
from lode.model import CHUNK_KINDS, Mode
from lode.search.pattern import MAX_PATTERN_CHARS
from lode.services.base import RepoScope
from lode.services.context import DEFAULT_BUDGET, MAX_BUDGET, MIN_BUDGET
from lode.services.files import LAST_LINE, MAX_GREP_MATCHES, MAX_OUTLINE
from lode.services.indexing import IndexOutcome, Schedule, run_index
from lode.services.search import MAX_K

INSTRUCTIONS = (
    "Lode indexes code repositories. Use search_code to find where something is done, search_pattern for exact "
    "text or a regex, find_symbol for a definition by name, get_symbols_overview for the definitions of a file or "
    "folder, read_code for lines of a file, get_callers/get_callees/find_path to walk the call graph, and "
    "get_context for a token-budgeted bundle (definition, callers, callees, tests) to read before editing. "
    "Results cite path:start-end relative to the repository root. index_status lists the repositories; "
    "index_repository indexes a directory and clear_index drops one's index."
)

ALL_REPOS = "*"
Repo = Annotated[str | None, Field(max_length=128, description=(
    "Repository name (index_status lists them). When omitted: the server's default repository (`lode mcp "
    "--repo`, or the one holding its working directory), else all; '*' for all."))]
if TYPE_CHECKING:  # the schemas list the values; to mypy they are strings
    Language: TypeAlias = str
    Kind: TypeAlias = str
    ModeName: TypeAlias = str
else:
    Language = Literal[tuple(LANGUAGES)]
    Kind = Literal[CHUNK_KINDS]
    ModeName = Literal[tuple(mode.value for mode in Mode)]  # the values inline, as the other enums of the tools
SearchMode = Annotated[ModeName, Field(description="hybrid (words and meaning), lexical (BM25 only) or "
                                                   "semantic (embeddings only).")]
Symbol = Annotated[str, Field(description="A qualified name (pkg.mod.Class.method), a suffix (Class.method) or a "
                                          "unique short name.")]
Depth = Annotated[int, Field(ge=1, le=10, description="Hops to follow, 1-10.")]
MinConfidence = Annotated[float, Field(ge=0, le=1, description="Drop edges resolved with less confidence (0-1).")]

READ_ONLY = ToolAnnotations(read_only_hint=True)
WRITES_INDEX = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
DROPS_INDEX = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=False)
MAX_READ_LINES = 1000  # lines in one read_code answer
T = TypeVar("T")


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
    lines = [(f"{result['direction']} of {start['name_path']} {_cite(start)} (depth {result['depth']}): "
              f"{len(result['results'])} found")]
    lines += [_hop_line(hop) for hop in result["results"]]
    if result["truncated"]:
        lines.append("(truncated: lower depth or raise min_confidence)")
    return "\n".join(lines)


def _result_head(result: dict[str, Any], counted: str) -> str:
    """`N hits for "query" (mode)`, and the legs that could not run."""
    head = f"{counted} for {_shown_query(result['query'])} ({result['mode']})"
    if result["degraded"]:
        head += f"; legs not used: {', '.join(result['degraded'])}"
    return head


def _search_text(result: dict[str, Any]) -> str:
    hits = result["hits"]
    lines = [_result_head(result, f"{len(hits)} hits")]
    for number, hit in enumerate(hits, start=1):
        name = hit["name_path"] or hit["name"] or ""
        lines.append(f"{number}. {_cite(hit)}  {hit['kind']} {name}  [repo {hit['repo']}, {hit['language']}, "
                     f"score {hit['score']:.3f}]")
        lines.append(_indent(hit["snippet"]))
    return "\n".join(lines)


def _files_text(result: dict[str, Any]) -> str:
    found = result["files"]
    lines = [_result_head(result, f"{len(found)} files")]
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

# ---- the server -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultRepo:
    """The repository a call without `repo` uses: the one `lode mcp --repo` names, else the indexed repository
    whose root holds the server's working directory (the deepest), else none: all repositories."""

    name: str | None = None
    directory: Path | None = None

    def resolve(self, lode: Lode) -> str | None:
        if self.name is not None or self.directory is None:
            return self.name
        roots = {r["repo"]: Path(r["root"]) for r in lode.repos.all()}
        holding = [name for name, root in roots.items() if root == self.directory or root in self.directory.parents]
        return max(holding, key=lambda name: len(roots[name].parts), default=None)


class Access:
    """What a caller may touch. Over stdio the caller is the local user: every repository and directory, with the
    server's default repository for calls that name none."""

    def __init__(self, default: DefaultRepo | None = None) -> None:
        self.default = default or DefaultRepo()

    def repos(self, ctx: Context, lode: Lode, repo: str | None) -> RepoScope:
        _check_text_arguments(repo=repo)
        if repo == ALL_REPOS:
            return None
        return repo if repo is not None else self.default.resolve(lode)

    def one_repo(self, ctx: Context, lode: Lode, repo: str | None) -> str:
        """A single repository: the one named, the default, or the only one the caller can see."""
        scope = self.repos(ctx, lode, repo)
        if isinstance(scope, str):
            return scope
        visible = [r["repo"] for r in lode.repos.all() if scope is None or r["repo"] in scope]
        if len(visible) == 1:
            return visible[0]
        raise ToolError(f"pass repo: {len(visible)} repositories are indexed; index_status lists them"
                        if visible else "no repositories are indexed yet; call index_repository")

    def index_target(self, ctx: Context, lode: Lode, path: str, repo: str | None) -> tuple[Any, str, Any]:
        """(root, repository name, the directory the run is confined to or None)."""
        _check_text_arguments(path=path, repo=repo)
        return (*lode.indexing.target(path, repo), None)

    def remove(self, ctx: Context, lode: Lode, repo: str) -> None:
        _check_text_arguments(repo=repo)
        lode.repos.remove(repo)


def _http_request(ctx: Context) -> Request:
    request = ctx.request_context.request
    if request is None:  # HttpAccess serves the HTTP transport, where every tool call comes with its request
        raise RuntimeError("a tool call over HTTP without its request")
    return request


class HttpAccess(Access):
    """Over HTTP, the REST rules for the request's API key: its repository scope, and LODE_ALLOWED_ROOTS for
    the directories it may index (lode/api/security.py). There is no default repository."""

    def repos(self, ctx: Context, lode: Lode, repo: str | None) -> RepoScope:
        from lode.api.security import repo_scope

        _check_text_arguments(repo=repo)
        return _http_rule(lambda: repo_scope(_http_request(ctx), None if repo == ALL_REPOS else repo))

    def index_target(self, ctx: Context, lode: Lode, path: str, repo: str | None) -> tuple[Any, str, Any]:
        from lode.api.keys import ApiKeys
        from lode.api.security import check_index_path, require_repo

        _check_text_arguments(path=path, repo=repo)
        request = _http_request(ctx)
        if repo is not None:  # the key's scope first, as POST /v1/index does
            _http_rule(lambda: require_repo(request, repo))
        open_mode = request.app.state.loopback and not ApiKeys(lode.db).any()
        checked, within = _http_rule(lambda: check_index_path(path, lode.settings, open_mode))
        root, name = lode.indexing.target(checked, repo,
                                          authorize=lambda name: _http_rule(lambda: require_repo(request, name)))
        return root, name, within

    def remove(self, ctx: Context, lode: Lode, repo: str) -> None:
        from lode.api.routes import remove_repository

        _check_text_arguments(repo=repo)
        _http_rule(lambda: remove_repository(_http_request(ctx), lode, repo))


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
    """Run one engine call; Lode's own errors (bad input, unknown names, timeouts) become tool errors, with the
    remedy an agent can follow (a tool, not a command)."""
    try:
        return action()
    except LodeError as exc:
        raise ToolError(exc.tool_message) from exc


# ---- argument errors --------------------------------------------------------------------------------------


def _allowed(schema: dict[str, Any]) -> str:
    """What a parameter's JSON schema accepts, in words."""
    options = schema.get("anyOf", [schema])
    words = []
    for option in options:
        kind = option.get("type")
        if "enum" in option:
            words.append("one of " + ", ".join(map(str, option["enum"])))
        elif kind in ("integer", "number"):
            noun = "an integer" if kind == "integer" else "a number"
            low, high = option.get("minimum", option.get("exclusiveMinimum")), option.get("maximum")
            words.append(f"{noun} from {low} to {high}" if low is not None and high is not None
                         else f"{noun} of at least {low}" if low is not None else noun)
        elif kind == "string":
            low, high = option.get("minLength"), option.get("maxLength")
            words.append(f"a string of {low or 0} to {high} characters" if high is not None else "a string")
        elif kind == "boolean":
            words.append("true or false")
        elif kind == "null":
            words.append("null (or left out)")
        elif kind:
            words.append(f"a{'n' if kind[0] in 'aeiou' else ''} {kind}")
    return " or ".join(words) or "a valid value"


def argument_error(tool: str, parameters: dict[str, Any], error: ValidationError) -> str:
    """One line naming the first bad argument and what it accepts (instead of pydantic's multi-line dump)."""
    first = error.errors()[0]
    argument = str(first["loc"][0]) if first["loc"] else "arguments"
    if first["type"] == "missing":
        return f"Error executing tool {tool}: the argument {argument!r} is required"
    got = repr(first.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    allowed = _allowed(parameters.get("properties", {}).get(argument, {}))
    return f"Error executing tool {tool}: the argument {argument!r} must be {allowed}, not {got}"


class LodeServer(MCPServer):
    """The SDK's server, with arguments checked as an agent needs: names outside the schema are refused, and a
    value the schema does not accept is reported in one line (argument_error)."""

    def forbid_unknown_arguments(self) -> None:
        for tool in self._tool_manager.list_tools():  # the published schemas say so too
            tool.parameters["additionalProperties"] = False

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context | None = None) -> Any:
        tool = self._tool_manager.get_tool(name)
        if tool is None:
            return await super().call_tool(name, arguments, context)
        known = tool.parameters.get("properties", {})
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            raise ToolError(f"Error executing tool {name}: unknown argument{'s' if len(unknown) > 1 else ''} "
                            f"{', '.join(map(repr, unknown))}; {name} takes {', '.join(known) or 'none'}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_error(name, tool.parameters, exc.__cause__)) from exc.__cause__
            raise


# ---- structured output ------------------------------------------------------------------------------------


class CodeOut(Doc):
    repo: str
    path: str
    start_line: int
    end_line: int
    origin: Literal["file", "index"]
    stale: str | None
    lines: list[str]
    more: bool = Field(description="True when the file goes on past end_line.")


class IndexOut(Doc):
    repo: str
    files_indexed: int
    files_unchanged: int
    files_deleted: int
    files_skipped: int
    chunks: int
    seconds: float
    embeddings: dict[str, int]
    warnings: list[str]


class ClearedOut(Doc):
    removed: str


def _answer(text: str, model: type[Doc], data: dict[str, Any]) -> CallToolResult:
    """The text an agent reads, with the same answer as JSON (structuredContent) for programs."""
    structured = model.model_validate(data).model_dump(mode="json", by_alias=True)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def create_server(get_lode: Callable[[], Lode], access: Access | None = None) -> MCPServer:
    """The MCP server over the engine that `get_lode` returns (the REST app's own, when mounted there)."""
    server = LodeServer("lode", instructions=INSTRUCTIONS, version=__version__, log_level="WARNING")
    access = access or Access()
    database_lock = threading.Lock()

    def engine() -> Lode:
        lode = get_lode()
        with database_lock:  # tools run in worker threads: start the database once
            _ = lode.db
        return lode

    @server.tool(title="Search code", annotations=READ_ONLY)
    def search_code(
        query: Annotated[str, Field(description="What the code does, or words and names in it.")],
        ctx: Context,
        repo: Repo = None,
        mode: SearchMode = Mode.HYBRID,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="Number of hits.")] = 10,
        lang: Annotated[Language | None, Field(description="Only this language.")] = None,
        path: Annotated[str | None, Field(min_length=1, max_length=500,
                                          description="Only files matching this glob, e.g. src/**/*.py.")] = None,
        kind: Annotated[Kind | None, Field(description="Only this chunk kind.")] = None,
        files: Annotated[bool, Field(description="Rank files instead (k of them), each with its best hits: "
                                                 "which files to open or edit.")] = False,
    ) -> Annotated[CallToolResult, models.SearchOut]:
        """Search the indexed code (BM25 + embeddings, then priors: definitions first, tests last). The query may
        be a name, a question or a whole issue with its traceback (up to 64 KiB). Each hit: path:start-end, kind,
        qualified name, snippet; with files=true, files best first with their best hits."""
        _check_text_arguments(path=path)
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.search.query(
            query, repo=scope, mode=mode, k=k, languages=(lang,) if lang else (), path=path,
            kinds=(kind,) if kind else (), group="files" if files else "chunks"))
        text = _files_text(result) if files else _search_text(result)
        return _answer(text, models.SearchOut, result | {"offset": 0, "next_offset": None})

    @server.tool(title="Find a symbol's definitions", annotations=READ_ONLY)
    def find_symbol(
        name: Annotated[str, Field(description="Exact name, qualified name or suffix such as Class.method.")],
        ctx: Context,
        repo: Repo = None,
        limit: Annotated[int, Field(ge=1, le=MAX_K, description="Definitions at most.")] = 20,
    ) -> Annotated[CallToolResult, models.SymbolsOut]:
        """Find definitions by name: path:start-end, kind, signature and docstring's first line."""
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.search.symbols(name, repo=scope, limit=limit))
        if not result["symbols"]:
            hint = f" Close names: {', '.join(result['suggestions'])}." if result["suggestions"] else ""
            return _answer(f"No symbol named {name!r}.{hint}", models.SymbolsOut, result)
        lines = [f"{len(result['symbols'])} definitions of {name!r}"]
        for sym in result["symbols"]:
            lines.append(f"{_cite(sym)}  {sym['kind']} {sym['name_path'] or sym['name']}  [repo {sym['repo']}]")
            if sym["signature"]:
                lines.append(f"    {sym['signature']}")
            if sym.get("docstring"):
                lines.append(f"    \"{sym['docstring'].strip().splitlines()[0]}\"")
        return _answer("\n".join(lines), models.SymbolsOut, result)

    @server.tool(title="Outline a file or folder", annotations=READ_ONLY)
    def get_symbols_overview(
        ctx: Context,
        path: Annotated[str, Field(max_length=4096, description="A file or folder relative to the repository "
                                                                 "root; '' for the whole repository.")] = "",
        repo: Repo = None,
        limit: Annotated[int, Field(ge=1, le=MAX_OUTLINE, description="Definitions at most.")] = 300,
    ) -> Annotated[CallToolResult, models.OutlineOut]:
        """The definitions in a file or below a folder, nested as in the code, each with its kind, lines and
        signature: a map of the code to read before opening files."""
        _check_text_arguments(path=path)
        lode = engine()
        name = access.one_repo(ctx, lode, repo)
        result = _engine_call(lambda: lode.files.outline(name, path, limit))
        return _answer(_outline_text(result), models.OutlineOut, result)

    @server.tool(title="Read code", annotations=READ_ONLY)
    def read_code(
        path: Annotated[str, Field(min_length=1, max_length=4096,
                                   description="An indexed file, relative to the repository root.")],
        ctx: Context,
        start: Annotated[int, Field(ge=1, le=LAST_LINE, description="First line (1-based).")] = 1,
        end: Annotated[int | None, Field(ge=1, le=LAST_LINE,
                                         description=f"Last line, inclusive; at most {MAX_READ_LINES} lines are "
                                                     "returned.")] = None,
        repo: Repo = None,
    ) -> Annotated[CallToolResult, CodeOut]:
        """Lines start..end of an indexed file, numbered, as the index cites them (path:line). Served from the
        file while it is as indexed, else from the index's own text of it (said so in the answer)."""
        _check_text_arguments(path=path)
        lode = engine()
        name = access.one_repo(ctx, lode, repo)
        last = start + MAX_READ_LINES - 1 if end is None else min(end, start + MAX_READ_LINES - 1)
        result = _engine_call(lambda: lode.files.lines(name, path, start, last + 1))
        more = len(result["lines"]) > last - start + 1
        if more:
            result["lines"] = result["lines"][:last - start + 1]
            result["end_line"] = last
        more = more and (end is None or end > last)
        return _answer(_code_text(result, more), CodeOut, result | {"more": more})

    @server.tool(title="Search by exact text or regex", annotations=READ_ONLY)
    def search_pattern(
        pattern: Annotated[str, Field(min_length=1, max_length=MAX_PATTERN_CHARS,
                                      description="Text to find, or an RE2 regular expression with regex=true.")],
        ctx: Context,
        regex: Annotated[bool, Field(description="Treat the pattern as a regular expression (RE2 syntax).")] = False,
        ignore_case: Annotated[bool, Field(description="Match regardless of case.")] = False,
        repo: Repo = None,
        path: Annotated[str | None, Field(min_length=1, max_length=500,
                                          description="Only files matching this glob, e.g. src/**/*.py.")] = None,
        lang: Annotated[Language | None, Field(description="Only this language.")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_GREP_MATCHES, description="Matching lines at most.")] = 100,
    ) -> Annotated[CallToolResult, models.PatternOut]:
        """Every line of the indexed files that contains the text (or matches the regex), as grep would: each as
        path:line:column with the line. Files changed since indexing are listed, not searched."""
        _check_text_arguments(path=path)
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.files.grep(pattern, repo=scope, regex=regex, ignore_case=ignore_case,
                                                      path=path, languages=(lang,) if lang else (), limit=limit))
        return _answer(_pattern_text(result), models.PatternOut, result)

    @server.tool(title="Callers of a symbol", annotations=READ_ONLY)
    def get_callers(symbol: Symbol, ctx: Context, repo: Repo = None, depth: Depth = 1,
                    min_confidence: MinConfidence = 0.0) -> Annotated[CallToolResult, models.NeighboursOut]:
        """Who calls a symbol, up to `depth` hops: each caller with path:start-end and the call site."""
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.graph.neighbours(
            "callers", symbol, repo=scope, depth=depth, min_confidence=min_confidence))
        return _answer(_neighbours_text(result), models.NeighboursOut, result)

    @server.tool(title="Callees of a symbol", annotations=READ_ONLY)
    def get_callees(symbol: Symbol, ctx: Context, repo: Repo = None, depth: Depth = 1,
                    min_confidence: MinConfidence = 0.0) -> Annotated[CallToolResult, models.NeighboursOut]:
        """What a symbol calls, up to `depth` hops; calls outside the repositories show as (external)."""
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.graph.neighbours(
            "callees", symbol, repo=scope, depth=depth, min_confidence=min_confidence))
        return _answer(_neighbours_text(result), models.NeighboursOut, result)

    @server.tool(title="Path between two symbols", annotations=READ_ONLY)
    def find_path(
        source: Annotated[str, Field(description="From this symbol...")],
        target: Annotated[str, Field(description="...to this one (either direction is searched).")],
        ctx: Context,
        repo: Repo = None,
        max_depth: Annotated[int, Field(ge=1, le=10, description="Hops at most.")] = 6,
    ) -> Annotated[CallToolResult, models.PathOut]:
        """The shortest chain of calls/imports/inheritance between two symbols, each step with its evidence."""
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.graph.path(source, target, repo=scope, max_depth=max_depth))
        if not result["found"]:
            return _answer(f"No path between {source} and {target} within {max_depth} hops.", models.PathOut,
                           result)
        start = result["from"] if result["direction"] == "forward" else result["to"]  # where the hops start
        lines = [f"{start['name_path']} {_cite(start)} ({result['direction']})"]
        lines += [f"  -> {hop['name_path']} {_cite(hop)}  [{hop['edge']} at {hop['evidence']}]"
                  for hop in result["path"]]
        return _answer("\n".join(lines), models.PathOut, result)

    # -- find_references (graph helper, issue 18)
    @server.tool(title="Every use of a symbol", annotations=READ_ONLY)
    def find_references(
        symbol: Symbol, ctx: Context, repo: Repo = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="Uses at most.")] = 200,
    ) -> Annotated[CallToolResult, models.RefsOut]:
        """Every use of a symbol, by file and line, each with its kind: calls, imports, inherits (base classes),
        annotates (type annotations) and decorates. get_callers lists only calls, one line per caller."""
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        result = _engine_call(lambda: lode.graph.refs(symbol, repo=scope, limit=limit))
        start = result["symbol"]
        lines = [f"uses of {start['name_path']} {_cite(start)}: {len(result['refs'])} found"]
        lines += [f"{use['evidence']}  {use['kind']} in {use['name_path']}" for use in result["refs"]]
        if result["truncated"]:
            lines.append("(truncated: raise limit)")
        return _answer("\n".join(lines), models.RefsOut, result)

    @server.tool(title="Index a directory", annotations=WRITES_INDEX)
    async def index_repository(
        path: Annotated[str, Field(description="Directory to index, on the machine that runs Lode.")],
        ctx: Context,
        repo: Annotated[str | None, Field(description="Repository name; the directory's name by default.")] = None,
    ) -> Annotated[CallToolResult, IndexOut]:
        """Index (or incrementally re-index) a directory; reports progress. Embeddings fill in afterwards."""
        last = [0.0]

        def on_progress(progress: Any) -> None:
            now = time.monotonic()
            if now - last[0] >= 0.5:
                last[0] = now
                anyio.from_thread.run(ctx.report_progress, progress.files_done, progress.files_total or None,
                                      f"{progress.files_done} files, {progress.chunks} chunks")

        def run() -> IndexOutcome:
            lode = engine()
            root, name, within = access.index_target(ctx, lode, path, repo)
            # the graph within the run, so that the graph tools answer at once; the embeddings as `lode index` does
            return run_index(lode, root, name, graph=Schedule.INLINE, embeddings=Schedule.DETACHED,
                             within=within, on_progress=on_progress)

        outcome = await anyio.to_thread.run_sync(lambda: _engine_call(run))
        report, embeddings = outcome.report, asdict(outcome.embeddings)
        text = (f"Indexed {report.repo}: {report.files_indexed} files indexed, {report.files_unchanged} unchanged, "
                f"{report.files_deleted} deleted, {report.files_skipped} skipped; {report.chunks} chunks in "
                f"{report.seconds:.1f}s. Embeddings: {embeddings['done']} done, {embeddings['pending']} pending, "
                f"{embeddings['failed']} failed.")
        data = {"repo": report.repo, "files_indexed": report.files_indexed, "files_unchanged": report.files_unchanged,
                "files_deleted": report.files_deleted, "files_skipped": report.files_skipped,
                "chunks": report.chunks, "seconds": report.seconds, "embeddings": embeddings,
                "warnings": list(report.warnings)}
        return _answer("\n".join([text, *(f"warning: {w}" for w in report.warnings)]), IndexOut, data)

    @server.tool(title="Drop a repository's index", annotations=DROPS_INDEX)
    def clear_index(
        repo: Annotated[str, Field(min_length=1, max_length=128,
                                   description="The repository whose index to drop (never a default: name it).")],
        ctx: Context,
    ) -> Annotated[CallToolResult, ClearedOut]:
        """Delete a repository's index (chunks, symbols, graph, embeddings) in one transaction; the files on
        disk are untouched and index_repository rebuilds it."""
        lode = engine()
        _engine_call(lambda: access.remove(ctx, lode, repo))
        return _answer(f"Removed the index of {repo}.", ClearedOut, {"removed": repo})

    @server.tool(title="Index status", annotations=READ_ONLY)
    def index_status(ctx: Context, repo: Repo = None) -> Annotated[CallToolResult, models.StatusOut]:
        """Indexed repositories: files, chunks, languages, embeddings, last run and skipped files by reason.
        Without repo it lists every repository (the default one is marked)."""
        lode = engine()
        scope = access.repos(ctx, lode, repo if repo is not None else ALL_REPOS)
        result = _engine_call(lambda: lode.repos.status(scope))
        if not result["repos"]:
            return _answer("No repositories are indexed yet; call index_repository.", models.StatusOut, result)
        default = access.repos(ctx, lode, None) if repo is None else None
        lines = []
        for r in result["repos"]:
            emb, run = r["embeddings"], r["last_run"] or {}
            languages = ", ".join(f"{lang} {n}" for lang, n in r["languages"].items())
            skipped = ", ".join(f"{reason} {n}" for reason, n in r["skipped"].items()) or "none"
            marker = " (default)" if r["repo"] == default else ""
            lines.append(f"{r['repo']}{marker}: {r['root']} — {r['files']} files ({languages}), {r['chunks']} "
                         f"chunks, generation {r['generation']}, updated {r['updated_at']}")
            lines.append(f"    embeddings ({r['embedding_model'] or 'no model'}): {emb['done']} done, "
                         f"{emb['pending']} pending, {emb['failed']} failed; last run: {run.get('status', 'none')}; "
                         f"skipped: {skipped}")
        return _answer("\n".join(lines), models.StatusOut, result)

    @server.tool(title="Context for a change", annotations=READ_ONLY)
    def get_context(
        ctx: Context,
        query: Annotated[str | None, Field(description="What you are looking for (or pass symbol).")] = None,
        symbol: Annotated[str | None, Field(description="A symbol to centre on (or pass query).")] = None,
        repo: Repo = None,
        budget_tokens: Annotated[int, Field(ge=MIN_BUDGET, le=MAX_BUDGET,
                                            description="The answer stays within this many tokens (estimated).")
                                 ] = DEFAULT_BUDGET,
        mode: SearchMode = Mode.HYBRID,
    ) -> Annotated[CallToolResult, models.ContextOut]:
        """Code to read before a change, within a token budget: the definitions found, then their callers,
        callees and related tests, each cited path:start-end; what did not fit is listed at the end (all of it
        in the structured output's `dropped`)."""
        lode = engine()
        scope = access.repos(ctx, lode, repo)
        packed = _engine_call(lambda: lode.context.build(query, symbol, repo=scope, budget=budget_tokens, mode=mode))
        return _answer(packed["text"], models.ContextOut, packed)

    server.forbid_unknown_arguments()
    return server


def _outline_text(result: dict[str, Any]) -> str:
    symbols = result["symbols"]
    where = result["path"] or "the repository"
    lines = [f"{len(symbols)} definitions in {where} ({result['files']} files, repo {result['repo']})"
             + ("; truncated: raise limit or outline a narrower path" if result["truncated"] else "")]
    current: str | None = None
    open_ends: list[int] = []  # the enclosing definitions' last lines give the nesting
    for sym in symbols:
        if sym["path"] != current:
            current, open_ends = sym["path"], []
            lines.append(f"{current}:")
        while open_ends and sym["start_line"] > open_ends[-1]:
            open_ends.pop()
        signature = f"  {sym['signature']}" if sym["signature"] else ""
        lines.append(f"{'  ' * (len(open_ends) + 1)}{sym['start_line']}-{sym['end_line']} {sym['kind']} "
                     f"{sym['name']}{signature}")
        open_ends.append(sym["end_line"])
    return "\n".join(lines)


def _code_text(result: dict[str, Any], more: bool) -> str:
    head = f"{result['path']}:{result['start_line']}-{result['end_line']} (repo {result['repo']})"
    if result["origin"] == "index":
        head += f"; from the index's text, not the file ({result['stale']}): nested bodies are elided"
    width = len(str(result["end_line"]))
    body = [f"{number:>{width}}  {line}" for number, line in enumerate(result["lines"], start=result["start_line"])]
    tail = [f"(more lines follow; call read_code with start={result['end_line'] + 1})"] if more else []
    return "\n".join([head, *body, *tail])


def _pattern_text(result: dict[str, Any]) -> str:
    matches = result["matches"]
    head = (f"{len(matches)} matching lines for {result['pattern']!r} in {result['files_searched']} of "
            f"{result['files_total']} files")
    notes = []
    if result["truncated"]:
        notes.append("stopped at the limit")
    if result["timed_out"]:
        notes.append("stopped at the time limit: narrow it with path or lang")
    if result["stale"]:
        shown = ", ".join(result["stale"][:10]) + (" ..." if len(result["stale"]) > 10 else "")
        notes.append(f"{len(result['stale'])} changed since indexing, not searched (index_repository refreshes "
                     f"them): {shown}")
    lines = [head + (f"; {'; '.join(notes)}" if notes else "")]
    repos = {m["repo"] for m in matches}
    for m in matches:
        prefix = f"[{m['repo']}] " if len(repos) > 1 else ""
        lines.append(f"{prefix}{m['path']}:{m['line']}:{m['column']}: {m['text']}")
    return "\n".join(lines)


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


def run_stdio(settings: Settings | None = None, repo: str | None = None) -> None:
    """`lode mcp [--repo NAME]`: serve over stdin/stdout, with `repo` (else the repository holding the working
    directory) as the default repository. The SDK points fd 1 at stderr while serving, so nothing but MCP
    messages reaches stdout, whatever a library or child process prints."""
    default = DefaultRepo(repo) if repo is not None else DefaultRepo(directory=Path.cwd().resolve())
    with Lode(settings) as lode:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, functools.partial(_exit_now, lode))
        anyio.run(create_server(lambda: lode, Access(default)).run_stdio_async)


def _exit_now(lode: Lode, signum: int, frame: object) -> None:
    """SIGINT or SIGTERM: close the engine, run the exit hooks (they take this process off the embedded
    PostgreSQL's holder list, lode/store/embedded.py) and exit at once. The SDK reads stdin on a worker thread
    that no cancel interrupts, so while the client keeps the pipe open an orderly shutdown would wait forever."""
    lode.close()
    atexit._run_exitfuncs()
    os._exit(0)
