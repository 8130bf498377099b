"""LODE_GRAPH: off, indexing writes no graph rows and graph queries refuse with a clear error; back on, the next
run builds the graph of the files indexed meanwhile (unchanged on disk or not), equal to a clean build; and the
graph-cost benchmark runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from tests.support.snapshot import index_snapshot
from tests.support.api_client import local_client
from tests.support.cli import run_cli

from lode.api.app import create_app
from lode.config import QueueSettings, ServerSettings, Settings
from lode.engine import Lode
from lode.errors import InputError

PYSHOP = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"
ROOT = Path(__file__).resolve().parents[2]
OFF_MESSAGE = "the code graph is off (LODE_GRAPH=false)"
GRAPH_TABLES = ("graph_files", "graph_nodes", "graph_edges", "graph_file_dependencies", "graph_dirty_files")


@pytest.fixture
def graph_off(lode: Lode, lode_home: Path) -> Lode:
    """An engine with LODE_GRAPH=false on the session's server (`lode` is the same with the graph on)."""
    with Lode(Settings(home=lode_home, embedder="none", graph=False)) as engine:
        yield engine


def _shop(tmp_path: Path) -> Path:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    (tree / "README.md").write_text("# Shop\n\nA text file: it has a graph_files row with the graph on.\n")
    return tree


def _graph_rows(lode: Lode, repo: str) -> dict[str, int]:
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        return {table: conn.execute(f"SELECT count(*) FROM {table} WHERE repo_id = %s", (repo_id,)).fetchone()[0]
                for table in GRAPH_TABLES}


def _graph(lode: Lode, repo: str) -> dict:
    """The whole index in canonical form (conftest.index_snapshot: files, chunks, postings, edges) plus nodes."""
    snapshot = index_snapshot(lode, repo)
    with lode.db.connection() as conn:
        snapshot["nodes"] = conn.execute(
            """SELECT n.path, n.kind, n.name, n.name_path, n.start_line, n.end_line FROM graph_nodes n
                 JOIN repositories r ON r.id = n.repo_id WHERE r.name = %s ORDER BY 1, 5, 6, 2, 4""", (repo,)
        ).fetchall()
    return snapshot


def _versions(lode: Lode, repo: str) -> dict[str, list[str] | None]:
    """xmin of the rows a re-index could rewrite: any write changes them."""
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        return {table: conn.execute(
            f"SELECT array_agg(xmin::text ORDER BY xmin::text) FROM {table} WHERE repo_id = %s", (repo_id,)
        ).fetchone()[0] for table in ("files", "chunks", "graph_files", "graph_nodes", "graph_edges")}


def test_graph_off_indexes_for_search_only_and_graph_queries_refuse(
    graph_off: Lode, lode_home: Path, repo_name: str, tmp_path: Path
) -> None:
    tree = _shop(tmp_path)
    report = graph_off.indexing.index(tree, repo_name)
    assert report.files_indexed == 10 and report.graph_pending is False
    assert _graph_rows(graph_off, repo_name) == dict.fromkeys(GRAPH_TABLES, 0)
    hits = graph_off.search.query("clamp", repo=repo_name, mode="lexical")["hits"]
    assert hits and hits[0]["name_path"] == "shop.util.clamp"
    assert graph_off.repos.status(repo_name)["repos"][0]["graph"] == {"enabled": False, "nodes": 0, "pending_files": 0}
    code, text, _ = run_cli("status", "--repo", repo_name, env={"LODE_GRAPH": "false"})
    assert code == 0 and "graph: off (LODE_GRAPH=false)" in text

    from lode.graph import ExportFilters

    for query in (
        lambda: graph_off.graph.neighbours("callers", "shop.util.clamp", repo=repo_name),
        lambda: graph_off.graph.neighbours("callees", "shop.util.clamp"),
        lambda: graph_off.graph.path("app.main", "shop.util.clamp", repo=repo_name),
        lambda: graph_off.graph.stats(repo_name),
        lambda: graph_off.graph.export("json", ExportFilters(), repo_name),
        lambda: graph_off.graph.resolve(repo_name),
        lambda: graph_off.search.query("clamp", repo=repo_name, mode="lexical", expand=True),
    ):
        with pytest.raises(InputError, match=re.escape(OFF_MESSAGE)):
            query()

    code, _, stderr = run_cli("graph", "callers", "shop.util.clamp", "--repo", repo_name,
                              env={"LODE_GRAPH": "false"})
    assert code == 2
    assert stderr.strip() == ("lode: error: the code graph is off (LODE_GRAPH=false): set LODE_GRAPH=true and "
                              "re-index to build it")
    code, payload, _ = run_cli("graph", "stats", "--repo", repo_name, "--json", env={"LODE_GRAPH": "false"})
    assert code == 2 and OFF_MESSAGE in payload["error"]["message"]

    settings = Settings(home=lode_home, embedder="none", graph=False,
                        queue=QueueSettings(name=f"test-{uuid.uuid4().hex[:12]}"),
                        server=ServerSettings(rate_limit=None, index_jobs=0))
    with local_client(create_app(settings)) as client:
        response = client.get("/v1/graph/callers", params={"symbol": "shop.util.clamp", "repo": repo_name})
        assert response.status_code == 400
        assert OFF_MESSAGE in response.json()["error"]["message"]
        response = client.get("/v1/search", params={"q": "clamp", "repo": repo_name, "mode": "lexical"})
        assert response.status_code == 200 and response.json()["hits"]


@pytest.mark.parametrize("first", ["on", "off"])
def test_turning_the_graph_back_on_builds_it_as_a_clean_build_would(
    lode: Lode, graph_off: Lode, repo_name: str, tmp_path: Path, first: str
) -> None:
    tree = _shop(tmp_path)
    (lode if first == "on" else graph_off).indexing.index(tree, repo_name)
    # edits with the graph off: a changed file, a new one, a deleted one, and a rename (callers now external)
    util = tree / "shop" / "util.py"
    util.write_text(util.read_text() + "\n\ndef double_clamp(value):\n    return clamp(clamp(value, 0, 9), 1, 8)\n")
    (tree / "shop" / "extra.py").write_text("from shop.util import double_clamp\n\ndef go():\n    double_clamp(3)\n")
    (tree / "shop" / "storage" / "backends.py").rename(tree / "shop" / "storage" / "engines.py")
    (tree / "shop" / "pricing.py").unlink()
    off = graph_off.indexing.index(tree, repo_name)
    assert off.files_indexed == 3 and off.files_deleted == 2
    with graph_off.db.connection() as conn:
        unbuilt = conn.execute(
            """SELECT count(*) FROM files f JOIN repositories r ON r.id = f.repo_id WHERE r.name = %s
                  AND NOT EXISTS (SELECT 1 FROM graph_files g WHERE g.file_id = f.id)""", (repo_name,)
        ).fetchone()[0]
    assert unbuilt == (3 if first == "on" else 10)

    on = lode.indexing.index(tree, repo_name)
    assert (on.files_indexed, on.files_deleted, on.files_unchanged) == (unbuilt, 0, 10 - unbuilt)
    rows = _graph_rows(lode, repo_name)
    assert rows["graph_files"] == 10 and rows["graph_dirty_files"] == 0 and rows["graph_edges"] > 0
    graph = lode.repos.status(repo_name)["repos"][0]["graph"]
    assert graph == {"enabled": True, "nodes": rows["graph_nodes"], "pending_files": 0} and graph["nodes"] > 10
    code, text, _ = run_cli("status", "--repo", repo_name)
    assert code == 0 and f"graph: {graph['nodes']} nodes\n" in text

    clean = f"{repo_name}-clean"
    lode.indexing.index(shutil.copytree(tree, tmp_path / "clean"), clean)
    assert _graph(lode, repo_name) == _graph(lode, clean)
    calls = {(s, t) for s, _, t, kind, _, _ in index_snapshot(lode, repo_name)["edges"] if kind == "calls"}
    assert ("shop.extra.go", "shop.util.double_clamp") in calls

    before = _versions(lode, repo_name)  # a no-op re-index with the graph on rebuilds nothing
    noop = lode.indexing.index(tree, repo_name)
    assert (noop.files_indexed, noop.files_deleted, noop.files_unchanged) == (0, 0, 10)
    assert _versions(lode, repo_name) == before


def test_graph_cost_bench_smoke(tmp_path: Path) -> None:
    """bench/graph_cost.py's quick mode (about 10 s on 2 cores): both modes measured, positive CPU figures."""
    env = {key: value for key, value in os.environ.items() if key not in ("LODE_HOME", "LODE_DATABASE_URL")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "graph_cost.py"), "--scale", "0.05", "--runs", "1",
         "--workdir", str(tmp_path / "bench"), "--json", str(tmp_path / "bench.json")],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    medians = {m.group(1): (float(m.group(2)), float(m.group(3)))
               for m in re.finditer(r"^\| graph (on|off) \| [^|]+ \| ([\d.]+) \| ([\d.]+) \|", out, re.MULTILINE)}
    assert medians.keys() == {"on", "off"}, out
    assert all(wall > 0 and cpu > 0 for wall, cpu in medians.values()), out
    assert re.search(r"^\| on / off \| \| [+-][\d.]+ % \| [+-][\d.]+ % \|", out, re.MULTILINE), out
    graphs = [run["graph"] for run in json.loads((tmp_path / "bench.json").read_text())["runs"]]
    assert graphs[0] is None and graphs[1]["edges"] > graphs[1]["external"] > 0  # off, then on
    assert f"The same graph in every run with it: {graphs[1]['edges']:,} edges" in out, out
    assert not (tmp_path / "bench").exists() or not list((tmp_path / "bench").glob("corpus*")), "corpus left over"
