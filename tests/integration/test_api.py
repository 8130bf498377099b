"""The REST API end to end: FastAPI's TestClient on the real app, against the session's embedded PostgreSQL and
real files; one test runs the real `lode serve` process."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.support.cli import run_cli
from tests.support.polling import wait_until
from tests.support.redis_server import running_redis
from lode.config import EmbeddingSettings, Settings
from lode.engine import Lode
from lode.health import health_report
from lode.indexer import _REPO_LOCK_CLASS  # the indexer's per-repository advisory lock, held to pause a job
from lode.resilience import breaker, reset_breakers
from lode.store.db import Database
from tests.support.trees import write_tree
from tests.support.embedding_stub import start_stub
from tests.support.api_server import SHOP, api, error_of, index_via_api, wait_job

@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-roots")


@pytest.fixture(scope="module")
def client(lode: Lode, lode_home: Path, roots: Path) -> Iterator[TestClient]:
    with api(lode_home, allowed_roots=[roots]) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def shop(client: TestClient, roots: Path) -> dict[str, Any]:
    root = roots / "shop"
    write_tree(root, SHOP)
    return {"root": root, "repo": "api-shop", "job": index_via_api(client, root, "api-shop")}


# ---- OpenAPI, repositories, jobs --------------------------------------------------------------------------

def test_openapi_lists_every_route_and_docs_render(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for route in ("/v1/repositories", "/v1/repositories/{name}", "/v1/index", "/v1/index/{job_id}", "/v1/search",
                  "/v1/symbols", "/v1/graph/callers", "/v1/graph/callees", "/v1/graph/path", "/v1/graph/stats",
                  "/v1/graph/export", "/v1/status", "/livez", "/readyz", "/health", "/metrics"):
        assert route in schema["paths"], route
    search = schema["paths"]["/v1/search"]["get"]
    assert {"400", "401", "403", "404", "413", "422", "429", "503"} <= set(search["responses"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    # every asset from this server (FastAPI's default page loads Swagger UI from a CDN: blank offline)
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert "/static/vendor/swagger-ui-bundle.js" in assets and all(a.startswith("/static/") for a in assets)
    assert all(client.get(asset).status_code == 200 for asset in assets)
    assert "script-src 'self';" in docs.headers["content-security-policy"]
    assert client.get("/redoc").status_code == 404  # ReDoc would come from a CDN too


def test_index_job_reports_progress_and_the_index_answers_every_route(client: TestClient,
                                                                      shop: dict[str, Any]) -> None:
    job = shop["job"]
    assert job["repo"] == "api-shop" and job["path"] == str(shop["root"].resolve())
    assert job["files_total"] == job["files_done"] == 5
    assert job["chunks"] > 5 and job["report"]["files_indexed"] == 5
    assert job["embeddings"] == {"done": 0, "pending": job["chunks"], "failed": 0}  # LODE_EMBEDDER=none
    assert job["started_at"] and job["finished_at"] and job["eta_seconds"] is None and job["error"] is None
    assert job["id"] in {j["id"] for j in client.get("/v1/index").json()["jobs"]}

    listed = client.get("/v1/repositories").json()["repositories"]
    entry = next(r for r in listed if r["repo"] == "api-shop")
    assert entry["chunks"] == job["chunks"] and entry["root"] == str(shop["root"].resolve())
    one = client.get("/v1/repositories/api-shop").json()["repository"]
    assert one["files"] == 5 and one["staleness"]["changed"] == one["staleness"]["missing"] == 0

    symbols = client.get("/v1/symbols", params={"name": "apply_discount", "repo": "api-shop"}).json()
    assert [s["name_path"] for s in symbols["symbols"]] == ["shop.pricing.apply_discount"]

    callers = client.get("/v1/graph/callers", params={"symbol": "shop.pricing.apply_discount",
                                                   "repo": "api-shop"}).json()
    assert [h["name_path"] for h in callers["results"]] == ["shop.cart.Cart.total"]
    callees = client.get("/v1/graph/callees", params={"symbol": "shop.pricing.apply_discount", "depth": 2,
                                                   "repo": "api-shop"}).json()
    assert "shop.pricing.round_price" in {h["name_path"] for h in callees["results"]}
    path = client.get("/v1/graph/path", params={"from": "shop.cart.Cart.total", "to": "shop.pricing.round_price",
                                                "repo": "api-shop"}).json()
    assert path["found"] and [h["name_path"] for h in path["path"]][-1] == "shop.pricing.round_price"
    stats = client.get("/v1/graph/stats", params={"repo": "api-shop"}).json()
    assert stats["nodes"]["function"] == 3 and stats["top_fan_in"][0]["symbol"]["repo"] == "api-shop"
    exported = client.get("/v1/graph/export", params={"repo": "api-shop", "format": "json"})
    assert exported.headers["content-type"].startswith("application/json") and exported.json()
    dot = client.get("/v1/graph/export", params={"repo": "api-shop", "format": "dot"})
    assert dot.headers["content-type"].startswith("text/vnd.graphviz") and dot.text.startswith("digraph")
    mermaid = client.get("/v1/graph/export", params={"repo": "api-shop", "format": "mermaid"})
    assert mermaid.headers["content-type"].startswith("text/plain") and "apply_discount" in mermaid.text


def test_search_filters_and_pagination(client: TestClient, shop: dict[str, Any]) -> None:
    def search(**params: Any) -> dict[str, Any]:
        response = client.get("/v1/search", params={"q": "discount", "repo": "api-shop", "mode": "lexical",
                                                    **params})
        assert response.status_code == 200, response.text
        return response.json()

    everything = search(k=20)
    assert len(everything["hits"]) >= 4 and everything["next_offset"] is None and everything["offset"] == 0
    pages, offset = [], 0
    while offset is not None:
        page = search(k=2, offset=offset)
        assert len(page["hits"]) <= 2 and page["offset"] == offset
        pages += page["hits"]
        offset = page["next_offset"]
    assert [(h["path"], h["start_line"]) for h in pages] == [(h["path"], h["start_line"]) for h in everything["hits"]]
    assert {h["language"] for h in search(k=20, lang="markdown")["hits"]} == {"markdown"}
    assert {h["path"] for h in search(k=20, path="shop/*.py")["hits"]} <= {"shop/cart.py", "shop/pricing.py"}
    assert {h["kind"] for h in search(k=20, kind="function")["hits"]} == {"function"}
    expanded = search(k=5, expand="true", kind="function")["hits"]
    discount = next(h for h in expanded if h["name"] == "apply_discount")
    assert [c["name_path"] for c in discount["callers"]] == ["shop.cart.Cart.total"]
    hybrid = client.get("/v1/search", params={"q": "discount", "repo": "api-shop"}).json()
    assert hybrid["mode"] == "hybrid" and hybrid["hits"] and set(hybrid["degraded"]) == {"text", "code"}
    semantic = client.get("/v1/search", params={"q": "discount", "mode": "semantic"})
    assert "LODE_EMBEDDER is 'none'" in error_of(semantic, 400)["message"]  # this server cannot, ever


def test_outline_and_pattern_search_routes(client: TestClient, shop: dict[str, Any]) -> None:
    """The REST side of the MCP tools get_symbols_overview and search_pattern (issue 19)."""
    outline = client.get("/v1/repositories/api-shop/outline", params={"path": "shop/cart.py"})
    assert outline.status_code == 200, outline.text
    symbols = [(s["kind"], s["name"], s["start_line"], s["signature"]) for s in outline.json()["symbols"]]
    assert symbols[:2] == [("class", "Cart", 5, "class Cart"), ("method", "__init__", 8, "def __init__(self)")]
    assert ("method", "total", 15, "def total(self)") in symbols
    whole = client.get("/v1/repositories/api-shop/outline").json()
    assert whole["path"] == "" and whole["files"] == len(SHOP) and not whole["truncated"]
    assert error_of(client.get("/v1/repositories/api-shop/outline", params={"path": "nope"}), 404)["message"] == (
        "'nope' is neither an indexed file nor a folder of indexed files of repository 'api-shop'")

    found = client.get("/v1/pattern", params={"q": r"def \w+\(amount\)", "regex": "true", "repo": "api-shop"})
    assert found.status_code == 200, found.text
    assert [(m["path"], m["line"], m["column"]) for m in found.json()["matches"]] == [
        ("shop/pricing.py", 1, 1), ("shop/pricing.py", 6, 1)]
    exact = client.get("/v1/pattern", params={"q": "APPLY_DISCOUNT(", "ignore_case": "true", "repo": "api-shop",
                                              "path": "shop/cart.py"}).json()
    assert [m["text"] for m in exact["matches"]] == ["        return apply_discount(sum(p for _, p in self.items))"]
    bad = error_of(client.get("/v1/pattern", params={"q": "(?<=x)", "regex": "true"}), 400)
    assert bad["message"].startswith("invalid regular expression '(?<=x)': invalid perl operator: (?<")


def test_search_hits_mark_the_query_terms_as_the_tokenizer_matched_them(client: TestClient,
                                                                      shop: dict[str, Any]) -> None:
    result = client.get("/v1/search", params={"q": "the discount of this cart", "repo": "api-shop",
                                              "mode": "lexical", "k": 20}).json()
    marked: set[str] = set()
    for hit in result["hits"]:  # (a hit may match by its name or path alone: no mark in its snippet then)
        lines = hit["snippet"].split("\n")
        marked |= {lines[line][start:end] for line, start, end in hit["highlights"]}
    assert result["hits"][0]["highlights"]
    assert marked == {"discount", "cart", "Cart"}  # never `the`, `of`, `this`
    total = next(hit for hit in result["hits"] if hit["name"] == "total")
    lines = total["snippet"].split("\n")
    assert [lines[line][:end] for line, _, end in total["highlights"]][-1].endswith("return apply_discount")


LEDGER = '''"""Ledger entries."""


class Ledger:
    """Entries in order."""

    def __init__(self):
        self.entries = []

    def record(self, entry):
        """Keep an entry."""
        self.entries.append(entry)
'''


def test_source_of_an_indexed_file_with_its_lines_and_an_editor_link(lode_home: Path, roots: Path,
                                                                     tmp_path: Path) -> None:
    root = roots / "my project"  # a space, percent-encoded in the link
    write_tree(root, {"books/ledger.py": LEDGER})
    outside = tmp_path / "secret.py"
    outside.write_text("API_TOKEN = 'not for the index'\n")
    with api(lode_home, allowed_roots=[roots], editor_url="idea://open?file={path}&line={line}") as client:
        index_via_api(client, root, "api-source")
        ledger = client.get("/v1/symbols", params={"name": "ledger.Ledger",
                                                   "repo": "api-source"}).json()["symbols"][0]
        first, last = ledger["start_line"], ledger["end_line"]

        def source(**params: Any) -> httpx.Response:
            return client.get("/v1/repositories/api-source/source", params={"path": "books/ledger.py", **params})

        # the file's own lines, numbered as the index numbers them (the class's chunk elides its methods' bodies)
        view = source(start_line=first, end_line=last).json()
        file_lines = LEDGER.split("\n")
        assert view["lines"] == file_lines[first - 1:last] and view["origin"] == "file" and view["stale"] is None
        assert view["lines"][0] == "class Ledger:" and "        self.entries.append(entry)" in view["lines"]
        assert (view["start_line"], view["end_line"]) == (first, last) == (4, 12)
        absolute = f"{root.resolve()}/books/ledger.py"
        assert view["absolute_path"] == absolute
        assert view["editor_url"] == f"idea://open?file={absolute.replace(' ', '%20')}&line={first}"
        whole = source().json()
        assert whole["lines"] == file_lines[:-1] and whole["end_line"] == len(file_lines) - 1  # no line after "\n"

        for params, status, message in (
                ({"start_line": 40}, 400, "books/ledger.py has 12 lines; start_line 40 is past its end"),
                ({"start_line": 5, "end_line": 2}, 400, "1 <= start_line <= end_line"),
                ({"path": "books/../books/ledger.py"}, 404, "is not an indexed file"),
                ({"path": "nothing.py"}, 404, "is not an indexed file of repository 'api-source'")):
            assert message in error_of(source(**params), status)["message"]
        assert error_of(source(start_line=0), 422) and error_of(source(path="a\x00b"), 400)
        missing = client.get("/v1/repositories/api-nothing/source", params={"path": "a.py"})
        assert error_of(missing, 404)["message"] == "no repository named 'api-nothing'; `lode repos` lists them"

        # changed since indexed: the indexed text (elided bodies and all), never the new bytes
        (root / "books" / "ledger.py").write_text(LEDGER.replace("Entries in order", "Changed entries"))
        stale = source(start_line=first, end_line=last).json()
        assert (stale["origin"], stale["stale"]) == ("index", "the file changed since it was indexed")
        assert '    """Entries in order."""' in stale["lines"] and "        ..." in stale["lines"]
        # a symlink put in the file's place is not followed
        (root / "books" / "ledger.py").unlink()
        os.symlink(outside, root / "books" / "ledger.py")
        swapped = source().json()
        assert swapped["origin"] == "index" and "now a symlink" in swapped["stale"]
        assert not any("API_TOKEN" in line for line in swapped["lines"])
        client.delete("/v1/repositories/api-source")


def test_job_fills_embeddings_then_semantic_search_answers_and_a_dead_provider_is_a_503(
        lode: Lode, lode_home: Path, roots: Path) -> None:
    stub, url = start_stub()
    provider = EmbeddingSettings(url=url, model="stub-a", retry_attempts=2, retry_max_seconds=2)
    root = roots / "embedded"
    write_tree(root, SHOP)
    reset_breakers()
    try:
        with api(lode_home, allowed_roots=[roots], embedder="http", embedding=provider) as client:
            job = index_via_api(client, root, "api-embedded")
            assert job["embeddings"] == {"done": job["chunks"], "pending": 0, "failed": 0}
            assert job["report"]["embeddings"]["done"] == job["chunks"]
            hybrid = client.get("/v1/search", params={"q": "discount", "repo": "api-embedded"}).json()
            assert hybrid["degraded"] == [] and hybrid["hits"][0]["legs"]["text"] is not None
            semantic = client.get("/v1/search", params={"q": "round cents", "repo": "api-embedded",
                                                        "mode": "semantic"}).json()
            assert semantic["hits"] and all(h["legs"]["lexical"] is None for h in semantic["hits"])
            stub.kill()
            stub.wait()
            down = client.get("/v1/search", params={"q": "a query never embedded", "repo": "api-embedded",
                                                    "mode": "semantic"})
            assert "embedding provider failed" in error_of(down, 503)["message"]
    finally:
        stub.kill()
        reset_breakers()


def test_status_reports_staleness_of_changed_and_deleted_files(client: TestClient, roots: Path) -> None:
    root = roots / "stale"
    write_tree(root, SHOP)
    index_via_api(client, root, "api-stale")
    (root / "shop" / "pricing.py").write_text(SHOP["shop/pricing.py"] + "\n# changed\n")
    (root / "README.md").unlink()
    status = client.get("/v1/status", params={"repo": "api-stale"}).json()["repos"][0]
    assert status["staleness"] == {"checked": 5, "changed": 1, "missing": 1, "complete": True,
                                   "examples": ["README.md", "shop/pricing.py"]}
    assert status["last_run"]["status"] == "done"


def test_delete_repository(client: TestClient, roots: Path) -> None:
    root = roots / "doomed"
    write_tree(root, {"a.py": "def doomed():\n    return 1\n"})
    index_via_api(client, root, "api-doomed")
    assert client.delete("/v1/repositories/api-doomed").json() == {"removed": "api-doomed"}
    assert error_of(client.get("/v1/repositories/api-doomed"), 404)["code"] == "not_found"
    assert error_of(client.delete("/v1/repositories/api-doomed"), 404)["code"] == "not_found"


def _changed_tree(root: Path, files: int, version: int) -> None:
    write_tree(root, {f"m{i:03}.py": "".join(
        f"def f{i}_{j}():\n    # zebramarker V{version}\n    return {j}\n\n\n" for j in range(3))
        for i in range(files)})


@contextmanager
def repo_lock(lode: Lode, repo: str) -> Iterator[None]:
    """Hold the indexer's advisory lock on a repository: an index job on it waits, running, before any file."""
    with lode.db.connection() as conn:
        conn.autocommit = True
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (_REPO_LOCK_CLASS, repo_id))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_REPO_LOCK_CLASS, repo_id))
            conn.autocommit = False


def test_cancel_running_and_queued_jobs_and_one_job_per_repository(lode: Lode, lode_home: Path, roots: Path) -> None:
    root = roots / "cancel"
    _changed_tree(root, 10, 1)
    other = roots / "queued"
    write_tree(other, {"q.py": "def q():\n    return 1\n"})
    with api(lode_home, allowed_roots=[roots], index_jobs=1) as client:
        index_via_api(client, root, "api-cancel")
        _changed_tree(root, 10, 2)
        with repo_lock(lode, "api-cancel"):
            running = client.post("/v1/index", json={"path": str(root), "repo": "api-cancel"}).json()["job"]
            wait_until(lambda: client.get(f"/v1/index/{running['id']}").json()["job"]["state"] == "running", 30,
                       "the job started")
            again = client.post("/v1/index", json={"path": str(root), "repo": "api-cancel"})
            assert again.status_code == 202 and again.json()["merged"] is True  # the same request joins the job
            assert again.json()["job"]["id"] == running["id"]
            elsewhere = client.post("/v1/index", json={"path": str(other), "repo": "api-cancel"})
            assert "is indexed from" in error_of(elsewhere, 400)["message"]
            queued = client.post("/v1/index", json={"path": str(other), "repo": "api-queued"}).json()["job"]
            assert queued["state"] == "queued"  # the only worker is busy
            cancelled = client.delete(f"/v1/index/{queued['id']}")
            assert cancelled.status_code == 202 and cancelled.json()["job"]["state"] == "cancelled"
            asked = client.delete(f"/v1/index/{running['id']}")
            assert asked.status_code == 202 and asked.json()["job"]["state"] == "running"
        job = wait_job(client, running["id"])
        assert job["state"] == "cancelled" and job["error"] == "cancelled by request"
        assert job["files_done"] == 1 and job["files_total"] == 10
        error_of(client.delete(f"/v1/index/{running['id']}"), 409)
        assert wait_job(client, queued["id"])["state"] == "cancelled"
        assert error_of(client.get("/v1/repositories/api-queued"), 404)  # never ran
        # the index is consistent per file: one file has its new version, the others their old one
        hits = client.get("/v1/search", params={"q": "zebramarker", "repo": "api-cancel", "mode": "lexical",
                                                "k": 100}).json()["hits"]
        versions = {h["path"]: set(re.findall(r"V(\d)", h["snippet"])) for h in hits}
        assert len(versions) == 10 and sum(v == {"2"} for v in versions.values()) == 1
        assert all(v in ({"1"}, {"2"}) for v in versions.values())
        with lode.db.connection() as conn:
            run = conn.execute("""SELECT status FROM index_runs r JOIN repositories p ON p.id = r.repo_id
                                   WHERE p.name = 'api-cancel' ORDER BY r.id DESC LIMIT 1""").fetchone()
        assert run[0] == "aborted"


def test_searches_during_a_reindex_see_each_file_whole(client: TestClient, roots: Path) -> None:
    """Concurrent searches while a job re-indexes: no errors, and every hit of a file carries one version."""
    root = roots / "load"
    _changed_tree(root, 48, 1)
    index_via_api(client, root, "api-load")
    _changed_tree(root, 48, 2)
    job_id = client.post("/v1/index", json={"path": str(root), "repo": "api-load"}).json()["job"]["id"]
    errors: list[str] = []
    midway: list[int] = []  # answers holding files of both versions: taken while the job replaced files
    mixed: list[str] = []
    done = threading.Event()

    def searcher() -> None:
        while not done.is_set():
            response = client.get("/v1/search", params={"q": "zebramarker", "repo": "api-load", "mode": "lexical",
                                                        "k": 200})
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text}")
                continue
            by_file: dict[str, set[str]] = {}
            for hit in response.json()["hits"]:
                by_file.setdefault(hit["path"], set()).update(re.findall(r"V(\d)", hit["snippet"]))
            mixed.extend(path for path, found in by_file.items() if len(found) != 1)
            if {"1", "2"} <= set().union(*by_file.values()):
                midway.append(1)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        job = wait_job(client, job_id)
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert job["state"] == "succeeded" and job["files_done"] == 48
    assert errors == [] and mixed == []
    assert midway, "no search ran while the job was replacing files"


# ---- errors -------------------------------------------------------------------------------------------------

def test_error_shapes(client: TestClient, shop: dict[str, Any]) -> None:
    assert error_of(client.get("/v1/search", params={"q": "x", "repo": "nope"}), 404)["code"] == "not_found"
    assert error_of(client.get("/v1/search", params={"q": "x", "k": 0}), 422)["code"] == "validation_error"
    assert error_of(client.get("/v1/search", params={"q": "x", "mode": "fuzzy"}), 422)
    assert error_of(client.get("/v1/search"), 422)["details"][0]["location"] == "query.q"
    assert "offset + k" in error_of(client.get("/v1/search", params={"q": "x", "k": 150, "offset": 100}), 400)[
        "message"]
    assert error_of(client.get("/v1/search", params={"q": "   "}), 400)["code"] == "bad_request"
    assert error_of(client.get("/v1/search", params={"q": "a\x00b"}), 400)["message"].endswith("NUL character")
    assert error_of(client.get("/v1/search", params={"q": "x", "repo": "bad name"}), 422)
    assert error_of(client.get("/v1/graph/callers", params={"symbol": "no_such_symbol_anywhere"}), 404)
    bad_kinds = {"symbol": "shop.pricing.apply_discount", "kinds": "bogus"}
    assert error_of(client.get("/v1/graph/callers", params=bad_kinds), 400)
    assert error_of(client.get("/v1/index/not-a-uuid"), 422)
    assert error_of(client.get("/v1/index/00000000-0000-0000-0000-000000000000"), 404)
    assert error_of(client.get("/v1/nothing-here"), 404)
    assert error_of(client.put("/v1/search"), 405)
    assert error_of(client.post("/v1/index", content=b"{not json", headers={"content-type": "application/json"}), 422)
    assert error_of(client.post("/v1/index", json={"path": "/tmp", "extra": 1}), 422)
    assert error_of(client.post("/v1/index", json={"path": "/tmp/a\x00b"}), 422)
    surrogate = client.post("/v1/index", content=b'{"path": "/tmp/\\ud800"}',
                            headers={"content-type": "application/json"})
    assert error_of(surrogate, 422)["message"].startswith("body.path")  # a lone surrogate
    taken = client.post("/v1/index", json={"path": str(shop["root"].parent), "repo": "api-shop"})
    assert "is indexed from" in error_of(taken, 400)["message"]  # another root under an existing name


def test_request_ids_are_echoed_or_generated_and_metrics_count_routes(client: TestClient,
                                                                      shop: dict[str, Any]) -> None:
    echoed = client.get("/livez", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = client.get("/livez", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    client.get("/v1/search", params={"q": "discount", "repo": "api-shop", "mode": "lexical"})
    client.get("/v1/repositories/does-not-exist")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert re.search(r'lode_http_requests_total\{method="GET",route="/v1/search",status="200"\} [1-9]', metrics.text)
    assert re.search(r'lode_http_requests_total\{method="GET",route="/v1/repositories/\{name\}",status="404"\}',
                     metrics.text)
    assert 'lode_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/search"}' in metrics.text
    assert re.search(r'lode_index_jobs_total\{state="succeeded"\} [1-9]', metrics.text)


# ---- health -------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_probes_and_health(client: TestClient) -> None:
    assert client.get("/livez").json() == {"status": "pass"}
    assert client.get("/readyz").json() == {"status": "pass"}
    health = client.get("/health")
    assert health.status_code == 200
    report = health.json()
    assert report["status"] == "pass" and report["checks"]["database"]["status"] == "pass"
    assert set(report["checks"]) == {"database", "embedder", "circuits", "backfill", "queue"}  # no redis configured


def test_health_warns_on_redis_down_and_open_circuits_and_fails_without_database(lode: Lode,
                                                                                 lode_home: Path) -> None:
    with running_redis() as redis_server:
        degraded = Lode(Settings(home=lode_home, embedder="none", redis_url=redis_server.url,
                                 database_url=lode.db.url))
        reset_breakers()
        try:
            assert health_report(degraded)["checks"]["redis"]["status"] == "pass"
            redis_server.freeze()  # a hung Redis: the ping's socket timeout answers
            hung = health_report(degraded)["checks"]["redis"]
            assert hung["status"] == "warn" and "Timeout" in hung["error"]
            redis_server.thaw()
            redis_server.kill()
            failing = breaker("embedder", config=degraded.settings.breakers)
            for _ in range(failing._failure_threshold):
                with pytest.raises(ZeroDivisionError):
                    failing.call(lambda: 1 / 0)
            report = health_report(degraded)
            assert report["status"] == "warn"
            assert report["checks"]["redis"]["status"] == "warn" and "Connection" in report["checks"]["redis"]["error"]
            assert report["checks"]["circuits"]["open"] == ["embedder"]
            assert report["checks"]["database"]["status"] == "pass"
        finally:
            reset_breakers()
            degraded.close()

    down = Lode(Settings(home=lode_home, embedder="none", database_url=f"postgresql://127.0.0.1:{_free_port()}/x"))
    down._db = Database(down.settings.database_url, down.settings)  # the pool of a server that went away
    down._db.pool.open(wait=False)
    try:
        report = health_report(down)
        assert report["status"] == "fail" and report["checks"]["database"]["status"] == "fail"
        with api(lode_home) as test_client:
            test_client.app.state.lode, served = down, test_client.app.state.lode
            try:
                assert test_client.get("/health").status_code == 503
                assert test_client.get("/readyz").status_code == 503
                assert test_client.get("/livez").status_code == 200
            finally:
                test_client.app.state.lode = served
    finally:
        down.close()


def test_health_cli(lode: Lode) -> None:
    code, report, _ = run_cli("health", "--json")
    assert code == 0 and report["status"] == "pass" and report["checks"]["database"]["status"] == "pass"
    code, report, _ = run_cli("health", "--json", env={
        "LODE_DATABASE_URL": f"postgresql://127.0.0.1:{_free_port()}/x", "LODE_TIMEOUT_DB_QUERY": "2"})
    assert code == 1 and report["status"] == "fail" and "cannot connect" in report["checks"]["database"]["error"]


def test_real_serve_process(lode: Lode) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lode", "serve", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "LODE_LOG_LEVEL": "INFO"})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                live = httpx.get(f"http://127.0.0.1:{port}/livez", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "lode serve did not start"
                time.sleep(0.2)
        assert live.status_code == 200 and live.json() == {"status": "pass"}
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200 and health.json()["checks"]["database"]["status"] == "pass"
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/repositories", headers={"X-Request-ID": "serve-test-1"},
                           timeout=10)
        assert listed.status_code == 200 and listed.headers["x-request-id"] == "serve-test-1"
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    assert {"event": "request", "request_id": "serve-test-1", "route": "/v1/repositories", "status": 200,
            "method": "GET"}.items() <= next(line for line in lines if line.get("request_id") == "serve-test-1").items()
