"""Timeouts that stop the work, circuit breakers and killable workers, against the real embedded PostgreSQL."""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
import uuid
from pathlib import Path

import psutil
import psycopg
import pytest

from lode.config import BreakerSettings, EmbeddingSettings, Settings, Timeouts, get_settings
from lode.engine import Lode
from lode.errors import LodeError
from lode.resilience import (
    CircuitBreakerError,
    breaker,
    breaker_states,
    find_breaker,
    guard,
    wait_for_recovery,
)
from lode.workers import Lost, map_killable
from tests.support.polling import wait_until
from tests.support.tcp_proxy import TcpProxy
from tests.support.resilience_stubs import FaultyEmbedder, breaker_settings, mark_started, sleep_then_echo


@pytest.fixture(autouse=True)
def _fresh_breakers(monkeypatch):
    with breaker_settings(monkeypatch, failure_threshold=2):
        yield


LIMITS = BreakerSettings(failure_threshold=2, recovery_seconds=1, half_open_probes=1)


class Boom(Exception):
    pass


def _fail() -> None:
    raise Boom("down")


def test_every_timeout_is_in_the_table_and_overridable(monkeypatch):
    names = set(Timeouts.model_fields)
    assert {"parse", "embed_single", "embed_batch", "graph_build", "graph_traversal", "lexical_search",
            "vector_search", "hybrid_search", "db_query", "db_transaction", "index_file"} <= names
    for name in names:
        monkeypatch.setenv(f"LODE_TIMEOUT_{name.upper()}", "7.25")
    assert all(getattr(Timeouts(), name) == 7.25 for name in names)


def test_breaker_opens_fails_fast_and_closes_after_a_successful_probe():
    name = f"dep-{uuid.uuid4().hex[:6]}"
    calls = []

    def call(ok: bool) -> str:
        with guard(name, Boom, config=LIMITS):
            calls.append(ok)
            if not ok:
                raise Boom("down")
            return "up"

    for _ in range(2):
        with pytest.raises(Boom):
            call(False)
    assert breaker_states()[name]["state"] == "open"
    with pytest.raises(CircuitBreakerError):
        call(True)
    assert len(calls) == 2, "an open breaker never reaches the dependency"
    assert wait_for_recovery(name, time.monotonic() + 5)
    assert breaker_states()[name]["state"] == "half_open"
    assert call(True) == "up" and breaker_states()[name] == {"state": "closed", "failures": 0, "open_remaining": 0.0}


def test_half_open_lets_only_the_configured_probes_through_and_a_failed_probe_reopens():
    name = f"probe-{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        with pytest.raises(Boom), guard(name, Boom, config=LIMITS):
            _fail()
    assert wait_for_recovery(name, time.monotonic() + 5)
    entered, release = threading.Event(), threading.Event()

    def slow_probe() -> None:
        with guard(name, Boom, config=LIMITS):
            entered.set()
            release.wait(5)
            raise Boom("still down")

    probe = threading.Thread(target=lambda: pytest.raises(Boom, slow_probe))
    probe.start()
    assert entered.wait(5)
    with pytest.raises(CircuitBreakerError), guard(name, Boom, config=LIMITS):  # the single probe slot is taken
        pass
    release.set()
    probe.join(5)
    assert breaker_states()[name]["state"] == "open", "a failed probe opens the breaker again"


def test_per_breaker_overrides():
    config = LIMITS.model_copy(update={"overrides": {"special": {"failure_threshold": 4, "recovery_seconds": 9}}})
    special, plain = breaker("special", config=config), breaker("plain", config=config)
    assert special.limits == (4, 9, 1) and plain.limits == (2, 1, 1)


def test_the_overrides_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("LODE_BREAKER_OVERRIDES", '{"special": {"failure_threshold": 4, "recovery_seconds": 9}}')
    assert BreakerSettings().overrides == {"special": {"failure_threshold": 4, "recovery_seconds": 9}}


def test_a_lode_configures_the_breakers_it_calls_through_with_its_own_settings(lode, monkeypatch):
    monkeypatch.setenv("LODE_BREAKER_FAILURE_THRESHOLD", "50")  # the process's environment says otherwise
    get_settings.cache_clear()
    proxy = _proxy_to(lode)
    url = psycopg.conninfo.make_conninfo(lode.db.url, host="127.0.0.1", port=str(proxy.port))
    settings = Settings(home=lode.settings.home, embedder="none", database_url=url, timeouts=Timeouts(db_query=1.0),
                        breakers=BreakerSettings(failure_threshold=1, recovery_seconds=60))
    with Lode(settings) as engine:
        assert engine.search.symbols("read_lines")["symbols"] is not None
        proxy.cut()
        with pytest.raises(LodeError, match="unreachable"):
            engine.search.symbols("read_lines")
        assert breaker_states()["database"]["state"] == "open", "one failure opened it: this Lode's threshold"
        found = find_breaker("database")
        assert found is not None and found.limits == (1, 60.0, 1)


# ---- hybrid search deadline ----------------------------------------------------------------------------


def _write_repo(root: Path) -> None:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "io.py").write_text(
        "def read_lines(path):\n    \"\"\"Read a file and return its lines.\"\"\"\n"
        "    with open(path) as handle:\n        return handle.read().splitlines()\n")
    (root / "pkg" / "calc.py").write_text("def add(a, b):\n    return a + b\n")


def test_hybrid_deadline_drops_a_stuck_leg_cancels_its_statement_and_marks_it_degraded(lode, tmp_path):
    repo = f"t-{uuid.uuid4().hex[:8]}"
    _write_repo(tmp_path / "src")
    with FaultyEmbedder() as stub:
        settings = Settings(home=lode.settings.home, embedder="http",
                            embedding=EmbeddingSettings(url=stub.url, model=stub.model, dimension=64),
                            # the lexical leg's own timeout outlasts the test's: only the hybrid deadline ends it
                            timeouts=Timeouts(hybrid_search=1.0, lexical_search=3600.0))
        with Lode(settings) as engine:
            engine.indexing.index(tmp_path / "src", repo)
            assert engine.embeddings.embed(repo).pending == 0
            with psycopg.connect(engine.db.url, autocommit=False) as locker:
                locker.execute("LOCK TABLE postings IN ACCESS EXCLUSIVE MODE")  # the lexical leg now waits
                result = engine.search.query("read lines of a file", repo=repo, mode="hybrid")
                wait_until(lambda: _waiting_on_postings(locker) == 0, 2,
                           "the dropped leg's statement must be cancelled, not left waiting")
            assert result["degraded"] == ["lexical"]
            assert result["hits"] and result["hits"][0]["path"] == "pkg/io.py"
            assert all(hit["legs"]["lexical"] is None for hit in result["hits"])
            with engine.db.connection() as conn:
                recorded = conn.execute(
                    """SELECT count(*) FROM error_logs WHERE component = 'search' AND category = 'timeout'
                          AND context->>'leg' = 'lexical' AND context->'repos' ? %s""", (repo,)).fetchone()[0]
            assert recorded == 1
            full = engine.search.query("read lines of a file", repo=repo, mode="hybrid")
            assert full["degraded"] == [] and full["hits"][0]["legs"]["lexical"] is not None


def _reads(engine: Lode) -> bool:
    """Whether a read reaches the database (the breaker's half-open probe, once its recovery time has passed)."""
    try:
        engine.search.symbols("read_lines")
    except LodeError:
        return False
    return True


def _waiting_on_postings(locker: psycopg.Connection) -> int:
    """Statements of other backends waiting for the postings lock."""
    return locker.execute(
        """SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND wait_event_type = 'Lock'
              AND query ILIKE '%%postings%%'""").fetchone()[0]


# ---- database breaker on read paths ---------------------------------------------------------------------


def _proxy_to(lode: Lode) -> TcpProxy:
    socket_dir = psycopg.conninfo.conninfo_to_dict(lode.db.url)["host"]  # the embedded server's unix socket
    [unix_socket] = [str(p) for p in Path(socket_dir).glob(".s.PGSQL.*") if not p.name.endswith(".lock")]
    return TcpProxy(unix_socket)


def test_an_open_database_breaker_fails_reads_fast_with_a_clear_error(lode, caplog):
    proxy = _proxy_to(lode)
    url = psycopg.conninfo.make_conninfo(lode.db.url, host="127.0.0.1", port=str(proxy.port))
    settings = Settings(home=lode.settings.home, embedder="none", database_url=url, timeouts=Timeouts(db_query=1.0))
    with Lode(settings) as engine:
        assert engine.search.symbols("read_lines")["symbols"] is not None
        proxy.cut()
        with caplog.at_level(logging.ERROR):
            for _ in range(2):
                with pytest.raises(LodeError, match="unreachable"):
                    engine.search.symbols("read_lines")
        assert breaker_states()["database"]["state"] == "open"
        assert any(getattr(r, "msg", None) and isinstance(r.msg, dict) and r.msg.get("component") == "database"
                   and r.msg.get("severity") == "critical" for r in caplog.records), "the outage is recorded"
        for read in (lambda: engine.search.symbols("read_lines"), lambda: engine.graph.stats(),
                     lambda: engine.search.query("anything", mode="lexical")):
            with pytest.raises(LodeError, match="database is unavailable") as refused:
                read()
            assert isinstance(refused.value.__cause__, CircuitBreakerError), "the breaker refused it: no connection"
        proxy.restore()
        wait_until(lambda: _reads(engine), 20, "reads did not recover after the database came back")
        assert breaker_states()["database"]["state"] == "closed"
    proxy.cut()


# ---- killable per-file workers ---------------------------------------------------------------------------


def test_a_worker_past_its_timeout_is_killed_and_the_other_jobs_go_on(lode):
    jobs = [("fast-1", 0.0), ("stuck", 300.0), ("records", 0.0), ("fast-2", 0.0), ("crash", 0.0), ("fast-3", 0.0)]
    # the stuck job (300 s) outlasts the test's own timeout: the results come back only if its worker is killed
    results = list(map_killable(sleep_then_echo, jobs, workers=2, timeout=1.5,
                                mp_context=multiprocessing.get_context("forkserver"),
                                describe=lambda job: {"path": job[0]}))
    assert [job for job, _ in results] == jobs, "results come back in job order"
    by_name = {job[0]: result for job, result in results}
    assert isinstance(by_name["stuck"], Lost) and by_name["stuck"].reason == "timeout"
    assert isinstance(by_name["crash"], Lost) and by_name["crash"].reason == "worker_died"
    assert {name for name, value in by_name.items() if not isinstance(value, Lost)} == {
        "fast-1", "records", "fast-2", "fast-3"}, "only the guilty jobs of a failed chunk are lost"
    worker_pids = {value[1] for value in by_name.values() if not isinstance(value, Lost)}
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                   for pid in worker_pids), "the pool and the killed worker are gone"
    with lode.db.connection() as conn:
        rows = dict(conn.execute(
            """SELECT component, context FROM error_logs
                WHERE component IN ('worker-test', 'indexer.worker') AND last_seen > now() - interval '1 minute'
                  AND severity = 'warning'"""
        ).fetchall())
    assert rows["worker-test"] == {"job": "records"}, "errors recorded in a worker reach error_logs via the parent"
    assert rows["indexer.worker"] == {"path": "stuck", "reason": "timeout"}


def test_a_slow_consumer_holds_only_a_window_of_finished_results(tmp_path: Path) -> None:
    """An index run's outcomes carry their rows: the pool schedules only `ahead` chunks beyond the one consumed,
    so a whole repository's results never wait in the parent's memory."""
    jobs = [(str(tmp_path), number) for number in range(24)]
    consumed = 0
    for _, number in map_killable(mark_started, jobs, workers=2, timeout=30, chunksize=2, ahead=2,
                                  mp_context=multiprocessing.get_context("forkserver")):
        assert number == consumed
        consumed += 1
        time.sleep(0.1)  # slower than the workers: without the window they would run every job meanwhile
        started = len(list(tmp_path.iterdir()))
        assert started <= 2 * ((consumed + 1) // 2 + 2), f"{started} jobs started when {consumed} were consumed"
    assert consumed == len(jobs) and len(list(tmp_path.iterdir())) == len(jobs)


def test_a_worker_process_is_replaced_after_its_share_of_chunks() -> None:
    """What a worker leaks (py-tree-sitter keeps the bytes its read callback returned) stays bounded."""
    jobs = [(f"job-{number}", 0.0) for number in range(6)]
    results = list(map_killable(sleep_then_echo, jobs, workers=1, timeout=30, chunksize=1, recycle_after=2,
                                mp_context=multiprocessing.get_context("forkserver")))
    pids = [pid for _, (_, pid) in results]
    assert [job for job, _ in results] == jobs
    assert len(set(pids)) == 3 and pids[0] == pids[1] != pids[2] == pids[3] != pids[4] == pids[5]
