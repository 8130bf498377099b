"""The /v1 routes: repositories, index jobs, search, symbols, the code graph and status.

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
from lode.engine import LAST_LINE, MAX_K, MAX_QUERY_BYTES, Lode
from lode.errors import InputError
from lode.graph import ExportFilters
from lode.jobs import ACTIVE, JobConflict, Jobs as JobsService
from lode.web.editor import editor_link

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorOut, "description": description}
    for status, description in {
        400: "Bad input", 401: "An API key is required", 403: "Not allowed for this key or path",
        404: "Not found", 409: "Conflicts with an active job", 413: "Request body too large",
        421: "The Host header is not one this server answers to (LODE_ALLOWED_HOSTS)",
        422: "Invalid parameters", 429: "Rate limited (see Retry-After)", 503: "A dependency is unavailable",
    }.items()
}

router = APIRouter(prefix="/v1", responses=ERRORS)

RepoParam = Annotated[str | None, Query(pattern=models.REPO_NAME, description="Repository name; all when omitted.")]
RepoPath = Annotated[str, Path(pattern=models.REPO_NAME)]
SymbolParam = Annotated[str, Query(min_length=1, max_length=500)]
EdgeKinds = Annotated[str, Query(max_length=200, description="Comma-separated: calls, imports, inherits.")]
Confidence = Annotated[float, Query(ge=0.0, le=1.0)]


def engine(request: Request) -> Lode:
    return request.app.state.lode


def jobs(request: Request) -> JobsService:
    return request.app.state.jobs


Engine = Annotated[Lode, Depends(engine)]
Jobs = Annotated[JobsService, Depends(jobs)]


def _kinds(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


# ---- repositories -----------------------------------------------------------------------------------------

@router.get("/repositories", response_model=models.RepositoriesOut, tags=["repositories"])
def list_repositories(request: Request, lode: Engine) -> dict[str, Any]:
    key = principal(request)
    return {"repositories": [r for r in lode.repositories() if key is None or key.allows(r["repo"])]}


@router.get("/repositories/{name}", response_model=models.RepositoryOut, tags=["repositories"])
def get_repository(request: Request, name: RepoPath, lode: Engine) -> dict[str, Any]:
    require_repo(request, name)
    entry = lode.status(name)["repos"][0]
    entry["staleness"] = staleness(lode, entry["repo"], entry["root"])
    return {"repository": entry}


@router.get("/repositories/{name}/source", response_model=models.SourceOut, tags=["repositories"])
def repository_source(
    request: Request, name: RepoPath, lode: Engine,
    path: Annotated[str, Query(min_length=1, max_length=4096, description="An indexed file, relative to the root.")],
    start_line: Annotated[int, Query(ge=1, le=LAST_LINE)] = 1,
    end_line: Annotated[int | None, Query(ge=1, le=LAST_LINE, description="Inclusive; the end when omitted.")] = None,
) -> dict[str, Any]:
    """Lines of an indexed file, with a link that opens it in an editor."""
    require_repo(request, name)
    lines = lode.file_lines(name, path, start_line, end_line)
    template = request.app.state.settings.server.editor_url
    return lines | {"editor_url": editor_link(template, lines["absolute_path"], lines["start_line"])}


@router.delete("/repositories/{name}", response_model=models.RemovedOut, tags=["repositories"])
def delete_repository(request: Request, name: RepoPath, lode: Engine, runner: Jobs) -> dict[str, Any]:
    require_repo(request, name)
    if any(job["state"] in ACTIVE for job in runner.list((name,), limit=5)):
        raise JobConflict(f"repository {name!r} has an active index job; cancel it first")
    lode.remove_repository(name)
    return {"removed": name}


@router.get("/status", response_model=models.StatusOut, tags=["repositories"])
def status(request: Request, lode: Engine, repo: RepoParam = None) -> dict[str, Any]:
    result = lode.status(repo_scope(request, repo))
    for entry in result["repos"]:
        entry["staleness"] = staleness(lode, entry["repo"], entry["root"])
    return result


# ---- index jobs -------------------------------------------------------------------------------------------

@router.post("/index", status_code=202, response_model=models.JobOut, tags=["index"])
def start_index(request: Request, body: Annotated[models.IndexRequest, Body()], lode: Engine,
                runner: Jobs) -> dict[str, Any]:
    if body.repo is not None:  # the key's scope first: nothing about a repository outside it may leak
        require_repo(request, body.repo)
    open_mode = request.app.state.loopback and not ApiKeys(lode.db).any()
    path, within = check_index_path(body.path, lode.settings, open_mode)
    root, name = lode.index_target(path, body.repo, authorize=lambda name: require_repo(request, name))
    job, merged = runner.submit(root, name, within)
    return {"job": job, "merged": merged}


@router.get("/index", response_model=models.JobsOut, tags=["index"])
def list_jobs(request: Request, runner: Jobs, repo: RepoParam = None,
              state: Annotated[list[models.JobState], Query(max_length=5)] = [],  # noqa: B006
              limit: Annotated[int, Query(ge=1, le=200)] = 50) -> dict[str, Any]:
    scope = repo_scope(request, repo)
    return {"jobs": runner.list((scope,) if isinstance(scope, str) else scope, limit, tuple(state) or None)}


@router.get("/index/{job_id}", response_model=models.JobOut, tags=["index"])
def get_job(request: Request, job_id: UUID, runner: Jobs) -> dict[str, Any]:
    job = runner.get(str(job_id))
    require_repo(request, job["repo"])
    return {"job": job}


@router.delete("/index/{job_id}", status_code=202, response_model=models.JobOut, tags=["index"])
def cancel_job(request: Request, job_id: UUID, runner: Jobs) -> dict[str, Any]:
    require_repo(request, runner.get(str(job_id))["repo"])
    return {"job": runner.cancel(str(job_id))}


# ---- search and symbols -----------------------------------------------------------------------------------

@router.get("/search", response_model=models.SearchOut, tags=["search"])
def search(
    request: Request,
    lode: Engine,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_BYTES,
                            description="Plain text, up to 64 KiB (POST a JSON body for a long one).")],
    repo: RepoParam = None,
    mode: Literal["hybrid", "lexical", "semantic"] = "hybrid",
    k: Annotated[int, Query(ge=1, le=MAX_K, description="Hits per page.")] = 10,
    offset: Annotated[int, Query(ge=0, lt=MAX_K, description=f"Hits to skip; offset + k <= {MAX_K}.")] = 0,
    lang: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006 - FastAPI copies defaults
    path: Annotated[str | None, Query(max_length=500, description="Path glob, e.g. src/**/*.py")] = None,
    kind: Annotated[list[str], Query(max_length=20)] = [],  # noqa: B006
    expand: bool = False,
    group: Annotated[Literal["chunks", "files"], Query(description="files: also rank files, each with its best "
                                                                   "hits (paged like the hits)")] = "chunks",
) -> dict[str, Any]:
    return _search(request, lode, models.SearchIn(q=q, repo=repo, mode=mode, k=k, offset=offset, lang=lang,
                                                  path=path, kind=kind, expand=expand, group=group))


@router.post("/search", response_model=models.SearchOut, tags=["search"])
def search_post(request: Request, lode: Engine, body: Annotated[models.SearchIn, Body()]) -> dict[str, Any]:
    """The same search with its parameters in a JSON body: for long queries (an issue with its traceback)."""
    return _search(request, lode, body)


def _search(request: Request, lode: Lode, p: models.SearchIn) -> dict[str, Any]:
    if p.offset + p.k > MAX_K:
        raise InputError(f"offset + k must be at most {MAX_K}")
    window = min(p.offset + p.k + 1, MAX_K)  # one more than the page tells whether another page exists
    result = lode.search(p.q, repo=repo_scope(request, p.repo), mode=p.mode, k=window, languages=tuple(p.lang),
                         path=p.path, kinds=tuple(p.kind), expand=p.expand, group=p.group)
    primary = "files" if p.group == "files" else "hits"  # what the page counts
    result["next_offset"] = p.offset + p.k if len(result[primary]) > p.offset + p.k else None
    for key in ("hits", "files") if p.group == "files" else ("hits",):
        result[key] = result[key][p.offset:p.offset + p.k]
    result["offset"] = p.offset
    return result


@router.get("/symbols", response_model=models.SymbolsOut, tags=["search"])
def symbols(request: Request, lode: Engine, name: SymbolParam, repo: RepoParam = None,
            limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20) -> dict[str, Any]:
    return lode.symbols(name, repo=repo_scope(request, repo), limit=limit)


# ---- graph ------------------------------------------------------------------------------------------------

def _neighbours(direction: str, request: Request, lode: Lode, symbol: str, repo: str | None, depth: int,
                kinds: str, min_confidence: float) -> dict[str, Any]:
    return lode.graph_neighbours(direction, symbol, repo=repo_scope(request, repo), depth=depth,
                                 kinds=_kinds(kinds), min_confidence=min_confidence)


@router.get("/graph/callers", response_model=models.NeighboursOut, tags=["graph"])
def graph_callers(request: Request, lode: Engine, symbol: SymbolParam, repo: RepoParam = None,
                  depth: Annotated[int, Query(ge=1, le=10)] = 1, kinds: EdgeKinds = "calls",
                  min_confidence: Confidence = 0.0) -> dict[str, Any]:
    return _neighbours("callers", request, lode, symbol, repo, depth, kinds, min_confidence)


@router.get("/graph/callees", response_model=models.NeighboursOut, tags=["graph"])
def graph_callees(request: Request, lode: Engine, symbol: SymbolParam, repo: RepoParam = None,
                  depth: Annotated[int, Query(ge=1, le=10)] = 1, kinds: EdgeKinds = "calls",
                  min_confidence: Confidence = 0.0) -> dict[str, Any]:
    return _neighbours("callees", request, lode, symbol, repo, depth, kinds, min_confidence)


@router.get("/graph/path", response_model=models.PathOut, tags=["graph"])
def graph_path(request: Request, lode: Engine,
               source: Annotated[str, Query(alias="from", min_length=1, max_length=500)],
               target: Annotated[str, Query(alias="to", min_length=1, max_length=500)],
               repo: RepoParam = None, max_depth: Annotated[int, Query(ge=1, le=10)] = 6) -> dict[str, Any]:
    return lode.graph_path(source, target, repo=repo_scope(request, repo), max_depth=max_depth)


@router.get("/graph/stats", response_model=models.GraphStatsOut, tags=["graph"])
def graph_stats(request: Request, lode: Engine, repo: RepoParam = None) -> dict[str, Any]:
    return lode.graph_stats(repo_scope(request, repo))


EXPORT_TYPES = {"json": "application/json", "dot": "text/vnd.graphviz", "mermaid": "text/plain"}


@router.get("/graph/export", tags=["graph"], response_class=Response, responses={
    200: {"description": "The graph as JSON, Graphviz dot or Mermaid",
          "content": {media: {"schema": {"type": "object" if fmt == "json" else "string"}}
                      for fmt, media in EXPORT_TYPES.items()}}})
def graph_export(
    request: Request, lode: Engine, repo: RepoParam = None,
    format: Literal["json", "dot", "mermaid"] = "json",  # noqa: A002 - the contract's parameter name
    kinds: EdgeKinds = "calls,imports,inherits", min_confidence: Confidence = 0.0, include_external: bool = False,
    path: Annotated[str | None, Query(max_length=500, description="Only edges from files matching this glob.")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 5000,
) -> Response:
    filters = ExportFilters(kinds=_kinds(kinds), min_confidence=min_confidence, include_external=include_external,
                            path_glob=path, limit=limit)
    text = lode.graph_export(format, filters, repo_scope(request, repo))
    return Response(text, media_type=EXPORT_TYPES[format])
