"""Request and response documents of the REST API. Responses are the CLI's `--json` documents; declaring them
makes /openapi.json checkable (tests/test_api_schema.py). Extra keys are allowed: the engine may add fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.responses import JSONResponse

from lode.model import Mode

REPO_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"


class Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(Doc):
    location: str = Field(description="The invalid input: where (query, path, body) and its name.",
                          examples=["query.k"])
    message: str = Field(examples=["Input should be less than or equal to 200"])


class ErrorBody(Doc):
    message: str = Field(description="One line saying what went wrong.",
                         examples=["no repository named 'shop'; `lode repos` lists them"])
    code: str = Field(description="Stable per status: bad_request, unauthorized, forbidden, not_found, conflict, "
                                  "payload_too_large, misdirected_request, validation_error, rate_limited, "
                                  "unavailable.", examples=["not_found"])
    request_id: str | None = Field(default=None, description="As in the X-Request-ID header, for the logs.")
    details: list[ErrorDetail] | None = Field(default=None, description="With 422: one entry per invalid input.")


class ErrorOut(Doc):
    error: ErrorBody


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The error document, for middleware that answers before the app's exception handlers."""
    return JSONResponse({"error": {"message": message, "code": code}}, status_code=status, headers=headers)


# ---- repositories and status ------------------------------------------------------------------------------

class Repository(Doc):
    repo: str
    root: str
    generation: int
    chunks: int
    created_at: str
    updated_at: str


class RepositoriesOut(Doc):
    repositories: list[Repository]


class Staleness(Doc):
    checked: int = Field(description="Indexed files compared with the disk.")
    changed: int = Field(description="Files whose size or mtime differ from the index.")
    missing: int = Field(description="Indexed files no longer on disk.")
    complete: bool = Field(description="False when the check stopped at its file or time bound.")
    examples: list[str] = Field(description="A few changed or missing paths.")


class GraphStatus(Doc):
    enabled: bool = Field(description="LODE_GRAPH: false builds no graph and graph queries refuse.")
    nodes: int = Field(description="Graph nodes of the repository: definitions and modules.")
    pending_files: int = Field(description="Files whose graph resolution is still queued (it runs in the background "
                                           "after a large index run, and before any graph query).")


class RepositoryStatus(Repository):
    files: int
    files_with_fallback: int
    languages: dict[str, int]
    skipped: dict[str, int]
    empty: bool
    last_run: dict[str, Any] | None
    embeddings: dict[str, int]
    embedding_model: str | None
    switching_to: str | None
    graph: GraphStatus
    staleness: Staleness | None = None


class RepositoryOut(Doc):
    repository: RepositoryStatus


class SourceOut(Doc):
    repo: str
    path: str
    absolute_path: str = Field(description="The repository's root joined with the path.")
    start_line: int
    end_line: int = Field(description="The last line given: start_line - 1 when there are none.")
    origin: Literal["file", "index"] = Field(description="file: the file's own lines (its bytes are those "
                                                         "indexed); index: the indexed text of the chunks in the "
                                                         "range, whose nested bodies are elided (see stale).")
    stale: str | None = Field(description="With origin index: why the file was not used (changed, gone).")
    lines: list[str]
    editor_url: str = Field(description="Opens the file at start_line in an editor (LODE_EDITOR_URL).")


class OutlineSymbol(Doc):
    """A definition: where it is, its kind and its signature (the declaration line, when the language has one)."""

    path: str
    start_line: int
    end_line: int
    kind: str
    name: str
    name_path: str | None
    signature: str | None


class OutlineOut(Doc):
    repo: str
    path: str = Field(description="The file or folder outlined ('' for the whole repository).")
    files: int = Field(description="Indexed files at or below the path.")
    truncated: bool
    symbols: list[OutlineSymbol]


class RemovedOut(Doc):
    removed: str


class StatusOut(Doc):
    repos: list[RepositoryStatus]


# ---- index jobs -------------------------------------------------------------------------------------------

class IndexRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"path": "/srv/code/shop",
                                                                               "repo": "shop"}]})

    path: str = Field(min_length=1, max_length=4096, description="A directory under one of LODE_ALLOWED_ROOTS.")
    repo: str | None = Field(default=None, pattern=REPO_NAME, description="Defaults to the directory's name.")

    @field_validator("path")
    @classmethod
    def _no_nul(cls, value: str) -> str:  # pydantic itself refuses lone surrogates
        if "\x00" in value:
            raise ValueError("the path contains a NUL character")
        return value


class Embeddings(Doc):
    done: int
    pending: int
    failed: int


JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class Job(Doc):
    id: str
    repo: str
    path: str
    state: JobState
    phase: Literal["indexing", "embedding"] | None
    files_total: int
    files_done: int
    chunks: int
    embeddings: Embeddings
    eta_seconds: float | None
    error: str | None
    report: dict[str, Any] | None = Field(description="`lode index --json`'s document, once indexed.")
    created_at: str
    started_at: str | None
    finished_at: str | None
    attempts: int = Field(description="Runs started: more than 1 after a worker stopped while running it.")
    worker: str = Field(description="host:pid of the worker running it (or of the process that queued it).")


class JobOut(Doc):
    job: Job
    merged: bool | None = Field(default=None, description="POST: true when an active job for the same repository "
                                                          "and path answered the request.")


class JobsOut(Doc):
    jobs: list[Job]


# ---- search and symbols -----------------------------------------------------------------------------------

class Legs(Doc):
    lexical: int | None
    text: int | None
    code: int | None
    fused: float | None = Field(default=None, description="The score fusion gave, before the ranking priors.")
    priors: dict[str, float] | None = Field(
        default=None, description="Each ranking prior's factor on the fused score (only those not 1): definition, "
                                  "path, role, frame, coherence, saturation.", examples=[{"definition": 3.0}])
    injected: str | None = Field(default=None, description="Why a chunk no leg found is here: definition (the "
                                                           "symbol table) or frame (a file the query names).")


class Node(Doc):
    repo: str | None
    name_path: str
    kind: str
    path: str | None
    start_line: int | None
    end_line: int | None
    external: bool
    guard: str | None = Field(None, description="A definition under an if/try/with: what decides whether it exists "
                                                "(`platform: sys.platform == \"win32\"`, `fallback import: ...`).")


class HopOut(Node):
    depth: int
    via: str
    edge: str
    confidence: float
    evidence: str


class Located(Doc):
    """Where a chunk is: the fields a search hit and a symbol share."""

    repo: str
    path: str
    start_line: int
    end_line: int
    kind: str
    name: str | None
    name_path: str | None
    language: str


class SearchHit(Located):
    score: float
    legs: Legs
    snippet: str
    highlights: list[list[int]] = Field(
        description="Where the snippet matches the query as the tokenizer matched it (stems, camelCase and "
                    "snake_case parts; no stopwords): [line, start, end], line 0-based among the snippet's "
                    "\\n-separated lines, [start, end) in code points.", examples=[[[0, 4, 9], [2, 11, 19]]])
    snippet_line: int = Field(description="The file's line number of the snippet's first line.")
    callers: list[HopOut] | None = None
    callees: list[HopOut] | None = None


class SearchFile(Doc):
    repo: str
    path: str
    language: str | None
    score: float
    hits: list[SearchHit] = Field(description="The file's best hits, best first: the evidence for its rank.")


class SearchOut(Doc):
    query: str
    mode: Mode
    degraded: list[str]
    hits: list[SearchHit]
    offset: int
    next_offset: int | None
    query_kind: Literal["symbol", "natural", "mixed", "long"] | None = Field(
        default=None, description="How the ranking stage read the query (absent with LODE_RANKING=off).")
    files: list[SearchFile] | None = Field(default=None, description="group=files: files best first.")


class SearchIn(Doc):
    """POST /v1/search: the GET parameters as a JSON body, for queries too long for a URL (up to 64 KiB)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"q": "Simplify fails on a product of powers\n\nTraceback (most recent call last):\n  File "
              "\"sympy/core/mul.py\", line 1203, in _eval_power\nTypeError: bad", "repo": "sympy", "group": "files"},
    ]})

    q: str = Field(min_length=1, description="Plain text: a name, a question, or a whole issue with tracebacks.")
    repo: str | None = Field(default=None, pattern=REPO_NAME)
    mode: Mode = Mode.HYBRID
    k: int = Field(default=10, ge=1, le=200)
    offset: int = Field(default=0, ge=0, lt=200)
    lang: list[str] = Field(default_factory=list, max_length=20)
    path: str | None = Field(default=None, max_length=500)
    kind: list[str] = Field(default_factory=list, max_length=20)
    expand: bool = False
    group: Literal["chunks", "files"] = "chunks"


class PatternMatch(Doc):
    repo: str
    path: str
    line: int
    column: int
    text: str


class PatternOut(Doc):
    pattern: str
    regex: bool
    ignore_case: bool
    matches: list[PatternMatch]
    files_searched: int
    files_total: int
    stale: list[str] = Field(description="Files changed since indexing: not searched (re-index them).")
    truncated: bool = Field(description="The limit of matches was reached.")
    timed_out: bool = Field(description="LODE_TIMEOUT_PATTERN_SEARCH stopped the search before the last file.")


class SymbolOut(Located):
    signature: str | None
    docstring: str | None = Field(default=None, description="The definition's docstring or leading comment, if any.")


class SymbolsOut(Doc):
    query: str
    symbols: list[SymbolOut]
    suggestions: list[str]


# ---- graph ------------------------------------------------------------------------------------------------

class NeighboursOut(Doc):
    symbol: Node
    direction: Literal["callers", "callees"]
    depth: int
    truncated: bool
    results: list[HopOut]


class UseOut(Node):
    """A use of the symbol: the definition it is in (its module for a module-level use), and the edge."""

    kind: str = Field(description="calls | imports | inherits | annotates | decorates")
    confidence: float
    evidence: str


class RefsOut(Doc):
    symbol: Node
    truncated: bool
    refs: list[UseOut]


class PathOut(Doc):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    from_: Node | str = Field(alias="from")
    to: Node | str
    found: bool
    direction: Literal["forward", "backward"] | None = None
    path: list[HopOut]


class FanIn(Doc):
    symbol: Node
    callers: int


class FanOut(Doc):
    symbol: Node
    callees: int


class GraphStatsOut(Doc):
    nodes: dict[str, int]
    edges: dict[str, dict[str, int]]
    external_nodes: int
    top_fan_in: list[FanIn]
    top_fan_out: list[FanOut]
    import_cycles: list[list[str]]


# ---- context ----------------------------------------------------------------------------------------------

class ContextPiece(Doc):
    role: Literal["definition", "caller", "callee", "test", "hit"]
    name: str
    repo: str
    path: str
    start_line: int
    end_line: int


class ContextOut(Doc):
    text: str = Field(description="The packed context: each piece cited path:start-end, what did not fit listed "
                                  "at the end (MCP's get_context answers it as its text content).")
    tokens: int = Field(description="The text's estimated tokens (one per 3 characters, at least one per word "
                                    "or symbol).")
    budget_tokens: int
    included: list[ContextPiece]
    dropped: list[ContextPiece] = Field(description="Every piece left out for the budget, in priority order.")


# ---- health -----------------------------------------------------------------------------------------------

class Check(Doc):
    status: Literal["pass", "warn", "fail"]


class HealthOut(Doc):
    status: Literal["pass", "warn", "fail"]
    checks: dict[str, Check]


class ProbeOut(Doc):
    status: Literal["pass", "fail"]
