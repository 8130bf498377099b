"""Index jobs: the user-visible record in the `jobs` table, run by any worker of the durable queue (lode/queue.py).

Any process reads, lists and cancels any job through the table. `Jobs.submit` records a job and defers its queue
job in one transaction; a second request for the same repository and path while one is active is merged into it.
The worker that runs a job (IndexJob) writes its progress there (files, chunks, embeddings, ETA) while it runs
the index use case with both schedules on the queue (lode/services/indexing.py run_index): it indexes the
directory (one advisory lock per repository), splits the embedding backfill into batches that every worker shares
(it works through them itself too, from the other end) and reports until none is pending, then makes sure the
code graph is resolved. Cancelling stops it between two files or two batches; what is stored stays
whole. A worker that shuts down puts its job back in the queue; one that dies has it retried after the stall
timeout, and the rerun resumes (indexing is incremental).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
from prometheus_client import Counter, Gauge
from psycopg.types.json import Jsonb

from lode.embedding.backfill import BackfillProgress
from lode.engine import Lode
from lode.errors import InputError, LodeError, NotFound
from lode.indexer import IndexCancelled, IndexReport, Progress
from lode.logs import get_logger
from lode.queue_client import Queue, worker_name
from lode.services.indexing import Schedule, run_index
from lode.store.jobs import JobRows, delete_garbage

log = get_logger(__name__)

ACTIVE = ("queued", "running")
STATES = (*ACTIVE, "succeeded", "failed", "cancelled")
_PROGRESS_WRITE_SECONDS = 0.5  # progress is written at most this often (and at every phase change)

JOBS_FINISHED = Counter("lode_index_jobs_total", "Index jobs finished, by final state.", ["state"])
JOBS_RUNNING = Gauge("lode_index_jobs_running", "Index jobs running in this process.")


class JobConflict(InputError):
    """A job cannot do that now: its repository has an active job for another path, or it has already finished."""


class Requeued(Exception):
    """The worker shut down mid-job: the job went back to the queue for the next worker."""


def job_json(row: tuple) -> dict[str, Any]:
    (job_id, repo, path, state, phase, files_total, files_done, chunks, done, pending, failed, eta, error, report,
     created, started, finished, attempts, owner) = row
    return {
        "id": str(job_id), "repo": repo, "path": path, "state": state, "phase": phase,
        "files_total": files_total, "files_done": files_done, "chunks": chunks,
        "embeddings": {"done": done, "pending": pending, "failed": failed},
        "eta_seconds": None if eta is None else round(eta, 1), "error": error, "report": report,
        "created_at": created.isoformat(), "started_at": started and started.isoformat(),
        "finished_at": finished and finished.isoformat(), "attempts": attempts, "worker": owner,
    }


class Jobs:
    """Submit, read, list and cancel index jobs: what the REST API, the MCP server and `lode jobs` use."""

    def __init__(self, lode: Lode) -> None:
        self.lode = lode
        self.queue = Queue(lode.db)

    def submit(self, root: Path, repo: str, within: Path | None = None) -> tuple[dict[str, Any], bool]:
        """Queue an index of `root` into `repo`; (the job, whether it merged into an active one). JobConflict if
        the repository has an active job for another path. `within`: the allowed root that admitted the
        request, to which the run is confined (IndexingService.index)."""
        for _ in range(3):  # the active job may finish between the refused insert and the lookup
            job_id = str(uuid.uuid4())
            try:
                with self.lode.db.connection() as conn:
                    rows = JobRows(conn)
                    rows.insert(job_id, repo, str(root), str(within) if within else None, worker_name())
                    queue_job_id = self.queue.defer("index_repository", conn=conn, lock=f"lode-index:{repo}",
                                                    job_id=job_id)
                    row = rows.set_queue_job(job_id, queue_job_id)
                return job_json(row), False
            except psycopg.errors.UniqueViolation:
                active = self._active(repo)
            if active is not None:
                if active["path"] != str(root):
                    raise JobConflict(f"repository {repo!r} has an active index job {active['id']} for "
                                      f"{active['path']}; wait for it or cancel it")
                return active, True
        raise JobConflict(f"repository {repo!r} keeps getting new index jobs; retry")

    def get(self, job_id: str) -> dict[str, Any]:
        with self.lode.db.connection() as conn:
            row = JobRows(conn).get(_uuid(job_id))
        if row is None:
            raise NotFound(f"no index job {job_id}")
        return job_json(row)

    def list(self, repos: tuple[str, ...] | None = None, limit: int = 100,
             states: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        for state in states or ():
            if state not in STATES:
                raise InputError(f"unknown job state {state!r}; one of {', '.join(STATES)}")
        with self.lode.db.connection() as conn:
            rows = JobRows(conn).newest(repos, states, limit)
        return [job_json(row) for row in rows]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued job at once, or ask a running one (on any worker) to stop; return the job."""
        with self.lode.db.connection() as conn:
            rows = JobRows(conn)
            row = rows.lock(_uuid(job_id))  # FOR UPDATE: held until this transaction ends
            if row is None:
                raise NotFound(f"no index job {job_id}")
            if row[0] not in ACTIVE:
                raise JobConflict(f"index job {job_id} has finished: {row[0]}")
            rows.request_cancel(job_id)
        if row[1] is not None:
            self.queue.cancel(row[1])
        if row[0] == "queued":
            JOBS_FINISHED.labels("cancelled").inc()
        return self.get(job_id)

    def _active(self, repo: str) -> dict[str, Any] | None:
        with self.lode.db.connection() as conn:
            row = JobRows(conn).active(repo)
        return job_json(row) if row else None


def _uuid(job_id: str) -> str:
    try:
        return str(uuid.UUID(job_id))
    except ValueError:
        raise InputError(f"not a job id: {job_id!r}") from None


class IndexJob:
    """One run of an index job on a worker (lode/queue.py index_repository)."""

    def __init__(self, lode: Lode, queue: Queue, job_id: str, worker: str, should_abort: Callable[[], bool],
                 shutting_down: Callable[[], bool]) -> None:
        self.lode = lode
        self.queue = queue
        self.job_id = job_id
        self.worker = worker
        self._should_abort = should_abort
        self._shutting_down = shutting_down
        self._cancel_requested = False
        self._last_write = 0.0
        self._unwritten: dict[str, Any] = {}

    def should_stop(self) -> bool:
        return self._cancel_requested or self._should_abort()

    def run(self) -> None:
        target = self._start()
        if target is None:
            return  # cancelled while it waited
        root, repo, within = target
        try:
            with JOBS_RUNNING.track_inprogress():
                self._execute(Path(root), repo, Path(within) if within else None)
        except IndexCancelled:
            self._flush()
            if self._shutting_down():
                self._requeue()
                raise Requeued from None
            self._finish("cancelled", "cancelled by request")
        except LodeError as exc:
            self._flush()
            self._finish("failed", str(exc))
        except Exception as exc:  # the job must record every failure, or it stays "running"
            log.exception("index job failed", job_id=self.job_id, repo=repo)
            self._finish("failed", f"internal error: {exc!r}")

    def _execute(self, root: Path, repo: str, within: Path | None) -> None:
        started = time.monotonic()

        def on_index_progress(progress: Progress) -> None:
            elapsed = time.monotonic() - started
            left = progress.files_total - progress.files_done
            eta = left * elapsed / progress.files_done if progress.files_done else None
            self._progress(progress.files_done == progress.files_total, files_total=progress.files_total,
                           files_done=progress.files_done, chunks=progress.chunks, eta_seconds=eta)

        def on_indexed(report: IndexReport) -> None:
            self._flush()
            self._write(phase="embedding", chunks=report.chunks, eta_seconds=None, report=Jsonb(asdict(report)))

        outcome = run_index(self.lode, root, repo, graph=Schedule.QUEUE, embeddings=Schedule.QUEUE, queue=self.queue,
                            within=within, should_stop=self.should_stop, on_progress=on_index_progress,
                            on_indexed=on_indexed, on_embed_progress=_EmbeddingEta(self._progress))
        self._write(report=Jsonb(outcome.as_dict()))
        self._finish("succeeded", None)

    # ---- the row ----------------------------------------------------------------------------------------

    def _start(self) -> tuple[str, str, str | None] | None:
        with self.lode.db.connection() as conn:
            return JobRows(conn).start(self.job_id, self.worker)

    def _progress(self, final: bool, **values: Any) -> None:
        self._unwritten.update(values)
        now = time.monotonic()
        if final or now - self._last_write >= _PROGRESS_WRITE_SECONDS:
            self._last_write = now
            self._flush()

    def _flush(self) -> None:
        if self._unwritten:
            self._write(**self._unwritten)
            self._unwritten.clear()

    def _write(self, **values: Any) -> None:
        """Write progress; the answer says whether a cancel was requested through any process."""
        with self.lode.db.connection() as conn:
            self._cancel_requested = JobRows(conn).write(self.job_id, values)

    def _requeue(self) -> None:
        with self.lode.db.connection() as conn:
            JobRows(conn).requeue(self.job_id)
        log.info("index job back in the queue", job_id=self.job_id)

    def _finish(self, state: str, error: str | None) -> None:
        with self.lode.db.connection() as conn:
            updated = JobRows(conn).finish(self.job_id, state, error)
        if updated:
            JOBS_FINISHED.labels(state).inc()
        log.info("index job finished", job_id=self.job_id, state=state, error=error)


class _EmbeddingEta:
    """Writes an index job's embedding counts, with an ETA from the rate since the first counts it was given."""

    def __init__(self, write: Callable[..., None]) -> None:
        self._write = write
        self._started = time.monotonic()
        self._first_done: int | None = None

    def __call__(self, progress: BackfillProgress, final: bool) -> None:
        if self._first_done is None:
            self._started, self._first_done = time.monotonic(), progress.done
        rate = (progress.done - self._first_done) / max(time.monotonic() - self._started, 1e-6)
        self._write(final, embeddings_done=progress.done, embeddings_pending=progress.pending,
                    embeddings_failed=progress.failed,
                    eta_seconds=progress.pending / rate if rate > 0 and not final else None)


# ---- maintenance (periodic tasks of lode/queue.py) --------------------------------------------------------------

def reconcile(lode: Lode) -> int:
    """Fail the active jobs whose queue job is over (its retries used up after worker deaths); return how many."""
    with lode.db.connection() as conn:
        updated = JobRows(conn).fail_orphaned()
    if updated:
        JOBS_FINISHED.labels("failed").inc(updated)
    return updated


def collect_garbage(lode: Lode) -> dict[str, int]:
    """Delete what nothing reads any more; return the rows removed by kind:
    finished jobs and finished queue jobs older than LODE_QUEUE_RETENTION_HOURS, query embeddings beyond
    LODE_CACHE_L3_VECTORS, and the vectors, cached vectors, failures and query embeddings of models that no
    repository serves or is switching to."""
    with lode.db.connection() as conn:
        return delete_garbage(conn, lode.settings.queue.retention_hours, lode.settings.cache.l3_vectors)
