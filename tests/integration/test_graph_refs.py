"""`lode graph refs`: every use of a symbol with its kind (calls, imports, base classes, type annotations,
decorators) through the engine, the CLI, REST and MCP; callers stay calls; decorator calls run in the scope
around the decorated definition."""

from __future__ import annotations

from pathlib import Path

import anyio
from tests.support.api_client import local_client
from tests.support.cli import run_cli
from mcp import Client

from lode.api.app import create_app
from lode.config import Settings
from lode.engine import Lode
from lode.mcp import create_server

FILES = {
    "app/__init__.py": "",
    "app/models.py": (
        "class Request:\n"  # 1
        "    pass\n"
        "def registered(function):\n"  # 3
        "    return function\n"
        "def option(kind):\n"  # 5
        "    return registered\n"
        "class Choice:\n"  # 7
        "    pass\n"
    ),
    "app/views.py": (
        "from typing import Optional\n"  # 1
        "from app.models import Request, registered, option, Choice\n"  # 2
        "class Special(Request):\n"  # 3
        "    pass\n"
        "@registered\n"  # 5
        "def handle(request: Optional[Request]) -> Request:\n"  # 6
        "    return Request()\n"  # 7
        "class View:\n"  # 8
        "    current: Request\n"  # 9
        "    @option(kind=Choice())\n"  # 10
        "    def get(self):\n"  # 11
        "        pass\n"
    ),
}
USES = {
    ("app.views", "imports", "app/views.py:2"),
    ("app.views.Special", "inherits", "app/views.py:3"),
    ("app.views.handle", "annotates", "app/views.py:6"),
    ("app.views.handle", "calls", "app/views.py:7"),
    ("app.views.View", "annotates", "app/views.py:9"),
}


def index(lode: Lode, root: Path, name: str) -> None:
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    lode.indexing.index(root, name)


def uses(result: dict) -> set[tuple[str, str, str]]:
    return {(use["name_path"], use["kind"], use["evidence"]) for use in result["refs"]}


def test_refs_list_every_use_with_its_kind_and_callers_stay_calls(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    index(lode, tmp_path, repo_name)
    result = lode.graph.refs("app.models.Request", repo=repo_name)
    assert result["symbol"]["name_path"] == "app.models.Request" and not result["truncated"]
    assert uses(result) == USES  # the annotation of `handle` counts once, though Request appears twice in it
    callers = lode.graph.neighbours("callers", "app.models.Request", repo=repo_name)["results"]
    assert [(hop["name_path"], hop["edge"]) for hop in callers] == [("app.views.handle", "calls")]
    assert uses(lode.graph.refs("registered", repo=repo_name, kinds=("decorates",))) == {
        ("app.views.handle", "decorates", "app/views.py:5")}
    # `@option(kind=Choice())` runs when the class body runs: the calls belong to View, not to View.get
    assert {(use["name_path"], use["kind"]) for use in lode.graph.refs("Choice", repo=repo_name)["refs"]} == {
        ("app.views", "imports"), ("app.views.View", "calls")}
    assert lode.graph.neighbours("callees", "app.views.View.get", repo=repo_name)["results"] == []
    assert uses(lode.graph.refs("option", repo=repo_name)) == {
        ("app.views", "imports", "app/views.py:2"), ("app.views.View", "calls", "app/views.py:10"),
        ("app.views.View.get", "decorates", "app/views.py:10")}
    limited = lode.graph.refs("app.models.Request", repo=repo_name, limit=2)
    assert len(limited["refs"]) == 2 and limited["truncated"]


def test_refs_over_the_cli_rest_and_mcp(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    index(lode, tmp_path, repo_name)
    code, result, _ = run_cli("graph", "refs", "app.models.Request", "--repo", repo_name, "--json")
    assert code == 0 and uses(result) == USES
    code, text, _ = run_cli("graph", "refs", "Request", "--repo", repo_name, "--kinds", "inherits")
    assert code == 0 and "app/views.py:3  inherits in app.views.Special" in text
    code, _, stderr = run_cli("graph", "refs", "Request", "--repo", repo_name, "--kinds", "contains")
    assert code == 2 and "annotates" in stderr
    with local_client(create_app(Settings(embedder="none"))) as client:
        response = client.get("/v1/graph/refs", params={"symbol": "app.models.Request", "repo": repo_name})
        assert response.status_code == 200 and uses(response.json()) == USES
        bad = client.get("/v1/graph/refs", params={"symbol": "Request", "repo": repo_name, "limit": 0})
        assert bad.status_code == 422

    async def tool() -> str:
        async with Client(create_server(lambda: lode)) as mcp_client:
            answer = await mcp_client.call_tool("find_references", {"symbol": "app.models.Request", "repo": repo_name})
            assert not answer.is_error
            return "\n".join(block.text for block in answer.content)

    text = anyio.run(tool)
    assert text.startswith("uses of app.models.Request app/models.py:1-2: 5 found")
    assert "app/views.py:9  annotates in app.views.View" in text
