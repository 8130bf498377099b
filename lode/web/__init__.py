"""The web UI: static HTML/JS/CSS served from the package at `/` (index) and `/static/` (assets).

The graph view uses cytoscape, vendored from npm into static/vendor/ (see web/package.json), so nothing is
fetched or built at run time.
"""

from __future__ import annotations

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


async def _index(request: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def mount(app: Starlette) -> None:
    """Serve the UI from an existing Starlette/FastAPI app (explicit routes, so no later route is shadowed)."""
    app.router.routes.append(Route("/", _index, methods=["GET"], include_in_schema=False))
    app.router.routes.append(Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="web-static"))
