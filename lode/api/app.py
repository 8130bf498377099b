"""The REST server's FastAPI app: `create_app(settings)` wires the engine, index jobs and the in-process queue
worker (LODE_INDEX_JOBS slots; 0 when `lode worker` processes run the jobs), the server's heartbeat, middleware
(request ids and metrics, the caller's address, Host/Origin checks, CORS, body cap, auth and rate limits),
error mapping, health and metrics.

Other modules add their routes with one `app.include_router(...)` line in create_app, above `_document_errors`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from psycopg_pool import PoolTimeout
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lode import __version__
from lode.api import models
from lode.api.cache import router as cache_router
from lode.api.errors import router as errors_router
from lode.api.hosts import SAFE_METHODS, ClientAddress, HostGuard, HostPolicy, is_loopback
from lode.api.keys import ApiKeys
from lode.api.presence import Presence
from lode.api.routes import ERRORS, router
from lode.api.security import PROTECTED, RATE_LIMITED, AuthMiddleware
from lode.config import Settings, get_settings
from lode.engine import Lode
from lode.errorlog import AlertMonitor
from lode.errors import InputError, LodeError, NotFound
from lode.health import database_check, health_report
from lode.jobs import JobConflict, Jobs
from lode.logs import bind_context, clear_context, get_logger
from lode.mcp import mount as mount_mcp
from lode.queue import BackgroundWorker
from lode.web import mount as mount_web

log = get_logger(__name__)

REQUESTS = Counter("lode_http_requests_total", "HTTP requests, by route template and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("lode_http_request_duration_seconds", "HTTP request latency, by route template.",
                    ["method", "route"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
                 409: "conflict", 413: "payload_too_large", 421: "misdirected_request", 422: "validation_error",
                 429: "rate_limited", 503: "unavailable"}


class RefusedBind(RuntimeError):
    """A non-loopback address without any API key."""


def create_app(settings: Settings | None = None, *, host: str = "127.0.0.1", port: int = 0) -> FastAPI:
    """The app; `host` and `port` are the address it will be served on (a non-loopback one needs an API key)."""
    settings = settings or get_settings()
    hosts = HostPolicy(host, settings.server.allowed_hosts, settings.server.allowed_origins,
                       settings.server.cors_origins)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        lode = Lode(settings, revive_database=True)  # a dead embedded PostgreSQL is restarted by this process
        app.state.presence = None
        try:
            keys = ApiKeys(await run_in_threadpool(lambda: lode.db))
            if not app.state.loopback and not await run_in_threadpool(keys.any):
                raise RefusedBind(f"refusing to serve on {host} without an API key: run `lode keys create NAME`")
            app.state.lode = lode
            app.state.jobs = await run_in_threadpool(Jobs, lode)
            app.state.worker = (BackgroundWorker(lode, settings.server.index_jobs).start()
                                if settings.server.index_jobs else None)
            app.state.keys = keys
            app.state.alerts = AlertMonitor(lode.db, settings).start()  # error-rate alerts (lode/errorlog.py)
            app.state.presence = await run_in_threadpool(Presence(lode.db, settings, host, port).start)
        except BaseException:
            lode.close()
            raise
        try:
            yield
        finally:
            await run_in_threadpool(app.state.presence.stop)
            if app.state.worker is not None:
                await run_in_threadpool(app.state.worker.stop)
            await run_in_threadpool(app.state.alerts.stop)
            lode.close()

    # /docs is lode.web's Swagger UI, served from the package (FastAPI's own loads it from a CDN); no ReDoc
    app = FastAPI(title="Lode", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Self-hosted code intelligence: index repositories, search them, walk their graph.")
    app.state.loopback = is_loopback(host)
    app.state.settings = settings

    # the first added is the innermost: auth, then the body cap, CORS, Host/Origin, the caller's address, and
    # request context outermost (so that every refusal is counted, logged and carries the request id)
    app.add_middleware(AuthMiddleware, rate_limit=_rate_limit(settings.server.rate_limit))
    app.add_middleware(BodyLimit, max_bytes=settings.server.max_body_bytes)
    if settings.server.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.server.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type",
                                                                                  "X-Request-ID"])
    app.add_middleware(HostGuard, policy=hosts)
    app.add_middleware(ClientAddress, trusted_proxies=settings.server.trusted_proxies)
    app.add_middleware(RequestContext)
    _add_error_handlers(app)
    _add_probes(app)
    app.include_router(router)
    app.include_router(cache_router)
    app.include_router(errors_router)
    mount_mcp(app)  # /mcp: streamable HTTP, same engine, API-key and Host/Origin rules
    mount_web(app)  # / and /static: the web UI
    _document_errors(app)
    return app


def _rate_limit(spec: str | None) -> str | None:
    return None if not spec or spec.strip().lower() in ("off", "none") else spec


# ---- middleware ---------------------------------------------------------------------------------------------

class RequestContext:
    """Request id (X-Request-ID, echoed), metrics by route template, one log line per request, and the last word
    on unexpected errors: a JSON 500 that names the request id, never a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            refusal = models.error_response(400, "bad_request", "the request contains a NUL character")
            await refusal(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        bind_context(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", path=scope.get("path"))
            status = 500
            if not response_started:
                await send_with_id({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"application/json")]})
                await send_with_id({"type": "http.response.body", "body": JSONResponse(
                    {"error": {"message": "internal error; the server log has the details",
                               "code": "internal", "request_id": request_id}}).body})
        finally:
            template = getattr(scope.get("route"), "path", None)  # bounded label values: templates, not paths
            template = "unmatched" if template is None else template or "/"
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], template, str(status)).inc()
            LATENCY.labels(scope["method"], template).observe(elapsed)
            log.info("request", method=scope["method"], route=template, status=status,
                     duration_ms=round(elapsed * 1000, 1))
            clear_context()


def _has_nul(scope: Scope) -> bool:
    """PostgreSQL text cannot hold NUL: refuse it in the URL before any handler sees it."""
    return b"%00" in scope.get("query_string", b"") or b"%00" in scope.get("raw_path", b"") or "\x00" in scope["path"]


class BodyLimit:
    """413 for a body over max_bytes, by Content-Length or while it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = models.error_response(413, "payload_too_large", f"the request body is over {self.max_bytes} bytes")
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await too_large(scope, receive, send)
            return
        seen, exceeded = 0, False

        async def counted() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}  # the app stops reading; its answer is replaced
            return message

        async def unless_exceeded(message: Message) -> None:
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, counted, unless_exceeded)
        except Exception:
            if not exceeded:
                raise
        if exceeded:
            await too_large(scope, receive, send)


# ---- errors -------------------------------------------------------------------------------------------------

def _error(request: Request, status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    body = {"message": message, "code": code or _STATUS_CODES.get(status, "error"), **extra}
    return JSONResponse({"error": body}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(JobConflict)
    def conflict(request: Request, exc: JobConflict) -> JSONResponse:
        return _error(request, 409, str(exc))

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _error(request, 404, str(exc))

    @app.exception_handler(InputError)
    def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return _error(request, 400, str(exc))

    @app.exception_handler(LodeError)
    def unavailable(request: Request, exc: LodeError) -> JSONResponse:
        return _error(request, 503, str(exc))  # engine failures are a dependency's: timeouts, providers, database

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    def database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable", error=str(exc))
        return _error(request, 503, "the database is unavailable; retry shortly")

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [{"location": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        message = "; ".join(f"{d['location']}: {d['message']}" for d in details) or "invalid request"
        return _error(request, 422, message, details=details)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        response = _error(request, exc.status_code, str(exc.detail))
        if exc.headers:
            response.headers.update(exc.headers)
        return response


def _document_errors(app: FastAPI) -> None:
    """Each operation lists the errors it can answer with: its route's own (`errors(...)` in lode/api/routes.py)
    and those of the middleware that applies to it (`middleware_errors`), all as the error document; its 422 is
    ours, not FastAPI's default shape. Applied to the generated schema, so every router's routes get it."""
    generate = app.openapi
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()  # FastAPI keeps it as app.openapi_schema: the edits below are made once
        for path, methods in schema["paths"].items():
            for method, operation in methods.items():
                has_input = bool(operation.get("parameters") or operation.get("requestBody"))
                for status in middleware_errors(path, method.upper(), has_input):
                    operation["responses"].setdefault(str(status), {"description": ERRORS[status]["description"],
                                                                    "content": error})
                if has_input:
                    operation["responses"]["422"] = {"description": ERRORS[422]["description"], "content": error}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def middleware_errors(path: str, method: str, has_input: bool) -> list[int]:
    """The statuses the middleware can answer an operation with, by the same rules the middleware applies."""
    statuses = [400, 413, 421]  # every route: a NUL in the URL, a Content-Length over the cap, a Host not allowed
    if method not in SAFE_METHODS:
        statuses.append(403)  # an Origin not allowed (HostGuard)
    if path.startswith(PROTECTED):
        statuses += [401, 403]  # no or a bad key; a key scoped to other repositories (AuthMiddleware, require_*)
    if path.startswith(RATE_LIMITED):
        statuses.append(429)
    if has_input:
        statuses.append(422)
    return sorted(set(statuses))


# ---- probes and metrics -------------------------------------------------------------------------------------

def _add_probes(app: FastAPI) -> None:
    @app.get("/livez", response_model=models.ProbeOut, tags=["health"], summary="Liveness probe")
    def livez() -> dict[str, str]:
        """The process is up."""
        return {"status": "pass"}

    @app.get("/readyz", response_model=models.ProbeOut, tags=["health"], summary="Readiness probe",
             responses={503: {"model": models.ProbeOut, "description": "The database is unreachable"}})
    def readyz(request: Request) -> JSONResponse:
        """Ready to serve: the database answers."""
        database = database_check(request.app.state.lode)
        return JSONResponse({"status": database["status"]} if database["status"] == "pass" else
                            {"status": "fail", "error": database.get("error")},
                            status_code=200 if database["status"] == "pass" else 503)

    @app.get("/health", response_model=models.HealthOut, tags=["health"], summary="Component health",
             responses={503: {"model": models.HealthOut, "description": "The database is down"}})
    def health(request: Request) -> JSONResponse:
        """pass / warn / fail per component; 200 unless the database is down (503)."""
        report = health_report(request.app.state.lode)
        return JSONResponse(report, status_code=503 if report["status"] == "fail" else 200)

    @app.get("/metrics", tags=["health"], response_class=Response, summary="Prometheus metrics",
             responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
                              "description": "Prometheus text format"}})
    def metrics() -> Response:
        """Request counts and latencies by route, search, index and cache counters, in Prometheus text format."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
