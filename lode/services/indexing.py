"""The use case behind `lode index`, the MCP tool index_repository and an index job's worker (lode/jobs.py): index a
directory, report its embeddings, and schedule the work the run leaves (the graph resolution it deferred, the
embedding backfill). The callers differ only in how that work is scheduled, and they say so explicitly."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lode.embedding.backfill import BackfillProgress, counts
from lode.indexer import IndexCancelled, IndexReport, ProgressCallback

if TYPE_CHECKING:
    from lode.config import Settings
    from lode.engine import Lode
    from lode.queue_client import Queue


class Schedule(enum.StrEnum):
    """Where the work an index run leaves is done."""

    INLINE = "inline"  # in this process, before run_index returns (the graph is then resolved by the run itself)
    DETACHED = "detached"  # in a detached `lode` process (_spawn_detached): run_index returns once search works
    QUEUE = "queue"  # as tasks on the durable queue that every worker shares; run_index waits for them



# the counts so far, and whether they are the last of the run
EmbedProgressCallback = Callable[[BackfillProgress, bool], None]


@dataclass
class IndexOutcome:
    report: IndexReport
    embeddings: BackfillProgress

    def as_dict(self) -> dict[str, Any]:
        """The report with its embedding counts: `lode index --json`'s document, an index job's report."""
        fields = asdict(self.report)
        warnings = fields.pop("warnings")
        return {**fields, "embeddings": asdict(self.embeddings), "warnings": warnings}


def run_index(
    lode: Lode, path: str | Path, repo: str | None = None, *, graph: Schedule, embeddings: Schedule,
    queue: Queue | None = None, within: Path | None = None, should_stop: Callable[[], bool] | None = None,
    on_progress: ProgressCallback | None = None, on_indexed: Callable[[IndexReport], None] | None = None,
    on_embed_progress: EmbedProgressCallback | None = None,
) -> IndexOutcome:
    """Index `path` into `repo` (Lode.index), then schedule the graph resolution and the embedding backfill.

    graph=INLINE resolves the graph within the run; otherwise a large resolution is deferred, and DETACHED leaves
    it to a detached process (report.graph_pending stays true) while QUEUE queues it for any worker and waits for
    it after the embeddings. `queue` is needed by either QUEUE schedule. `on_indexed(report)` is called between
    the two phases. A `should_stop` that turns true during an INLINE or QUEUE backfill ends the run with
    IndexCancelled while chunks are still pending."""
    if queue is None and Schedule.QUEUE in (graph, embeddings):
        raise ValueError("Schedule.QUEUE needs the queue")
    report = lode.index(path, repo, on_progress, should_stop, defer_graph=graph is not Schedule.INLINE,
                        within=within)
    if on_indexed is not None:
        on_indexed(report)
    if report.graph_pending and graph is Schedule.DETACHED:
        _spawn_detached(lode.settings, ["graph", "resolve", "--repo", report.repo, "--json"],
                        f"graph-{report.repo}.log")
    elif report.graph_pending and graph is Schedule.QUEUE:  # another worker may resolve it while this one embeds
        assert queue is not None
        queue.defer("resolve_graph", queueing_lock=f"lode-graph:{report.repo}", repo=report.repo)
    progress = on_embed_progress or (lambda counts, final: None)
    filled = _fill_embeddings(lode, report, embeddings, queue, should_stop or (lambda: False), progress)
    if embeddings is not Schedule.DETACHED and should_stop is not None and should_stop() and filled.pending:
        raise IndexCancelled("cancelled during the embedding backfill; the chunks left stay pending")
    if report.graph_pending and graph is Schedule.QUEUE:
        lode.resolve_graph(report.repo)  # done already, or waits for the worker doing it
        report.graph_pending = False
    return IndexOutcome(report, filled)


def _fill_embeddings(lode: Lode, report: IndexReport, schedule: Schedule, queue: Queue | None,
                     should_stop: Callable[[], bool], on_progress: EmbedProgressCallback) -> BackfillProgress:
    if lode.settings.embedder == "none" or not report.chunks:
        if schedule is not Schedule.QUEUE:
            return BackfillProgress(done=0, pending=0, failed=0)
        # an index job records the repository's counts as they stand: its row is what `lode jobs` shows
        current = lode.embedding_counts(report.repo)
        on_progress(current, True)
        return current
    if schedule is Schedule.INLINE:
        return lode.embed(report.repo, on_progress=lambda p: on_progress(p, False), should_stop=should_stop)
    if schedule is Schedule.DETACHED:
        current = lode.embedding_counts(report.repo)
        if current.pending:
            _spawn_detached(lode.settings, ["embed", "--repo", report.repo, "--json"], f"embed-{report.repo}.log")
        return current
    assert queue is not None
    return _embed_shared(lode, queue, report.repo, should_stop, on_progress)


def _embed_shared(lode: Lode, queue: Queue, repo: str, should_stop: Callable[[], bool],
                  on_progress: EmbedProgressCallback) -> BackfillProgress:
    """Split the backfill into batches queued for every worker; this one takes them from the last, skipping those
    another worker holds, then waits for those. The last counts follow a model switch that completes."""
    repo_id, model, ranges = lode.embed_plan(repo, lode.settings.queue.embed_batch_chunks, should_stop)
    if len(ranges) > 1:
        queue.defer_many("embed_batch", [
            {"repo_id": repo_id, "model": model, "first": first, "last": last} for first, last in ranges])
    left, wait = list(reversed(ranges)), 0.0
    while left and not should_stop():
        for first, last in list(left):
            if lode.embed_range(repo_id, model, first, last, wait=wait, should_stop=should_stop):
                left.remove((first, last))
            on_progress(counts(lode.db, repo_id, model), False)
            if should_stop():
                break
        wait = 1.0  # the batches left are being embedded by other workers: wait for them, a second at a time
    final = lode.finish_embedding(repo_id, model)
    on_progress(final, True)
    return final


def _spawn_detached(settings: Settings, command: list[str], log_name: str) -> None:
    """Run `lode COMMAND` in its own session, so that it outlives this process, logging to LODE_HOME/logs/LOG_NAME.
    The one way Lode runs work detached; the job queue (lode/queue.py) is the durable one."""
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / log_name, "ab") as log_file:
        subprocess.Popen(
            [sys.executable, "-m", "lode", *command],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
            env={**os.environ, "LODE_HOME": str(settings.home)},
        )
