"""The MCP server through the SDK's own client: over stdio (the real `lode mcp` process), over streamable HTTP
(the REST app served by uvicorn on a free port), and in process for the token-budget packing."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from lode.config import ServerSettings, Settings
from lode.engine import Lode
from lode.mcp import create_server
from lode.services.context import count_tokens
from lode.search.paths import is_test_path

FIXTURE = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"
TOOLS = {"search_code", "find_symbol", "get_callers", "get_callees", "find_path", "find_references",
         "index_repository", "index_status", "get_context", "get_symbols_overview", "read_code", "search_pattern",
         "clear_index"}
TEST_FILE = '''import shop.pricing as pricing
from shop.models import Order, Product
from shop.pricing import Discount, total


def test_total_applies_rules():
    order = Order("o2")
    order.add(Product("pear", 2))
    assert total(order, [Discount(50)]) > 0


def test_total_keeps_its_name():
    assert pricing.total.__name__ == "total"
'''


@pytest.fixture(scope="module")
def shop(lode: Lode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pyshop fixture plus a tests/ directory, indexed under a fresh name."""
    root = tmp_path_factory.mktemp("mcp") / "shop"
    shutil.copytree(FIXTURE, root)
    (root / "tests").mkdir()
    (root / "tests" / "test_pricing.py").write_text(TEST_FILE)
    name = f"mcp-{uuid.uuid4().hex[:8]}"
    lode.indexing.index(root, name)
    return name


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content)


def call(client: Client, tool: str, **arguments: Any) -> Any:
    return client.call_tool(tool, arguments)


# ---- stdio: the real `lode mcp` process ---------------------------------------------------------------------


def stdio_params(lode_home: Path) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "lode", "mcp"],
                                 env={"LODE_HOME": str(lode_home), "LODE_EMBEDDER": "none"})


def test_every_tool_over_stdio_answers_from_the_index(lode_home: Path, shop: str, tmp_path: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "geometry.py").write_text("def hypotenuse_length(a, b):\n    return (a * a + b * b) ** 0.5\n")
    extra_name = f"mcp-extra-{uuid.uuid4().hex[:8]}"
    progress: list[tuple[float, float | None]] = []

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with Client(stdio_params(lode_home), read_timeout_seconds=120) as client:
            out["tools"] = {t.name for t in (await client.list_tools()).tools}
            out["search"] = await call(client, "search_code", query="apply discount", repo=shop, mode="lexical", k=5)
            out["filtered"] = await call(client, "search_code", query="amount", repo=shop, mode="lexical",
                                         kind="function", path="shop/**", lang="python")
            out["symbol"] = await call(client, "find_symbol", name="Discount.apply", repo=shop)
            out["callers"] = await call(client, "get_callers", symbol="shop.pricing.total", repo=shop)
            out["callees"] = await call(client, "get_callees", symbol="shop.pricing.total", repo=shop, depth=2)
            out["path"] = await call(client, "find_path", source="shop.cart.Cart.checkout",
                                     target="shop.pricing.with_tax", repo=shop)
            out["status"] = await call(client, "index_status", repo=shop)
            out["context"] = await call(client, "get_context", symbol="shop.pricing.total", repo=shop,
                                        budget_tokens=2000)

            async def on_progress(done: float, total: float | None, message: str | None) -> None:
                progress.append((done, total))

            out["index"] = await client.call_tool("index_repository", {"path": str(extra), "repo": extra_name},
                                                  progress_callback=on_progress)
            out["after_index"] = await call(client, "search_code", query="hypotenuse length", repo=extra_name,
                                            mode="lexical")
            out["ambiguous"] = await call(client, "get_callers", symbol="write", repo=shop)
            out["empty_query"] = await call(client, "search_code", query="   ")
            out["bad_k"] = await call(client, "search_code", query="x", k=0)
            out["bad_glob"] = await call(client, "search_code", query="x", path="x" * 501)
            out["no_repo"] = await call(client, "index_status", repo="no-such-repo")
            out["not_a_dir"] = await call(client, "index_repository", path=str(extra / "geometry.py"))
            out["both"] = await call(client, "get_context", query="x", symbol="y")
            out["still_alive"] = await call(client, "find_symbol", name="with_tax", repo=shop)
        return out

    out = anyio.run(scenario)
    assert out["tools"] == TOOLS
    for key in ("search", "filtered", "symbol", "callers", "callees", "path", "status", "context", "index",
                "after_index", "still_alive"):
        assert not out[key].is_error, (key, text_of(out[key]))

    search = text_of(out["search"])
    assert search.startswith("5 hits for 'apply discount' (lexical)")
    assert "shop/pricing.py:17-22  class shop.pricing.Discount" in search
    hit_lines = [line for line in text_of(out["filtered"]).splitlines()[1:] if line[:1].isdigit()]
    assert hit_lines and all("  function " in line and line.split(". ", 1)[1].startswith("shop/")
                             for line in hit_lines)

    symbol = text_of(out["symbol"])
    assert "shop/pricing.py:21-22  method shop.pricing.Discount.apply" in symbol
    assert "def apply(self, amount)" in symbol

    callers = text_of(out["callers"])
    assert "callers of shop.pricing.total shop/pricing.py:29-33 (depth 1): 3 found" in callers
    assert "shop.cart.Cart.checkout  shop/cart.py:15-19  [calls 1.00 at shop/cart.py:19]" in callers
    assert "test_pricing.test_total_applies_rules  tests/test_pricing.py:6-9" in callers

    callees = text_of(out["callees"]).splitlines()
    assert "shop.pricing.subtotal  shop/pricing.py:25-26  [calls 1.00 at shop/pricing.py:30]" in callees
    assert "shop.pricing.with_tax  shop/pricing.py:36-37  [calls 1.00 at shop/pricing.py:33]" in callees

    assert text_of(out["path"]).splitlines() == [
        "shop.cart.Cart.checkout shop/cart.py:15-19 (forward)",
        "  -> shop.pricing.total shop/pricing.py:29-33  [calls at shop/cart.py:19]",
        "  -> shop.pricing.with_tax shop/pricing.py:36-37  [calls at shop/pricing.py:33]",
    ]
    status = text_of(out["status"])
    assert status.startswith(f"{shop}: ") and "10 files (python 9, text 1)" in status

    context = text_of(out["context"])
    assert context.startswith("Context for symbol shop.pricing.total")
    for header in ("### definition: shop.pricing.total (shop/pricing.py:29-33",
                   "### caller: shop.cart.Cart.checkout (shop/cart.py:15-19",
                   "### callee: shop.pricing.with_tax (shop/pricing.py:36-37",
                   "### test: tests.test_pricing.test_total_keeps_its_name (tests/test_pricing.py:12-13"):  # PEP 420
        assert header in context
    assert "return with_tax(amount)" in context and "Dropped" not in context
    assert count_tokens(context) <= 2000

    assert text_of(out["index"]).startswith(f"Indexed {extra_name}: 1 files indexed")
    assert progress and progress[-1][0] <= (progress[-1][1] or progress[-1][0])
    assert "geometry.py:1-2  function geometry.hypotenuse_length" in text_of(out["after_index"])

    errors = {key: text_of(out[key]) for key in ("ambiguous", "empty_query", "bad_k", "bad_glob", "no_repo",
                                                   "not_a_dir", "both")}
    assert [key for key in errors if not out[key].is_error] == [], errors
    assert "'write' is ambiguous: shop.storage.backends.Backend.write" in errors["ambiguous"]
    assert errors["empty_query"].endswith("the query is empty")
    assert errors["bad_k"] == ("Error executing tool search_code: the argument 'k' must be an integer from 1 to "
                               "200, not 0")
    assert errors["bad_glob"].startswith("Error executing tool search_code: the argument 'path' must be a string "
                                         "of 1 to 500 characters or null (or left out), not 'xxxx")
    assert errors["no_repo"].endswith("no repository named 'no-such-repo'; index_status lists them")
    assert "not a directory" in errors["not_a_dir"]
    assert errors["both"].endswith("pass exactly one of query or symbol")
    assert "shop/pricing.py:36-37  function shop.pricing.with_tax" in text_of(out["still_alive"])


def test_stdio_stdout_carries_only_json_rpc(lode_home: Path, shop: str, tmp_path: Path) -> None:
    """Raw pipes, no SDK client: every stdout line, through startup, a search and an index run with worker
    processes, must be a JSON-RPC message; logs go to stderr."""
    (tmp_path / "mod.py").write_text("def noisy():\n    print('hello')\n")
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search_code", "arguments":
                                                                        {"query": "total", "repo": shop}}},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "index_repository", "arguments": {
            "path": str(tmp_path), "repo": f"mcp-raw-{uuid.uuid4().hex[:8]}"}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "get_callers", "arguments":
                                                                        {"symbol": "nothing_like_this"}}},
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "lode", "mcp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "LODE_HOME": str(lode_home), "LODE_EMBEDDER": "none", "LODE_LOG_LEVEL": "DEBUG"},
        text=True,
    )
    lines: list[str] = []
    try:
        for request in requests:
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            if "id" in request:  # read up to this request's answer
                while True:
                    line = proc.stdout.readline()
                    assert line, f"stdout closed; stderr: {proc.stderr.read()}"
                    lines.append(line)
                    if json.loads(line).get("id") == request["id"]:
                        break
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        lines += proc.stdout.readlines()
    finally:
        if proc.poll() is None:
            proc.kill()
    messages = [json.loads(line) for line in lines]
    assert all(m["jsonrpc"] == "2.0" for m in messages)
    answers = {m["id"]: m for m in messages if "id" in m}
    assert answers[2]["result"]["isError"] is False
    assert "shop/pricing.py:29-33" in answers[2]["result"]["content"][0]["text"]
    assert answers[3]["result"]["isError"] is False
    assert answers[4]["result"]["isError"] is True
    assert "nothing_like_this" in answers[4]["result"]["content"][0]["text"]


# ---- streamable HTTP: the REST app ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def http_server(lode: Lode) -> Iterator[str]:
    with serving(Settings(home=lode.settings.home, embedder="none")) as url:
        yield url


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The REST app (with /mcp mounted) served by uvicorn in a thread on a free port."""
    from lode.api.app import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_tools_over_streamable_http(lode: Lode, http_server: str, shop: str, tmp_path: Path) -> None:
    (tmp_path / "scratch.py").write_text("def scratch():\n    return 1\n")
    scratch = f"mcp-scratch-{uuid.uuid4().hex[:8]}"
    lode.indexing.index(tmp_path, scratch)

    async def scenario() -> dict[str, Any]:
        async with Client(f"{http_server}/mcp", read_timeout_seconds=60) as client:
            return {
                "tools": {t.name for t in (await client.list_tools()).tools},
                "search": await call(client, "search_code", query="restock product", repo=shop, mode="lexical", k=3),
                "callees": await call(client, "get_callees", symbol="Cart.put", repo=shop),
                "context": await call(client, "get_context", query="restock product", repo=shop, mode="lexical",
                                      budget_tokens=250),
                "status": await call(client, "index_status"),
                "unknown": await call(client, "find_symbol", name="x", repo="no-such-repo"),
                "outline": await call(client, "get_symbols_overview", path="shop/cart.py", repo=shop),
                "clear": await call(client, "clear_index", repo=scratch),
            }

    out = anyio.run(scenario)
    assert out["tools"] == TOOLS
    assert "shop/models.py:29-31  method shop.models.Product.restock" in text_of(out["search"])
    assert "shop.models.Order.add  shop/models.py:39-42" in text_of(out["callees"])
    context = text_of(out["context"])
    assert count_tokens(context) <= 250 and "Dropped for the budget:" in context
    assert f"{shop}: " in text_of(out["status"])
    assert out["unknown"].is_error and "no repository named 'no-such-repo'" in text_of(out["unknown"])
    assert "15-19 method checkout" in text_of(out["outline"])
    assert out["clear"].structured_content == {"removed": scratch}
    assert scratch not in {r["repo"] for r in lode.repos.all()}


def test_http_endpoint_rejects_foreign_hosts_and_origins(http_server: str) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    port = http_server.rsplit(":", 1)[1]
    with httpx.Client(base_url=http_server, timeout=30) as client:
        rebound = client.post("/mcp", json=init, headers={**headers, "Host": f"attacker.example:{port}"})
        assert rebound.status_code == 421 and "Invalid Host header" in rebound.text
        foreign = client.post("/mcp", json=init, headers={**headers, "Origin": "http://attacker.example"})
        assert foreign.status_code == 403 and "Invalid Origin header" in foreign.text
        local = client.post("/mcp", json=init, headers={**headers, "Origin": f"http://localhost:{port}"})
        assert local.status_code == 200
        assert "serverInfo" in local.text


def test_allowed_hosts_and_origins_are_configurable(lode: Lode, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.api_client import local_client

    from lode.api.app import create_app

    monkeypatch.setenv("LODE_MCP_ALLOWED_HOSTS", '["lode.internal"]')
    monkeypatch.setenv("LODE_MCP_ALLOWED_ORIGINS", '["https://ui.internal"]')
    settings = Settings(home=lode.settings.home, embedder="none")
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    headers = {"Accept": "application/json, text/event-stream"}
    with local_client(create_app(settings), base_url="http://lode.internal") as client:
        assert client.post("/mcp", json=init, headers={**headers, "Origin": "https://ui.internal"}).status_code == 200
        assert client.post("/mcp", json=init, headers={**headers, "Host": "ui.internal"}).status_code == 421
        foreign = {**headers, "Origin": "https://attacker.example"}
        assert client.post("/mcp", json=init, headers=foreign).status_code == 403
        # the older LODE_MCP_* names widen the defaults, as LODE_ALLOWED_HOSTS does: loopback names still pass
        assert client.post("/mcp", json=init, headers={**headers, "Host": "localhost:8765"}).status_code == 200


def test_http_tools_follow_the_api_keys_repository_scope(lode: Lode, http_server: str, shop: str,
                                                          tmp_path: Path) -> None:
    """Once keys exist /mcp needs one, and a key scoped to one repository sees and indexes only that one."""
    from lode.api.keys import ApiKeys
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    other = f"mcp-other-{uuid.uuid4().hex[:8]}"
    (tmp_path / "other.py").write_text("def other_thing():\n    return 1\n")
    lode.indexing.index(tmp_path, other)
    keys = ApiKeys(lode.db)
    key_name = f"mcp-{uuid.uuid4().hex[:8]}"
    token = keys.create(key_name, [shop])

    async def scenario() -> dict[str, Any]:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(f"{http_server}/mcp", http_client=http)) as client:
            return {
                "status": await call(client, "index_status"),
                "own": await call(client, "find_symbol", name="with_tax", repo=shop),
                "foreign": await call(client, "search_code", query="other thing", repo=other),
                "everywhere": await call(client, "search_code", query="other thing", mode="lexical"),
                "index": await call(client, "index_repository", path=str(tmp_path), repo=other),
                "index_unnamed": await call(client, "index_repository", path=str(tmp_path)),
                "clear_foreign": await call(client, "clear_index", repo=other),
                "read_foreign": await call(client, "read_code", path="other.py", repo=other),
                "outline_unnamed": await call(client, "get_symbols_overview", path="shop/cart.py"),
            }

    try:
        with httpx.Client(base_url=http_server, timeout=30) as anonymous:
            assert anonymous.post("/mcp", json={}, headers={"Accept": "application/json, text/event-stream"}
                                  ).status_code == 401
        out = anyio.run(scenario)
    finally:
        keys.remove(key_name)
    assert text_of(out["status"]).startswith(f"{shop}: ") and other not in text_of(out["status"])
    assert "shop/pricing.py:36-37" in text_of(out["own"])
    assert out["foreign"].is_error and f"not allowed to use repository {other!r}" in text_of(out["foreign"])
    assert text_of(out["everywhere"]).startswith("0 hits")
    assert out["index"].is_error and f"not allowed to use repository {other!r}" in text_of(out["index"])  # first
    assert out["index_unnamed"].is_error and "LODE_ALLOWED_ROOTS" in text_of(out["index_unnamed"])
    assert out["clear_foreign"].is_error and f"not allowed to use repository {other!r}" in text_of(out["clear_foreign"])
    assert other in {r["repo"] for r in lode.repos.all()}
    assert out["read_foreign"].is_error and f"not allowed to use repository {other!r}" in text_of(out["read_foreign"])
    assert "15-19 method checkout" in text_of(out["outline_unnamed"])  # the key's only repository


def test_index_repository_checks_the_keys_scope_before_the_repository(lode: Lode, tmp_path: Path) -> None:
    """Issue 15, item 6, over MCP: with LODE_ALLOWED_ROOTS set, an index request naming a repository outside the
    key's scope (or through its directory's name) is refused before that repository's root is looked up."""
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from lode.api.keys import ApiKeys

    allowed = tmp_path / "allowed"
    other = f"mcp-hidden-{uuid.uuid4().hex[:8]}"
    for directory in (allowed / "hidden-root", allowed / "mine", allowed / "elsewhere" / other):
        directory.mkdir(parents=True)
        (directory / "m.py").write_text("def m():\n    return 1\n")
    lode.indexing.index(allowed / "hidden-root", other)
    keys = ApiKeys(lode.db)
    key_name = f"mcp-scope-{uuid.uuid4().hex[:8]}"
    token = keys.create(key_name, [f"mcp-mine-{uuid.uuid4().hex[:8]}"])
    settings = Settings(home=lode.settings.home, embedder="none",
                        server=ServerSettings(allowed_roots=[allowed], rate_limit=None))

    async def scenario(url: str) -> dict[str, Any]:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http, Client(streamable_http_client(f"{url}/mcp", http_client=http)) as client:
            return {
                "named": await call(client, "index_repository", path=str(allowed / "mine"), repo=other),
                "by_directory": await call(client, "index_repository", path=str(allowed / "elsewhere" / other)),
            }

    try:
        with serving(settings) as url:
            out = anyio.run(scenario, url)
    finally:
        keys.remove(key_name)
    for case, result in out.items():
        text = text_of(result)
        assert result.is_error and text.endswith(f"the API key {key_name!r} is not allowed to use repository "
                                                 f"{other!r}"), (case, text)
        assert "hidden-root" not in text


NUL_CALLS = [  # (tool, arguments, the argument the error must name)
    ("search_code", {"query": "x", "repo": "shop\x00"}, "repo"),
    ("search_code", {"query": "x", "path": "src/\x00*.py"}, "path"),
    ("find_symbol", {"name": "total", "repo": "\x00"}, "repo"),
    ("get_callers", {"symbol": "total", "repo": "a\x00b"}, "repo"),
    ("get_callees", {"symbol": "total", "repo": "a\x00b"}, "repo"),
    ("find_path", {"source": "a", "target": "b", "repo": "a\x00b"}, "repo"),
    ("index_status", {"repo": "a\x00b"}, "repo"),
    ("get_context", {"query": "total", "repo": "a\x00b"}, "repo"),
    ("index_repository", {"path": "/tmp/\x00x"}, "path"),
    ("index_repository", {"path": "/tmp", "repo": "a\x00b"}, "repo"),
    ("get_symbols_overview", {"path": "shop\x00"}, "path"),
    ("get_symbols_overview", {"path": "shop", "repo": "a\x00b"}, "repo"),
    ("read_code", {"path": "shop/\x00.py"}, "path"),
    ("read_code", {"path": "shop/pricing.py", "repo": "a\x00b"}, "repo"),
    ("search_pattern", {"pattern": "total", "path": "shop/\x00"}, "path"),
    ("search_pattern", {"pattern": "total", "repo": "a\x00b"}, "repo"),
    ("clear_index", {"repo": "a\x00b"}, "repo"),
]


def test_a_nul_in_repo_or_path_is_a_one_line_error_naming_the_argument(lode_home: Path, shop: str) -> None:
    """Issue 15, item 14, over stdio (the real `lode mcp` process) through the SDK's client."""
    async def scenario() -> list[Any]:
        async with Client(stdio_params(lode_home), read_timeout_seconds=120) as client:
            return [await call(client, tool, **arguments) for tool, arguments, _ in NUL_CALLS]

    for (tool, _, argument), result in zip(NUL_CALLS, anyio.run(scenario)):
        assert result.is_error, tool
        assert text_of(result) == f"Error executing tool {tool}: the argument {argument!r} contains a NUL character"


# ---- get_context packing, in process ------------------------------------------------------------------------


def test_get_context_never_exceeds_the_budget_and_lists_what_it_dropped(lode: Lode, shop: str) -> None:
    async def contexts() -> dict[int, str]:
        async with Client(create_server(lambda: lode)) as client:
            out = {}
            for budget in (100, 140, 200, 320, 600, 1200, 5000):
                result = await call(client, "get_context", symbol="shop.pricing.total", repo=shop, budget_tokens=budget)
                assert not result.is_error, text_of(result)
                out[budget] = text_of(result)
            too_small = await call(client, "get_context", symbol="total", repo=shop, budget_tokens=10)
            assert too_small.is_error and "budget_tokens" in text_of(too_small)
            return out

    out = anyio.run(contexts)
    for budget, text in out.items():
        assert count_tokens(text) <= budget, budget
        assert text.rstrip().endswith(f"of {budget} tokens, estimated at 3 characters per token]")
    assert "Dropped for the budget" in out[100] and "### definition" not in out[100]
    assert "### definition: shop.pricing.total" in out[200]
    assert "Dropped for the budget: caller " in out[320]  # named, with its citation
    assert "Dropped" not in out[5000]
    sections = [out[b].count("### ") for b in sorted(out)]
    assert sections == sorted(sections) and sections[-1] >= 6  # a larger budget never holds less


def test_a_long_caller_is_cut_around_its_call_site(lode: Lode, tmp_path: Path) -> None:
    body = "\n".join(f"    step_{i} = {i}" for i in range(120))
    (tmp_path / "long.py").write_text(
        f"def target():\n    return 1\n\n\ndef long_caller():\n{body}\n    return target()\n")
    name = f"mcp-long-{uuid.uuid4().hex[:8]}"
    lode.indexing.index(tmp_path, name)

    async def context() -> str:
        async with Client(create_server(lambda: lode)) as client:
            return text_of(await call(client, "get_context", symbol="target", repo=name, budget_tokens=220))

    text = anyio.run(context)
    assert count_tokens(text) <= 220
    assert "### caller: long.long_caller (long.py:5-126, lines " in text and "shown" in text
    assert "return target()" in text  # the call site is kept
    assert "step_0 = 0" not in text


def test_test_paths_are_recognised() -> None:
    assert all(map(is_test_path, ["tests/test_x.py", "pkg/test_x.py", "a/b_test.go", "src/x.test.ts",
                                  "spec/models/user_spec.rb", "src/FooTest.java", "web/__tests__/a.js"]))
    assert not any(map(is_test_path, ["src/testing_utils_helper.txt.md", "lode/contest.py", "shop/pricing.py"]))


# ---- issue 19 § 3: arguments, new tools, default repository, structured output ------------------------------


def stdio_in(lode_home: Path, cwd: Path | None = None, *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "lode", "mcp", *args], cwd=cwd,
                                 env={"LODE_HOME": str(lode_home), "LODE_EMBEDDER": "none"})


def test_schemas_have_titles_enums_output_schemas_and_refuse_extra_arguments(lode: Lode) -> None:
    async def tools() -> list[Any]:
        async with Client(create_server(lambda: lode)) as client:
            return (await client.list_tools()).tools

    listed = {tool.name: tool for tool in anyio.run(tools)}
    assert set(listed) == TOOLS
    for tool in listed.values():
        assert tool.title and tool.description and tool.output_schema, tool.name
        assert tool.input_schema["additionalProperties"] is False, tool.name
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), (tool.name, name)
    search = listed["search_code"].input_schema["properties"]
    assert search["mode"]["enum"] == ["hybrid", "lexical", "semantic"]
    lang = next(option for option in search["lang"]["anyOf"] if "enum" in option)
    assert "python" in lang["enum"] and "klingon" not in lang["enum"]
    kind = next(option for option in search["kind"]["anyOf"] if "enum" in option)
    assert {"function", "method", "class", "window"} <= set(kind["enum"])
    assert listed["clear_index"].annotations.destructive_hint is True
    assert listed["read_code"].annotations.read_only_hint is True


def test_argument_errors_are_one_line_naming_the_argument_and_its_allowed_values(lode: Lode, shop: str) -> None:
    calls = {
        "unknown": ("search_code", {"query": "x", "colour": "red", "repo": shop}),
        "enum": ("search_code", {"query": "x", "mode": "fuzzy"}),
        "lang": ("search_code", {"query": "x", "lang": "klingon"}),
        "range": ("get_callers", {"symbol": "total", "depth": 11}),
        "missing": ("find_symbol", {"limit": 3}),
        "type": ("read_code", {"path": "shop/pricing.py", "start": "first"}),
    }

    async def scenario() -> dict[str, Any]:
        async with Client(create_server(lambda: lode)) as client:
            return {key: await client.call_tool(tool, arguments) for key, (tool, arguments) in calls.items()}

    out = {key: text_of(result) for key, result in anyio.run(scenario).items()}
    assert all("\n" not in text and "pydantic" not in text and "http" not in text for text in out.values()), out
    assert out["unknown"] == ("Error executing tool search_code: unknown argument 'colour'; search_code takes "
                              "query, repo, mode, k, lang, path, kind, files")
    assert out["enum"] == ("Error executing tool search_code: the argument 'mode' must be one of hybrid, lexical, "
                           "semantic, not 'fuzzy'")
    assert out["lang"].startswith("Error executing tool search_code: the argument 'lang' must be one of python, ")
    assert out["lang"].endswith("or null (or left out), not 'klingon'")
    assert out["range"] == ("Error executing tool get_callers: the argument 'depth' must be an integer from 1 to "
                            "10, not 11")
    assert out["missing"] == "Error executing tool find_symbol: the argument 'name' is required"
    assert out["type"] == ("Error executing tool read_code: the argument 'start' must be an integer from 1 to "
                           "2147483647, not 'first'")


def test_new_tools_over_stdio_with_the_default_repository(lode_home: Path, shop: str) -> None:
    """`lode mcp --repo NAME`: calls that name no repository use it; outline, read, pattern search."""
    async def scenario() -> dict[str, Any]:
        async with Client(stdio_in(lode_home, None, "--repo", shop), read_timeout_seconds=120) as client:
            return {
                "file": await call(client, "get_symbols_overview", path="shop/pricing.py"),
                "folder": await call(client, "get_symbols_overview", path="shop/"),
                "missing": await call(client, "get_symbols_overview", path="shop/nothing.py"),
                "read": await call(client, "read_code", path="shop/pricing.py", start=29, end=33),
                "past_end": await call(client, "read_code", path="shop/pricing.py", start=10_000),
                "exact": await call(client, "search_pattern", pattern="with_tax("),
                "regex": await call(client, "search_pattern", pattern=r"def \w+\(self, amount\)", regex=True,
                                    path="shop/**"),
                "ignore_case": await call(client, "search_pattern", pattern="DISCOUNT(", ignore_case=True),
                "bad_regex": await call(client, "search_pattern", pattern="(unclosed", regex=True),
                "backtracking": await call(client, "search_pattern", pattern="(a+)+$", regex=True),
                "search": await call(client, "search_code", query="apply discount", mode="lexical", k=3),
                "status": await call(client, "index_status"),
                "everywhere": await call(client, "search_pattern", pattern="def with_tax(", repo="*"),
            }

    out = anyio.run(scenario)
    for key in ("file", "folder", "read", "exact", "regex", "ignore_case", "backtracking", "search", "status"):
        assert not out[key].is_error, (key, text_of(out[key]))

    outline = text_of(out["file"]).splitlines()
    assert outline[0].startswith(f"10 definitions in shop/pricing.py (1 files, repo {shop})")
    assert "shop/pricing.py:" in outline
    # a class, its methods nested under it, with their signatures
    assert "  17-22 class Discount  class Discount(PriceRule)" in outline
    assert "    21-22 method apply  def apply(self, amount)" in outline
    assert "  29-33 function total  def total(order, rules=())" in outline
    symbols = out["file"].structured_content["symbols"]
    assert {"path": "shop/pricing.py", "start_line": 36, "end_line": 37, "kind": "function", "name": "with_tax",
            "name_path": "shop.pricing.with_tax", "signature": "def with_tax(amount)"} in symbols
    folder = out["folder"].structured_content
    assert folder["path"] == "shop" and folder["files"] == 7
    assert {"shop/cart.py", "shop/pricing.py", "shop/storage/backends.py"} <= {s["path"] for s in folder["symbols"]}
    assert out["missing"].is_error and text_of(out["missing"]).endswith(
        f"'shop/nothing.py' is neither an indexed file nor a folder of indexed files of repository {shop!r}")

    read = text_of(out["read"]).splitlines()
    assert read[0] == f"shop/pricing.py:29-33 (repo {shop})"
    assert read[1:] == ["29  def total(order, rules=()):", "30      amount = subtotal(order)",
                        "31      for rule in rules:", "32          amount = rule.apply(amount)",
                        "33      return with_tax(amount)"]
    assert out["read"].structured_content["lines"][-1] == "    return with_tax(amount)"
    assert out["past_end"].is_error and "start_line 10000 is past its end" in text_of(out["past_end"])

    exact = out["exact"].structured_content
    assert {(m["path"], m["line"], m["column"]) for m in exact["matches"]} == {
        ("shop/pricing.py", 33, 12), ("shop/pricing.py", 36, 5)}
    assert "shop/pricing.py:36:5: def with_tax(amount):" in text_of(out["exact"])
    regex = out["regex"].structured_content["matches"]
    assert {m["line"] for m in regex if m["path"] == "shop/pricing.py"} == {10, 13, 21}
    assert any(m["text"] == "class Discount(PriceRule):" for m in out["ignore_case"].structured_content["matches"])
    assert out["bad_regex"].is_error and text_of(out["bad_regex"]).startswith(
        "Error executing tool search_pattern: invalid regular expression '(unclosed': missing ): (unclosed")
    assert out["backtracking"].structured_content["files_searched"] == 10

    assert out["search"].structured_content["hits"][0]["repo"] == shop
    assert f"{shop} (default): " in text_of(out["status"])
    everywhere = out["everywhere"].structured_content  # '*': every repository, the default one among them
    every_file = sum(r["files"] for r in out["status"].structured_content["repos"])
    assert everywhere["files_total"] == every_file and shop in {m["repo"] for m in everywhere["matches"]}


def test_the_working_directorys_repository_is_the_default_and_clear_index_drops_it(lode_home: Path,
                                                                                    tmp_path: Path) -> None:
    root = tmp_path / "geo"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "geometry.py").write_text("def hypotenuse(a, b):\n    return (a * a + b * b) ** 0.5\n")
    (root / "pkg" / "angles.py").write_text("def right_angle():\n    return 90\n")
    name = f"mcp-cwd-{uuid.uuid4().hex[:8]}"

    async def scenario() -> dict[str, Any]:
        async with Client(stdio_in(lode_home, root / "pkg"), read_timeout_seconds=120) as client:
            out = {"before": await call(client, "get_symbols_overview", path="pkg/geometry.py", repo=name),
                   "index": await call(client, "index_repository", path=str(root), repo=name)}
            (root / "pkg" / "angles.py").write_text("def right_angle():\n    return 90.0  # changed\n")
            out |= {
                "outline": await call(client, "get_symbols_overview", path="pkg/geometry.py"),
                "pattern": await call(client, "search_pattern", pattern="return"),
                "read_stale": await call(client, "read_code", path="pkg/angles.py"),
                "taken": await call(client, "index_repository", path=str(tmp_path), repo=name),
                "clear_unnamed": await call(client, "clear_index"),
                "clear": await call(client, "clear_index", repo=name),
                "after": await call(client, "index_status", repo=name),
                "again": await call(client, "clear_index", repo=name),
            }
            return out

    out = anyio.run(scenario)
    assert out["before"].is_error and text_of(out["before"]).endswith(
        f"no repository named {name!r}; index_status lists them")
    assert not out["index"].is_error, text_of(out["index"])
    assert out["index"].structured_content["files_indexed"] == 2
    assert "1-2 function hypotenuse  def hypotenuse(a, b)" in text_of(out["outline"])
    pattern = out["pattern"].structured_content
    assert [m["path"] for m in pattern["matches"]] == ["pkg/geometry.py"] and pattern["stale"] == ["pkg/angles.py"]
    assert "1 changed since indexing, not searched" in text_of(out["pattern"])
    stale = out["read_stale"]
    assert stale.structured_content["origin"] == "index" and "return 90\n" not in text_of(stale)
    assert "from the index's text, not the file (the file changed since it was indexed)" in text_of(stale)
    assert out["taken"].is_error and text_of(out["taken"]).endswith(
        f"repository {name!r} is indexed from {root}; pass repo= to index {tmp_path} under another name")
    assert out["clear_unnamed"].is_error and "'repo' is required" in text_of(out["clear_unnamed"])
    assert not out["clear"].is_error and out["clear"].structured_content == {"removed": name}
    assert out["after"].is_error and "no repository named" in text_of(out["after"])
    assert out["again"].is_error and text_of(out["again"]).endswith(f"no repository named {name!r}")
    assert (root / "pkg" / "geometry.py").exists()


def test_get_context_structured_output_lists_every_dropped_piece(lode: Lode, shop: str) -> None:
    async def context() -> Any:
        async with Client(create_server(lambda: lode)) as client:
            return await call(client, "get_context", symbol="shop.pricing.total", repo=shop, budget_tokens=140)

    result = anyio.run(context)
    data = result.structured_content
    assert data["text"] == text_of(result) and data["tokens"] <= 140 == data["budget_tokens"]
    assert len(data["dropped"]) >= 4
    roles = {piece["role"] for piece in data["dropped"]}
    assert {"caller", "callee"} <= roles
    checkout = next(p for p in data["dropped"] if p["name"] == "shop.cart.Cart.checkout")
    assert (checkout["path"], checkout["start_line"], checkout["end_line"]) == ("shop/cart.py", 15, 19)
    for piece in data["included"]:
        assert f"{piece['path']}:{piece['start_line']}-{piece['end_line']}" in data["text"]
