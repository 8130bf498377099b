"""Atomic units, proven by killing the process inside them.

A real `lode` process is stopped with SIGKILL while its transaction is open: the test holds a table lock that
the unit needs for its last statements, waits until the unit's backend is blocked on it (so every earlier
statement of the unit has run), kills the client, then releases the lock. PostgreSQL must roll the whole
unit back, and the index must be exactly as before. (Killing the indexer inside a file's unit is covered by
tests/fault.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from tests.support.snapshot import index_snapshot
from tests.support.cli import run_cli
from tests.support.trees import SEMANTIC_CORPUS, write_tree
from tests.support.embedding_stub import http_env

from lode.engine import Lode


def _kill_when_blocked(lode: Lode, proc: subprocess.Popen, statement_prefix: str, timeout: float = 60) -> None:
    """SIGKILL `proc` once a backend runs a statement starting with statement_prefix and waits for a lock."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(lode.db.url, autocommit=True) as watcher:
        while time.monotonic() < deadline:
            blocked = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                (statement_prefix + "%",),
            ).fetchone()[0]
            if blocked:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                return
            assert proc.poll() is None, f"the unit finished before it blocked: {proc.communicate()}"
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no backend blocked on {statement_prefix!r}")


def _lode_process(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lode", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_rolled_back(lode: Lode) -> None:
    """The killed client's backend ends (rolling back) once it sees the closed socket."""
    deadline = time.monotonic() + 30
    with lode.db.connection() as conn:
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                           " OR wait_event_type = 'Lock'").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.05)


def test_a_killed_repository_delete_leaves_the_repository_whole(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, SEMANTIC_CORPUS)
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    before = index_snapshot(lode, repo_name)
    hits_before = lode.search.query("payload", repo=repo_name, mode="lexical")["hits"]

    with psycopg.connect(lode.db.url) as holder:
        holder.execute("LOCK TABLE chunks IN SHARE MODE")  # the delete's last statements wait here
        proc = _lode_process("repos", "rm", repo_name)
        _kill_when_blocked(lode, proc, "DELETE FROM chunks")
        holder.rollback()
    _wait_rolled_back(lode)

    assert index_snapshot(lode, repo_name) == before  # vectors, graph and postings came back with it
    assert lode.search.query("payload", repo=repo_name, mode="lexical")["hits"] == hits_before
    code, removed, _ = run_cli("repos", "rm", repo_name, "--json")
    assert code == 0 and removed == {"removed": repo_name}


def test_a_killed_model_switch_keeps_serving_the_old_model_then_completes(
    lode: Lode, tmp_path: Path, repo_name: str, stub: str  # noqa: F811
) -> None:
    write_tree(tmp_path, SEMANTIC_CORPUS)
    code, report, _ = run_cli("index", str(tmp_path), "--repo", repo_name, "--wait", "--json", env=http_env(stub))
    assert code == 0 and report["embeddings"]["pending"] == 0
    with lode.db.connection() as conn:
        old_model = conn.execute("SELECT embedding_model FROM repositories WHERE name = %s",
                                 (repo_name,)).fetchone()[0]

    with psycopg.connect(lode.db.url) as holder:
        holder.execute(f"LOCK TABLE vectors_m{old_model} IN SHARE MODE")  # the switch-over's drop waits here
        proc = _lode_process("embed", "--repo", repo_name, "--switch", env=http_env(stub, "stub-b"))
        _kill_when_blocked(lode, proc, f"DELETE FROM vectors_m{old_model}")
        holder.rollback()
    _wait_rolled_back(lode)

    code, status, _ = run_cli("status", "--repo", repo_name, "--json")
    repo = status["repos"][0]
    assert (repo["embedding_model"], repo["switching_to"]) == ("http:stub-a", "http:stub-b")
    code, result, _ = run_cli("search", "post the payload", "--repo", repo_name, "--json", env=http_env(stub))
    assert code == 0 and result["degraded"] == [] and result["hits"], "the old model still serves"

    code, progress, _ = run_cli("embed", "--repo", repo_name, "--switch", "--json", env=http_env(stub, "stub-b"))
    assert code == 0 and progress["pending"] == 0
    code, status, _ = run_cli("status", "--repo", repo_name, "--json")
    assert status["repos"][0]["embedding_model"] == "http:stub-b" and status["repos"][0]["switching_to"] is None
    with lode.db.connection() as conn:
        left = conn.execute(f"SELECT count(*) FROM vectors_m{old_model} v JOIN repositories r ON r.id = v.repo_id"
                            " WHERE r.name = %s", (repo_name,)).fetchone()[0]
    assert left == 0
