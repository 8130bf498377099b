"""Error tracking and alerting.

`record_error(component, exc, severity=..., category=..., context=...)` is the one call for every handled error:
it writes a structured JSON log line, upserts a row of `error_logs` by fingerprint (counting occurrences per
minute in `error_occurrences`), and sends the error to Sentry when LODE_SENTRY_DSN is set. It never raises: with
the database down the log line is all that is left. Context is scrubbed first: no source code, no secrets.

Worker processes have no database: `collect()` gathers their records so the parent can `replay()` them.
`AlertMonitor` evaluates the alert rules (settings.alerts) in a background thread, stores alerts (one per rule
and hour) and POSTs each new one to LODE_ALERT_WEBHOOK.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import httpx
from pydantic import SecretStr

from lode.config import Settings, get_settings
from lode.logs import get_logger
from lode.store.error_logs import Alerts, ErrorLogs

if TYPE_CHECKING:
    from sentry_sdk.types import Event

    from lode.store.db import Database

__all__ = [
    "AlertMonitor", "ack_alert", "bind", "collect", "evaluate_alerts", "init_sentry", "list_alerts", "list_errors",
    "record_error", "replay", "scrub", "unbind",
]

SEVERITIES = ("warning", "error", "critical")
RULES = {"critical_per_hour": "critical", "error_per_hour": "error", "warning_per_hour": "warning"}

log = get_logger("lode.errors")
_fallback = logging.getLogger("lode.errorlog")

# ---- scrubbing --------------------------------------------------------------------------------------------

_DROP_WORDS = {"content", "source", "text", "snippet", "body", "password", "passwd", "secret", "token",
               "authorization", "cookie", "credential", "credentials", "dsn"}
_DROP_KEYS = {"api_key", "apikey", "access_key", "private_key", "code_view", "text_view"}
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/\s@:]*(?::[^/\s@]*)?@", re.I)
_BEARER = re.compile(r"\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}", re.I)
_KEY_VALUE = re.compile(r"\b(password|passwd|api_key|apikey|token|secret)=([^&\s]+)", re.I)
MAX_STRING = 500


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _DROP_KEYS or any(part in _DROP_WORDS for part in re.split(r"[_\-.\s]", lowered))


def scrub_text(value: str) -> str:
    """A string with URL credentials, bearer tokens and key=secret pairs redacted, cut to MAX_STRING."""
    value = _URL_CREDENTIALS.sub(r"\g<scheme>***@", value)
    value = _BEARER.sub(r"\1 ***", value)
    value = _KEY_VALUE.sub(r"\1=***", value)
    return value if len(value) <= MAX_STRING else value[:MAX_STRING] + "…"


def scrub(context: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of `context` without keys that may hold source code or secrets, strings redacted."""
    if depth > 5:
        return "…"
    if isinstance(context, Mapping):
        return {str(k): scrub(v, depth + 1) for k, v in context.items() if not _is_secret_key(str(k))}
    if isinstance(context, (list, tuple, set, frozenset)):
        return [scrub(v, depth + 1) for v in list(context)[:50]]
    if context is None or isinstance(context, (bool, int, float)):
        return context
    return scrub_text(str(context))


# ---- recording ---------------------------------------------------------------------------------------------

_databases: list[tuple[int, Database]] = []  # (pid that bound it, database)
_collecting = threading.local()
_sentry_ready = False
_sentry_lock = threading.Lock()


def bind(db: Database) -> None:
    """Record errors of this process into `db` (the engine binds its database when it opens it)."""
    _databases.append((os.getpid(), db))


def unbind(db: Database) -> None:
    _databases[:] = [(pid, bound) for pid, bound in _databases if bound is not db]


@contextmanager
def collect() -> Iterator[list[dict[str, Any]]]:
    """Gather this thread's records instead of storing them (a worker process without a database)."""
    records: list[dict[str, Any]] = []
    previous = getattr(_collecting, "records", None)
    _collecting.records = records
    try:
        yield records
    finally:
        _collecting.records = previous


def replay(records: list[dict[str, Any]]) -> None:
    """Store records gathered by `collect()` in another process (already logged and sent there)."""
    for event in records:
        _store(event)


def record_error(
    component: str,
    exc: BaseException | None = None,
    *,
    message: str | None = None,
    severity: str = "error",
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> None:
    """Log, store and report one handled error. Never raises."""
    try:
        event = _event(component, exc, message, severity, category, context)
        getattr(log, "critical" if severity == "critical" else severity)(
            event["message"], component=component, category=event["category"], error_type=event["error_type"],
            severity=severity, fingerprint=event["fingerprint"], context=event["context"],
        )
        _send_to_sentry(event, exc)
        records = getattr(_collecting, "records", None)
        if records is not None:
            records.append(event)
        else:
            _store(event)
    except Exception:  # recording must never take the caller down
        try:
            _fallback.warning("recording an error failed", exc_info=True)
        except Exception:
            pass


def _event(component: str, exc: BaseException | None, message: str | None, severity: str, category: str | None,
           context: Mapping[str, Any] | None) -> dict[str, Any]:
    if severity not in SEVERITIES:
        severity = "error"
    error_type = type(exc).__name__ if exc is not None else "Message"
    text = scrub_text(message or (str(exc) if exc is not None else "") or error_type)
    stack = None
    if exc is not None and exc.__traceback__ is not None:
        stack = scrub_text_long("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    category = category or _category(exc)
    shape = re.sub(r"0x[0-9a-f]+|\d+(\.\d+)?", "N", f"{text}".lower())
    fingerprint = hashlib.sha256(f"{severity}|{component}|{category}|{error_type}|{shape}".encode()).hexdigest()[:32]
    return {"severity": severity, "category": category, "component": component, "error_type": error_type,
            "message": text, "stack": stack, "context": scrub(dict(context or {})), "fingerprint": fingerprint}


def scrub_text_long(value: str) -> str:
    """A stack trace with credentials redacted, cut to its last 8000 characters."""
    value = _KEY_VALUE.sub(r"\1=***", _BEARER.sub(r"\1 ***", _URL_CREDENTIALS.sub(r"\g<scheme>***@", value)))
    return value[-8000:]


def _category(exc: BaseException | None) -> str:
    if exc is None:
        return "message"
    name = type(exc).__name__.lower()
    if "timeout" in name or "canceled" in name or isinstance(exc, TimeoutError):
        return "timeout"
    if "circuitbreaker" in name:
        return "unavailable"
    return "error"


def _store(event: dict[str, Any]) -> None:
    from lode.resilience import CircuitBreakerError, find_breaker

    own = [db for pid, db in _databases if pid == os.getpid()]  # a forked child must not use its parent's pool
    if not own:
        return
    db = own[-1]
    if (database := find_breaker("database")) is not None and database.opened:
        return  # the log line is all there is while the database is unreachable
    try:
        with db.unguarded(db.settings.timeouts.error_log) as conn:
            ErrorLogs(conn).record(event)
    except CircuitBreakerError:
        pass
    except Exception as exc:
        _fallback.warning("cannot store an error in error_logs (%s); logged only", type(exc).__name__)


# ---- Sentry ------------------------------------------------------------------------------------------------


def init_sentry(dsn: SecretStr | str | None) -> bool:
    """Send this process's handled errors to Sentry too, when `dsn` (a Lode's settings.sentry_dsn) is set. The SDK
    keeps one client per process: the first DSN given is the one used."""
    global _sentry_ready
    with _sentry_lock:
        if _sentry_ready:
            return True
        if isinstance(dsn, SecretStr):
            dsn = dsn.get_secret_value()
        if not dsn:
            return False
        import sentry_sdk

        sentry_sdk.init(
            dsn=dsn, send_default_pii=False, include_local_variables=False, max_request_body_size="never",
            default_integrations=False, auto_enabling_integrations=False, traces_sample_rate=0.0,
            before_send=lambda event, hint: scrub_sentry_event(event),
        )
        _sentry_ready = True
        return True


def scrub_sentry_event(event: Event) -> Event:
    fields = cast(dict[str, Any], event)  # a TypedDict of plain dicts, scrubbed in place
    for key in ("extra", "contexts", "tags"):
        if isinstance(fields.get(key), dict):
            fields[key] = scrub(fields[key])
    return event


def _send_to_sentry(event: dict[str, Any], exc: BaseException | None) -> None:
    if not _sentry_ready:
        return
    import sentry_sdk

    with sentry_sdk.new_scope() as scope:
        scope.set_tag("component", event["component"])
        scope.set_tag("category", event["category"])
        scope.set_context("lode", event["context"])
        scope.fingerprint = [event["fingerprint"]]
        scope.set_level("fatal" if event["severity"] == "critical" else event["severity"])
        if exc is not None:
            sentry_sdk.capture_exception(exc)
        else:
            sentry_sdk.capture_message(event["message"])


def flush_sentry(timeout: float = 5.0) -> None:
    if _sentry_ready:
        import sentry_sdk

        sentry_sdk.flush(timeout)


# ---- reading -----------------------------------------------------------------------------------------------


def list_errors(db: Database, *, since_hours: float = 24.0, severity: str | None = None,
                limit: int = 100) -> dict[str, Any]:
    """Errors seen within the last `since_hours`, newest first, with the 24-hour summary and hourly rate."""
    from lode.errors import InputError

    if severity is not None and severity not in SEVERITIES:
        raise InputError(f"--severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    if not 0 < since_hours <= 24 * 365:
        raise InputError("--since must be between 0 and 8760 hours")
    if not 1 <= limit <= 1000:
        raise InputError("--limit must be between 1 and 1000")
    with db.connection() as conn:
        logs = ErrorLogs(conn)
        errors, summary, hourly = logs.recent(since_hours, severity, limit), logs.summary_24h(), logs.hourly()
    return {
        "since_hours": since_hours, "severity": severity,
        "errors": [_jsonable(row) for row in errors],
        "summary_24h": [_jsonable(row) for row in summary],
        "hourly": [_jsonable(row) for row in hourly],
    }


def list_alerts(db: Database, *, include_acknowledged: bool = False, limit: int = 100) -> dict[str, Any]:
    with db.connection() as conn:
        rows = Alerts(conn).listed(include_acknowledged, limit)
    return {"alerts": [_jsonable(row) for row in rows]}


def ack_alert(db: Database, alert_id: int) -> dict[str, Any]:
    """Acknowledge an alert (idempotent); NotFound when there is no such alert."""
    from lode.errors import NotFound

    with db.connection() as conn:
        row = Alerts(conn).acknowledge(alert_id)
    if row is None:
        raise NotFound(f"no alert with id {alert_id}")
    return {"alert": _jsonable(row)}


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


# ---- alerting ----------------------------------------------------------------------------------------------


def evaluate_alerts(db: Database, settings: Settings) -> list[dict[str, Any]]:
    """Apply the rules to the last hour of occurrences; store breaches (one alert per rule and hour), notify the
    webhook of every alert it has not accepted yet, and return the alerts raised by this evaluation."""
    raised = []
    with db.connection() as conn:
        counts = ErrorLogs(conn).last_hour_by_severity()
        for rule, severity in RULES.items():
            threshold = getattr(settings.alerts, rule)
            value = counts.get(severity, 0)
            if value <= threshold:
                continue
            alert, new = Alerts(conn).upsert(
                rule, severity, value, threshold,
                f"{value} {severity} errors in the last hour (threshold: more than {threshold})")
            if new:
                raised.append(_jsonable(alert))
                record_log = getattr(log, "critical" if severity == "critical" else "error")
                record_log("alert raised", rule=rule, value=value, threshold=threshold)
        ErrorLogs(conn).prune_occurrences()
    if settings.alerts.webhook:
        _notify(db, settings.alerts.webhook)
    return raised


def _notify(db: Database, url: str) -> None:
    """POST every open alert the webhook has not accepted yet; a failed POST is retried at the next evaluation."""
    with db.connection() as conn:
        rows = Alerts(conn).unnotified()
    for row in rows:
        alert = _jsonable(row)
        try:
            response = httpx.post(url, json={"source": "lode", "alert": alert}, timeout=5.0)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("alert webhook failed; retried at the next evaluation", alert=alert["id"],
                        url=scrub_text(url), error=type(exc).__name__)
            return
        with db.connection() as conn:
            Alerts(conn).mark_notified(alert["id"])


class AlertMonitor:
    """Evaluates the alert rules every settings.alerts.interval_seconds in a daemon thread."""

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings or get_settings()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.evaluations = 0

    def start(self) -> AlertMonitor:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="lode-alerts", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                evaluate_alerts(self.db, self.settings)
            except Exception as exc:  # the database may be down; try again at the next interval
                log.warning("alert evaluation failed", error=f"{type(exc).__name__}: {scrub_text(str(exc))}")
            self.evaluations += 1
            self._stop.wait(self.settings.alerts.interval_seconds)
