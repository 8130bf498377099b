"""CLI commands around the server: `lode serve`, `lode health`, `lode keys create|list|rm`.

Registered in lode/cli.py; like every command, each imports what it needs when it runs (`lode --help` stays fast),
and the web framework only when `lode serve` runs. The shared output helpers come from lode/cli_output.py.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import signal
import socket
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lode.cli_output import JsonOption, err, load_settings, out, print_json, run_action
from lode.errors import InputError, LodeError

if TYPE_CHECKING:
    from lode.engine import Lode

keys_app = typer.Typer(help="API keys for `lode serve` (stored hashed; a key is shown once).",
                       no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind; not loopback needs an API key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="<int>", min=0, max=65535, help="Port to listen on.")] = 8765,
) -> None:
    """Serve the REST API (OpenAPI at /openapi.json, docs at /docs), health probes and metrics."""

    try:
        address, listener = _bind(host, port)  # before anything starts: a busy port is one line, not a traceback
    except LodeError as exc:
        err.print(f"lode: error: {exc}", markup=False, highlight=False)
        raise typer.Exit(exc.exit_code) from None
    import uvicorn

    from lode.api.app import create_app
    from lode.api.hosts import is_loopback
    from lode.api.keys import ApiKeys
    from lode.engine import Lode

    with listener:
        settings = load_settings()
        if not is_loopback(address):
            try:
                with Lode(settings) as lode:
                    has_keys = ApiKeys(lode.db).any()
            except LodeError as exc:
                err.print(f"lode: error: {exc}", markup=False, highlight=False)
                raise typer.Exit(1) from None
            if not has_keys:
                err.print(f"lode: error: refusing to serve on {host} without API keys: anyone who can reach it "
                          "could read and index code. Create one with `lode keys create NAME`, or bind to 127.0.0.1.",
                          markup=False, highlight=False)
                raise typer.Exit(2)
        port = listener.getsockname()[1]  # the one the system chose for --port 0
        # SIGTERM (systemd, `docker stop`) stops the server as Ctrl-C does: uvicorn shuts down gracefully, then
        # re-raises the signal, whose default action would skip the exit hooks that take this process off the
        # embedded PostgreSQL's holder list (lode/store/embedded.py)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        shown = f"[{address}]" if ":" in address else address
        err.print(f"lode: serving http://{shown}:{port} (API docs at /docs, health at /health); Ctrl-C stops",
                  markup=False, highlight=False)
        # proxy headers are the app's to judge (LODE_TRUSTED_PROXIES, lode/api/hosts.py), not uvicorn's default
        config = uvicorn.Config(create_app(settings, host=address, port=port), log_config=None, access_log=False,
                                server_header=False, proxy_headers=False)
        with contextlib.suppress(KeyboardInterrupt):  # the re-raised stop signal, after the shutdown (as uvicorn.run)
            uvicorn.Server(config).run(sockets=[listener])


_HOST_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")


def _bind(host: str, port: int) -> tuple[str, socket.socket]:
    """The address to serve on (an IPv6 literal may come in brackets, as in a URL) and a socket bound to it.
    InputError (exit 2) for what is not an address or a host name, checked before any name lookup; LodeError
    (exit 1) for a port in use, an address that is not this machine's, or a name that does not resolve."""
    address = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        is_ipv6 = ipaddress.ip_address(address).version == 6
    except ValueError:
        if host != address or not _HOST_NAME.fullmatch(address) or len(address) > 253:
            raise InputError(f"--host {host!r} is not an IP address or a host name") from None
        is_ipv6 = False
    try:
        family, kind, proto, _, sockaddr = socket.getaddrinfo(
            address, port, socket.AF_INET6 if is_ipv6 else socket.AF_UNSPEC, socket.SOCK_STREAM,
            flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise LodeError(f"cannot serve on {host}: {getattr(exc, 'strerror', None) or exc}") from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: no wait for TIME_WAIT
        listener.bind(sockaddr)
    except OSError as exc:
        listener.close()
        raise LodeError(f"cannot serve on {host} port {port}: {exc.strerror or exc}") from None
    return address, listener


def health(as_json: JsonOption = False) -> None:
    """Check the database, Redis, the embedding provider, circuit breakers and the embedding backlog."""

    settings = load_settings()
    from lode.engine import Lode
    from lode.health import health_report

    with Lode(settings) as lode:
        report = health_report(lode)
    if as_json:
        print_json(report)
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
    repo: Annotated[list[str] | None, typer.Option("--repo", metavar="<str>",
                                                   help="Only this repository (repeatable).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from lode.api.keys import ApiKeys

    def render(result: dict[str, Any]) -> None:
        out.print(result["key"], markup=False, highlight=False)
        print(f"key {result['name']!r} created; it is not shown again"
              + (f"; repositories: {', '.join(result['repos'])}" if result["repos"] else ""), file=sys.stderr)

    run_action(as_json, lambda lode: {"name": name, "key": ApiKeys(lode.db).create(name, repo), "repos": repo or None},
               render)


@keys_app.command("list")
def keys_list(as_json: JsonOption = False) -> None:
    """List key names, their repositories and creation dates (never the keys)."""
    from lode.api.keys import ApiKeys

    def action(lode: Lode) -> dict[str, Any]:
        return {"keys": [{"name": k.name, "repos": list(k.repos) if k.repos is not None else None,
                          "created_at": k.created_at.isoformat()} for k in ApiKeys(lode.db).all()]}

    def render(result: dict[str, Any]) -> None:
        if not result["keys"]:
            out.print("no API keys: the server answers only callers on its own loopback, without authentication")
        for key in result["keys"]:
            out.print(f"{key['name']}  {', '.join(key['repos']) if key['repos'] else 'all repositories'}  "
                      f"{key['created_at']}", markup=False, highlight=False)

    run_action(as_json, action, render)


@keys_app.command("rm")
def keys_rm(name: Annotated[str, typer.Argument(help="Key name.")], as_json: JsonOption = False) -> None:
    """Remove a key: requests with it are refused from then on."""
    from lode.api.keys import ApiKeys
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

    run_action(as_json, action, lambda result: out.print(f"removed key {result['removed']}"))
