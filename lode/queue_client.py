"""The job queue's client side: defer and cancel procrastinate jobs from synchronous code.

Below both lode/jobs.py (which defers index jobs) and lode/queue.py (the tasks that run them and the worker),
so neither imports the other in a cycle.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from lode.store.db import Database

NAMESPACE = "lode"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Queue:
    """Defers and cancels jobs from synchronous code on Lode's own pool, so that a job can be deferred in the
    transaction that records it."""

    def __init__(self, db: Database) -> None:
        self.name = db.settings.queue.name
        self.app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())
        self.app.open(db.pool)

    def defer(self, task: str, *, conn: Any = None, lock: str | None = None, queueing_lock: str | None = None,
              **kwargs: Any) -> int | None:
        """The new job's id; None when a job with the same queueing lock is already waiting."""
        try:
            return self._configure(task, conn, lock, queueing_lock).defer(**kwargs)
        except AlreadyEnqueued:
            return None

    def defer_many(self, task: str, arguments: list[dict[str, Any]]) -> list[int]:
        return self._configure(task, None, None, None).batch_defer(*arguments) if arguments else []

    def cancel(self, queue_job_id: int) -> None:
        """A waiting job is cancelled; a running one is asked to abort (its task checks between two files)."""
        self.app.job_manager.cancel_job_by_id(queue_job_id, abort=True)

    def _configure(self, task: str, conn: Any, lock: str | None, queueing_lock: str | None) -> Any:
        return self.app.configure_task(f"{NAMESPACE}:{task}", queue=self.name, connection=conn, lock=lock,
                                       queueing_lock=queueing_lock)
