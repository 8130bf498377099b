"""Deferred and parallel graph resolution: `lode index` may leave a large resolution to the background; graph
queries finish queued work first (or say that it is still running); forked resolution equals serial."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest
from tests.support.snapshot import index_snapshot
from tests.support.cli import run_cli
from tests.support.polling import wait_until

import lode.store.graph as graph_store
from lode.config import Settings
from lode.engine import Lode
from lode.store.graph import GraphStore, edges_partition
from lode.indexer import _REPO_LOCK_CLASS

PYSHOP = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"


def _backlog(lode: Lode, repo: str) -> int:
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        return GraphStore(conn).backlog(repo_id)


def _edges(lode: Lode, repo: str) -> list[tuple]:
    return index_snapshot(lode, repo)["edges"]


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_cli_index_resolves_a_large_change_in_the_background(lode: Lode, repo_name: str, tmp_path: Path) -> None:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    code, report, _ = run_cli("index", str(tree), "--repo", repo_name, "--json",
                              env={"LODE_GRAPH_INLINE_FILES": "0"})
    assert code == 0 and report["graph_pending"] is True
    log = Path(lode.settings.home) / "logs" / f"graph-{repo_name}.log"
    # the detached `lode graph resolve` commits, then logs its report
    wait_until(lambda: _backlog(lode, repo_name) == 0 and '"resolved": true' in _text(log), 60,
               "the background resolve emptied the backlog and logged its report")

    clean = f"{repo_name}-clean"
    code, report, _ = run_cli("index", str(tree), "--repo", clean, "--json")  # small: resolved inline
    assert code == 0 and report["graph_pending"] is False and _backlog(lode, clean) == 0
    assert _edges(lode, repo_name) == _edges(lode, clean) and _edges(lode, clean)


def test_a_graph_query_finishes_queued_work_first(lode_home: Path, repo_name: str, tmp_path: Path) -> None:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    with Lode(Settings(home=lode_home, embedder="none", graph_inline_files=0)) as engine:
        report = engine.indexing.index(tree, repo_name, defer_graph=True)
        assert report.graph_pending and _backlog(engine, repo_name) > 0
        assert engine.repos.status(repo_name)["repos"][0]["graph"]["pending_files"] == _backlog(engine, repo_name)
        result = engine.graph.neighbours("callers", "shop.util.clamp", repo=repo_name)
        assert result["graph_pending"] is False and result["results"]
        assert _backlog(engine, repo_name) == 0
        assert engine.repos.status(repo_name)["repos"][0]["graph"]["pending_files"] == 0


def test_a_query_during_a_long_index_run_says_the_graph_is_pending(lode_home: Path, repo_name: str,
                                                                   tmp_path: Path) -> None:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    settings = Settings(home=lode_home, embedder="none", graph_inline_files=0)
    settings.timeouts.graph_traversal = 0.5
    with Lode(settings) as engine:
        engine.indexing.index(tree, repo_name, defer_graph=True)
        with engine.db.connection() as conn:
            repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo_name,)).fetchone()[0]
        with engine.db.advisory_lock(_REPO_LOCK_CLASS, repo_id) as held:  # as an index run holds it
            assert held
            pending = engine.graph.neighbours("callers", "shop.util.clamp", repo=repo_name)  # answers, not waits
        assert pending["graph_pending"] is True and pending["results"] == []
        settled = engine.graph.neighbours("callers", "shop.util.clamp", repo=repo_name)  # not served from a cache
        assert settled["graph_pending"] is False and settled["results"]


def test_forked_resolution_equals_serial(lode_home: Path, repo_name: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    with Lode(Settings(home=lode_home, embedder="none")) as engine:
        engine.indexing.index(tree, f"{repo_name}-serial")
        monkeypatch.setattr(graph_store, "_PARALLEL_JSON", 1)
        forks = []
        real_pool = graph_store.multiprocessing.get_context

        def counting_context(method: str):  # type: ignore[no-untyped-def]
            forks.append(method)
            return real_pool(method)

        monkeypatch.setattr(graph_store.multiprocessing, "get_context", counting_context)
        engine.settings.index_workers = 2
        engine.indexing.index(tree, f"{repo_name}-forked")
        assert forks.count("fork") == 1  # the resolution; the indexer's file workers start by "forkserver"
        serial, forked = _edges(engine, f"{repo_name}-serial"), _edges(engine, f"{repo_name}-forked")
    assert serial and serial == forked


def test_a_resolution_that_writes_many_edges_leaves_fresh_statistics(lode: Lode, repo_name: str,
                                                                      tmp_path: Path) -> None:
    """The repository's graph_edges partition, and graph_edges as a whole, are analysed after the resolution that
    filled it (the planner of graph queries needs both); the postings' ANALYZE before it ran on a first load's
    empty edges."""
    calls = 8000
    (tmp_path / "many.py").write_text("def target():\n    pass\n\n\ndef caller():\n" + "    target()\n" * calls)
    lode.indexing.index(tmp_path, repo_name)
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo_name,)).fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM graph_edges WHERE repo_id = %s", (repo_id,)).fetchone()[0]
        analysed = conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s",
                                (edges_partition(repo_id),)).fetchone()[0]
        inherited = conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'graph_edges' AND inherited"
                                 ).fetchone()[0]
    assert stored >= calls and analysed > 0 and inherited > 0, (stored, analysed, inherited)


def _resolve_queued(engine: Lode, repo: str, workers: int, budget_mb: int) -> graph_store.ResolveReport:
    with engine.db.connection() as conn, conn.transaction():
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        return GraphStore(conn).resolve(repo_id, workers=workers, budget_mb=budget_mb)


def test_resolution_within_a_small_memory_budget_equals_an_unbounded_one(
        lode_home: Path, repo_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LODE_MEMORY_BUDGET_MB bounds what a resolution holds besides the symbol table: its references stream in
    batches, its memo is emptied past a bound, and it forks resolvers only when the budget holds a table for
    each. None of this may change an edge."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    tree = tmp_path / "lib"
    for package in ("email", "json", "http"):
        shutil.copytree(stdlib / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    with Lode(Settings(home=lode_home, embedder="none", graph_inline_files=0)) as engine:
        for name in ("unbounded", "small", "forked"):
            engine.indexing.index(tree, f"{repo_name}-{name}", defer_graph=True)
        unbounded = _resolve_queued(engine, f"{repo_name}-unbounded", workers=1, budget_mb=1 << 20)
        assert unbounded.processes == 0 and unbounded.batches == 1 and unbounded.edges > 2000

        monkeypatch.setattr(graph_store, "_BATCH_SHARE", 1 << 14)  # 4 KiB of a 64 MiB budget: many batches
        monkeypatch.setattr(graph_store, "_MEMO_ENTRY_BYTES", 1 << 20)  # a memo of 32 to 64 entries
        small = _resolve_queued(engine, f"{repo_name}-small", workers=2, budget_mb=64)
        assert small.processes == 0, "64 MB holds no forked copy of the symbol table"
        assert small.batches > 10 and small.memo_entries <= 64

        monkeypatch.setattr(graph_store, "_PARALLEL_JSON", 1)
        forked = _resolve_queued(engine, f"{repo_name}-forked", workers=2, budget_mb=4096)
        assert forked.processes == 2 and forked.batches >= 8

        edges = {name: _edges(engine, f"{repo_name}-{name}") for name in ("unbounded", "small", "forked")}
    assert (small.edges, small.references) == (forked.edges, forked.references) == (
        unbounded.edges, unbounded.references)
    assert edges["small"] == edges["unbounded"] and edges["forked"] == edges["unbounded"]
