"""The indexing pipeline: discover → read → chunk → tokenize (worker processes) → store (one unit of work a file).

Unchanged files (same size and mtime, or same content hash) are not rewritten, so re-indexing an unchanged
repository writes nothing. Each file is replaced in its own transaction, so an interrupted run leaves a
consistent index and the next run picks up where it stopped.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
import psycopg

from lode import errorlog
from lode.chunking.chunker import chunk_file_with_tree
from lode.config import Settings
from lode.discover import RootUnavailable, SourceTree
from lode.errors import LodeError
from lode.graph import FactsTimeout, extract_facts
from lode.languages import language_for_path, module_name
from lode.model import Candidate, SkipReason, Skipped
from lode.search.lexical import chunk_postings
from lode.store.db import Database, DatabaseUnavailable, analyze, set_local_timeout
from lode.store.graph import GraphBatch, GraphStore
from lode.store.repositories import ChunkBatch, Chunks, FileRow, PostingsPartition, RepoRow
from lode.store.uow import UnitOfWork, unit_of_work
from lode.workers import Lost, map_killable

log = logging.getLogger(__name__)

_REPO_LOCK_CLASS = 0x4C4F  # first key of pg_advisory_lock(int, int): one index run per repository
_FILES_PER_WORKER = 16  # a run starts one more worker process (up to LODE_INDEX_WORKERS) per this many files
_WORKER_MB = 160  # a worker's peak (PSS) within its recycling, measured on Lib/ replicas (bench/memory.py)
# a worker process is replaced after this many chunks of files (lode.workers: what it leaks stays bounded)
_CHUNKS_PER_WORKER_PROCESS = 500
# Skips that may not happen again though the file is unchanged: under less load, or once every directory on the
# way is a plain one again (a read met a symlink or a gap there). Not remembered with the file's size and mtime.
_RETRIED_SKIPS = frozenset({SkipReason.INDEX_TIMEOUT, SkipReason.WORKER_DIED, SkipReason.VANISHED,
                            SkipReason.SYMLINK_OUTSIDE_ROOT, SkipReason.SYMLINK_INSIDE_ROOT,
                            SkipReason.SYMLINK_BROKEN, SkipReason.SYMLINK_LOOP})
GRAPH_TIMEOUT = "graph_timeout"  # files.fallback: chunked, but its references ran past LODE_TIMEOUT_PARSE
_ANALYZE_AFTER_CHUNKS = 5000  # a run that writes more (and > 10 % of the repository) refreshes statistics


@dataclass(frozen=True, slots=True)
class FileJob:
    candidate: Candidate
    module: str
    known_hash: str | None
    repo_id: int
    file_id: int  # reserved before the job runs, so the worker can format rows with their final ids


@dataclass(slots=True)
class FileOutcome:
    candidate: Candidate
    skipped: Skipped | None = None
    unchanged: bool = False
    content_hash: str = ""
    language: str = ""
    fallback: str | None = None
    batch: ChunkBatch | None = None
    graph: GraphBatch | None = None


@dataclass(slots=True)
class Progress:
    files_total: int = 0
    files_done: int = 0
    chunks: int = 0


@dataclass(slots=True)
class IndexReport:
    repo: str
    files_indexed: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    files_skipped: int = 0
    chunks: int = 0  # in the repository's index after the run
    chunks_written: int = 0
    seconds: float = 0.0
    graph_pending: bool = False  # the run's graph resolution was deferred (Indexer.run's defer_graph)
    warnings: list[str] = field(default_factory=list)


ProgressCallback = Callable[[Progress], None]


class IndexCancelled(LodeError):
    """The run's should_stop hook asked it to stop; every file stored so far is whole, the run is aborted."""


def process_file(tree: SourceTree, job: FileJob, settings: Settings) -> FileOutcome:
    """Read, chunk and tokenize one file. Runs in a worker process; touches no database."""
    outcome = FileOutcome(job.candidate)
    source = tree.read(job.candidate, settings)
    if isinstance(source, Skipped):
        outcome.skipped = source
        return outcome
    outcome.content_hash = source.content_hash
    if source.content_hash == job.known_hash:
        outcome.unchanged = True
        return outcome
    path = job.candidate.path
    chunked, syntax = chunk_file_with_tree(path, source.text, language_for_path(path), job.module, settings)
    outcome.language = chunked.language
    outcome.fallback = chunked.fallback
    items = [chunk_postings(chunk, path) for chunk in chunked.chunks]
    outcome.batch = Chunks.format(job.repo_id, job.file_id, path, chunked.language, items)
    if settings.graph:  # LODE_GRAPH=false: no graph rows; the next run with it on builds them (_Run._index)
        try:
            facts = extract_facts(path, source.text, chunked.language, job.module, chunked, syntax,
                                  timeout_seconds=settings.timeouts.parse)
        except FactsTimeout as exc:  # the file keeps its chunks and nodes, as after a parse timeout
            errorlog.record_error("graph", exc, severity="warning", category="timeout",
                                  context={"path": path, "language": chunked.language, "bytes": job.candidate.size,
                                           "fallback": "no references", "setting": "LODE_TIMEOUT_PARSE"})
            facts = extract_facts(path, source.text, chunked.language, job.module, chunked, None)
            outcome.fallback = GRAPH_TIMEOUT
        outcome.graph = GraphBatch.of(job.repo_id, job.file_id, facts)
    return outcome


_worker_context: tuple[str, Path | None, Settings] | None = None
_worker_tree: SourceTree | None = None


def _init_worker(root: str, within: Path | None, settings: Settings, indexer_pid: int) -> None:
    global _worker_context
    _worker_context = (root, within, settings)
    errorlog.init_sentry(settings.sentry_dsn)  # a worker's handled errors reach Sentry as the indexer's do
    threading.Thread(target=_exit_with_indexer, args=(indexer_pid,), daemon=True).start()


def _exit_with_indexer(indexer_pid: int) -> None:
    """A worker whose indexer was killed would wait for jobs forever: exit with it."""
    while psutil.pid_exists(indexer_pid):
        time.sleep(1)
    os._exit(0)


def _worker_context_of_pool() -> multiprocessing.context.BaseContext:
    """Workers fork from a server that has already imported the indexer (parsers, grammars), so that a run of
    one file does not pay for the imports in a fresh process; the server itself starts once per process."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["lode.indexer"])
    return context


def worker_count(settings: Settings, files: int) -> int:
    """Worker processes for a run of `files`: one per _FILES_PER_WORKER, up to LODE_INDEX_WORKERS and to as many
    as LODE_MEMORY_BUDGET_MB holds (on a many-core machine the cores would allow more than the memory)."""
    return max(1, min(settings.index_workers, files // _FILES_PER_WORKER, settings.memory_budget_mb // _WORKER_MB))


def _process_in_worker(job: FileJob) -> FileOutcome:
    global _worker_tree
    assert _worker_context is not None
    root, within, settings = _worker_context
    if _worker_tree is None:  # opened by the first job: RootUnavailable then fails the run, as in the parent
        _worker_tree = SourceTree(root, within)
    return process_file(_worker_tree, job, settings)


class Indexer:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def run(self, root: Path, repo_name: str, on_progress: ProgressCallback | None = None,
            should_stop: Callable[[], bool] | None = None, defer_graph: bool = False,
            within: Path | None = None) -> IndexReport:
        """Index `root` as `repo_name`. The graph is resolved before returning, unless defer_graph is set and
        the run queued more than settings.graph_inline_files files: then report.graph_pending is True and
        resolve_graph() finishes it (graph queries call it too). `within` confines the run to a directory
        (SourceTree); RootUnavailable, before anything is written, when the root cannot be opened there."""
        started = time.monotonic()
        report = IndexReport(repo=repo_name)
        with SourceTree(root, within) as tree:
            self._run_on(tree, within, repo_name, report, on_progress, should_stop, defer_graph)
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _run_on(self, tree: SourceTree, within: Path | None, repo_name: str, report: IndexReport,
                on_progress: ProgressCallback | None, should_stop: Callable[[], bool] | None,
                defer_graph: bool) -> None:
        with unit_of_work(self.db) as uow:
            repo = uow.repos.get_or_create(repo_name, tree.root)
        with self.db.advisory_lock(_REPO_LOCK_CLASS, repo.id):
            indexing = _Run(self, tree, within, repo, report, on_progress, should_stop)
            indexing.run()
            backlog = self._graph_backlog(repo.id) if defer_graph and self.settings.graph else 0
            if backlog > self.settings.graph_inline_files:
                report.graph_pending = True
                indexing.maintain()
            elif self.settings.pool_max_size < 2:
                indexing.maintain()
                self._resolve(repo.id)
            else:  # the postings' index build is one backend on one core: resolution uses the others meanwhile
                with ThreadPoolExecutor(1, thread_name_prefix="lode-maintain") as beside:
                    maintaining = beside.submit(indexing.maintain)
                    self._resolve(repo.id)
                maintaining.result()

    def resolve_graph(self, repo_id: int, wait: float | None = None) -> bool:
        """Resolve a repository's queued graph work under its index lock, so it never runs beside an index run
        of that repository. Waits up to `wait` seconds for the lock (None: as long as it takes); False if the
        lock was not had, True when nothing is left queued."""
        with self.db.advisory_lock(_REPO_LOCK_CLASS, repo_id, wait) as held:
            if held:
                self._resolve(repo_id)
            return held

    def _graph_backlog(self, repo_id: int) -> int:
        with self.db.connection() as conn:
            return GraphStore(conn).backlog(repo_id)

    def _resolve(self, repo_id: int) -> None:
        """One transaction: the queue is consumed only if the edges it produced are committed."""
        if not self.settings.graph:
            return  # LODE_GRAPH=false: the queued work waits for a run with it on
        budget = self.settings.timeouts.graph_build
        try:
            with unit_of_work(self.db, timeout=budget) as uow:
                if uow.conn.info.server_version >= 170000:
                    set_local_timeout(uow.conn, budget, "transaction_timeout")
                GraphStore(uow.conn).resolve(repo_id, workers=self.settings.index_workers,
                                             budget_mb=self.settings.memory_budget_mb)
        except (psycopg.errors.QueryCanceled, psycopg.errors.IdleInTransactionSessionTimeout) as exc:
            errorlog.record_error("graph", exc, severity="error", category="timeout", context={"repo_id": repo_id})
            raise LodeError(
                f"graph resolution timed out after {self.settings.timeouts.graph_build}s "
                "(LODE_TIMEOUT_GRAPH_BUILD); the work stays queued for the next run or graph query"
            ) from exc


class _Run:
    """One index run over one repository, holding the repository's advisory lock."""

    def __init__(
        self, indexer: Indexer, tree: SourceTree, within: Path | None, repo: RepoRow, report: IndexReport,
        on_progress: ProgressCallback | None, should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.db = indexer.db
        self.settings = indexer.settings
        self.tree = tree
        self.within = within  # the worker processes open the tree confined as this one is
        self.repo = repo
        self.report = report
        self.on_progress = on_progress or (lambda progress: None)
        self.should_stop = should_stop or (lambda: False)  # checked between files
        self.progress = Progress()
        self.run_id: int | None = None  # created lazily: a no-op run writes nothing
        self.term_stats = False  # whether each file's write keeps term_stats (not in a first load), see run

    def run(self) -> None:
        """Index the changed files; the caller then calls maintain() (done here if indexing fails)."""
        with unit_of_work(self.db) as uow:
            uow.runs.mark_dead_runs_aborted(self.repo.id)
            known = uow.files.by_path(self.repo.id)
            stored_skips = uow.skipped.all(self.repo.id)
            if not known:  # a first load: inserting without indexes and building them once is much cheaper
                uow.postings_partition(self.repo.id).drop_indexes()
            self.term_stats = uow.term_stats.ready([self.repo.id])
        try:
            self._index(known, stored_skips)
        except DatabaseUnavailable:
            raise  # nothing more can be written; the next run finishes the load
        except BaseException:
            self.maintain()
            raise

    def _index(self, known: dict[str, FileRow], stored_skips: list[Skipped]) -> None:

        found = list(self.tree.discover(self.settings))
        if not found and known:  # a listing never lies that every file is gone: an unmounted disk lists empty too
            raise RootUnavailable(
                f"{self.tree.root} lists no files now, but the index of {self.repo.name!r} holds {len(known):,}: "
                f"unmounted or emptied? Nothing was deleted", cli=f"`lode repos rm {self.repo.name}` drops the index",
                tools=f"clear_index(repo={self.repo.name!r}) drops the index")
        candidates = [item for item in found if isinstance(item, Candidate)]
        skipped = [item for item in found if isinstance(item, Skipped)]
        all_paths = frozenset(item.path for item in found)

        read_skips = {item.path: item for item in stored_skips if item.size is not None}
        # with the graph on, files are rebuilt though unchanged on disk when they were indexed while it was off (no
        # graph rows), or when a Python file's module name changed: a folder became a project's root or a src/
        unbuilt: set[int] = set()
        if self.settings.graph:
            with self.db.connection() as conn:
                graph = GraphStore(conn)
                unbuilt = graph.files_without_graph(self.repo.id)
                unbuilt |= {file_id for file_id, path, module in graph.python_modules(self.repo.id)
                            if path in all_paths and module != module_name(path, all_paths, "python")}
        rebuild: set[str] = set()  # their jobs get known_hash None: re-read, re-chunked and replaced
        changed: list[tuple[Candidate, FileRow | None]] = []
        for candidate in candidates:
            row = known.get(candidate.path)
            if row and row.id in unbuilt:
                rebuild.add(candidate.path)
                changed.append((candidate, row))
            elif row and row.size == candidate.size and row.mtime_ns == candidate.mtime_ns:
                self.report.files_unchanged += 1
            elif (skip := read_skips.get(candidate.path)) and (skip.size, skip.mtime_ns) == (
                candidate.size, candidate.mtime_ns
            ):
                skipped.append(skip)  # skipped when last read, and unchanged since
            else:
                changed.append((candidate, row))
        with unit_of_work(self.db) as uow:
            file_ids = uow.files.reserve_ids(len(changed))
        jobs = [
            FileJob(candidate, module_name(candidate.path, all_paths, language_for_path(candidate.path) or "text"),
                    row.content_hash if row and candidate.path not in rebuild else None, self.repo.id, file_id)
            for (candidate, row), file_id in zip(changed, file_ids)
        ]
        self.progress.files_total = len(jobs)
        self.on_progress(self.progress)

        jobs_by_path = {job.candidate.path: job.file_id for job in jobs}
        try:
            for outcome in self._process(jobs):
                if outcome.skipped:
                    if outcome.skipped.reason not in _RETRIED_SKIPS:  # unchanged, it would be skipped again
                        outcome.skipped = replace(outcome.skipped, size=outcome.candidate.size,
                                                  mtime_ns=outcome.candidate.mtime_ns)
                    skipped.append(outcome.skipped)
                    if (row := known.get(outcome.candidate.path)) is not None:
                        self._delete(row)
                elif outcome.unchanged:
                    self.report.files_unchanged += 1
                    self._touch(known[outcome.candidate.path], outcome.candidate)
                else:
                    self._replace(known.get(outcome.candidate.path), outcome, jobs_by_path[outcome.candidate.path])
                self.progress.files_done += 1
                self.on_progress(self.progress)
                if self.should_stop():
                    raise IndexCancelled(f"cancelled after {self.progress.files_done} of "
                                         f"{self.progress.files_total} files")

            present = {candidate.path for candidate in candidates}
            for path, row in known.items():
                if path not in present:
                    self._delete(row)
            skipped.sort(key=lambda item: item.path)
            if skipped != stored_skips:
                with unit_of_work(self.db) as uow:
                    uow.skipped.replace(self.repo.id, skipped)
        except DatabaseUnavailable:
            raise  # the run row stays 'running'; the next run marks it aborted
        except BaseException as exc:
            self._finish("aborted" if isinstance(exc, (KeyboardInterrupt, IndexCancelled)) else "failed", repr(exc))
            raise
        self._finish("done", None)
        self.report.files_skipped = len(skipped)
        if self.report.files_indexed + self.report.files_unchanged == 0:
            reasons = sorted({item.reason.value for item in skipped})
            self.report.warnings.append(
                f"the index of {self.repo.name!r} is EMPTY: no indexable files under {self.tree.root}"
                + (f" ({len(skipped)} skipped: {', '.join(reasons)})" if skipped else "")
            )

    def maintain(self) -> None:
        """Finish a first load of the postings; refresh statistics after a bulk change (graph_edges' after
        its resolution: GraphStore.resolve). Runs on its own connection, beside the graph resolution."""
        with self.db.connection() as conn:
            conn.autocommit = True
            PostingsPartition(conn, self.repo.id).finish_load()
            if self.report.chunks_written > max(_ANALYZE_AFTER_CHUNKS, self.repo.chunk_count // 10):
                analyze(conn, ("files", "chunks", "graph_files", "graph_nodes"))
            conn.autocommit = False

    def _process(self, jobs: list[FileJob]) -> Iterator[FileOutcome]:
        """Analyse the files in killable worker processes, whatever the run's size: a file still running after
        LODE_TIMEOUT_INDEX_FILE is skipped as index_timeout, even in an incremental run of one file."""
        if not jobs:
            return
        workers = worker_count(self.settings, len(jobs))
        for job, result in map_killable(
            _process_in_worker, jobs, workers=workers, timeout=self.settings.timeouts.index_file,
            recycle_after=_CHUNKS_PER_WORKER_PROCESS,
            mp_context=_worker_context_of_pool(), initializer=_init_worker,
            initargs=(self.tree.root, self.within, self.settings, os.getpid()),
            describe=lambda job: {"path": job.candidate.path},
        ):
            if isinstance(result, Lost):
                reason = SkipReason.INDEX_TIMEOUT if result.reason == "timeout" else SkipReason.WORKER_DIED
                result = FileOutcome(job.candidate, skipped=Skipped(job.candidate.path, reason, result.detail))
            yield result

    def _ensure_run(self, uow: UnitOfWork) -> None:
        if self.run_id is None:
            self.run_id = uow.runs.start(self.repo.id, os.getpid())

    def _replace(self, old: FileRow | None, outcome: FileOutcome, file_id: int) -> None:
        candidate, batch = outcome.candidate, outcome.batch
        assert batch is not None
        with unit_of_work(self.db, synchronous_commit=False) as uow:
            self._ensure_run(uow)
            chunk_delta, length_delta = batch.count, batch.total_length
            removed_terms: tuple[list[str], list[int]] = ([], [])
            if old is not None:
                if self.term_stats:
                    removed_terms = uow.term_stats.file_terms(self.repo.id, old.id)
                removed_chunks, removed_length = uow.delete_file(self.repo.id, old.id)
                chunk_delta, length_delta = chunk_delta - removed_chunks, length_delta - removed_length
            uow.files.insert(
                file_id, self.repo.id, candidate.path, outcome.language, candidate.size, candidate.mtime_ns,
                outcome.content_hash, outcome.fallback,
            )
            uow.chunks.insert(batch)
            with uow.conn.pipeline():  # the last statements in one round trip
                if self.term_stats:
                    uow.term_stats.count_file(self.repo.id, file_id, removed_terms)
                if outcome.graph is not None:  # None under LODE_GRAPH=false
                    GraphStore(uow.conn).insert(outcome.graph)
                uow.repos.record_change(self.repo.id, chunk_delta, length_delta)
        self.report.files_indexed += 1
        self.report.chunks_written += batch.count
        self.progress.chunks += batch.count

    def _delete(self, row: FileRow) -> None:
        with unit_of_work(self.db, synchronous_commit=False) as uow:
            self._ensure_run(uow)
            removed_terms = uow.term_stats.file_terms(self.repo.id, row.id) if self.term_stats else None
            removed_chunks, removed_length = uow.delete_file(self.repo.id, row.id)
            if removed_terms is not None:
                uow.term_stats.count_file(self.repo.id, None, removed_terms)
            uow.repos.record_change(self.repo.id, -removed_chunks, -removed_length)
        self.report.files_deleted += 1

    def _touch(self, row: FileRow, candidate: Candidate) -> None:
        with unit_of_work(self.db) as uow:
            uow.files.touch(row.id, candidate.size, candidate.mtime_ns)

    def _finish(self, status: str, error: str | None) -> None:
        if self.run_id is None:
            return
        with unit_of_work(self.db) as uow:
            uow.runs.finish(self.run_id, status, self.report.files_indexed, self.report.files_deleted, error)

