"""run_index (lode/services/indexing.py), the one use case behind `lode index`, the MCP index_repository tool and
an index job: each schedule of the graph resolution and of the embedding backfill, on a real database, a real
embedding service process and real detached processes."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.embedding_stub import start_stub
from tests.support.polling import wait_until
from tests.support.queue_worker import queue_settings

from lode.config import EmbeddingSettings, Settings
from lode.embedding.backfill import BackfillProgress
from lode.engine import Lode
from lode.store.graph import GraphStore
from lode.indexer import IndexCancelled
from lode.queue_client import Queue
from lode.services.indexing import Schedule, run_index

PYSHOP = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return shutil.copytree(PYSHOP, tmp_path / "shop")


@pytest.fixture
def provider() -> Iterator[EmbeddingSettings]:
    proc, url = start_stub()
    yield EmbeddingSettings(url=url, model="stub-a", retry_attempts=2, retry_max_seconds=2)
    proc.kill()
    proc.wait()


def _backlog(lode: Lode, repo: str) -> int:
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        return GraphStore(conn).backlog(repo_id)


def _queued_tasks(lode: Lode, queue: str) -> list[str]:
    with lode.db.connection() as conn:
        return [row[0] for row in conn.execute(
            "SELECT task_name FROM procrastinate_jobs WHERE queue_name = %s ORDER BY id", (queue,))]


def test_inline_resolves_the_graph_in_the_run_and_fills_the_embeddings_before_returning(
        lode_home: Path, repo_name: str, shop: Path, provider: EmbeddingSettings) -> None:
    events: list[Any] = []
    settings = Settings(home=lode_home, embedder="http", embedding=provider, graph_inline_files=0)
    with Lode(settings) as engine:
        outcome = run_index(engine, shop, repo_name, graph=Schedule.INLINE, embeddings=Schedule.INLINE,
                            on_indexed=lambda report: events.append("indexed"),
                            on_embed_progress=lambda progress, final: events.append(progress))
        assert outcome.report.graph_pending is False and _backlog(engine, repo_name) == 0
        chunks = outcome.report.chunks
        assert chunks and outcome.embeddings == BackfillProgress(done=chunks, pending=0, failed=0)
        assert events[0] == "indexed" and events[-1].done == chunks and len(events) > 1
        document = outcome.as_dict()
        assert list(document)[-2:] == ["embeddings", "warnings"] and document["chunks"] == chunks
        assert document["embeddings"] == {"done": chunks, "pending": 0, "failed": 0}
        engine.repos.remove(repo_name)


def test_detached_leaves_a_deferred_graph_to_a_background_process(lode_home: Path, repo_name: str,
                                                                  shop: Path) -> None:
    with Lode(Settings(home=lode_home, embedder="none", graph_inline_files=0)) as engine:
        outcome = run_index(engine, shop, repo_name, graph=Schedule.DETACHED, embeddings=Schedule.DETACHED)
        assert outcome.report.graph_pending is True
        assert outcome.embeddings == BackfillProgress(done=0, pending=0, failed=0)  # no provider: nothing to fill
        wait_until(lambda: _backlog(engine, repo_name) == 0, timeout=60,
                   message="the detached `lode graph resolve` did not resolve the graph")
        engine.repos.remove(repo_name)


def test_queue_shares_the_work_with_other_workers_and_waits_for_it(
        lode_home: Path, repo_name: str, shop: Path, provider: EmbeddingSettings) -> None:
    queue = queue_settings(embed_batch_chunks=2)
    finals: list[bool] = []
    settings = Settings(home=lode_home, embedder="http", embedding=provider, graph_inline_files=0, queue=queue)
    with Lode(settings) as engine:
        outcome = run_index(engine, shop, repo_name, graph=Schedule.QUEUE, embeddings=Schedule.QUEUE,
                            queue=Queue(engine.db), on_embed_progress=lambda progress, final: finals.append(final))
        # no worker consumes this queue: this process did every batch and the graph itself
        assert outcome.report.graph_pending is False and _backlog(engine, repo_name) == 0
        chunks = outcome.report.chunks
        assert outcome.embeddings == BackfillProgress(done=chunks, pending=0, failed=0)
        assert finals[-1] is True and not any(finals[:-1])
        tasks = _queued_tasks(engine, queue.name)
        assert tasks[0] == "lode:resolve_graph" and tasks.count("lode:embed_batch") > 1
        engine.repos.remove(repo_name)


def test_a_stop_during_the_backfill_cancels_the_run_with_the_chunks_left_pending(
        lode_home: Path, repo_name: str, shop: Path, provider: EmbeddingSettings) -> None:
    stop = [False]
    settings = Settings(home=lode_home, embedder="http", embedding=provider, queue=queue_settings())
    with Lode(settings) as engine:
        with pytest.raises(IndexCancelled, match="embedding backfill"):
            run_index(engine, shop, repo_name, graph=Schedule.QUEUE, embeddings=Schedule.QUEUE,
                      queue=Queue(engine.db), should_stop=lambda: stop[0],
                      on_indexed=lambda report: stop.__setitem__(0, True))
        assert engine.embeddings.counts(repo_name).pending > 0
        engine.repos.remove(repo_name)


def test_the_queue_schedules_need_the_queue(lode: Lode, shop: Path) -> None:
    with pytest.raises(ValueError, match="needs the queue"):
        run_index(lode, shop, graph=Schedule.INLINE, embeddings=Schedule.QUEUE)
