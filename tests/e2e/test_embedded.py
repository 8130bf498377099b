"""The embedded server: started on demand under LODE_HOME, shared by concurrent processes, stopped after the last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.polling import wait_until
from tests.support.trees import base_tree, write_tree


def _servers_for(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(home) in part for part in cmdline):
            found.append(proc)
    return found


def test_concurrent_processes_share_one_server_that_stops_after_the_last(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LODE_HOME": str(home)}
    env.pop("LODE_DATABASE_URL", None)
    repos = []
    for i in range(3):
        root = tmp_path / f"repo{i}"
        write_tree(root, base_tree())
        repos.append(root)
    procs = [
        subprocess.Popen([sys.executable, "-m", "lode", "index", str(root), "--repo", f"r{i}", "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i, root in enumerate(repos)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    listed = subprocess.run([sys.executable, "-m", "lode", "repos", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert '"r0"' in listed.stdout and '"r1"' in listed.stdout and '"r2"' in listed.stdout
    assert (home / "pgdata" / "PG_VERSION").exists()
    _wait_gone(home, 15, "the server outlived its last user")  # its children exit a moment after the postmaster


# a process that starts (or attaches to) the embedded server, optionally with other TUNING, prints what it runs
# with, then holds the server until its stdin closes and checks that its connection still works
_USER = """
import sys
from pathlib import Path
import psycopg
from lode.store import embedded
embedded.TUNING.update(dict(arg.split("=", 1) for arg in sys.argv[2:]))
with psycopg.connect(embedded.start(Path(sys.argv[1])), autocommit=True) as conn:
    print(*conn.execute("SELECT current_setting('shared_buffers'), pg_backend_pid() > 0, "
                        "(SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer')").fetchone(),
          flush=True)
    sys.stdin.read()
    print(conn.execute("SELECT 'alive'").fetchone()[0], flush=True)
"""


def _user(home: Path, *tuning: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _USER, str(home), *tuning], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _settings(proc: subprocess.Popen) -> tuple[str, str]:
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    shared_buffers, _, checkpointer = line.split()
    return shared_buffers, checkpointer  # the checkpointer's pid changes when the server restarts


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate("", timeout=60)
    assert proc.returncode == 0, err
    return out.strip()


def test_a_fresh_server_already_runs_with_the_tuned_shared_buffers(tmp_path: Path) -> None:
    from lode.store.embedded import TUNING

    first = _user(tmp_path / "home")
    assert _settings(first)[0] == TUNING["shared_buffers"] != "128MB"  # PostgreSQL's default
    assert _finish(first) == "alive"


def test_a_restart_only_setting_waits_while_another_process_uses_the_server(tmp_path: Path) -> None:
    home = tmp_path / "home"
    holder = _user(home)
    tuned, checkpointer = _settings(holder)
    other = _user(home, "shared_buffers=256MB")  # a newer Lode asks for another value: no restart under holder
    assert _settings(other) == (tuned, checkpointer)
    assert _finish(other) == "alive" and _finish(holder) == "alive"
    _wait_gone(home, 15, "the server outlived its last users")
    alone = _user(home, "shared_buffers=256MB")  # the next process to start it alone applies it
    assert _settings(alone)[0] == "256MB"
    assert _finish(alone) == "alive"


def _wait_gone(home: Path, within: float, message: str = "the embedded server is still running") -> None:
    wait_until(lambda: not _servers_for(home), within, message)


def _lode(home: Path, *args: str, idle: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "LODE_HOME": str(home), "LODE_EMBEDDER": "none", "LODE_EMBEDDED_IDLE_SECONDS": str(idle)}
    env.pop("LODE_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "lode", *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def _postmaster_pid(home: Path) -> int:
    return int((home / "pgdata" / "postmaster.pid").read_text().split()[0])


def _reapers(home: Path) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"])
            if "lode.store.embedded" in (p.info["cmdline"] or []) and str(home) in " ".join(p.info["cmdline"])]


def _wait_reapers_gone(home: Path, message: str) -> None:
    wait_until(lambda: not _reapers(home), 15, message)


@pytest.mark.slow
def test_the_server_outlives_its_last_user_for_the_idle_period_then_stops(tmp_path: Path) -> None:
    home = tmp_path / "home"
    idle = 15  # longer than a command takes to start on a loaded machine
    assert _lode(home, "status", "--json", idle=idle).returncode == 0
    assert _servers_for(home), "the server stopped with its last user despite the idle period"
    postmaster = _postmaster_pid(home)
    assert _lode(home, "repos", "--json", idle=idle).returncode == 0
    assert _postmaster_pid(home) == postmaster, "the next command started a new server"
    assert len(_reapers(home)) == 1  # one reaper per server, however many commands came and went
    _wait_gone(home, idle + 30, "the idle server was never stopped")
    _wait_reapers_gone(home, "the reaper outlived the server it stopped")


def test_lode_stop_stops_an_idle_server_now_and_refuses_while_it_is_in_use(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _lode(home, "stop", idle=600).stdout.strip() == "the embedded server was not running"
    holder = _user(home)
    _settings(holder)
    busy = _lode(home, "stop", "--json", idle=600)
    assert busy.returncode == 1 and f"in use by {holder.pid}" in busy.stderr
    assert json.loads(busy.stdout)["error"]["exit_code"] == 1 and _servers_for(home)
    assert _finish(holder) == "alive"  # the refusal left its connection alone
    _wait_gone(home, 30)  # the holder ran without an idle period: it stopped the server as its last user
    assert _lode(home, "status", "--json", idle=600).returncode == 0
    assert _servers_for(home) and _reapers(home)
    stopped = _lode(home, "stop", "--json", idle=600)
    assert stopped.returncode == 0 and json.loads(stopped.stdout) == {"stopped": True, "reason": None}
    _wait_gone(home, 15)
    _wait_reapers_gone(home, "the reaper outlived the server it was waiting to stop")
    assert _lode(home, "status", "--json", idle=600).returncode == 0  # and it starts again on demand
    assert _lode(home, "stop", idle=600).returncode == 0
    _wait_gone(home, 15)


def test_a_client_killed_with_sigkill_does_not_keep_an_idle_server_alive(tmp_path: Path) -> None:
    home = tmp_path / "home"
    victim = _user(home)
    _settings(victim)
    victim.kill()  # SIGKILL: it never leaves the list of users
    victim.wait(timeout=30)
    assert _servers_for(home)
    assert _lode(home, "status", "--json", idle=2).returncode == 0  # the next user prunes it, then leaves last
    _wait_gone(home, 2 + 30, "a dead client's pid kept the server from stopping")
