"""What the health report reads of the job queue's tables (procrastinate's schema, lode/queue.py)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from lode.store.rows import one_row


@dataclass(slots=True)
class QueueStats:
    workers: int  # heartbeating within the stall window
    waiting: int  # jobs due and not started
    oldest_waiting_seconds: float | None


def queue_stats(conn: psycopg.Connection, queue: str, stall_seconds: float) -> QueueStats:
    workers, waiting, oldest = one_row(conn.execute(
        """SELECT (SELECT count(*) FROM procrastinate_workers
                    WHERE last_heartbeat > now() - make_interval(secs => %(stall)s)),
                  count(*), extract(epoch FROM now() - min(scheduled_at))
             FROM (SELECT coalesce(scheduled_at, e.at) AS scheduled_at FROM procrastinate_jobs j
                     LEFT JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events
                                         WHERE job_id = j.id AND type = 'deferred') e ON true
                    WHERE j.status = 'todo' AND j.queue_name = %(queue)s
                      AND coalesce(scheduled_at, now()) <= now()) waiting""",
        {"stall": stall_seconds, "queue": queue},
    ))
    return QueueStats(workers, waiting, None if oldest is None else float(oldest))
