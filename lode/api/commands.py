"""CLI commands around the server: `lode serve`, `lode health`, `lode keys create|list|rm`.

Registered in lode/cli.py; like every command, each imports what it needs when it runs (`lode --help` stays fast),
and the web framework only when `lode serve` runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from lode.engine import Lode

keys_app = typer.Typer(help="API keys for `lode serve` (stored hashed; a key is shown once).",
                       no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; not loopback needs an API key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8765,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs), health probes and metrics."""
    from lode.cli import err, load_settings

    settings = load_settings()
    import uvicorn

    from lode.api.app import create_app
    from lode.api.hosts import is_loopback
    from lode.api.keys import ApiKeys
    from lode.engine import Lode
    from lode.errors import LodeError

    if not is_loopback(host):
        try:
            with Lode(settings) as lode:
                has_keys = ApiKeys(lode.db).any()
        except LodeError as exc:
            err.print(f"lode: error: {exc}", markup=False, highlight=False)
            raise typer.Exit(1) from None
        if not has_keys:
            err.print(f"lode: error: refusing to serve on {host} without API keys: anyone who can reach it could "
                      "read and index code. Create one with `lode keys create NAME`, or bind to 127.0.0.1.",
                      markup=False, highlight=False)
            raise typer.Exit(2)
    err.print(f"lode: serving http://{host}:{port} (API docs at /docs, health at /health); Ctrl-C stops",
              markup=False, highlight=False)
    # proxy headers are the app's to judge (LODE_TRUSTED_PROXIES, lode/api/hosts.py), not uvicorn's 127.0.0.1 default
    uvicorn.run(create_app(settings, host=host, port=port), host=host, port=port, log_config=None, access_log=False,
                server_header=False, proxy_headers=False)


def health(as_json: JsonOption = False) -> None:
    """Check the database, Redis, the embedding provider, circuit breakers and the embedding backlog."""
    from lode.cli import _print_json, load_settings, out

    settings = load_settings()
    from lode.engine import Lode
    from lode.health import health_report

    with Lode(settings) as lode:
        report = health_report(lode)
    if as_json:
        _print_json(report)
    else:
        colour = {"pass": "green", "warn": "yellow", "fail": "red"}
        out.print(f"[bold {colour[report['status']]}]{report['status']}[/]")
        for name, check in report["checks"].items():
            details = ", ".join(f"{k}={v}" for k, v in check.items() if k not in ("status", "breakers"))
            out.print(f"  [{colour[check['status']]}]{check['status']:<4}[/] {name:<9} {details}", highlight=False)
    if report["status"] == "fail":
        raise typer.Exit(1)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A name for the key (who or what uses it).")],
    repo: Annotated[list[str] | None, typer.Option("--repo", help="Only this repository (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from lode.api.keys import ApiKeys
    from lode.cli import _run, out

    def render(result: dict[str, Any]) -> None:
        out.print(result["key"], markup=False, highlight=False)
        print(f"key {result['name']!r} created; it is not shown again"
              + (f"; repositories: {', '.join(result['repos'])}" if result["repos"] else ""), file=sys.stderr)

    _run(as_json, lambda lode: {"name": name, "key": ApiKeys(lode.db).create(name, repo), "repos": repo or None},
         render)


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """List key names, their repositories and creation dates (never the keys)."""
    from lode.api.keys import ApiKeys
    from lode.cli import _run, out

    def action(lode: Lode) -> dict[str, Any]:
        return {"keys": [{"name": k.name, "repos": list(k.repos) if k.repos is not None else None,
                          "created_at": k.created_at.isoformat()} for k in ApiKeys(lode.db).all()]}

    def render(result: dict[str, Any]) -> None:
        if not result["keys"]:
            out.print("no API keys: the server answers only callers on its own loopback, without authentication")
        for key in result["keys"]:
            out.print(f"{key['name']}  {', '.join(key['repos']) if key['repos'] else 'all repositories'}  "
                      f"{key['created_at']}", markup=False, highlight=False)

    _run(as_json, action, render)


@keys_app.command("rm")
def keys_rm(name: Annotated[str, typer.Argument(help="Key name.")], as_json: JsonOption = False) -> None:
    """Remove a key: requests with it are refused from then on."""
    from lode.api.keys import ApiKeys
    from lode.cli import _run, out
    from lode.store.servers import Servers

    def action(lode: Lode) -> dict[str, Any]:
        keys = ApiKeys(lode.db)
        keys.remove(name)
        exposed = [] if keys.any() else Servers(lode.db).exposed()
        if not exposed:
            return {"removed": name}
        warning = (f"no API key is left while lode serve listens beyond loopback on "
                   f"{', '.join(map(str, exposed))}: it now refuses every remote caller (401) and answers only "
                   f"its own loopback; create a key with `lode keys create NAME` to let remote callers in")
        print(f"lode: warning: {warning}", file=sys.stderr)
        return {"removed": name, "warning": warning}

    _run(as_json, action, lambda result: out.print(f"removed key {result['removed']}"))
