"""Index jobs for the REST server: run in-process on a small thread pool, persisted in the `jobs` table.

Every replica reads and cancels any job through the table; the replica that runs a job writes its progress
there (files, chunks, embeddings, ETA) and a heartbeat, and polls the table for a cancel request from another
replica. A job indexes its directory (Lode.index, one advisory lock per repository), then fills the
repository's embeddings (Lode.embed) when a provider is configured. Cancelling stops either phase between two
files or two batches; what is stored stays whole.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
from prometheus_client import Counter, Gauge
from psycopg.types.json import Jsonb

from lode.engine import Lode
from lode.errors import InputError, LodeError, NotFound
from lode.indexer import IndexCancelled, Progress
from lode.logs import get_logger

log = get_logger(__name__)

ACTIVE = ("queued", "running")
_PROGRESS_WRITE_SECONDS = 0.5  # progress is written at most this often (and at every phase change)
_MONITOR_SECONDS = 2.0  # heartbeat and cross-replica cancel polling period
_STALE_AFTER = "5 minutes"  # an active job whose heartbeat is older than this lost its server

JOBS_FINISHED = Counter("lode_index_jobs_total", "Index jobs finished, by final state.", ["state"])
JOBS_RUNNING = Gauge("lode_index_jobs_running", "Index jobs running in this process.")

_COLUMNS = ("id, repo, path, state, phase, files_total, files_done, chunks, embeddings_done, embeddings_pending, "
            "embeddings_failed, eta_seconds, error, report, created_at, started_at, finished_at")


class JobConflict(InputError):
    """A job cannot do that now: its repository has an active job, or it has already finished."""


def job_json(row: tuple) -> dict[str, Any]:
    (job_id, repo, path, state, phase, files_total, files_done, chunks, done, pending, failed, eta, error, report,
     created, started, finished) = row
    return {
        "id": str(job_id), "repo": repo, "path": path, "state": state, "phase": phase,
        "files_total": files_total, "files_done": files_done, "chunks": chunks,
        "embeddings": {"done": done, "pending": pending, "failed": failed},
        "eta_seconds": None if eta is None else round(eta, 1), "error": error, "report": report,
        "created_at": created.isoformat(), "started_at": started and started.isoformat(),
        "finished_at": finished and finished.isoformat(),
    }


@dataclass(slots=True)
class _Control:
    """What the runner knows of one of its own jobs."""

    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str = "cancelled by request"
    last_write: float = 0.0
    unwritten: dict[str, Any] = field(default_factory=dict)  # progress not yet written (throttled)


class JobRunner:
    def __init__(self, lode: Lode, workers: int) -> None:
        self.lode = lode
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lode-job")
        self._controls: dict[str, _Control] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reap()
        self._monitor = threading.Thread(target=self._watch, name="lode-job-monitor", daemon=True)
        self._monitor.start()

    # ---- requests ---------------------------------------------------------------------------------------

    def submit(self, root: Path, repo: str) -> dict[str, Any]:
        """Queue an index of `root` into `repo`; JobConflict if the repository already has an active job."""
        job_id = str(uuid.uuid4())
        for attempt in (1, 2):
            try:
                with self.lode.db.connection() as conn:
                    row = conn.execute(
                        f"""INSERT INTO jobs (id, repo, path, state, owner) VALUES (%s, %s, %s, 'queued', %s)
                            RETURNING {_COLUMNS}""",
                        (job_id, repo, str(root), self.owner),
                    ).fetchone()
                break
            except psycopg.errors.UniqueViolation:
                if attempt == 2 or not self._reap(repo):
                    active = self._active_job(repo)
                    raise JobConflict(
                        f"repository {repo!r} already has an index job {active}; wait for it or cancel it"
                    ) from None
        with self._lock:
            self._controls[job_id] = _Control()
        self._pool.submit(self._run, job_id, root, repo)
        return job_json(row)

    def get(self, job_id: str) -> dict[str, Any]:
        with self.lode.db.connection() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = %s", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no index job {job_id}")
        return job_json(row)

    def list(self, repos: tuple[str, ...] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.lode.db.connection() as conn:
            rows = conn.execute(
                f"""SELECT {_COLUMNS} FROM jobs WHERE %(all)s OR repo = ANY(%(repos)s)
                     ORDER BY created_at DESC LIMIT %(limit)s""",
                {"all": repos is None, "repos": list(repos or ()), "limit": limit},
            ).fetchall()
        return [job_json(row) for row in rows]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once, or ask a running one (on any replica) to stop; return the job."""
        with self.lode.db.connection() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE id = %s FOR UPDATE", (job_id,)).fetchone()
            if row is None:
                raise NotFound(f"no index job {job_id}")
            if row[0] not in ACTIVE:
                raise JobConflict(f"index job {job_id} has finished: {row[0]}")
            conn.execute(
                """UPDATE jobs SET cancel_requested = true, state = CASE state WHEN 'queued' THEN 'cancelled' ELSE state END,
                          error = CASE state WHEN 'queued' THEN 'cancelled by request' END,
                          finished_at = CASE state WHEN 'queued' THEN now() END
                    WHERE id = %s""",
                (job_id,),
            )
        with self._lock:
            control = self._controls.get(job_id)
        if control is not None:
            control.cancel.set()
        return self.get(job_id)

    def close(self) -> None:
        """Stop every job of this process (each ends as cancelled) and wait for them."""
        self._closed.set()
        with self._lock:
            for control in self._controls.values():
                control.reason = "the server shut down"
                control.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._monitor.join(timeout=_MONITOR_SECONDS * 2)
        with self.lode.db.connection() as conn:  # queued jobs whose thread never started
            conn.execute(
                """UPDATE jobs SET state = 'cancelled', error = 'the server shut down', finished_at = now()
                    WHERE owner = %s AND state IN ('queued', 'running')""",
                (self.owner,),
            )

    # ---- the job thread ---------------------------------------------------------------------------------

    def _run(self, job_id: str, root: Path, repo: str) -> None:
        with self._lock:
            control = self._controls[job_id]
        try:
            if not control.cancel.is_set() and self._start(job_id):
                JOBS_RUNNING.inc()
                try:
                    self._execute(job_id, control, root, repo)
                finally:
                    JOBS_RUNNING.dec()
            elif control.cancel.is_set():
                self._finish(job_id, "cancelled", control.reason)
        finally:
            with self._lock:
                self._controls.pop(job_id, None)

    def _execute(self, job_id: str, control: _Control, root: Path, repo: str) -> None:
        started = time.monotonic()

        def on_index_progress(progress: Progress) -> None:
            elapsed = time.monotonic() - started
            left = progress.files_total - progress.files_done
            eta = left * elapsed / progress.files_done if progress.files_done else None
            self._progress(job_id, control, progress.files_done == progress.files_total, files_total=progress.files_total,
                           files_done=progress.files_done, chunks=progress.chunks, eta_seconds=eta)

        try:
            report = self.lode.index(root, repo, on_index_progress, control.cancel.is_set)
            self._flush(job_id, control)
            result = asdict(report)
            self._write(job_id, phase="embedding", chunks=report.chunks, eta_seconds=None, report=Jsonb(result))
            embeddings = self._embed(job_id, control, repo, report.chunks)
            result["embeddings"] = embeddings
            if control.cancel.is_set() and embeddings["pending"]:
                raise IndexCancelled("cancelled during the embedding backfill; the chunks left stay pending")
            self._write(job_id, report=Jsonb(result))
            self._finish(job_id, "succeeded", None)
        except IndexCancelled:
            self._flush(job_id, control)
            self._finish(job_id, "cancelled", control.reason)
        except LodeError as exc:
            self._flush(job_id, control)
            self._finish(job_id, "failed", str(exc))
        except Exception as exc:  # the job's thread must record every failure, or the job stays "running"
            log.exception("index job failed", job_id=job_id, repo=repo)
            self._finish(job_id, "failed", f"internal error: {exc!r}")

    def _embed(self, job_id: str, control: _Control, repo: str, chunks: int) -> dict[str, int]:
        """Fill the repository's embeddings when a provider is configured; return the counts."""
        if self.lode.settings.embedder == "none" or not chunks:
            counts = self.lode.embedding_counts(repo)
            self._write(job_id, embeddings_done=counts["done"], embeddings_pending=counts["pending"],
                        embeddings_failed=counts["failed"])
            return counts
        started, first_done = time.monotonic(), None

        def on_embed_progress(progress: Any) -> None:
            nonlocal first_done
            first_done = progress.done if first_done is None else first_done
            rate = (progress.done - first_done) / max(time.monotonic() - started, 1e-6)
            self._progress(job_id, control, progress.pending == 0, embeddings_done=progress.done,
                           embeddings_pending=progress.pending, embeddings_failed=progress.failed,
                           eta_seconds=progress.pending / rate if rate > 0 else None)

        final = asdict(self.lode.embed(repo, on_progress=on_embed_progress, should_stop=control.cancel.is_set))
        control.unwritten.clear()
        self._write(job_id, embeddings_done=final["done"], embeddings_pending=final["pending"],
                    embeddings_failed=final["failed"])
        return final

    # ---- the table --------------------------------------------------------------------------------------

    def _start(self, job_id: str) -> bool:
        with self.lode.db.connection() as conn:
            return conn.execute(
                """UPDATE jobs SET state = 'running', phase = 'indexing', started_at = now(), heartbeat_at = now()
                    WHERE id = %s AND state = 'queued' RETURNING id""",
                (job_id,),
            ).fetchone() is not None

    def _progress(self, job_id: str, control: _Control, final: bool, **values: Any) -> None:
        control.unwritten.update(values)
        now = time.monotonic()
        if final or now - control.last_write >= _PROGRESS_WRITE_SECONDS:
            control.last_write = now
            self._flush(job_id, control)

    def _flush(self, job_id: str, control: _Control) -> None:
        if control.unwritten:
            self._write(job_id, **control.unwritten)
            control.unwritten.clear()

    def _write(self, job_id: str, **values: Any) -> None:
        assignments = ", ".join(f"{name} = %({name})s" for name in values)
        with self.lode.db.connection() as conn:
            conn.execute(f"UPDATE jobs SET {assignments}, heartbeat_at = now() WHERE id = %(id)s",
                         {**values, "id": job_id})

    def _finish(self, job_id: str, state: str, error: str | None) -> None:
        with self.lode.db.connection() as conn:
            updated = conn.execute(
                """UPDATE jobs SET state = %s, error = %s, phase = NULL, eta_seconds = NULL, finished_at = now()
                    WHERE id = %s AND state IN ('queued', 'running')""",
                (state, error, job_id),
            ).rowcount
        if updated:
            JOBS_FINISHED.labels(state).inc()
        log.info("index job finished", job_id=job_id, state=state, error=error)

    def _active_job(self, repo: str) -> str:
        with self.lode.db.connection() as conn:
            row = conn.execute("SELECT id FROM jobs WHERE repo = %s AND state IN ('queued', 'running')",
                               (repo,)).fetchone()
        return str(row[0]) if row else "(just finished)"

    def _reap(self, repo: str | None = None) -> bool:
        """Fail active jobs whose server is gone (a dead process on this host, or a stale heartbeat)."""
        host = socket.gethostname()
        with self.lode.db.connection() as conn:
            rows = conn.execute(
                f"""SELECT id, owner, heartbeat_at < now() - interval '{_STALE_AFTER}' FROM jobs
                     WHERE state IN ('queued', 'running') AND (%(repo)s::text IS NULL OR repo = %(repo)s)""",
                {"repo": repo},
            ).fetchall()
            dead = []
            for job_id, owner, stale in rows:
                owner_host, _, pid = owner.rpartition(":")
                gone = owner_host == host and (not psutil.pid_exists(int(pid)) or (
                    owner == self.owner and str(job_id) not in self._controls))
                if stale or gone:
                    dead.append(job_id)
            if dead:
                conn.execute(
                    """UPDATE jobs SET state = 'failed', error = 'the server running this job stopped',
                              finished_at = now() WHERE id = ANY(%s) AND state IN ('queued', 'running')""",
                    (dead,),
                )
        return bool(dead)

    def _watch(self) -> None:
        """Heartbeat this process's jobs and pick up cancel requests made through another replica."""
        while not self._closed.wait(_MONITOR_SECONDS):
            with self._lock:
                ids = list(self._controls)
            if not ids:
                continue
            try:
                with self.lode.db.connection() as conn:
                    conn.execute("UPDATE jobs SET heartbeat_at = now() WHERE id = ANY(%s::uuid[])", (ids,))
                    cancelled = {str(row[0]) for row in conn.execute(
                        "SELECT id FROM jobs WHERE id = ANY(%s::uuid[]) AND cancel_requested", (ids,))}
            except (psycopg.Error, LodeError) as exc:  # the database is away: jobs fail on their own writes
                log.warning("job monitor could not reach the database", error=str(exc))
                continue
            with self._lock:
                for job_id in cancelled:
                    if job_id in self._controls:
                        self._controls[job_id].cancel.set()
