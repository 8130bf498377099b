"""The ranking stage after fusion (issue 17) end to end on a small real tree: through the engine, the CLI, REST and
MCP (the parts alone: tests/unit/test_ranking_priors.py)."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from lode.config import Settings
from lode.engine import Lode
from lode.services.search import MAX_QUERY_BYTES
from lode.errors import InputError
from lode.mcp import create_server
from lode.search import ranking
from tests.support.api_client import local_client
from tests.support.cli import run_cli

TRACEBACK = """url_for builds a wrong rule

```
Traceback (most recent call last):
  File "/srv/site/webapp/app.py", line 6, in redirect_home
    return url_for("index")
  File "/srv/site/webapp/helpers.py", line 4, in url_for
    raise ValueError(method)
ValueError: PUT
```
"""

# ---- end to end on a small real tree ------------------------------------------------------------------------

TREE = {
    "webapp/helpers.py": '''
        def url_for(endpoint, **values):
            """Build the URL of an endpoint with the given values."""
            rule = values.pop("_rule", endpoint)
            scheme = values.pop("_scheme", None)
            anchor = values.pop("_anchor", None)
            method = values.pop("_method", None)
            if method is not None and method not in ("GET", "POST"):
                raise ValueError(method)
            path = "/" + rule
            if anchor:
                path += "#" + anchor
            if scheme:
                path = scheme + "://localhost" + path
            return path
        ''',
    "webapp/cli.py": '''
        import click


        def run_command(host, port):
            """Run a local development server."""
            click.echo(f"serving on {host}:{port}")
        ''',
    "webapp/app.py": '''
        from webapp.helpers import url_for


        class Flask:
            def redirect_home(self):
                return url_for("index")
        ''',
    "tests/test_helpers.py": '''
        from webapp.helpers import url_for


        class TestUrlFor:
            def test_url_for(self):
                assert url_for("index") == "/index"
                assert url_for("a") == "/a"
                assert url_for("b", _rule="c") == "/c"
                assert url_for("url_for") == "/url_for"
                assert url_for("url_for", _anchor="url_for") == "/url_for#url_for"
                assert url_for("url_for", _scheme="http") == "http://localhost/url_for"

            def test_url_for_rules(self):
                assert url_for("x", _rule="url_for") == "/url_for"
        ''',
    "tests/test_cli.py": '''
        from webapp.cli import run_command


        def test_run_command(capsys):
            run_command("localhost", 5000)
            run_command("127.0.0.1", 8000)
            assert "serving" in capsys.readouterr().out
        ''',
}


@pytest.fixture(scope="module")
def webapp(lode: Lode, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("ranking") / "webapp-root"
    for path, text in TREE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text).lstrip())
    name = f"rank-{uuid.uuid4().hex[:8]}"
    lode.indexing.index(root, name)
    return name


def first_paths(result: dict[str, Any]) -> list[str]:
    return [hit["path"] for hit in result["hits"]]


def test_a_bare_name_finds_its_definition_first_and_before_its_tests(lode: Lode, lode_home: Path,
                                                                      webapp: str) -> None:
    unranked = Lode(Settings(home=lode_home, embedder="none", ranking="off"))
    try:
        before = unranked.search.query("url_for", repo=webapp, mode="lexical")
    finally:
        unranked.close()
    assert first_paths(before)[0] == "tests/test_helpers.py"  # what the stage fixes: the test outranks the definition

    result = lode.search.query("url_for", repo=webapp, mode="lexical")
    assert result["query_kind"] == "symbol"
    top = result["hits"][0]
    assert (top["path"], top["name"]) == ("webapp/helpers.py", "url_for")
    assert top["legs"]["priors"]["definition"] > 1 and top["legs"]["lexical"] is not None
    tests = [i for i, path in enumerate(first_paths(result)) if path.startswith("tests/")]
    assert tests and min(tests) > 0
    assert lode.search.query("run_command", repo=webapp)["hits"][0]["path"] == "webapp/cli.py"  # hybrid, legs degraded


def test_filters_still_filter_and_a_test_query_gets_its_tests(lode: Lode, webapp: str) -> None:
    only_tests = lode.search.query("url_for", repo=webapp, path="tests/**")
    assert only_tests["hits"] and set(first_paths(only_tests)) == {"tests/test_helpers.py"}
    classes = lode.search.query("url_for", repo=webapp, kinds=("class",))
    assert {hit["kind"] for hit in classes["hits"]} == {"class"}
    def test_factor(query: str) -> float | None:
        hits = lode.search.query(query, repo=webapp, mode="lexical")["hits"]
        return next(h["legs"]["priors"].get("role", 1.0) for h in hits if h["path"] == "tests/test_cli.py")

    assert test_factor("run_command") == ranking.ROLE_FACTORS["test"]
    assert test_factor("test run_command") == 1.0  # asked for: not demoted


def test_the_file_mode_ranks_files_with_their_best_hits(lode: Lode, webapp: str) -> None:
    result = lode.search.query("url_for", repo=webapp, group="files", k=3)
    assert [f["path"] for f in result["files"]][0] == "webapp/helpers.py" and len(result["files"]) == 3
    first = result["files"][0]
    assert first.keys() == {"repo", "path", "language", "score", "hits"}
    assert first["repo"] == webapp and first["language"] == "python"
    assert first["hits"][0]["name"] == "url_for" and all(h["path"] == first["path"] for h in first["hits"])
    assert [f["score"] for f in result["files"]] == sorted((f["score"] for f in result["files"]), reverse=True)
    assert "files" not in lode.search.query("url_for", repo=webapp)
    with pytest.raises(InputError, match="group must be one of"):
        lode.search.query("url_for", repo=webapp, group="folders")


def test_queries_up_to_64_kib_are_taken_and_longer_ones_refused(lode: Lode, webapp: str) -> None:
    issue = TRACEBACK + "url_for returns a wrong rule\n"
    body = issue + "x" * (MAX_QUERY_BYTES - len(issue.encode()))
    assert len(body.encode()) == MAX_QUERY_BYTES
    result = lode.search.query(body, repo=webapp, group="files")
    assert result["query_kind"] == "long" and result["files"][0]["path"] == "webapp/helpers.py"
    with pytest.raises(InputError, match=r"the query is 65537 bytes; the limit is 65536 \(64 KiB\)"):
        lode.search.query(body + "y", repo=webapp)


def test_ranking_off_and_unknown_priors(lode_home: Path, webapp: str) -> None:
    with pytest.raises(InputError, match="unknown priors nonsense"):
        Lode(Settings(home=lode_home, embedder="none", ranking_disable="path,nonsense"))
    engine = Lode(Settings(home=lode_home, embedder="none", ranking_disable="definition"))
    try:
        hits = engine.search.query("url_for", repo=webapp, mode="lexical")["hits"]
    finally:
        engine.close()
    assert all("definition" not in hit["legs"]["priors"] for hit in hits)


def test_a_superseded_version_folder_yields_to_the_newest_unless_named(lode: Lode, tmp_path: Path) -> None:
    routes = 'def list_routes(app):\n    """List the routes of the app."""\n    return sorted(app.routes)\n'
    for version in ("v1", "v2"):
        (tmp_path / "api" / version).mkdir(parents=True)
        (tmp_path / "api" / version / "routes.py").write_text(routes)
    name = f"versions-{uuid.uuid4().hex[:8]}"
    lode.indexing.index(tmp_path, name)

    def priors(query: str) -> dict[str, dict[str, float]]:
        return {h["path"]: h["legs"]["priors"] for h in lode.search.query(query, repo=name, mode="lexical")["hits"]}

    listed = priors("list the routes")
    assert list(listed) == ["api/v2/routes.py", "api/v1/routes.py"]
    assert listed["api/v1/routes.py"]["version"] == ranking.SUPERSEDED_FACTOR
    assert "version" not in listed["api/v2/routes.py"]
    assert "version" not in priors("list the routes of v1")["api/v1/routes.py"]  # asked for: not demoted


# ---- the interfaces ---------------------------------------------------------------------------------------

def test_cli_files_and_explain(lode: Lode, webapp: str) -> None:
    code, result, _ = run_cli("search", "url_for", "--repo", webapp, "--files", "-k", "2", "--json")
    assert code == 0 and [f["path"] for f in result["files"]][0] == "webapp/helpers.py"
    assert len(result["files"]) == 2 and result["hits"][0]["legs"]["priors"]["definition"] > 1
    code, text, _ = run_cli("search", "url_for", "--repo", webapp, "--explain", "-k", "1")
    assert code == 0 and "query kind: symbol" in text
    assert "legs: lexical #" in text and "priors: definition x3" in text and "fused " in text


def test_rest_group_files_and_post_for_long_queries(lode: Lode, lode_home: Path, webapp: str) -> None:
    from lode.api.app import create_app

    with local_client(create_app(Settings(home=lode_home, embedder="none"))) as client:
        response = client.get("/v1/search", params={"q": "url_for", "repo": webapp, "group": "files", "k": 1})
        assert response.status_code == 200, response.text
        page = response.json()
        assert [f["path"] for f in page["files"]] == ["webapp/helpers.py"] and page["next_offset"] == 1
        assert page["files"][0]["hits"][0]["legs"]["priors"]["definition"] > 1

        issue = TRACEBACK + "url_for " * 7000
        assert len(issue.encode()) <= MAX_QUERY_BYTES
        response = client.post("/v1/search", json={"q": issue, "repo": webapp, "group": "files"})
        assert response.status_code == 200, response.text
        assert response.json()["query_kind"] == "long"
        assert response.json()["files"][0]["path"] == "webapp/helpers.py"

        response = client.post("/v1/search", json={"q": "y" * (MAX_QUERY_BYTES + 1), "repo": webapp})
        assert response.status_code == 400
        assert "the limit is 65536 (64 KiB)" in json.dumps(response.json())
        response = client.post("/v1/search", json={"q": "url_for", "nonsense": 1})
        assert response.status_code == 422


def test_mcp_search_code_files(lode: Lode, webapp: str) -> None:
    server = create_server(lambda: lode)

    async def run() -> str:
        async with Client(server) as client:
            result = await client.call_tool("search_code", {"query": "url_for", "repo": webapp, "files": True,
                                                            "k": 2})
            return "\n".join(block.text for block in result.content)

    text = anyio.run(run)
    assert text.startswith("2 files for 'url_for'")
    assert "1. webapp/helpers.py" in text and "webapp/helpers.py:1-" in text and "function " in text
