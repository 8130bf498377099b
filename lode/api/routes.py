"""The /v1 routes: repositories, index jobs, search, symbols, context, the code graph and status.

Endpoints are plain `def`s (the engine is synchronous; FastAPI runs them on its thread pool). Each returns the
CLI's `--json` document for the same operation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from lode.api import models
from lode.api.keys import ApiKeys
from lode.api.security import check_index_path, principal, repo_scope, require_repo
from lode.api.staleness import staleness
from lode.engine import Lode
from lode.services.context import DEFAULT_BUDGET, MAX_BUDGET, MIN_BUDGET
from lode.services.files import LAST_LINE, MAX_GREP_MATCHES, MAX_OUTLINE
from lode.services.search import MAX_K, MAX_QUERY_BYTES
from lode.errors import InputError
from lode.model import EDGE_KINDS, Mode
from lode.graph import ExportFilters
from lode.search.pattern import MAX_PATTERN_CHARS
from lode.jobs import ACTIVE, JobConflict, Jobs as JobsService
from lode.web.editor import editor_link

ERRORS: dict[int, dict[str, Any]] = {
    status: {"model": models.ErrorOut, "description": description}
    for status, description in {
        400: "Bad input", 401: "An API key is required", 403: "Not allowed for this key or path",
        404: "Not found", 409: "Conflicts with an active job", 413: "Request body too large",
        421: "The Host header is not one this server answers to (LODE_ALLOWED_HOSTS)",
        422: "Invalid parameters", 429: "Rate limited (see Retry-After)", 503: "A dependency is unavailable",
    }.items()
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The errors a route's own code can answer with; those of the middleware (Host, NUL, keys, rate limit,
    body size, validation) are added to every operation they apply to by lode.api.app._document_errors."""
    return {status: ERRORS[status] for status in statuses}


router = APIRouter(prefix="/v1")

RepoParam = Annotated[str | None, Query(pattern=models.REPO_NAME, description="Repository name; all when omitted.",
                                        examples=["shop"])]
RepoPath = Annotated[str, Path(pattern=models.REPO_NAME, description="Repository name (see GET /v1/repositories).",
                               examples=["shop"])]
SymbolParam = Annotated[str, Query(min_length=1, max_length=500, description="A qualified name "
                                   "(pkg.mod.Class.method), a suffix (Class.method) or a unique short name.",
                                   examples=["shop.pricing.total"])]
EdgeKinds = Annotated[str, Query(max_length=200, description=f"Comma-separated: {', '.join(EDGE_KINDS)}.",
                                 examples=["calls,imports"])]
ALL_KINDS = ",".join(EDGE_KINDS)
Confidence = Annotated[float, Query(ge=0.0, le=1.0, description="Drop edges resolved with less confidence (0-1).",
                                    examples=[0.5])]
Depth = Annotated[int, Query(ge=1, le=10, description="Hops to follow.", examples=[2])]
PathGlob = Annotated[str | None, Query(max_length=500, description="Only files matching this glob.",
                                       examples=["src/**/*.py"])]
JobId = Annotated[UUID, Path(description="The job's id, as POST /v1/index returned it.",
                             examples=["6f1c2a7e-2b1d-4c55-9d8e-0a4f6f0b9b1e"])]


def engine(request: Request) -> Lode:
    return request.app.state.lode


def jobs(request: Request) -> JobsService:
    return request.app.state.jobs


Engine = Annotated[Lode, Depends(engine)]
Jobs = Annotated[JobsService, Depends(jobs)]


def _kinds(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


# ---- repositories -----------------------------------------------------------------------------------------

@router.get("/repositories", response_model=models.RepositoriesOut, tags=["repositories"],
            summary="List repositories", responses=errors(503))
def list_repositories(request: Request, lode: Engine) -> dict[str, Any]:
    """The indexed repositories (those the API key may use): name, root, generation, chunks and timestamps."""
    key = principal(request)
    return {"repositories": [r for r in lode.repos.all() if key is None or key.allows(r["repo"])]}


@router.get("/repositories/{name}", response_model=models.RepositoryOut, tags=["repositories"],
            summary="Get a repository's status", responses=errors(404, 503))
def get_repository(request: Request, name: RepoPath, lode: Engine) -> dict[str, Any]:
    """One repository's status (as in GET /v1/status) with a bounded check of how many indexed files changed
    on disk since."""
    require_repo(request, name)
    entry = lode.repos.status(name)["repos"][0]
    entry["staleness"] = staleness(lode, entry["repo"], entry["root"])
    return {"repository": entry}


@router.get("/repositories/{name}/source", response_model=models.SourceOut, tags=["repositories"],
            summary="Read lines of an indexed file", responses=errors(404, 503))
def repository_source(
    request: Request, name: RepoPath, lode: Engine,
    path: Annotated[str, Query(min_length=1, max_length=4096, description="An indexed file, relative to the root.",
                               examples=["shop/pricing.py"])],
    start_line: Annotated[int, Query(ge=1, le=LAST_LINE, description="First line (1-based).", examples=[10])] = 1,
    end_line: Annotated[int | None, Query(ge=1, le=LAST_LINE, description="Inclusive; the end when omitted.",
                                          examples=[40])] = None,
) -> dict[str, Any]:
    """Lines of an indexed file, with a link that opens it in an editor. Served from the file while its bytes
    are those indexed, else from the index's own text (origin "index", with the reason in "stale")."""
    require_repo(request, name)
    lines = lode.files.lines(name, path, start_line, end_line)
    template = request.app.state.settings.server.editor_url
    return lines | {"editor_url": editor_link(template, lines["absolute_path"], lines["start_line"])}


@router.get("/repositories/{name}/outline", response_model=models.OutlineOut, tags=["repositories"],
            summary="Outline a file or folder", responses=errors(404, 503))
def repository_outline(
    request: Request, name: RepoPath, lode: Engine,
    path: Annotated[str, Query(max_length=4096, description="A file or folder relative to the root; the whole "
                                                            "repository when empty.", examples=["shop"])] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_OUTLINE, description="Definitions at most.", examples=[300])] = 300,
) -> dict[str, Any]:
    """The definitions (kind, name, lines, signature) of an indexed file or of the files below a folder, in path
    and line order (the MCP tool get_symbols_overview)."""
    require_repo(request, name)
    return lode.files.outline(name, path, limit)


@router.delete("/repositories/{name}", response_model=models.RemovedOut, tags=["repositories"],
               summary="Drop a repository's index", responses=errors(404, 409, 503))
def delete_repository(request: Request, name: RepoPath, lode: Engine) -> dict[str, Any]:
    """Delete the repository's index (chunks, symbols, graph, embeddings) in one transaction; 409 while an index
    job for it is active. Files on disk are untouched."""
    remove_repository(request, lode, name)
    return {"removed": name}


def remove_repository(request: Request, lode: Lode, name: str) -> None:
    """Drop a repository's index, for a key whose scope holds it, unless an index job for it is active (REST
    DELETE and the MCP tool clear_index over HTTP)."""
    require_repo(request, name)
    if any(job["state"] in ACTIVE for job in request.app.state.jobs.list((name,), limit=5)):
        raise JobConflict(f"repository {name!r} has an active index job; cancel it first")
    lode.repos.remove(name)


@router.get("/status", response_model=models.StatusOut, tags=["repositories"], summary="Index status",
            responses=errors(404, 503))
def status(request: Request, lode: Engine, repo: RepoParam = None) -> dict[str, Any]:
    """Per repository: files, chunks, languages, skipped files by reason, embeddings, the last run, the graph
    and a bounded staleness check (the document of `lode status --json`)."""
    result = lode.repos.status(repo_scope(request, repo))
    for entry in result["repos"]:
        entry["staleness"] = staleness(lode, entry["repo"], entry["root"])
    return result


# ---- index jobs -------------------------------------------------------------------------------------------

@router.post("/index", status_code=202, response_model=models.JobOut, tags=["index"], summary="Start an index job",
             responses=errors(404, 409, 503))
def start_index(request: Request, body: Annotated[models.IndexRequest, Body()], lode: Engine,
                runner: Jobs) -> dict[str, Any]:
    """Queue an index run of a directory under LODE_ALLOWED_ROOTS; an active job for the same repository and
    path answers instead (merged: true). Poll GET /v1/index/{job_id}."""
    if body.repo is not None:  # the key's scope first: nothing about a repository outside it may leak
        require_repo(request, body.repo)
    open_mode = request.app.state.loopback and not ApiKeys(lode.db).any()
    path, within = check_index_path(body.path, lode.settings, open_mode)
    root, name = lode.indexing.target(path, body.repo, authorize=lambda name: require_repo(request, name))
    job, merged = runner.submit(root, name, within)
    return {"job": job, "merged": merged}


@router.get("/index", response_model=models.JobsOut, tags=["index"], summary="List index jobs",
            responses=errors(503))
def list_jobs(request: Request, runner: Jobs, repo: RepoParam = None,
              state: Annotated[list[models.JobState], Query(max_length=5, description="Only jobs in these states.",
                                                            examples=[["queued", "running"]])] = [],  # noqa: B006
              limit: Annotated[int, Query(ge=1, le=200, description="Jobs at most, newest first.",
                                          examples=[20])] = 50) -> dict[str, Any]:
    """Index jobs, newest first, with their progress, phase and report."""
    scope = repo_scope(request, repo)
    return {"jobs": runner.list((scope,) if isinstance(scope, str) else scope, limit, tuple(state) or None)}


@router.get("/index/{job_id}", response_model=models.JobOut, tags=["index"], summary="Get an index job",
            responses=errors(404, 503))
def get_job(request: Request, job_id: JobId, runner: Jobs) -> dict[str, Any]:
    """One job: state, phase, files and chunks done, embeddings, ETA and, once indexed, the report."""
    job = runner.get(str(job_id))
    require_repo(request, job["repo"])
    return {"job": job}


@router.delete("/index/{job_id}", status_code=202, response_model=models.JobOut, tags=["index"],
               summary="Cancel an index job", responses=errors(404, 409, 503))
def cancel_job(request: Request, job_id: JobId, runner: Jobs) -> dict[str, Any]:
    """Ask a queued or running job to stop (202); 409 when it has already finished. A cancelled run leaves the
    index as it was before the file it was on."""
    require_repo(request, runner.get(str(job_id))["repo"])
    return {"job": runner.cancel(str(job_id))}


# ---- search and symbols -----------------------------------------------------------------------------------

@router.get("/search", response_model=models.SearchOut, tags=["search"], summary="Search code",
            responses=errors(404, 503))
def search(
    request: Request,
    lode: Engine,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_BYTES,
                            description="What the code does, words and names in it, or a whole issue with its "
                                        "traceback: up to 64 KiB (POST /v1/search takes it in a JSON body).",
                            examples=["apply discount"])],
    repo: RepoParam = None,
    mode: Annotated[Mode, Query(description="hybrid (words and meaning), lexical (BM25) or semantic (embeddings).",
                                examples=["lexical"])] = Mode.HYBRID,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Hits per page.", examples=[10])] = 10,
    offset: Annotated[int, Query(ge=0, lt=MAX_K, description=f"Hits to skip; offset + k <= {MAX_K}.",
                                 examples=[10])] = 0,
    lang: Annotated[list[str], Query(max_length=20, description="Only these languages.",
                                     examples=[["python"]])] = [],  # noqa: B006 - FastAPI copies defaults
    path: PathGlob = None,
    kind: Annotated[list[str], Query(max_length=20, description="Only these chunk kinds: function, method, class, "
                                                                "...", examples=[["function", "method"]])] = [],  # noqa: B006
    expand: Annotated[bool, Query(description="Add each hit's callers and callees.", examples=[True])] = False,
    group: Annotated[Literal["chunks", "files"], Query(description="files: also rank files, each with its best "
                                                                   "hits (the page counts files)",
                                                       examples=["files"])] = "chunks",
) -> dict[str, Any]:
    """Ranked hits (BM25 and embeddings, fused, then ranking priors: definitions first, tests last) with
    path:start-end, kind, qualified name, score, the legs and priors behind each, and a snippet with the query's
    terms highlighted; next_offset pages on. group=files adds `files`, each with its best hits."""
    return _search(request, lode, models.SearchIn(q=q, repo=repo, mode=mode, k=k, offset=offset, lang=lang,
                                                  path=path, kind=kind, expand=expand, group=group))


@router.post("/search", response_model=models.SearchOut, tags=["search"], summary="Search code (JSON body)",
             responses=errors(404, 503))
def search_post(request: Request, lode: Engine, body: Annotated[models.SearchIn, Body()]) -> dict[str, Any]:
    """The same search with its parameters in a JSON body: for long queries (an issue with its traceback)."""
    return _search(request, lode, body)


def _search(request: Request, lode: Lode, p: models.SearchIn) -> dict[str, Any]:
    if p.offset + p.k > MAX_K:
        raise InputError(f"offset + k must be at most {MAX_K}")
    window = min(p.offset + p.k + 1, MAX_K)  # one more than the page tells whether another page exists
    result = lode.search.query(p.q, repo=repo_scope(request, p.repo), mode=p.mode, k=window, languages=tuple(p.lang),
                               path=p.path, kinds=tuple(p.kind), expand=p.expand, group=p.group)
    primary = "files" if p.group == "files" else "hits"  # what the page counts
    result["next_offset"] = p.offset + p.k if len(result[primary]) > p.offset + p.k else None
    for key in ("hits", "files") if p.group == "files" else ("hits",):
        result[key] = result[key][p.offset:p.offset + p.k]
    result["offset"] = p.offset
    return result


@router.get("/symbols", response_model=models.SymbolsOut, tags=["search"], summary="Find definitions by name",
            responses=errors(404, 503))
def symbols(request: Request, lode: Engine, name: SymbolParam, repo: RepoParam = None,
            limit: Annotated[int, Query(ge=1, le=MAX_K, description="Definitions at most.",
                                        examples=[20])] = 20) -> dict[str, Any]:
    """Definitions whose name, qualified name or suffix matches, best first, with signatures; close names as
    suggestions when nothing matches."""
    return lode.search.symbols(name, repo=repo_scope(request, repo), limit=limit)


@router.get("/context", response_model=models.ContextOut, tags=["search"], summary="Code to read before a change",
            responses=errors(404, 503))
def context(
    request: Request, lode: Engine,
    q: Annotated[str | None, Query(min_length=1, max_length=MAX_QUERY_BYTES, description="What you are looking for "
                                   "(or pass symbol).", examples=["apply discount"])] = None,
    symbol: Annotated[str | None, Query(min_length=1, max_length=500, description="A symbol to centre on (or pass "
                                        "q).", examples=["shop.pricing.apply_discount"])] = None,
    repo: RepoParam = None,
    budget_tokens: Annotated[int, Query(ge=MIN_BUDGET, le=MAX_BUDGET, description="The text stays within this many "
                                        "tokens (estimated).", examples=[2000])] = DEFAULT_BUDGET,
    mode: Annotated[Mode, Query(description="How q is searched: hybrid, lexical or semantic.",
                                examples=["lexical"])] = Mode.HYBRID,
) -> dict[str, Any]:
    """Code to read before a change, within a token budget (the MCP tool get_context): the definitions a search
    or a symbol finds, then their callers, callees and related tests, each cited path:start-end; what did not fit
    is listed at the end of the text and in `dropped`."""
    return lode.context.build(q, symbol, repo=repo_scope(request, repo), budget=budget_tokens, mode=mode)


@router.get("/pattern", response_model=models.PatternOut, tags=["search"],
            summary="Search by exact text or regex", responses=errors(404, 503))
def pattern(
    request: Request, lode: Engine,
    q: Annotated[str, Query(min_length=1, max_length=MAX_PATTERN_CHARS, description="Text to find, or an RE2 "
                            "regular expression with regex=true.", examples=["def total("])],
    repo: RepoParam = None,
    regex: Annotated[bool, Query(description="Treat q as a regular expression (RE2: no backreferences or "
                                             "lookaround).", examples=[True])] = False,
    ignore_case: Annotated[bool, Query(description="Match regardless of case.", examples=[True])] = False,
    path: PathGlob = None,
    lang: Annotated[list[str], Query(max_length=20, description="Only these languages.",
                                     examples=[["python"]])] = [],  # noqa: B006 - FastAPI copies defaults
    limit: Annotated[int, Query(ge=1, le=MAX_GREP_MATCHES, description="Matching lines at most.",
                                examples=[100])] = 100,
) -> dict[str, Any]:
    """Every line of the indexed files containing the text (or matching the regex), as grep would, with
    path:line:column; files changed since indexing are listed in `stale`, not searched (the MCP tool
    search_pattern)."""
    return lode.files.grep(q, repo=repo_scope(request, repo), regex=regex, ignore_case=ignore_case, path=path,
                           languages=tuple(lang), limit=limit)


# ---- graph ------------------------------------------------------------------------------------------------

def _neighbours(direction: str, request: Request, lode: Lode, symbol: str, repo: str | None, depth: int,
                kinds: str, min_confidence: float) -> dict[str, Any]:
    return lode.graph.neighbours(direction, symbol, repo=repo_scope(request, repo), depth=depth,
                                 kinds=_kinds(kinds), min_confidence=min_confidence)


@router.get("/graph/callers", response_model=models.NeighboursOut, tags=["graph"], summary="Callers of a symbol",
            responses=errors(404, 503))
def graph_callers(request: Request, lode: Engine, symbol: SymbolParam, repo: RepoParam = None,
                  depth: Depth = 1, kinds: EdgeKinds = "calls", min_confidence: Confidence = 0.0) -> dict[str, Any]:
    """Who calls (imports, inherits from) a symbol, up to `depth` hops, each with the evidence (path:line)."""
    return _neighbours("callers", request, lode, symbol, repo, depth, kinds, min_confidence)


@router.get("/graph/callees", response_model=models.NeighboursOut, tags=["graph"], summary="Callees of a symbol",
            responses=errors(404, 503))
def graph_callees(request: Request, lode: Engine, symbol: SymbolParam, repo: RepoParam = None,
                  depth: Depth = 1, kinds: EdgeKinds = "calls", min_confidence: Confidence = 0.0) -> dict[str, Any]:
    """What a symbol calls (imports, inherits from), up to `depth` hops; targets outside the repositories are
    external nodes."""
    return _neighbours("callees", request, lode, symbol, repo, depth, kinds, min_confidence)


@router.get("/graph/refs", response_model=models.RefsOut, tags=["graph"], summary="Every use of a symbol",
            responses=errors(404, 503))
def graph_refs(request: Request, lode: Engine, symbol: SymbolParam, repo: RepoParam = None,
               kinds: EdgeKinds = ALL_KINDS, min_confidence: Confidence = 0.0,
               limit: Annotated[int, Query(ge=1, le=10_000, description="Uses at most.", examples=[50])] = 200,
               ) -> dict[str, Any]:
    """Every use of a symbol: calls, imports, base classes, type annotations and decorators, each with its kind
    and evidence (path:line)."""
    return lode.graph.refs(symbol, repo=repo_scope(request, repo), kinds=_kinds(kinds),
                           min_confidence=min_confidence, limit=limit)


@router.get("/graph/path", response_model=models.PathOut, tags=["graph"], summary="Path between two symbols",
            responses=errors(404, 503))
def graph_path(request: Request, lode: Engine,
               source: Annotated[str, Query(alias="from", min_length=1, max_length=500, description="From this "
                                            "symbol...", examples=["shop.cart.Cart.checkout"])],
               target: Annotated[str, Query(alias="to", min_length=1, max_length=500, description="...to this one "
                                            "(either direction is searched).", examples=["shop.pricing.with_tax"])],
               repo: RepoParam = None,
               max_depth: Annotated[int, Query(ge=1, le=10, description="Hops at most.", examples=[6])] = 6,
               ) -> dict[str, Any]:
    """The shortest chain of calls, imports or inheritance between two symbols, each step with its evidence."""
    return lode.graph.path(source, target, repo=repo_scope(request, repo), max_depth=max_depth)


@router.get("/graph/stats", response_model=models.GraphStatsOut, tags=["graph"], summary="Graph statistics",
            responses=errors(404, 503))
def graph_stats(request: Request, lode: Engine, repo: RepoParam = None) -> dict[str, Any]:
    """Nodes and edges by kind, the most called and most calling symbols, and import cycles."""
    return lode.graph.stats(repo_scope(request, repo))


EXPORT_TYPES = {"json": "application/json", "dot": "text/vnd.graphviz", "mermaid": "text/plain"}


@router.get("/graph/export", tags=["graph"], response_class=Response, summary="Export the graph",
            responses={**errors(404, 503), 200: {
                "description": "The graph as JSON, Graphviz dot or Mermaid",
                "content": {media: {"schema": {"type": "object" if fmt == "json" else "string"}}
                            for fmt, media in EXPORT_TYPES.items()}}})
def graph_export(
    request: Request, lode: Engine, repo: RepoParam = None,
    format: Annotated[Literal["json", "dot", "mermaid"],  # noqa: A002 - the contract's parameter name
                      Query(description="The document's format.", examples=["dot"])] = "json",
    kinds: EdgeKinds = "calls,imports,inherits", min_confidence: Confidence = 0.0,
    include_external: Annotated[bool, Query(description="Keep edges to symbols outside the repositories.",
                                            examples=[True])] = False,
    path: Annotated[str | None, Query(max_length=500, description="Only edges from files matching this glob.",
                                      examples=["shop/**"])] = None,
    limit: Annotated[int, Query(ge=1, le=100_000, description="Edges at most.", examples=[1000])] = 5000,
) -> Response:
    """The code graph (or the part the filters keep) as JSON, Graphviz dot or Mermaid."""
    filters = ExportFilters(kinds=_kinds(kinds), min_confidence=min_confidence, include_external=include_external,
                            path_glob=path, limit=limit)
    text = lode.graph.export(format, filters, repo_scope(request, repo))
    return Response(text, media_type=EXPORT_TYPES[format])
