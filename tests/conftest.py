"""Shared fixtures: one real embedded PostgreSQL for the whole session, under a temporary LODE_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from lode.config import Settings
from lode.engine import Lode

# Embedded servers of tests stop with their last user, not LODE_EMBEDDED_IDLE_SECONDS later (the tests of the idle
# period set their own): a test's server in its own LODE_HOME must not outlive the test.
os.environ.setdefault("LODE_EMBEDDED_IDLE_SECONDS", "0")


@pytest.fixture(scope="session")
def lode_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("lode-home")
    os.environ["LODE_HOME"] = str(home)
    os.environ["LODE_EMBEDDER"] = "none"
    os.environ.pop("LODE_DATABASE_URL", None)
    return home


@pytest.fixture(scope="session")
def lode(lode_home: Path) -> Lode:
    engine = Lode(Settings(home=lode_home, embedder="none"))
    engine.db  # start the embedded server once; CLI subprocesses attach to it
    yield engine
    engine.close()


@pytest.fixture(autouse=True)
def _fresh_circuit_breakers():
    """Breakers are process-wide: a test's failures must not leave one open for the next test."""
    from lode.resilience import reset_breakers

    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def repo_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def local_client(app, base_url: str = "http://127.0.0.1"):
    """A TestClient that calls as a loopback caller, by a loopback name: its defaults ("testclient" calling
    "testserver") are neither, and the server answers only allowed Host names and, without keys, loopback."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url=base_url, client=("127.0.0.1", 50000))


def run_cli(*args: str, check_json: bool = True, env: dict[str, str] | None = None, timeout: float = 120):
    """Run `python -m lode ARGS` in a real process; return (exit code, parsed JSON or stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "lode", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    payload: object = proc.stdout
    if check_json and "--json" in args and proc.stdout.strip():
        payload = json.loads(proc.stdout)
    return proc.returncode, payload, proc.stderr


def index_snapshot(lode: Lode, repo: str) -> dict:
    """Everything an index holds for a repository, without ids and timestamps, for equality checks."""
    with lode.db.connection() as conn:
        repo_row = conn.execute(
            "SELECT id, chunk_count, total_length FROM repositories WHERE name = %s", (repo,)
        ).fetchone()
        assert repo_row is not None, f"repository {repo} not found"
        repo_id = repo_row[0]
        files = conn.execute(
            "SELECT path, language, content_hash, fallback FROM files WHERE repo_id = %s ORDER BY path", (repo_id,)
        ).fetchall()
        chunks = conn.execute(
            """SELECT path, kind, name, name_path, start_line, end_line, start_byte, end_byte, signature, docstring,
                      content_hash, length FROM chunks WHERE repo_id = %s ORDER BY path, start_byte, end_byte""",
            (repo_id,),
        ).fetchall()
        chunk_at = dict(conn.execute("SELECT id, (path, start_byte) FROM chunks WHERE repo_id = %s", (repo_id,)))
        postings = []
        for term, ids, tfs, lengths in conn.execute(
            "SELECT term, chunk_ids, tfs, lengths FROM postings WHERE repo_id = %s", (repo_id,)
        ):
            for cid, tf, length in zip(np.frombuffer(ids, "<i8"), np.frombuffer(tfs, "<i4"),
                                       np.frombuffer(lengths, "<i4")):
                postings.append((*chunk_at[int(cid)], term, int(tf), int(length)))
        postings.sort()
        orphans = conn.execute(
            """SELECT (SELECT count(*) FROM postings p WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = p.file_id))
                    + (SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = c.file_id))"""
        ).fetchone()[0]
        skipped = conn.execute(
            "SELECT path, reason FROM skipped_files WHERE repo_id = %s ORDER BY path", (repo_id,)
        ).fetchall()
        edges = conn.execute(
            """SELECT s.name_path, s.path, coalesce(t.name_path, e.target_name), e.kind, e.confidence, e.line
                 FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                 LEFT JOIN graph_nodes t ON t.id = e.target_id
                WHERE e.repo_id = %s ORDER BY 1, 2, 3, 4, 6""",
            (repo_id,),
        ).fetchall()
        dangling = conn.execute(
            """SELECT count(*) FROM graph_edges e WHERE e.repo_id = %s AND (
                   NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.source_id)
                   OR (e.target_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.target_id)))""",
            (repo_id,),
        ).fetchone()[0]
    assert dangling == 0, "dangling graph edges"
    assert orphans == 0, "orphaned chunks or postings"
    return {
        "files": files, "chunks": chunks, "postings": postings, "skipped": skipped, "edges": edges,
        "stats": (repo_row[1], round(repo_row[2], 3)),
    }
