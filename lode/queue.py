"""The durable job queue: procrastinate on Lode's PostgreSQL (its schema is applied by lode/store/db.py).

Jobs survive restarts of every process: they are rows in `procrastinate_jobs`, fetched by any worker, on any
machine (`lode worker`, or the in-process worker of `lode serve`). A worker heartbeats; a periodic task retries the
jobs of a worker silent for LODE_QUEUE_STALL_SECONDS. Tasks:
- index_repository(job_id): one user-visible index job (lode/jobs.py); procrastinate's `lock` per repository
  runs one at a time (the `jobs` table also admits one active job per repository).
- embed_batch(repo_id, model, first, last): one slice of a backfill, shared by the workers; harmless when repeated.
- resolve_graph(repo): a deferred graph resolution, queued at most once per repository (`queueing_lock`).
- collect_garbage() and retry_stalled(), periodic.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
import tenacity
from procrastinate import JobContext, RetryStrategy
from procrastinate.exceptions import ConnectorException, JobAborted

from lode.errors import LodeError
from lode.logs import get_logger
from lode.queue_client import NAMESPACE, Queue, worker_name
from lode.store.db import DatabaseUnavailable

if TYPE_CHECKING:
    from lode.engine import Lode

log = get_logger(__name__)


# ---- tasks (each receives the worker's Lode engine in its context) ---------------------------------------------

def _lode(context: JobContext) -> Lode:
    return context.additional_context["lode"]


def index_repository(context: JobContext, job_id: str) -> None:
    from lode.jobs import IndexJob, Requeued

    try:
        IndexJob(_lode(context), context.additional_context["queue"], job_id, context.worker_name or worker_name(),
                 context.should_abort,
                 shutting_down=lambda: context.abort_reason() == procrastinate.job_context.AbortReason.SHUTDOWN).run()
    except Requeued:
        raise JobAborted("the worker shut down; the job is retried by the next worker") from None


def embed_batch(context: JobContext, repo_id: int, model: int, first: int, last: int) -> None:
    _lode(context).embeddings.embed_range(repo_id, model, first, last, wait=None, should_stop=context.should_abort)


def resolve_graph(context: JobContext, repo: str) -> None:
    _lode(context).graph.resolve(repo)


def collect_garbage(context: JobContext, timestamp: int) -> None:
    from lode.jobs import collect_garbage as collect

    log.info("garbage collected", **collect(_lode(context)))


async def retry_stalled(context: JobContext, timestamp: int) -> None:
    """Put the jobs of workers that stopped heartbeating back in the queue (procrastinate's documented recipe),
    then fail the index jobs whose queue job ended without finishing them (their retries are used up)."""
    from lode.jobs import reconcile

    lode = _lode(context)
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=lode.settings.queue.stall_seconds):
        log.warning("retrying a job of a stopped worker", task=job.task_name, queue_job_id=job.id)
        await manager.retry_job(job)
    await asyncio.to_thread(reconcile, lode)


def _register_tasks(app: procrastinate.App, settings: Any) -> None:
    queue = settings.queue.name
    transient = RetryStrategy(max_attempts=settings.queue.max_attempts, wait=1, exponential_wait=2,
                              retry_exceptions={JobAborted, DatabaseUnavailable})
    for func, options in (
        (index_repository, {"retry": transient}),
        (embed_batch, {"retry": RetryStrategy(max_attempts=settings.queue.max_attempts, wait=2,
                                              exponential_wait=2, retry_exceptions={JobAborted, LodeError})}),
        (resolve_graph, {"retry": transient}),
        (collect_garbage, {"queueing_lock": "lode-gc"}),
        (retry_stalled, {"queueing_lock": "lode-retry-stalled"}),
    ):
        app.task(name=f"{NAMESPACE}:{func.__name__}", queue=queue, pass_context=True, **options)(func)
    every = max(1, min(59, int(settings.queue.stall_seconds / 2)))
    app.periodic(cron=f"* * * * * */{every}", periodic_id=queue)(app.tasks[f"{NAMESPACE}:retry_stalled"])
    app.periodic(cron=settings.queue.gc_cron, periodic_id=queue)(app.tasks[f"{NAMESPACE}:collect_garbage"])


# ---- workers -------------------------------------------------------------------------------------------------

_FRESH_BACKOFF_AFTER_SECONDS = 60.0  # a worker that ran this long before it stopped starts its backoff afresh


class WorkerLost(Exception):
    """The worker stopped without being asked to: procrastinate stops one whose notification listener or heartbeat
    loses the database (a restart, a network cut), and a worker cannot start while the database is away."""

    def __init__(self, cause: str, ran_seconds: float) -> None:
        super().__init__(cause)
        self.ran_seconds = ran_seconds


async def run_worker(lode: Lode, concurrency: int, *, install_signal_handlers: bool) -> None:
    """Consume the queue until stopped (SIGINT or SIGTERM when `install_signal_handlers`, or cancelling this
    coroutine). On stop, running jobs get LODE_QUEUE_SHUTDOWN_GRACE_SECONDS to finish; then they stop between two
    files and go back to the queue. A worker that loses its database starts again, with backoff (1 s doubling to
    30 s), until it is back."""
    signalled = _cancel_on_signals(asyncio.current_task()) if install_signal_handlers else None
    try:
        while True:  # each lap is one outage: its backoff starts at 1 s
            retrying = tenacity.AsyncRetrying(
                retry=tenacity.retry_if_exception(
                    lambda exc: isinstance(exc, WorkerLost) and exc.ran_seconds < _FRESH_BACKOFF_AFTER_SECONDS),
                wait=tenacity.wait_exponential(multiplier=1, max=30), before_sleep=_log_reconnect, reraise=True)
            try:
                await retrying(_consume, lode, concurrency)
            except WorkerLost as lost:  # after a long run: reconnect at once, then back off
                log.warning("queue worker lost its database; reconnecting", error=str(lost))
    except asyncio.CancelledError:
        if signalled is None or not signalled.is_set():
            raise


async def _consume(lode: Lode, concurrency: int) -> None:
    """One procrastinate worker on a pool of its own; raises WorkerLost when it stops or fails by itself."""
    settings = lode.settings.queue
    started = asyncio.get_running_loop().time()
    try:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=lode.db.url, min_size=1, max_size=concurrency + 3,
            kwargs={"application_name": "lode-worker"}))
        _register_tasks(app, lode.settings)
        async with app.open_async():
            await app.run_worker_async(
                queues=[settings.name], name=worker_name(), concurrency=concurrency,
                additional_context={"lode": lode, "queue": Queue(lode.db)}, install_signal_handlers=False,
                fetch_job_polling_interval=settings.poll_seconds, abort_job_polling_interval=settings.poll_seconds,
                update_heartbeat_interval=settings.stall_seconds / 4, stalled_worker_timeout=settings.stall_seconds,
                shutdown_graceful_timeout=settings.shutdown_grace_seconds, delete_jobs="successful",
            )
        cause = "the worker stopped by itself"  # only a cancel stops it on request, and that raises
    except (ConnectorException, psycopg.Error, OSError) as exc:  # psycopg_pool's PoolTimeout is a psycopg.Error
        cause = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    raise WorkerLost(cause, asyncio.get_running_loop().time() - started)


def _log_reconnect(state: tenacity.RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("queue worker lost its database; reconnecting", error=str(error),
                in_seconds=round(state.upcoming_sleep, 1), attempt=state.attempt_number)


def _cancel_on_signals(task: asyncio.Task[Any] | None) -> threading.Event:
    """SIGINT and SIGTERM cancel `task`, which stops the worker gracefully (procrastinate's own handlers stop it
    the way a lost database does, so run_worker could not tell the two apart). A second signal has its default
    effect. Returns the event set by the first signal."""
    loop = asyncio.get_running_loop()
    signalled = threading.Event()

    def stop() -> None:
        signalled.set()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if task is not None:
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop)
    return signalled


class BackgroundWorker:
    """A worker on a thread of its own: `lode serve`'s in-process job slots (LODE_INDEX_JOBS)."""

    def __init__(self, lode: Lode, concurrency: int) -> None:
        self._lode = lode
        self._concurrency = concurrency
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lode-worker", daemon=True)

    def start(self) -> BackgroundWorker:
        self._thread.start()
        self._started.wait()
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(run_worker(self._lode, self._concurrency, install_signal_handlers=False))
        self._started.set()
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("the in-process worker stopped")
        finally:
            self._loop.close()

    def stop(self) -> None:
        """Stop taking jobs; running ones finish or go back to the queue (see run_worker)."""
        if self._thread.is_alive() and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join()
