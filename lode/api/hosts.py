"""Which names the server answers to, which pages may change its state, and who is calling.

- Host (DNS rebinding): a page of attacker.example whose name is re-pointed at 127.0.0.1 talks to the server
  with `Host: attacker.example`. Every route, probes included, answers only these Host names (421 otherwise):
  the loopback names, the address the server is bound to (every address of this machine's interfaces for a
  wildcard bind such as 0.0.0.0, so that a Kubernetes probe, which sends the pod's IP, passes), and
  LODE_ALLOWED_HOSTS. A request without Host passes: browsers always send one, and only a browser rebinds.
- Origin (cross-site requests): a POST, PUT, PATCH or DELETE whose Origin is present and not allowed is refused
  (403): allowed are the origins of the allowed Host names, LODE_CORS_ORIGINS and LODE_ALLOWED_ORIGINS.
- The caller's address is the peer's, or, when the peer is one of LODE_TRUSTED_PROXIES, the client its
  X-Forwarded-For names. Forwarding headers from any other peer are ignored, and they mark the request: it came
  through a proxy that is not configured, so its loopback peer address says nothing about who is calling.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import cast
from urllib.parse import urlsplit

import psutil
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from lode.api.models import error_response

LOOPBACK_NAME = "localhost"
WILDCARD_BINDS = ("0.0.0.0", "::", "[::]", "")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FORWARDING_HEADERS = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
_UNTRUSTED_FORWARDING = "lode.untrusted_forwarding"  # scope key set by ClientAddress
_HOST_NAME = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")  # DNS labels


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == LOOPBACK_NAME:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name.split("%", 1)[0])  # fe80::1%eth0: the zone is not part of the address
    except ValueError:
        return None


def split_host(value: str) -> tuple[str, int | None] | None:
    """'Name:port' (or '[v6]:port') as (lowercase name without brackets or trailing dot, port or None);
    None when it is malformed."""
    value = value.strip().lower()
    if value.count(":") > 1 and not value.startswith("["):
        return (value, None) if _ip(value) is not None else None  # a bare IPv6 address (a bind, a setting)
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1:]
        if end < 0 or _ip(name) is None or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        name, _, port_text = value.partition(":")
        port_text = port_text if ":" in value else None
    if port_text is not None and not (port_text.isdigit() and int(port_text) < 65536):
        return None
    name = name.rstrip(".")
    if not (_HOST_NAME.match(name) or _ip(name) is not None):
        return None
    return name, int(port_text) if port_text is not None else None


def host_pattern(text: str) -> tuple[str, int | None]:
    """An allowed host as (name, port); port None: any ('name', 'name:*'). ValueError when it is none."""
    text = text.strip()
    any_port = text.endswith(":*")
    parsed = split_host(text[:-2] if any_port else text)
    if parsed is None:
        raise ValueError(f"not a host name, name:port or name:*: {text!r}")
    return parsed[0], None if any_port else parsed[1]


def origin_pattern(text: str) -> tuple[str, str, int | None]:
    """An allowed origin as (scheme, name, port); port None: any. ValueError when it is none."""
    text = text.strip()
    any_port = text.endswith(":*")
    parts = urlsplit(text[:-2] if any_port else text)
    parsed = split_host(parts.netloc) if parts.scheme in ("http", "https") and not parts.path.strip("/") else None
    if parsed is None:
        raise ValueError(f"not an origin (http[s]://name[:port|:*]): {text!r}")
    return parts.scheme, parsed[0], None if any_port else parsed[1]


class HostPolicy:
    """The one place that decides which Host and Origin headers the server accepts (module docstring)."""

    def __init__(self, bind: str, allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = (),
                 cors_origins: Iterable[str] = ()) -> None:
        self.wildcard = bind.strip() in WILDCARD_BINDS
        # (name, port); port None: any
        self.hosts = [host_pattern(p) for p in [*allowed_hosts, *([] if self.wildcard else [bind])]]
        self.origins = {o.rstrip("/").lower() for o in cors_origins}
        self.origin_patterns = [origin_pattern(p) for p in allowed_origins]

    def allows_host(self, value: str) -> bool:
        parsed = split_host(value)
        if parsed is None:
            return False
        name, port = parsed
        if is_loopback(name) or any(name == n and p in (None, port) for n, p in self.hosts):
            return True
        return self.wildcard and _ip(name) is not None and _ip(name) in _interface_addresses()

    def allows_origin(self, value: str) -> bool:
        origin = value.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.path or parts.query:
            return False  # "null" (sandboxed frames, file:) and anything else that is no origin
        if self.allows_host(parts.netloc):
            return True
        parsed = split_host(parts.netloc)
        return parsed is not None and any(
            parts.scheme == s and parsed[0] == n and p in (None, parsed[1]) for s, n, p in self.origin_patterns)


def _interface_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """This machine's addresses now (read at each look-up: only a Host that nothing else allowed gets here)."""
    found = set()
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6) and (ip := _ip(address.address)) is not None:
                found.add(ip)
    return found


class HostGuard:
    """421 for a Host the policy does not allow, on every route; 403 for a state-changing request from an
    Origin it does not allow."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"host" and not self.policy.allows_host(text := value.decode("latin-1")):
                await error_response(421, "misdirected_request", f"Invalid Host header {text!r}: this server answers "
                             "to its loopback names and bound address; add names with LODE_ALLOWED_HOSTS"
                             )(scope, receive, send)
                return
            if (name == b"origin" and scope["method"] not in SAFE_METHODS
                    and not self.policy.allows_origin(text := value.decode("latin-1"))):
                await error_response(403, "forbidden", f"Invalid Origin header {text!r}: requests that change state "
                             "are refused from other origins; allow one with LODE_CORS_ORIGINS or LODE_ALLOWED_ORIGINS"
                             )(scope, receive, send)
                return
        await self.app(scope, receive, send)


class ClientAddress:
    """Sets scope["client"] to the caller (uvicorn's ProxyHeadersMiddleware with LODE_TRUSTED_PROXIES, not its
    127.0.0.1 default) and marks forwarding headers that came from a peer which is not a trusted proxy."""

    def __init__(self, app: ASGIApp, trusted_proxies: list[str]) -> None:
        self.app = app
        # uvicorn types the ASGI callables with its own, narrower types than starlette's
        self.proxy = ProxyHeadersMiddleware(app, trusted_proxies) if trusted_proxies else None  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or ("", 0))[0]
        trusted = self.proxy is not None and peer in self.proxy.trusted_hosts
        scope[_UNTRUSTED_FORWARDING] = not trusted and any(n in FORWARDING_HEADERS for n, _ in scope["headers"])
        handler = cast(ASGIApp, self.proxy) if trusted else self.app  # trusted: there is a proxy
        await handler(scope, receive, send)


def caller_is_local(scope: Scope) -> bool:
    """The caller is on this machine's loopback: its address (after a trusted proxy's rewrite) is a loopback
    one, and it did not come through a proxy that is not configured."""
    client = scope.get("client")
    return client is not None and is_loopback(client[0]) and not scope.get(_UNTRUSTED_FORWARDING, False)
