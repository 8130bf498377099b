"""`lode serve` losing its PostgreSQL (issue #15, item 8), on real processes.

Before the fix every /v1 request was a 500 after about 2 s once the server had gone: the auth middleware's key
lookup raised DatabaseUnavailable, which nothing caught, and the "database" circuit breaker never opened. Now
the answer is a 503 with the JSON error, at once while the breaker is open, and a killed embedded PostgreSQL is
restarted by the serving process itself.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import psycopg
import pytest
from tests.support.serve_process import lode_serve
from tests.support.tcp_proxy import TcpProxy

from lode.engine import Lode


def _unix_socket(lode: Lode) -> str:
    socket_dir = psycopg.conninfo.conninfo_to_dict(lode.db.url)["host"]
    [found] = [str(p) for p in Path(socket_dir).glob(".s.PGSQL.*") if not p.name.endswith(".lock")]
    return found


def test_serve_answers_503_and_fails_fast_while_its_database_is_unreachable(
        lode: Lode, tmp_path: Path, no_keys: None) -> None:  # noqa: F811
    proxy = TcpProxy(_unix_socket(lode))  # an "external" database this test can cut off and bring back
    env = {"LODE_DATABASE_URL": psycopg.conninfo.make_conninfo(lode.db.url, host="127.0.0.1", port=str(proxy.port)),
           "LODE_BREAKER_FAILURE_THRESHOLD": "2", "LODE_BREAKER_RECOVERY_SECONDS": "2", "LODE_INDEX_JOBS": "0"}
    try:
        with lode_serve(tmp_path / "serve.log", env=env) as served:
            assert served.request("GET", "/v1/repositories").status == 200
            proxy.cut()
            answers = [served.request("GET", "/v1/repositories") for _ in range(4)]
            assert [a.status for a in answers] == [503] * 4, [a.body for a in answers]
            assert all(a.error(503)["code"] == "unavailable" for a in answers)
            assert "fail fast" in answers[-1].error(503)["message"]  # the breaker opened after two failures
            health = served.request("GET", "/health")
            assert health.status == 503 and "database" in health.json()["checks"]["circuits"]["open"]
            assert served.request("POST", "/mcp", body="{}").error(503)

            proxy.restore()
            deadline = time.monotonic() + 60
            while (status := served.request("GET", "/v1/repositories").status) != 200:
                assert status == 503 and time.monotonic() < deadline, f"no recovery: {status}"
                time.sleep(0.5)
    finally:
        proxy.cut()


def _postmaster(pgdata: Path) -> int | None:
    """The running postmaster's pid (postmaster.pid, status ready), or None."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    pid = int(lines[0])
    return pid if len(lines) > 7 and lines[7].strip() == "ready" and psutil.pid_exists(pid) else None


@pytest.mark.slow
def test_serve_restarts_a_killed_embedded_postgres_by_itself(tmp_path: Path) -> None:
    """SIGKILL of the embedded postmaster under a `lode serve` that is its only user: no answer is a 500, and
    the server is back without any other command, first through a request, then through the heartbeat alone."""
    home = tmp_path / "home"
    pgdata = home / "pgdata"
    env = {"LODE_HOME": str(home), "LODE_EMBEDDER": "none", "LODE_SERVER_HEARTBEAT_SECONDS": "1"}
    with lode_serve(tmp_path / "serve.log", env=env) as served:
        assert served.request("GET", "/v1/repositories").status == 200
        first = _postmaster(pgdata)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 120
        while True:
            answer = served.request("GET", "/v1/repositories")
            if answer.status == 200 and _postmaster(pgdata) not in (None, first):
                break
            if answer.status != 200:
                assert answer.error(503)["code"] == "unavailable"
            assert time.monotonic() < deadline, "the embedded server was not restarted"
            time.sleep(0.5)

        second = _postmaster(pgdata)
        os.kill(second, signal.SIGKILL)  # now with no request: the heartbeat finds it gone
        deadline = time.monotonic() + 120
        while _postmaster(pgdata) in (None, second):
            assert time.monotonic() < deadline, "the heartbeat did not restart the embedded server"
            time.sleep(0.5)
        assert served.request("GET", "/v1/repositories").status == 200
        assert served.request("GET", "/readyz").status == 200
    assert served.log.read_text().count("restarting the embedded server") >= 2
