"""Who may call the API and on what: bearer API keys (optionally scoped to repositories), per-caller rate limits,
and the directories an index request may name.

Rules (README "Security"):
- `lode serve` binds to loopback by default and refuses any other address while no API key exists.
- With no API key, only loopback callers (lode/api/hosts.py caller_is_local) may use the data routes (/v1/...,
  /mcp, /metrics): removing the last key closes a non-loopback server to remote callers instead of opening it.
  Once a key exists, every data route needs `Authorization: Bearer <key>`; health probes, /docs and the web UI
  stay open (they hold no code).
- A key scoped to repositories sees, searches and indexes only those (403 otherwise).
- POST /v1/index accepts a directory only under LODE_ALLOWED_ROOTS, compared after resolving symlinks, component
  by component. With no roots configured it is allowed only in the open local mode (loopback, no keys).
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import psycopg
from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from lode.api.hosts import caller_is_local
from lode.api.keys import ApiKey, ApiKeys
from lode.api.models import error_response
from lode.config import Settings
from lode.store.db import DatabaseUnavailable

PROTECTED = ("/v1/", "/mcp", "/metrics")  # path prefixes that need a key once keys exist
RATE_LIMITED = ("/v1/", "/mcp")


class AuthMiddleware:
    """Authenticates and rate-limits the protected routes; puts the caller's ApiKey (or None) in request.state."""

    def __init__(self, app: ASGIApp, rate_limit: str | None = None) -> None:
        self.app = app
        self.limit: RateLimitItem | None = parse(rate_limit) if rate_limit else None
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PROTECTED) or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        keys: ApiKeys = scope["app"].state.keys  # set in the app's lifespan, once the database is open
        try:
            rows = await run_in_threadpool(keys.all_hashed)
        except DatabaseUnavailable as exc:  # gone, or its circuit breaker is open: says which, and when to retry
            await error_response(503, "unavailable", str(exc))(scope, receive, send)
            return
        except (psycopg.Error, PoolTimeout):
            await error_response(503, "unavailable", "the database is unavailable; retry shortly")(scope, receive, send)
            return
        principal: ApiKey | None = None
        if not rows and not caller_is_local(scope):
            await error_response(401, "unauthorized", "this server has no API key, so it answers only callers on "
                                 "its own loopback (a request forwarded by a proxy counts as remote unless "
                                 "LODE_TRUSTED_PROXIES names it); create a key with `lode keys create NAME`",
                                 {"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        if rows:
            header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            scheme, _, token = header.partition(" ")
            principal = ApiKeys.match(token.strip(), rows) if scheme.lower() == "bearer" else None
            if principal is None:
                await error_response(401, "unauthorized", "a valid API key is required: Authorization: Bearer <key>",
                                     {"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        if self.limit is not None and path.startswith(RATE_LIMITED):
            client = scope.get("client") or ("unknown", 0)
            caller = f"key:{principal.name}" if principal else f"ip:{client[0]}"
            if not self.limiter.hit(self.limit, caller):
                reset = self.limiter.get_window_stats(self.limit, caller).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                await error_response(429, "rate_limited", f"rate limit {self.limit} exceeded; retry in {retry}s",
                                     {"Retry-After": str(retry)})(scope, receive, send)
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def principal(request: Request) -> ApiKey | None:
    return getattr(request.state, "principal", None)


def repo_scope(request: Request, repo: str | None) -> str | tuple[str, ...] | None:
    """What the engine should search: the repository asked for (403 outside the key's scope), or, when none
    is named, every repository the key may see (None: all)."""
    key = principal(request)
    if key is None or key.repos is None:
        return repo
    if repo is None:
        return key.repos
    require_repo(request, repo)
    return repo


def require_unscoped(request: Request) -> None:
    """Routes about the whole server (recorded errors, alerts) are for keys not limited to repositories."""
    key = principal(request)
    if key is not None and key.repos is not None:
        raise HTTPException(403, f"the API key {key.name!r} is scoped to repositories; "
                                 "this route needs an unscoped key")


def require_repo(request: Request, repo: str) -> None:
    key = principal(request)
    if key is not None and not key.allows(repo):
        raise HTTPException(403, f"the API key {key.name!r} is not allowed to use repository {repo!r}")


def check_index_path(raw: str, settings: Settings, open_mode: bool) -> tuple[Path, Path | None]:
    """The path, resolved, if an index request may name it, and the allowed root it is under (None in the open
    mode), to which the run stays confined; 403 (or 400 for a relative path) otherwise."""
    path = Path(raw)
    if not path.is_absolute():
        raise HTTPException(400, f"the path must be absolute: {raw!r}")
    roots = settings.server.allowed_roots
    if not roots:
        if open_mode:
            return path, None
        raise HTTPException(403, f"indexing over the API needs LODE_ALLOWED_ROOTS (directories separated by "
                                 f"{os.pathsep!r}) once API keys exist or the server is not on loopback")
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:
        raise HTTPException(400, f"cannot resolve {raw!r}: {exc}") from None
    for root in roots:
        if resolved.is_relative_to(root.resolve()):
            return resolved, root.resolve()
    raise HTTPException(403, f"{raw!r} is not under an allowed root (LODE_ALLOWED_ROOTS)")
