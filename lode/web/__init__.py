"""The web UI: static HTML/JS/CSS served from the package at `/` (index), `/docs` (Swagger UI over
/openapi.json) and `/static/` (assets).

The graph view uses cytoscape and its dagre layout, and /docs uses swagger-ui-dist, all vendored from npm into
static/vendor/ (see web/package.json), so nothing is fetched from elsewhere or built at run time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
# Everything the page loads comes from this server; the scripts only call the same origin's /v1 API. Inline
# styles are allowed because cytoscape injects its own (the e2e test fails on any CSP violation).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _page(name: str) -> Callable[[Request], Awaitable[FileResponse]]:
    async def page(request: Request) -> FileResponse:
        return FileResponse(STATIC_DIR / name, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})

    return page


def mount(app: Starlette) -> None:
    """Serve the UI from an existing Starlette/FastAPI app (explicit routes, so no later route is shadowed). The
    app must not serve FastAPI's own /docs, whose Swagger UI comes from a CDN (create it with docs_url=None)."""
    app.router.routes.append(Route("/", _page("index.html"), methods=["GET"], include_in_schema=False))
    app.router.routes.append(Route("/docs", _page("docs.html"), methods=["GET"], include_in_schema=False))
    app.router.routes.append(Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="web-static"))
