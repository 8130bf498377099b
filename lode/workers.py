"""Killable per-item worker processes: an item whose work exceeds its timeout is stopped, not waited for.

`map_killable` runs fn(job) for each job in a pebble process pool and yields (job, result) in job order. Only
`ahead` chunks are scheduled beyond the one being consumed, so finished results never pile up in memory while the
caller is slower than the workers (an index run's outcomes carry their rows: a whole repository's would not fit). A job
still running after `timeout` seconds (counted from when a worker took it) has its worker process killed (pebble
replaces it) and yields a `Lost` instead of a result; so does a job whose worker died (a crash in a native
parser). Jobs travel in chunks; a chunk that fails is re-run one job at a time, so only the guilty job is lost.
Either is logged and recorded in error_logs, and the other jobs go on. Errors recorded inside a worker (which has
no database) are carried back with its result and stored by the parent.
"""

from __future__ import annotations

import multiprocessing.context
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

from lode import errorlog

__all__ = ["Lost", "map_killable"]

J = TypeVar("J")


@dataclass(frozen=True, slots=True)
class Lost:
    """A job that produced no result: "timeout" (its worker was killed) or "worker_died"."""

    reason: str
    detail: str


def _call_collecting(fn: Callable[[Any], Any], jobs: list[Any]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Runs in the worker: fn(job) for each job, each with the errors it recorded, for the parent to store."""
    out = []
    for job in jobs:
        with errorlog.collect() as records:
            result = fn(job)
        out.append((result, records))
    return out


def map_killable(
    fn: Callable[[J], Any],
    jobs: Iterable[J],
    *,
    workers: int,
    timeout: float,
    chunksize: int = 4,
    ahead: int | None = None,  # chunks scheduled beyond the one consumed; default 2 per worker
    recycle_after: int = 0,  # chunks a worker process runs before it is replaced (0: never)
    mp_context: multiprocessing.context.BaseContext,  # pebble has no default of its own for None
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    describe: Callable[[J], dict[str, Any]] = lambda job: {},
) -> Iterator[tuple[J, Any]]:
    """Yield (job, fn(job) or Lost) in job order. fn and jobs must pickle; fn's own exceptions propagate.

    Jobs go to the workers `chunksize` at a time (one message per chunk), each chunk with `timeout`. A chunk
    that times out or loses its worker is run again one job at a time, so only the guilty job is lost. A worker
    is replaced after `recycle_after` chunks, which bounds what it can leak (py-tree-sitter 0.26 keeps every
    bytes object its read callback returned: the source of each file parsed)."""
    jobs = list(jobs)
    window = 1 + (2 * workers if ahead is None else max(0, ahead))
    pool = ProcessPool(max_workers=workers, max_tasks=recycle_after, context=mp_context, initializer=initializer,
                       initargs=initargs)
    try:
        chunks = iter([jobs[i:i + chunksize] for i in range(0, len(jobs), chunksize)])
        scheduled: deque[tuple[list[J], Any]] = deque()
        while True:
            for chunk in chunks:
                scheduled.append((chunk, pool.schedule(_call_collecting, args=(fn, chunk), timeout=timeout)))
                if len(scheduled) >= window:
                    break
            if not scheduled:
                break
            chunk, future = scheduled.popleft()
            try:
                outcomes = future.result()
            except (FutureTimeout, ProcessExpired):
                singles = [future] if len(chunk) == 1 else [
                    pool.schedule(_call_collecting, args=(fn, [job]), timeout=timeout) for job in chunk]
                for job, single in zip(chunk, singles):
                    yield job, _result_or_lost(job, single, timeout, describe)
                continue
            for job, (result, records) in zip(chunk, outcomes):
                errorlog.replay(records)
                yield job, result
        pool.close()
    except BaseException:
        pool.stop()
        raise
    finally:
        pool.join()


def _result_or_lost(job: J, future: Any, timeout: float, describe: Callable[[J], dict[str, Any]]) -> Any:
    """The job's result, or a recorded Lost when its worker timed out or died."""
    try:
        [(result, records)] = future.result()
    except FutureTimeout:
        lost = Lost("timeout", f"its worker was killed after {timeout:g}s (LODE_TIMEOUT_INDEX_FILE)")
    except ProcessExpired as exc:
        lost = Lost("worker_died", f"its worker process died (exit code {exc.exitcode})")
    else:
        errorlog.replay(records)
        return result
    errorlog.record_error("indexer.worker", message=f"a file was skipped: {lost.detail}",
                          severity="warning" if lost.reason == "timeout" else "error",
                          category="timeout" if lost.reason == "timeout" else "crash",
                          context=describe(job) | {"reason": lost.reason})
    return lost
