"""The server's trust boundary against real `lode serve` processes and raw HTTP (issue #15, items 2, 3 and 7):
Host and Origin on every route (DNS rebinding, cross-site requests), authentication by the caller's address once
no key is left, and X-Forwarded-For believed only from LODE_TRUSTED_PROXIES. Callers that are not on loopback
come from a network namespace (tests/support/netns.py)."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from tests.support.cli import run_cli
from tests.support.netns import namespace_host
from tests.support.polling import wait_until
from tests.support.serve_process import lode_serve
from tests.support.api_server import SHOP
from tests.support.trees import write_tree

from lode.api.hosts import HostPolicy
from lode.api.keys import ApiKeys
from lode.engine import Lode
from lode.jobs import ACTIVE as ACTIVE_JOB_STATES

EVERY_ROUTE = ["/v1/repositories", "/v1/search?q=discount&mode=lexical", "/v1/status", "/", "/static/app.js",
               "/docs", "/openapi.json", "/metrics", "/livez", "/readyz", "/health", "/mcp",
               "/v1/pattern?q=discount", "/v1/graph/refs?symbol=apply_discount", "/v1/context?q=discount&mode=lexical"]


def _index_request(path: Path, repo: str) -> str:
    return json.dumps({"path": str(path), "repo": repo})


def test_every_route_refuses_a_foreign_host_and_state_changes_from_a_foreign_origin(
        lode: Lode, tmp_path: Path, no_keys: None) -> None:  # noqa: F811
    """DNS rebinding: a page of attacker.example, its name re-pointed at 127.0.0.1, reaches the server with
    `Host: attacker.example`. Before the fix only /mcp checked it: POST /v1/index of any directory and a search
    of it answered 200 in the open local mode."""
    secret = tmp_path / "secret"
    write_tree(secret, {"notes.py": "def launch_codes():\n    return 1234\n"})
    with lode_serve(tmp_path / "serve.log", env={"LODE_ALLOWED_HOSTS": "lode.internal"}) as served:
        port = served.port
        rebound = {"Host": f"attacker.example:{port}"}
        for route in EVERY_ROUTE:
            error = served.request("GET", route, rebound).error(421)
            assert error["code"] == "misdirected_request" and "attacker.example" in error["message"], route
            assert served.request("GET", route).status != 421, route  # by its own address it answers
        repo = f"rebound-{uuid.uuid4().hex[:8]}"
        assert served.request("POST", "/v1/index", rebound, _index_request(secret, repo)).status == 421
        assert served.request("DELETE", f"/v1/repositories/{repo}", rebound).status == 421

        # the loopback names and LODE_ALLOWED_HOSTS pass, with any port
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"lode.internal:{port}",
                     "lode.internal"):
            assert served.request("GET", "/v1/repositories", {"Host": host}).status == 200, host

        # a state change from another origin is refused; reads are not (the browser keeps their answer from the
        # page without CORS), nor requests without Origin (not from a browser) or from the server's own origins
        for origin in ("http://attacker.example", f"http://attacker.example:{port}", "null",
                       f"http://127.0.0.1.attacker.example:{port}"):
            refused = served.request("POST", "/v1/index", {"Origin": origin}, _index_request(secret, repo))
            assert "Invalid Origin" in refused.error(403)["message"], origin
            assert served.request("DELETE", f"/v1/repositories/{repo}", {"Origin": origin}).status == 403
        assert served.request("GET", f"/v1/repositories/{repo}").error(404)  # nothing was indexed
        assert served.request("GET", "/v1/repositories", {"Origin": "http://attacker.example"}).status == 200
        for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://lode.internal:{port}"):
            accepted = served.request("POST", "/v1/index", {"Origin": origin}, _index_request(secret, repo))
            assert accepted.status == 202, (origin, accepted.body)
        job = accepted.json()["job"]["id"]
        wait_until(lambda: served.request("GET", f"/v1/index/{job}").json()["job"]["state"] not in ACTIVE_JOB_STATES,
                   120, "the index job did not finish")
        same_origin = {"Origin": f"http://localhost:{port}"}
        assert served.request("DELETE", f"/v1/repositories/{repo}", same_origin).status == 200


def test_a_keyless_server_beyond_loopback_refuses_remote_callers_and_keys_rm_warns(
        lode: Lode, tmp_path: Path, no_keys: None) -> None:  # noqa: F811
    """Before the fix, `lode keys rm` of the last key left a server on a non-loopback address open to every
    remote caller (200 on every route, POST /v1/index included), and said nothing."""
    name = f"remote-{uuid.uuid4().hex[:8]}"
    key = ApiKeys(lode.db).create(name)
    roots = tmp_path / "roots"
    write_tree(roots / "shop", SHOP)
    env = {"LODE_SERVER_HEARTBEAT_SECONDS": "2", "LODE_ALLOWED_ROOTS": str(roots)}
    with namespace_host() as remote, lode_serve(tmp_path / "serve.log", remote.here, env) as served:
        port = served.port
        assert remote.request(remote.here, port, "GET", "/v1/repositories",
                              {"Authorization": f"Bearer {key}"}).status == 200  # by its bound address
        assert remote.request(remote.here, port, "GET", "/v1/repositories").error(401)

        code, removed, stderr = run_cli("keys", "rm", name, "--json")
        assert code == 0 and removed["removed"] == name
        assert f"{remote.here}:{port}" in removed["warning"] and str(served.process.pid) in removed["warning"]
        assert "lode: warning:" in stderr and f"{remote.here}:{port}" in stderr

        for method, route, body in (("GET", "/v1/repositories", ""), ("GET", "/v1/search?q=discount", ""),
                                    ("POST", "/v1/index", _index_request(roots / "shop", "remote-shop")),
                                    ("GET", "/metrics", ""), ("POST", "/mcp", "{}")):
            error = remote.request(remote.here, port, method, route, body=body).error(401)
            assert "loopback" in error["message"], route
        # this machine's own non-loopback address is not loopback either
        assert served.request("GET", "/v1/repositories", source=remote.here).error(401)
        assert remote.request(remote.here, port, "GET", "/livez").status == 200  # probes stay open

        os.kill(served.process.pid, signal.SIGKILL)  # leaves its row behind: the heartbeat tells it is gone
        served.process.wait(timeout=30)
        deadline = time.monotonic() + 60
        while True:
            ApiKeys(lode.db).create(name)
            code, removed, _ = run_cli("keys", "rm", name, "--json")
            assert code == 0
            if "warning" not in removed:
                break
            assert time.monotonic() < deadline, "a server killed with SIGKILL is still reported as running"
            time.sleep(1)


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(lode: Lode, tmp_path: Path,
                                                             no_keys: None) -> None:  # noqa: F811
    """Before the fix uvicorn believed X-Forwarded-For from 127.0.0.1: any local process chose its rate-limit
    identity (a fresh one per request), and a keyless server took a remote caller behind a proxy for loopback."""
    env = {"LODE_RATE_LIMIT": "3/minute"}
    with lode_serve(tmp_path / "direct.log", env=env) as served:
        assert [served.request("GET", "/v1/repositories").status for _ in range(3)] == [200, 200, 200]
        forwarded = served.request("GET", "/v1/repositories", {"X-Forwarded-For": "203.0.113.7"})
        assert "LODE_TRUSTED_PROXIES" in forwarded.error(401)["message"]  # not a new identity, not loopback
        assert served.request("GET", "/v1/repositories").error(429)

    # behind a configured proxy the caller is the client the proxy names
    env = {"LODE_RATE_LIMIT": "3/minute", "LODE_TRUSTED_PROXIES": "127.0.0.1"}
    with lode_serve(tmp_path / "proxied.log", env=env) as served:
        def via_proxy(client: str, source: str = "127.0.0.1") -> int:
            return served.request("GET", "/v1/repositories", {"X-Forwarded-For": client}, source=source).status

        assert [via_proxy("127.0.0.9") for _ in range(4)] == [200, 200, 200, 429]
        assert via_proxy("127.0.0.10") == 200  # another local client: its own budget
        assert via_proxy("203.0.113.7") == 401  # a remote client behind the proxy: no key, no entry
        assert via_proxy("127.0.0.11", source="127.0.0.2") == 401  # the same header from a peer that is no proxy


def test_a_wildcard_bind_answers_to_this_machines_addresses() -> None:
    """Bound to 0.0.0.0 the server answers by any address of this machine (a Kubernetes probe sends the pod's
    IP as Host), by nothing else that LODE_ALLOWED_HOSTS does not name."""
    import psutil

    own = [a.address.split("%")[0] for addresses in psutil.net_if_addrs().values() for a in addresses
           if a.family.name in ("AF_INET", "AF_INET6")]
    policy = HostPolicy("0.0.0.0", ["lode.example.com"])
    for address in own:
        assert policy.allows_host(f"[{address}]:8765" if ":" in address else f"{address}:8765"), address
    assert policy.allows_host("lode.example.com") and not policy.allows_host("attacker.example")
    assert not policy.allows_host("198.51.100.77:8765")  # an address that is not this machine's
    bound = HostPolicy("198.51.100.77")
    assert bound.allows_host("198.51.100.77:8765") and not bound.allows_host("198.51.100.78:8765")

def test_malformed_host_and_proxy_settings_are_setting_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in (("LODE_ALLOWED_HOSTS", "bad host:port:x"), ("LODE_MCP_ALLOWED_HOSTS", '["a b"]'),
                            ("LODE_ALLOWED_ORIGINS", "ftp://x"), ("LODE_TRUSTED_PROXIES", "proxy.local")):
        code, _, stderr = run_cli("keys", "list", env={variable: value})
        assert code == 2 and "invalid setting: LODE_" in stderr and "Traceback" not in stderr, (variable, stderr)
