"""The database adapter when the server goes away: a clear DatabaseUnavailable within seconds, not after the
pool's 30 s timeout (issue #7: a stopped server must end a run promptly); a busy pool is not a lost server."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import PoolTimeout

from lode.config import Settings
from lode.store.db import Database, DatabaseUnavailable


def test_a_lost_server_is_one_clear_error_within_seconds_and_a_returning_one_is_used_again(lode):
    role = f"lode_lost_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(lode.db.url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        database = Database(make_conninfo(lode.db.url, user=role), Settings(home=lode.settings.home))
        database.pool.timeout = 3600  # waiting the pool's timeout out would outlast the test's own timeout
        database.pool.open(wait=True, timeout=10)  # no migrations: the role only runs SELECT 1
        try:
            assert _select_one(database) == (1,)

            admin.execute(f"ALTER ROLE {role} NOLOGIN")  # the server is gone for this role: no new connection
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            for _ in range(2):
                with pytest.raises(DatabaseUnavailable, match=f'lost PostgreSQL .*role "{role}" is not permitted'):
                    _select_one(database)

            admin.execute(f"ALTER ROLE {role} LOGIN")  # back: the pool reconnects within its timeout
            assert _select_one(database) == (1,)
        finally:
            database.close()
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_a_pool_with_every_connection_busy_is_not_a_lost_server(lode):
    database = Database(lode.db.url, Settings(home=lode.settings.home, pool_max_size=1))
    database.pool.timeout = 3.0
    database.pool.open(wait=True, timeout=10)
    try:
        with database.connection(), pytest.raises(PoolTimeout):  # the only connection is in use
            _select_one(database)
        assert _select_one(database) == (1,)
    finally:
        database.close()


def _select_one(database: Database) -> tuple:
    with database.connection() as conn:
        return conn.execute("SELECT 1").fetchone()
