"""Statement timeouts (lode/store/db.py): every Database transaction takes its statement_timeout in one place, from
the Settings of the Lode that opens it, for that transaction only."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from tests.support.trees import write_tree

from lode.config import Settings, Timeouts
from lode.engine import Lode


def _timeout(conn: psycopg.Connection) -> str:
    return str(conn.execute("SHOW statement_timeout").fetchone()[0])


def test_each_kind_of_transaction_sets_its_timeout_for_itself_only(lode: Lode) -> None:
    db = lode.db
    with db.transaction(0.25) as conn:
        assert _timeout(conn) == "250ms"
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(30)")
    with db.read(1.5) as conn:
        assert _timeout(conn) == "1500ms"
    with db.unguarded(0.0001) as conn:
        assert _timeout(conn) == "1ms"  # never 0, which would be no timeout at all
    with db.transaction() as conn:
        assert _timeout(conn) == "30s"  # the session's: LODE_TIMEOUT_DB_QUERY
    with db.connection() as conn:
        assert _timeout(conn) == "30s"  # SET LOCAL ended with its transaction


def test_the_engine_takes_a_queries_timeout_from_its_settings(lode_home: Path, repo_name: str,
                                                              tmp_path: Path) -> None:
    write_tree(tmp_path / "src", {"calc.py": "def add(a, b):\n    return a + b\n"})
    # the session timeout is far longer than the test's own: only the symbol lookup's can end the wait below
    settings = Settings(home=lode_home, embedder="none", timeouts=Timeouts(symbol_lookup=0.2, db_query=3600))
    with Lode(settings) as engine:
        engine.indexing.index(tmp_path / "src", repo_name)
        try:
            with psycopg.connect(engine.db.url) as locker:
                locker.execute("LOCK TABLE chunks IN ACCESS EXCLUSIVE MODE")  # the lookup now waits
                with pytest.raises(psycopg.errors.QueryCanceled):
                    engine.search.symbols("add", repo=repo_name)
        finally:
            engine.repos.remove(repo_name)
