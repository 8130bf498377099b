"""REST: the query cache's statistics and flush (the same documents as `lode cache stats|flush --json`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from lode.api.routes import Engine, errors
from lode.api.security import principal, require_repo

router = APIRouter(prefix="/v1/cache", tags=["cache"])


@router.get("/stats", summary="Cache statistics", responses=errors(503))
def cache_stats(lode: Engine) -> dict[str, Any]:
    """Hits, misses, hit rate, bytes and evictions per layer. L1 and the lookup counts are this server process's;
    `layers.l2.server` is Redis INFO."""
    return lode.cache.stats()


@router.post("/flush", summary="Flush the query cache", responses=errors(404, 503))
def cache_flush(request: Request, lode: Engine,
                repo: Annotated[str | None, Query(min_length=1, max_length=128, description="Only this repository's "
                                                 "answers; everything when omitted.", examples=["shop"])] = None,
                ) -> dict[str, Any]:
    """Drop one repository's cached answers (404 for an unknown one), or, without `repo`, everything."""
    if repo is not None:
        require_repo(request, repo)
    elif (key := principal(request)) is not None and key.repos is not None:
        raise HTTPException(403, f"the API key {key.name!r} is scoped to repositories: pass repo=")
    return lode.cache.flush(repo)
