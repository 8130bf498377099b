"""A real `lode worker` process on a job queue of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lode.config import QueueSettings


def queue_settings(**options: Any) -> QueueSettings:
    return QueueSettings(**{"name": f"q-{uuid.uuid4().hex[:12]}", "poll_seconds": 0.2, **options})


@contextmanager
def worker_process(queue: QueueSettings, log: Path, concurrency: int = 1,
                   env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """A real `lode worker` consuming `queue`; stopped with SIGTERM, which must end it cleanly."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lode", "worker", "--concurrency", str(concurrency)], stdout=out, stderr=out,
            env={**os.environ, "LODE_QUEUE_NAME": queue.name, "LODE_QUEUE_POLL_SECONDS": str(queue.poll_seconds),
                 "LODE_QUEUE_STALL_SECONDS": str(queue.stall_seconds), **(env or {})},
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
