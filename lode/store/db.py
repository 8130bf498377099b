"""The database adapter: one connection pool, the connection settings that enforce timeouts, migrations."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from importlib import resources

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from lode.config import Settings
from lode.errorlog import record_error
from lode.errors import DatabaseUnavailable, LodeError
from lode.resilience import CircuitBreakerError, database_failure, guard
from lode.store.rows import one_row as one_row, scalar as scalar  # where most callers look for them

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x4C4F4445  # pg_advisory_lock key for applying migrations ("LODE")
_PROBE_AFTER = 2.0  # seconds without a pooled connection before the server is probed (a lost server fails fast)
_PROBE_CONNECT_TIMEOUT = 2  # connect_timeout of that probe


class Database:
    """`revive`, when given, restarts a server found gone (the embedded one, for a long-running `lode serve`);
    without it a lost server is DatabaseUnavailable until someone else brings it back."""

    def __init__(self, url: str, settings: Settings, revive: Callable[[], None] | None = None) -> None:
        self.url = url
        self.settings = settings
        self._revive = revive
        self._revive_lock = threading.Lock()
        timeouts = settings.timeouts
        self._options = {
            "statement_timeout": milliseconds(timeouts.db_query),
            "idle_in_transaction_session_timeout": milliseconds(timeouts.db_transaction),
            "jit": "off",  # compiling plans costs more than it saves on Lode's short queries
        }
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=settings.pool_max_size,
            configure=self._configure,
            check=ConnectionPool.check_connection,  # a server restart leaves no dead connection to hand out
            open=False,
            name="lode",
        )

    def _configure(self, conn: psycopg.Connection) -> None:
        conn.autocommit = True
        for name, value in self._options.items():
            _set(conn, name, value, local=False)
        if conn.info.server_version >= 170000:
            _set(conn, "transaction_timeout", milliseconds(self.settings.timeouts.db_transaction), local=False)
        conn.autocommit = False

    def open(self) -> Database:
        try:
            self.pool.open(wait=True, timeout=self.settings.timeouts.db_query)
        except Exception as exc:  # psycopg_pool.PoolTimeout hides the cause in the log
            raise LodeError(f"cannot connect to PostgreSQL at {_redact(self.url)}: {exc}") from exc
        migrate(self)
        return self

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; the transaction it starts is committed on a clean exit."""
        conn = self._acquire()
        try:
            with conn:
                yield conn
        except psycopg.OperationalError as exc:
            if not conn.broken:
                raise  # e.g. a statement timeout on a live connection: its caller's to handle
            raise DatabaseUnavailable(_lost_message(exc)) from exc
        finally:
            self.pool.putconn(conn)

    def _acquire(self) -> psycopg.Connection:
        """A connection, through the "database" circuit breaker: once the server has been found gone
        failure_threshold times in a row, callers fail at once until a probe after recovery_seconds gets through.
        Only getting the connection is guarded: a long block (an advisory lock held for a whole run) must not
        hold the half-open probe."""
        try:
            with guard("database", database_failure, config=self.settings.breakers):
                return self._getconn()
        except CircuitBreakerError as exc:
            retry = max(1, round(exc._circuit_breaker.open_remaining))  # the library keeps the breaker there
            raise DatabaseUnavailable(f"the database is unavailable; calls fail fast until it answers again "
                                      f"(next attempt in {retry} s)") from exc

    def _getconn(self) -> psycopg.Connection:
        """A connection from the pool. When none comes within _PROBE_AFTER, the server is probed: gone, it is
        revived when this process may, else DatabaseUnavailable at once; there, the pool gets the rest of its
        timeout (busy, or reconnecting)."""
        try:
            return self.pool.getconn(_PROBE_AFTER)
        except PoolTimeout:
            self._ensure_server()
        return self.pool.getconn(max(0.1, self.pool.timeout - _PROBE_AFTER))

    def _probe(self) -> None:
        psycopg.connect(self.url, connect_timeout=_PROBE_CONNECT_TIMEOUT).close()

    def _ensure_server(self) -> None:
        try:
            self._probe()
            return
        except psycopg.Error as exc:
            if self._revive is None:
                raise DatabaseUnavailable(_lost_message(exc)) from exc
            lost = exc
        with self._revive_lock:  # one restart, however many requests found the server gone
            try:
                self._probe()
                return  # another thread brought it back meanwhile
            except psycopg.Error:
                pass
            log.warning("PostgreSQL is gone (%s); restarting the embedded server", str(lost).splitlines()[0])
            try:
                self._revive()
            except Exception as exc:  # whatever pg_ctl says, the caller's answer is "unavailable, retry"
                raise DatabaseUnavailable(f"lost the embedded PostgreSQL and could not restart it: "
                                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
            log.warning("the embedded PostgreSQL is running again")

    @cached_property
    def instance_id(self) -> str:
        """This database's random identity (migration 0012), read once: what tells it from any other Lode
        database, e.g. in the keys of a shared cache."""
        with self.connection() as conn:
            return str(scalar(conn.execute("SELECT id FROM instance")))

    @contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """One transaction on a pooled connection got as connection() gets it: committed on a clean exit, rolled
        back on an exception. `timeout`: its statements' statement_timeout in seconds, one of Settings.timeouts
        (the session's LODE_TIMEOUT_DB_QUERY when None)."""
        with self.connection() as conn, _timed_transaction(conn, timeout):
            yield conn

    @contextmanager
    def read(self, timeout: float | None = None) -> Iterator[psycopg.Connection]:
        """A read path's transaction (`timeout` as in transaction()), through the "database" circuit breaker:
        while the database is unreachable, reads fail at once with a clear error instead of each waiting for the
        pool. A lost connection is recorded and reported as a LodeError; a cancelled statement is the caller's."""
        try:
            with guard("database", database_failure, config=self.settings.breakers):
                with self.pool.connection(timeout=self.settings.timeouts.db_query) as conn:
                    with _timed_transaction(conn, timeout):
                        yield conn
        except CircuitBreakerError as exc:
            raise LodeError(f"the database is unavailable; reads fail fast until it answers again ({exc})") from exc
        except psycopg.OperationalError as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise
            record_error("database", exc, severity="critical", category="unavailable")
            raise LodeError(f"the database is unreachable: {str(exc).splitlines()[0] if str(exc) else exc!r}") from exc

    @contextmanager
    def unguarded(self, timeout: float) -> Iterator[psycopg.Connection]:
        """A transaction that bypasses the circuit breaker and waits at most `timeout` seconds for a connection,
        its statements as long: for the health check and the error log, which must see the server as it is and
        must not count as its failures."""
        with self.pool.connection(timeout=timeout) as conn, _timed_transaction(conn, timeout):
            yield conn

    def ping(self, timeout: float) -> None:
        """Run a trivial statement within `timeout` seconds, past the circuit breaker (see unguarded): raises
        when the server cannot answer."""
        with self.unguarded(timeout) as conn:
            conn.execute("SELECT 1").fetchone()

    @contextmanager
    def advisory_lock(self, kind: int, key: int, wait: float | None = None) -> Iterator[bool]:
        """Hold pg_advisory_lock(kind, key) on a connection of its own; yields whether it was had.

        wait=None waits as long as it takes, 0 does not wait, otherwise up to `wait` seconds.
        """
        with self.connection() as conn:
            conn.autocommit = True
            try:
                if wait == 0:
                    held = scalar(conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (kind, key)))
                else:
                    _set(conn, "statement_timeout", "0", local=False)
                    _set(conn, "lock_timeout", "0" if wait is None else milliseconds(wait), local=False)
                    try:
                        conn.execute("SELECT pg_advisory_lock(%s, %s)", (kind, key))
                        held = True
                    except psycopg.errors.LockNotAvailable:
                        held = False
                    _set(conn, "statement_timeout", self._options["statement_timeout"], local=False)
                    _set(conn, "lock_timeout", "0", local=False)
                try:
                    yield held
                finally:
                    if held:
                        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (kind, key))
            finally:
                if not conn.broken:
                    conn.autocommit = False



def milliseconds(seconds: float) -> str:
    """A timeout setting's value; never 0, which PostgreSQL takes for no timeout at all."""
    return str(max(1, round(seconds * 1000)))


def set_local_timeout(conn: psycopg.Connection, seconds: float, setting: str = "statement_timeout") -> None:
    """`setting` (statement_timeout, transaction_timeout) for the rest of the current transaction."""
    set_local(conn, setting, milliseconds(seconds))


def set_local(conn: psycopg.Connection, setting: str, value: str) -> None:
    """SET LOCAL `setting` = `value`: until the current transaction ends."""
    _set(conn, setting, value, local=True)


def analyze(conn: psycopg.Connection, tables: Sequence[str]) -> None:
    """Refresh the planner's statistics of `tables` (ANALYZE), in one statement."""
    conn.execute(sql.SQL("ANALYZE {}").format(sql.SQL(", ").join(map(sql.Identifier, tables))))


def _set(conn: psycopg.Connection, setting: str, value: str, *, local: bool) -> None:
    """SET (LOCAL) through set_config, the value a parameter rather than text spliced into the statement."""
    conn.execute("SELECT set_config(%s, %s, %s)", (setting, value, local))


@contextmanager
def _timed_transaction(conn: psycopg.Connection, timeout: float | None) -> Iterator[psycopg.Connection]:
    """The one place a transaction gets its statement_timeout: every Database transaction opens here."""
    with conn.transaction():
        if timeout is not None:
            set_local_timeout(conn, timeout)
        yield conn


def _lost_message(exc: Exception) -> str:
    return f"lost PostgreSQL ({str(exc).splitlines()[0]}); what was committed is consistent: re-run to resume"


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.split('@', 1)[1]}"
    return url


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("lode.store.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text()))
    return sorted(found)


def migrate(db: Database) -> int:
    """Apply pending numbered migrations, then the job queue's schema when it is missing, in one transaction
    under an advisory lock; return the version."""
    with db.connection() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        version = max(applied, default=0)
        for number, name, sql in _migrations():
            if number in applied:
                continue
            log.info("applying migration %s", name)
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name))
            version = number
        if scalar(conn.execute("SELECT to_regclass('procrastinate_jobs')")) is None:
            from procrastinate.schema import SchemaManager

            log.info("applying the job queue's schema (procrastinate)")
            conn.execute(SchemaManager.get_schema())
    return version
