"""The error log's tables (migration-defined error_logs, error_occurrences, alerts and the 24-hour views): what
lode/errorlog.py records, lists and raises alerts from. Rows come back as dicts keyed by column name."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from lode.store.rows import one_row

ERROR_KEYS = ("id", "severity", "category", "component", "error_type", "message", "context", "fingerprint",
              "first_seen", "last_seen", "count")
SUMMARY_KEYS = ("severity", "category", "component", "occurrences", "distinct_errors", "last_seen")
ALERT_KEYS = ("id", "rule", "window_start", "severity", "value", "threshold", "message", "created_at",
              "updated_at", "notified_at", "acknowledged_at")
_ALERT_COLUMNS = ", ".join(ALERT_KEYS)


class ErrorLogs:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def record(self, event: dict[str, Any]) -> None:
        """Count an occurrence of the event under its fingerprint, and in its minute."""
        self.conn.execute(
            """WITH e AS (
                   INSERT INTO error_logs (fingerprint, severity, category, component, error_type, message,
                                           stack, context)
                   VALUES (%(fingerprint)s, %(severity)s, %(category)s, %(component)s, %(error_type)s,
                           %(message)s, %(stack)s, %(context)s)
                   ON CONFLICT (fingerprint) DO UPDATE
                      SET last_seen = now(), count = error_logs.count + 1, message = EXCLUDED.message,
                          stack = EXCLUDED.stack, context = EXCLUDED.context
                   RETURNING id, severity)
               INSERT INTO error_occurrences (error_id, minute, severity)
               SELECT id, date_trunc('minute', now()), severity FROM e
               ON CONFLICT (error_id, minute) DO UPDATE SET count = error_occurrences.count + 1""",
            event | {"context": json.dumps(event["context"])},
        )

    def recent(self, since_hours: float, severity: str | None, limit: int) -> list[dict[str, Any]]:
        """Errors last seen within `since_hours` (of one severity, or all), newest first."""
        rows = self.conn.execute(
            """SELECT id, severity, category, component, error_type, message, context, fingerprint, first_seen,
                      last_seen, count
                 FROM error_logs
                WHERE last_seen >= now() - make_interval(secs => %s) AND (%s::text IS NULL OR severity = %s)
                ORDER BY last_seen DESC LIMIT %s""",
            (since_hours * 3600, severity, severity, limit),
        ).fetchall()
        return [dict(zip(ERROR_KEYS, row)) for row in rows]

    def summary_24h(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT severity, category, component, occurrences, distinct_errors, last_seen FROM error_summary_24h"
            " ORDER BY occurrences DESC"
        ).fetchall()
        return [dict(zip(SUMMARY_KEYS, row)) for row in rows]

    def hourly(self) -> list[dict[str, Any]]:
        """Occurrences per hour and severity over the last 24 hours, newest first."""
        rows = self.conn.execute(
            "SELECT hour, severity, occurrences FROM error_rate_hourly"
            " WHERE hour >= now() - interval '24 hours' ORDER BY hour DESC, severity"
        ).fetchall()
        return [{"hour": h, "severity": s, "occurrences": n} for h, s, n in rows]

    def last_hour_by_severity(self) -> dict[str, int]:
        return {severity: int(count) for severity, count in self.conn.execute(
            """SELECT severity, sum(count) FROM error_occurrences
                WHERE minute > date_trunc('minute', now()) - interval '1 hour' GROUP BY severity"""
        ).fetchall()}

    def prune_occurrences(self) -> None:
        """Occurrences older than the 8 days any view or rule reads go."""
        self.conn.execute("DELETE FROM error_occurrences WHERE minute < now() - interval '8 days'")


class Alerts:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def listed(self, include_acknowledged: bool, limit: int) -> list[dict[str, Any]]:
        """The newest alerts, only the unacknowledged ones unless `include_acknowledged`."""
        rows = self.conn.execute(
            f"""SELECT {_ALERT_COLUMNS} FROM alerts WHERE %s OR acknowledged_at IS NULL
                 ORDER BY created_at DESC LIMIT %s""",
            (include_acknowledged, limit),
        ).fetchall()
        return [dict(zip(ALERT_KEYS, row)) for row in rows]

    def acknowledge(self, alert_id: int) -> dict[str, Any] | None:
        """The alert, acknowledged now unless it was before; None when there is no such alert."""
        row = self.conn.execute(
            f"""UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, now()) WHERE id = %s
                RETURNING {_ALERT_COLUMNS}""",
            (alert_id,),
        ).fetchone()
        return None if row is None else dict(zip(ALERT_KEYS, row))

    def upsert(self, rule: str, severity: str, value: int, threshold: int, message: str
               ) -> tuple[dict[str, Any], bool]:
        """The rule's alert of this hour, stored or updated, and whether it is new."""
        row = one_row(self.conn.execute(
            f"""INSERT INTO alerts (rule, window_start, severity, value, threshold, message)
                VALUES (%s, date_trunc('hour', now()), %s, %s, %s, %s)
                ON CONFLICT (rule, window_start) DO UPDATE
                   SET value = EXCLUDED.value, updated_at = now(), message = EXCLUDED.message
                RETURNING {_ALERT_COLUMNS}, (xmax = 0)""",
            (rule, severity, value, threshold, message),
        ))
        return dict(zip(ALERT_KEYS, row[:-1])), bool(row[-1])

    def unnotified(self) -> list[dict[str, Any]]:
        """Open alerts the webhook has not accepted yet, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE notified_at IS NULL AND acknowledged_at IS NULL ORDER BY id"
        ).fetchall()
        return [dict(zip(ALERT_KEYS, row)) for row in rows]

    def mark_notified(self, alert_id: int) -> None:
        self.conn.execute("UPDATE alerts SET notified_at = now() WHERE id = %s", (alert_id,))
