"""Context for a change from every interface: `lode context --json`, GET /v1/context and MCP's get_context call
the same service (lode/services/context.py), so the same query or symbol gets the same document from each; the
REST route keeps a scoped key to its repositories like the other read routes."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from tests.support.api_server import SHOP, api, error_of
from tests.support.cli import run_cli
from tests.support.trees import write_tree

from lode.api.keys import ApiKeys
from lode.engine import Lode
from lode.mcp import create_server

TEST_FILE = "from shop.pricing import apply_discount\n\n\ndef test_discount():\n    assert apply_discount(200) == 180\n"


@pytest.fixture(scope="module")
def shop(lode: Lode, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("context") / "shop"
    write_tree(root, {**SHOP, "tests/test_pricing.py": TEST_FILE})
    name = f"context-{uuid.uuid4().hex[:8]}"
    lode.indexing.index(root, name)
    return name


def _from_mcp(lode: Lode, arguments: dict[str, Any]) -> dict[str, Any]:
    async def ask() -> dict[str, Any]:
        async with Client(create_server(lambda: lode)) as client:
            result = await client.call_tool("get_context", arguments)
            assert not result.is_error, result.content
            return result.structured_content

    return anyio.run(ask)


@pytest.mark.parametrize("asked", [
    {"symbol": "shop.pricing.apply_discount"},
    {"query": "apply discount", "mode": "lexical"},
], ids=["symbol", "query"])
def test_cli_rest_and_mcp_return_the_same_context(lode: Lode, lode_home: Path, shop: str, no_keys: None,
                                                  asked: dict[str, str]) -> None:
    budget = 600
    mcp = _from_mcp(lode, {**asked, "repo": shop, "budget_tokens": budget})
    assert mcp["included"] and mcp["budget_tokens"] == budget
    assert {piece["repo"] for piece in mcp["included"]} == {shop}
    if "symbol" in asked:
        roles = {piece["role"] for piece in mcp["included"] + mcp["dropped"]}
        assert {"definition", "caller", "test"} <= roles, roles

    cli_args = ["--symbol", asked["symbol"]] if "symbol" in asked else [asked["query"], "--mode", asked["mode"]]
    code, cli, stderr = run_cli("context", *cli_args, "--repo", shop, "--budget", str(budget), "--json")
    assert code == 0, stderr

    params = {"q" if key == "query" else key: value for key, value in asked.items()}
    with api(lode_home) as client:
        response = client.get("/v1/context", params={**params, "repo": shop, "budget_tokens": budget})
    assert response.status_code == 200, response.text

    assert cli == mcp
    assert response.json() == mcp

    code, text, stderr = run_cli("context", *cli_args, "--repo", shop, "--budget", str(budget))
    assert code == 0, stderr
    assert text.rstrip("\n") == mcp["text"]  # without --json the CLI prints the text an agent reads


def test_every_interface_refuses_a_query_with_a_symbol(lode: Lode, lode_home: Path, shop: str,
                                                       no_keys: None) -> None:
    code, failed, _ = run_cli("context", "discount", "--symbol", "apply_discount", "--repo", shop, "--json")
    assert code == 2 and "exactly one of query or symbol" in failed["error"]["message"]
    with api(lode_home) as client:
        error = error_of(client.get("/v1/context", params={"q": "discount", "symbol": "apply_discount"}), 400)
    assert "exactly one of query or symbol" in error["message"]


def test_rest_context_keeps_a_scoped_key_to_its_repositories(lode: Lode, lode_home: Path, shop: str,
                                                             no_keys: None) -> None:
    other = f"context-other-{uuid.uuid4().hex[:8]}"
    with api(lode_home) as client:
        scoped = {"Authorization": f"Bearer {ApiKeys(lode.db).create('context-scoped', [other])}"}
        assert error_of(client.get("/v1/context", params={"q": "discount", "repo": shop}, headers=scoped), 403)
        assert error_of(client.get("/v1/context", params={"q": "discount"}), 401)  # a key exists now
        unscoped = client.get("/v1/context", params={"q": "discount", "mode": "lexical"}, headers=scoped)
    assert unscoped.status_code == 200, unscoped.text
    assert unscoped.json()["included"] == []  # the key's one repository is not indexed: nothing of `shop` leaks
