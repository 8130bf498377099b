"""Error tracking and alerting against the real embedded PostgreSQL, real processes and real HTTP stubs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid

import pytest
from fastapi.testclient import TestClient

from lode import errorlog
from lode.chunking.chunker import chunk_file
from lode.config import AlertSettings, Settings, Timeouts
from lode.errorlog import AlertMonitor, evaluate_alerts, record_error, scrub
from lode.resilience import reset_breakers
from lode.store.db import Database
from tests.support.api_client import local_client
from tests.support.cli import run_cli
from tests.support.polling import wait_until
from tests.support.resilience_stubs import Receiver

SECRET = "hunter2-s3cret"


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


def _row(lode, fingerprint_component: str):
    with lode.db.connection() as conn:
        return conn.execute(
            """SELECT severity, category, component, error_type, message, stack, context, count,
                      first_seen, last_seen, fingerprint FROM error_logs WHERE component = %s""",
            (fingerprint_component,),
        ).fetchall()


def test_scrub_drops_source_and_secrets_and_redacts_urls():
    context = {
        "path": "src/app.py", "content": "def f(): pass", "source": "x = 1", "text": "hello", "password": SECRET,
        "token": SECRET, "api_key": SECRET, "Authorization": f"Bearer {SECRET}", "chunk_text": "body",
        "url": f"postgresql://lode:{SECRET}@db:5432/lode", "nested": {"db_password": SECRET, "n": 3},
        "note": f"called with Bearer {SECRET}abc and ?api_key={SECRET}",
    }
    cleaned = scrub(context)
    assert set(cleaned) == {"path", "url", "nested", "note"}
    assert cleaned["path"] == "src/app.py" and cleaned["nested"] == {"n": 3}
    assert cleaned["url"] == "postgresql://***@db:5432/lode"
    assert SECRET not in json.dumps(cleaned)


def test_record_error_upserts_by_fingerprint_with_scrubbed_context(lode):
    component = f"test-{uuid.uuid4().hex[:8]}"
    for attempt in range(3):
        try:
            raise ConnectionError(f"cannot reach http://user:{SECRET}@embed.local:{8000 + attempt}/v1")
        except ConnectionError as exc:
            record_error(component, exc, severity="error", category="unavailable",
                         context={"attempt": attempt, "content": "def secret_source(): ...", "token": SECRET})
    rows = _row(lode, component)
    assert len(rows) == 1, "the same error (differing only in numbers) is one row"
    severity, category, comp, error_type, message, stack, context, count, first, last, fingerprint = rows[0]
    assert (severity, category, error_type, count) == ("error", "unavailable", "ConnectionError", 3)
    assert first <= last and len(fingerprint) == 32
    assert context == {"attempt": 2}
    assert "Traceback" in stack and "test_errors.py" in stack
    stored = json.dumps([message, stack, context])
    assert SECRET not in stored and "secret_source" not in stored and "***@embed.local" in message


def test_record_error_never_raises_when_the_database_is_down(lode, caplog):
    dead = Database("postgresql://nobody@127.0.0.1:9/none", Settings(home=lode.settings.home))
    errorlog.bind(dead)  # the pool is not open: every write fails
    try:
        with caplog.at_level(logging.WARNING):
            record_error("test-db-down", RuntimeError("still logged"), severity="critical")
    finally:
        errorlog.unbind(dead)
    logged = [r for r in caplog.records if r.name == "lode.errors"]
    assert logged and logged[0].msg["event"] == "still logged" and logged[0].msg["component"] == "test-db-down"
    assert any("cannot store an error" in r.getMessage() for r in caplog.records)
    assert _row(lode, "test-db-down") == []


def test_json_log_lines_carry_bound_context_and_no_secrets(lode_home):
    script = textwrap.dedent(f"""
        from lode.logs import bind_context, configure_logging
        from lode.errorlog import record_error
        configure_logging("INFO")
        bind_context(request_id="req-42")
        record_error("api", ValueError("bad thing"), severity="error",
                     context={{"path": "a.py", "password": "{SECRET}", "source": "print(1)"}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LODE_SENTRY_DSN": ""})
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, proc.stderr
    line = lines[-1]
    assert line["event"] == "bad thing" and line["level"] == "error" and line["request_id"] == "req-42"
    assert line["component"] == "api" and line["context"] == {"path": "a.py"} and "timestamp" in line
    assert SECRET not in proc.stderr and "print(1)" not in proc.stderr


def test_sentry_receives_the_scrubbed_event_when_a_lode_has_a_dsn(lode_home):
    with Receiver() as ingest:
        dsn = f"http://publickey@127.0.0.1:{ingest.httpd.server_address[1]}/42"
        script = textwrap.dedent(f"""
            from lode.config import Settings
            from lode.engine import Lode
            from lode.errorlog import flush_sentry, record_error

            Lode(Settings(home={str(lode_home)!r}, embedder="none", sentry_dsn={dsn!r}))  # not the environment's
            try:
                raise KeyError("missing-thing")
            except KeyError as exc:
                record_error("sentry-test", exc, severity="critical",
                             context={{"path": "a.py", "api_key": "{SECRET}", "content": "source code"}})
            flush_sentry()
        """)
        environment = {k: v for k, v in os.environ.items() if k != "LODE_SENTRY_DSN"}
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              env=environment)
        assert proc.returncode == 0, proc.stderr
        assert ingest.wait(1), "no envelope reached the local Sentry endpoint"
    path, headers, body = ingest.received[0]
    assert path == "/api/42/envelope/"
    text = body.decode()
    assert "missing-thing" in text and "sentry-test" in text and '"level":"fatal"' in text.replace(" ", "")
    assert SECRET not in text and "source code" not in text


def test_views_summarise_recent_errors(lode):
    component = f"views-{uuid.uuid4().hex[:8]}"
    record_error(component, message="disk on fire", severity="critical", category="storage")
    record_error(component, message="disk on fire", severity="critical", category="storage")
    with lode.db.connection() as conn:
        summary = conn.execute(
            "SELECT occurrences, distinct_errors FROM error_summary_24h WHERE component = %s", (component,)
        ).fetchall()
        critical = conn.execute("SELECT count FROM recent_critical_errors WHERE component = %s",
                                (component,)).fetchall()
        hourly = conn.execute(
            "SELECT sum(occurrences) FROM error_rate_hourly"
            " WHERE severity = 'critical' AND hour = date_trunc('hour', now())"
        ).fetchone()[0]
    assert summary == [(2, 1)] and critical == [(2,)] and hourly >= 2


def test_cli_and_api_read_errors(lode):
    component = f"cli-{uuid.uuid4().hex[:8]}"
    record_error(component, message="visible through the cli", severity="warning", category="test")
    code, doc, _ = run_cli("errors", "--json", "--since", "1", "--severity", "warning")
    assert code == 0 and any(e["component"] == component for e in doc["errors"])
    code, _, stderr = run_cli("errors", "--severity", "loud")
    assert code == 2 and "--severity" in stderr

    with _api(lode) as client:
        body = client.get("/v1/errors", params={"since": 1, "severity": "warning"}).json()
        assert any(e["component"] == component for e in body["errors"]) and "summary_24h" in body and "hourly" in body
        assert all(e["severity"] == "critical" for e in client.get("/v1/errors?severity=critical").json()["errors"])
        assert client.get("/v1/errors", params={"severity": "loud"}).status_code == 422


def _api(lode, **settings) -> TestClient:
    """The real server app (its lifespan opens its own engine on the session's database)."""
    from lode.api.app import create_app

    return local_client(create_app(Settings(home=lode.settings.home, embedder="none", **settings)))


def _fresh_alerts(lode) -> dict[str, int]:
    with lode.db.connection() as conn:
        conn.execute("DELETE FROM alerts")
        return dict(conn.execute(
            """SELECT severity, sum(count) FROM error_occurrences
                WHERE minute > date_trunc('minute', now()) - interval '1 hour' GROUP BY severity"""
        ).fetchall())


def test_alerts_are_raised_once_per_rule_and_window_posted_and_acknowledged(lode):
    counts = _fresh_alerts(lode)
    with Receiver() as hook:
        settings = Settings(home=lode.settings.home, alerts=AlertSettings(
            critical_per_hour=int(counts.get("critical", 0)), error_per_hour=10**9, warning_per_hour=10**9,
            webhook=hook.url + "/hook"))
        assert evaluate_alerts(lode.db, settings) == [], "no rule is breached yet"
        record_error("alert-test", message="the sky fell", severity="critical", category="test")
        raised = evaluate_alerts(lode.db, settings)
        assert [a["rule"] for a in raised] == ["critical_per_hour"]
        record_error("alert-test", message="the sky fell", severity="critical", category="test")
        assert evaluate_alerts(lode.db, settings) == [], "one open alert per rule and window"
        assert hook.wait(1) and len(hook.received) == 1
        path, _, body = hook.received[0]
        posted = json.loads(body)
        assert path == "/hook" and posted["alert"]["rule"] == "critical_per_hour" and posted["alert"]["value"] >= 1

    alert_id = raised[0]["id"]
    code, doc, _ = run_cli("alerts", "--json")
    assert code == 0 and [a["id"] for a in doc["alerts"]] == [alert_id]
    assert doc["alerts"][0]["notified_at"] is not None
    code, doc, _ = run_cli("alerts", "--ack", str(alert_id), "--json")
    assert code == 0 and doc["alert"]["acknowledged_at"]
    assert errorlog.list_alerts(lode.db)["alerts"] == []
    code, _, stderr = run_cli("alerts", "--ack", "999999999")
    assert code == 2 and "no alert" in stderr


def test_api_lists_and_acknowledges_alerts(lode):
    counts = _fresh_alerts(lode)
    settings = Settings(home=lode.settings.home, alerts=AlertSettings(
        critical_per_hour=10**9, error_per_hour=int(counts.get("error", 0)), warning_per_hour=10**9))
    record_error("alert-api", message="an error", severity="error", category="test")
    [alert] = evaluate_alerts(lode.db, settings)
    quiet = AlertSettings(critical_per_hour=10**9, error_per_hour=10**9, warning_per_hour=10**9, interval_seconds=3600)
    with _api(lode, alerts=quiet) as client:  # its own monitor must not add alerts of its own here
        assert client.app.state.alerts._thread.is_alive(), "the server's lifespan starts the alert monitor"
        assert [a["id"] for a in client.get("/v1/alerts").json()["alerts"]] == [alert["id"]]
        acked = client.post(f"/v1/alerts/{alert['id']}/ack")
        assert acked.status_code == 200 and acked.json()["alert"]["acknowledged_at"]
        assert client.get("/v1/alerts").json()["alerts"] == []
        assert [a["id"] for a in client.get("/v1/alerts", params={"all": "true"}).json()["alerts"]] == [alert["id"]]
        missing = client.post("/v1/alerts/999999999/ack")
        assert missing.status_code == 404 and "no alert" in missing.json()["error"]["message"]
        monitor = client.app.state.alerts
    assert monitor._thread is None, "and its shutdown stops it"


def test_alert_monitor_evaluates_in_the_background_until_stopped(lode):
    counts = _fresh_alerts(lode)
    settings = Settings(home=lode.settings.home, alerts=AlertSettings(
        critical_per_hour=10**9, error_per_hour=10**9, warning_per_hour=int(counts.get("warning", 0)),
        interval_seconds=0.1))
    monitor = AlertMonitor(lode.db, settings).start()
    try:
        record_error("alert-monitor", message="a warning", severity="warning", category="test")
        wait_until(lambda: errorlog.list_alerts(lode.db)["alerts"], 10, "the monitor raised an alert")
    finally:
        monitor.stop()
    assert [a["rule"] for a in errorlog.list_alerts(lode.db)["alerts"]] == ["warning_per_hour"]
    evaluations = monitor.evaluations
    __import__("time").sleep(0.3)
    assert monitor.evaluations == evaluations, "a stopped monitor evaluates nothing"


def test_parse_timeouts_are_recorded_with_their_fallback(lode):
    path = f"big_{uuid.uuid4().hex[:8]}.py"
    source = "".join(f"def f{i}(a, b):\n    return [a + b * {i} for _ in range(3)]\n\n" for i in range(20000))
    settings = Settings(home=lode.settings.home, timeouts=Timeouts(parse=0.001))
    chunked = chunk_file(path, source, "python", "big", settings)
    assert chunked.fallback == "parse_timeout"
    with lode.db.connection() as conn:
        rows = conn.execute(
            "SELECT severity, category, context FROM error_logs WHERE component = 'chunking' AND context->>'path' = %s",
            (path,),
        ).fetchall()
    assert rows == [("warning", "timeout", {"path": path, "language": "python", "bytes": len(source.encode()),
                                            "fallback": "line windows", "setting": "LODE_TIMEOUT_PARSE"})]
