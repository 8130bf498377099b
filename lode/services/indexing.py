"""The use case behind `lode index`, the MCP tool index_repository and an index job's worker (lode/jobs.py): index a
directory (IndexingService), report its embeddings, and schedule the work the run leaves (the graph resolution it
deferred, the embedding backfill: run_index). The callers differ only in how that work is scheduled, and they say so
explicitly."""

from __future__ import annotations

import enum
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lode.discover import RootError, RootUnavailable, ensure_indexable_root
from lode.embedding.backfill import BackfillProgress, counts
from lode.errors import InputError
from lode.indexer import IndexCancelled, Indexer, IndexReport, ProgressCallback
from lode.services.base import Service
from lode.store.repositories import Repositories

if TYPE_CHECKING:
    from lode.config import Settings
    from lode.engine import Lode
    from lode.queue_client import Queue


class Schedule(enum.StrEnum):
    """Where the work an index run leaves is done."""

    INLINE = "inline"  # in this process, before run_index returns (the graph is then resolved by the run itself)
    DETACHED = "detached"  # in a detached `lode` process (_spawn_detached): run_index returns once search works
    QUEUE = "queue"  # as tasks on the durable queue that every worker shares; run_index waits for them



_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class IndexingService(Service):
    def target(self, path: str | Path, repo: str | None = None,
               authorize: Callable[[str], None] = lambda name: None,
               within: Path | None = None) -> tuple[Path, str]:
        """The resolved root and the repository name that indexing `path` uses; InputError if it cannot.
        `authorize(name)` may refuse the name (an API key's scope) before anything about that repository is
        looked up; `within`: the root must resolve under that directory (RootUnavailable otherwise)."""
        try:
            root = ensure_indexable_root(Path(path))
        except RootError as exc:
            raise InputError(str(exc)) from exc
        if within is not None and not root.is_relative_to(within.resolve()):  # e.g. a directory became a symlink
            raise RootUnavailable(f"{path} is no longer under the allowed root {within}; nothing was indexed")
        name = repo or _default_repo_name(root)
        _check_repo_name(name)
        authorize(name)
        with self.db.connection() as conn:
            existing = Repositories(conn).get(name)
        if existing and Path(existing.root) != root:
            raise InputError(f"repository {name!r} is indexed from {existing.root}",
                             cli=f"pass --repo to index {root} under another name",
                             tools=f"pass repo= to index {root} under another name")
        return root, name

    def index(self, path: str | Path, repo: str | None = None, on_progress: ProgressCallback | None = None,
              should_stop: Callable[[], bool] | None = None, defer_graph: bool = False,
              within: Path | None = None) -> IndexReport:
        """Index a directory incrementally. should_stop is checked between files: True ends the run with
        IndexCancelled, leaving every file stored so far whole. defer_graph leaves a large graph resolution
        to lode.graph.resolve() (report.graph_pending); graph queries finish it first in any case. `within`
        confines the run to a directory (an allowed root of the API), checked when the run starts."""
        root, name = self.target(path, repo, within=within)
        report = Indexer(self.db, self.settings).run(root, name, on_progress, should_stop, defer_graph, within)
        with self.db.connection() as conn:
            row = Repositories(conn).get(name)
        report.chunks = row.chunk_count if row else 0
        return report


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
    """Index `path` into `repo` (IndexingService.index), then schedule the graph resolution and the embedding backfill.

    graph=INLINE resolves the graph within the run; otherwise a large resolution is deferred, and DETACHED leaves
    it to a detached process (report.graph_pending stays true) while QUEUE queues it for any worker and waits for
    it after the embeddings. `queue` is needed by either QUEUE schedule. `on_indexed(report)` is called between
    the two phases. A `should_stop` that turns true during an INLINE or QUEUE backfill ends the run with
    IndexCancelled while chunks are still pending."""
    if queue is None and Schedule.QUEUE in (graph, embeddings):
        raise ValueError("Schedule.QUEUE needs the queue")
    report = lode.indexing.index(path, repo, on_progress, should_stop, defer_graph=graph is not Schedule.INLINE,
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
        lode.graph.resolve(report.repo)  # done already, or waits for the worker doing it
        report.graph_pending = False
    return IndexOutcome(report, filled)


def _fill_embeddings(lode: Lode, report: IndexReport, schedule: Schedule, queue: Queue | None,
                     should_stop: Callable[[], bool], on_progress: EmbedProgressCallback) -> BackfillProgress:
    if lode.settings.embedder == "none" or not report.chunks:
        if schedule is not Schedule.QUEUE:
            return BackfillProgress(done=0, pending=0, failed=0)
        # an index job records the repository's counts as they stand: its row is what `lode jobs` shows
        current = lode.embeddings.counts(report.repo)
        on_progress(current, True)
        return current
    if schedule is Schedule.INLINE:
        return lode.embeddings.embed(report.repo, on_progress=lambda p: on_progress(p, False), should_stop=should_stop)
    if schedule is Schedule.DETACHED:
        current = lode.embeddings.counts(report.repo)
        if current.pending:
            _spawn_detached(lode.settings, ["embed", "--repo", report.repo, "--json"], f"embed-{report.repo}.log")
        return current
    assert queue is not None
    return _embed_shared(lode, queue, report.repo, should_stop, on_progress)


def _embed_shared(lode: Lode, queue: Queue, repo: str, should_stop: Callable[[], bool],
                  on_progress: EmbedProgressCallback) -> BackfillProgress:
    """Split the backfill into batches queued for every worker; this one takes them from the last, skipping those
    another worker holds, then waits for those. The last counts follow a model switch that completes."""
    repo_id, model, ranges = lode.embeddings.plan(repo, lode.settings.queue.embed_batch_chunks, should_stop)
    if len(ranges) > 1:
        queue.defer_many("embed_batch", [
            {"repo_id": repo_id, "model": model, "first": first, "last": last} for first, last in ranges])
    left, wait = list(reversed(ranges)), 0.0
    while left and not should_stop():
        for first, last in list(left):
            if lode.embeddings.embed_range(repo_id, model, first, last, wait=wait, should_stop=should_stop):
                left.remove((first, last))
            on_progress(counts(lode.db, repo_id, model), False)
            if should_stop():
                break
        wait = 1.0  # the batches left are being embedded by other workers: wait for them, a second at a time
    final = lode.embeddings.finish(repo_id, model)
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


def _default_repo_name(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.") or "root"
    return name[:128]


def _check_repo_name(name: str) -> None:
    if not _REPO_NAME.match(name):
        raise InputError(f"invalid repository name {name!r}: use letters, digits, '.', '_' and '-' (max 128)")
