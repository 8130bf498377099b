"""The durable job queue (lode/queue.py, lode/jobs.py) against the session's embedded PostgreSQL: jobs outlive the
API process that queued them, a real `lode worker` process runs them, concurrent requests merge, cancel, the
`lode jobs` CLI, a backfill split into batches that workers share, and garbage collection.

The multi-process scale test (2 APIs, 2 workers, a worker killed mid-job) is tests/scale (`-m slow`)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.snapshot import index_snapshot
from tests.support.cli import run_cli
from tests.support.polling import wait_until
from lode.config import EmbeddingSettings, QueueSettings, Settings
from lode.embedding.backfill import BackfillProgress
from lode.engine import Lode
from lode.errors import InputError, NotFound
from lode.health import health_report
from lode.jobs import Jobs, collect_garbage
from lode.queue_client import Queue
from tests.support.api_server import api, error_of, wait_job
from tests.support.trees import write_tree
from tests.support.queue_worker import queue_settings, worker_process
from tests.support.embedding_stub import start_stub





def small_tree(root: Path, modules: int) -> None:
    write_tree(root, {f"pkg/m{i:02}.py": "".join(
        f"def handler_{i}_{j}(request):\n    \"\"\"Handle request {j} of module {i}.\"\"\"\n"
        f"    return request + {j}\n\n\n"
        for j in range(4)) for i in range(modules)})


def test_a_job_outlives_the_api_that_queued_it_and_a_worker_process_runs_it(
        lode: Lode, lode_home: Path, tmp_path: Path) -> None:
    root = tmp_path / "survivor"
    small_tree(root, 5)
    queue = queue_settings()
    with api(lode_home, allowed_roots=[tmp_path], index_jobs=0, queue=queue) as client:  # no in-process worker
        response = client.post("/v1/index", json={"path": str(root), "repo": "q-survivor"})
        assert response.status_code == 202 and response.json()["merged"] is False
        job_id = response.json()["job"]["id"]
        time.sleep(0.5)
        assert client.get(f"/v1/index/{job_id}").json()["job"]["state"] == "queued"  # nobody runs it
    # the API is gone; a worker started now finds the job in the queue
    with worker_process(queue, tmp_path / "worker.log") as proc:
        with api(lode_home, allowed_roots=[tmp_path], index_jobs=0, queue=queue) as client:
            job = wait_job(client, job_id, timeout=60)
        assert proc.poll() is None
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()
    assert job["state"] == "succeeded" and job["files_done"] == job["files_total"] == 5, job
    assert job["attempts"] == 1 and job["worker"].endswith(f":{proc.pid}")
    assert index_snapshot(lode, "q-survivor")["stats"][0] == job["chunks"] > 5

    code, listed, _ = run_cli("jobs", "--repo", "q-survivor", "--json")
    assert code == 0 and [j["id"] for j in listed["jobs"]] == [job_id]
    code, shown, _ = run_cli("jobs", "show", job_id, "--json")
    assert code == 0 and shown["job"]["state"] == "succeeded" and shown["job"]["report"]["files_indexed"] == 5
    code, _, stderr = run_cli("jobs", "cancel", job_id, "--json")
    assert code == 2 and "has finished: succeeded" in stderr
    code, _, stderr = run_cli("jobs", "--state", "sleeping", "--json")
    assert code == 2 and "unknown job state" in stderr
    code, _, stderr = run_cli("jobs", "show", "not-a-uuid", "--json")
    assert code == 2 and "not a job id" in stderr


def test_concurrent_requests_for_one_repository_merge_and_cancel_stops_a_queued_job(
        lode: Lode, lode_home: Path, tmp_path: Path) -> None:
    root, other = tmp_path / "merge", tmp_path / "other"
    small_tree(root, 3)
    small_tree(other, 1)
    with api(lode_home, allowed_roots=[tmp_path], index_jobs=0, queue=queue_settings()) as client:
        answers: list[Any] = []
        barrier = threading.Barrier(4)

        def post() -> None:
            barrier.wait()
            answers.append(client.post("/v1/index", json={"path": str(root), "repo": "q-merge"}))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [202] * 4
        assert len({a.json()["job"]["id"] for a in answers}) == 1  # one job...
        assert sorted(a.json()["merged"] for a in answers) == [False, True, True, True]  # ...that three joined
        job_id = answers[0].json()["job"]["id"]
        with lode.db.connection() as conn:
            waiting = conn.execute("""SELECT count(*) FROM procrastinate_jobs p JOIN jobs j ON j.queue_job_id = p.id
                                       WHERE j.repo = 'q-merge' AND p.status = 'todo'""").fetchone()[0]
        assert waiting == 1
        # another directory into the same (active) repository is refused, not merged
        conflict = client.post("/v1/index", json={"path": str(other), "repo": "q-merge"})
        assert job_id in error_of(conflict, 409)["message"]
        cancelled = client.delete(f"/v1/index/{job_id}").json()["job"]
        assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled by request"
        with lode.db.connection() as conn:
            status = conn.execute("SELECT p.status FROM procrastinate_jobs p JOIN jobs j ON j.queue_job_id = p.id "
                                  "WHERE j.id = %s", (job_id,)).fetchone()[0]
        assert status == "cancelled"  # no worker will ever run it
        listed = client.get("/v1/index", params={"repo": "q-merge", "state": "cancelled"}).json()["jobs"]
        assert [j["id"] for j in listed] == [job_id]
        assert error_of(client.get("/v1/index", params={"state": "sleeping"}), 422)


def test_the_backfill_is_split_into_batches_that_workers_share(lode: Lode, lode_home: Path, tmp_path: Path) -> None:
    stub, url = start_stub("--delay", "0.15")
    root = tmp_path / "batches"
    small_tree(root, 12)  # 48 functions + 12 modules' chunks
    queue = queue_settings(embed_batch_chunks=6)
    provider = EmbeddingSettings(url=url, model="stub-a", retry_attempts=2, retry_max_seconds=2, batch_size=4)
    seen: dict[str, set[str]] = {}
    try:
        with api(lode_home, allowed_roots=[tmp_path], embedder="http", embedding=provider, queue=queue,
                 index_jobs=2) as client:
            job_id = client.post("/v1/index", json={"path": str(root), "repo": "q-batches"}).json()["job"]["id"]
            while client.get(f"/v1/index/{job_id}").json()["job"]["state"] in ("queued", "running"):
                with lode.db.connection() as conn:
                    for batch_id, status in conn.execute(
                            "SELECT id, status FROM procrastinate_jobs WHERE queue_name = %s AND task_name = %s",
                            (queue.name, "lode:embed_batch")):
                        seen.setdefault(str(batch_id), set()).add(status)
                time.sleep(0.02)
            job = wait_job(client, job_id)
    finally:
        stub.kill()
        stub.wait()
    assert job["state"] == "succeeded", job
    batches = -(-job["chunks"] // 6)
    assert job["embeddings"] == {"done": job["chunks"], "pending": 0, "failed": 0}
    assert len(seen) == batches > 5  # every batch was queued for any worker
    assert any("doing" in states for states in seen.values())  # and the second slot took some
    assert lode.embeddings.counts("q-batches") == BackfillProgress(done=job["chunks"], pending=0, failed=0)


def test_garbage_collection_removes_only_garbage(lode: Lode) -> None:
    settings = lode.settings.model_copy(update={"queue": QueueSettings(retention_hours=24)})
    engine = Lode(settings)
    try:
        old, recent = str(uuid.uuid4()), str(uuid.uuid4())
        queue = Queue(engine.db)
        dead = f"gc-{uuid.uuid4().hex[:8]}"
        with engine.db.connection() as conn:
            for job_id, age in ((old, "25 hours"), (recent, "23 hours")):
                conn.execute(f"""INSERT INTO jobs (id, repo, path, state, owner, created_at, finished_at)
                                 VALUES (%s, %s, '/x', 'succeeded', 'test', now() - interval '{age}',
                                         now() - interval '{age}')""", (job_id, f"gc-{job_id[:8]}"))
            active = str(uuid.uuid4())
            conn.execute("INSERT INTO jobs (id, repo, path, state, owner) VALUES (%s, %s, '/x', 'queued', 'test')",
                         (active, f"gc-{active[:8]}"))
        stale, fresh, waiting = (queue.app.configure_task("lode:embed_batch", queue=dead).defer(
            repo_id=0, model=0, first=0, last=0) for _ in range(3))
        with engine.db.connection() as conn:
            conn.execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = ANY(%s)", ([stale, fresh],))
            conn.execute("UPDATE procrastinate_events SET at = now() - interval '30 hours' WHERE job_id = %s",
                         (stale,))
            unused = conn.execute("INSERT INTO embedding_models (model_id, dimension) VALUES (%s, 3) RETURNING id",
                                  (f"gc-model-{uuid.uuid4().hex[:6]}",)).fetchone()[0]
            conn.execute(f"CREATE TABLE vectors_m{unused} (chunk_id bigint PRIMARY KEY, repo_id integer NOT NULL, "
                         "text_vec halfvec(3) NOT NULL, code_vec halfvec(3) NOT NULL)")
            conn.execute(f"CREATE TABLE vector_cache_m{unused} (view_hash text PRIMARY KEY, vec halfvec(3) NOT NULL)")
            conn.execute(f"INSERT INTO vectors_m{unused} VALUES (1, 1, '[1,0,0]', '[0,1,0]')")
            conn.execute(f"INSERT INTO vector_cache_m{unused} VALUES ('h', '[1,0,0]')")
            conn.execute("INSERT INTO query_vectors VALUES ('gc-nobody-serves-this', '\\x01', '\\x00')")
        serving_before = _serving_vectors(engine)
        removed = collect_garbage(engine)
        with engine.db.connection() as conn:
            jobs_left = {str(r[0]) for r in conn.execute("SELECT id FROM jobs WHERE id = ANY(%s::uuid[])",
                                                         ([old, recent, active],))}
            queue_left = {r[0] for r in conn.execute("SELECT id FROM procrastinate_jobs WHERE id = ANY(%s)",
                                                     ([stale, fresh, waiting],))}
            left = conn.execute(f"SELECT (SELECT count(*) FROM vectors_m{unused}), "
                                f"(SELECT count(*) FROM vector_cache_m{unused}), "
                                "(SELECT count(*) FROM query_vectors WHERE model_id = 'gc-nobody-serves-this')"
                                ).fetchone()
        assert jobs_left == {recent, active} and queue_left == {fresh, waiting}
        assert left == (0, 0, 0)
        assert removed["jobs"] >= 1 and removed["queue_jobs"] >= 1 and removed["vectors"] >= 1
        assert _serving_vectors(engine) == serving_before  # models that serve a repository keep their vectors
        assert collect_garbage(engine) == dict.fromkeys(removed, 0)  # nothing left to collect
    finally:
        engine.close()


def _serving_vectors(engine: Lode) -> dict[int, int]:
    with engine.db.connection() as conn:
        models = [r[0] for r in conn.execute("""SELECT DISTINCT m.id FROM embedding_models m JOIN repositories r
                                                 ON m.id IN (r.embedding_model, r.next_embedding_model)""")]
        return {m: conn.execute(f"SELECT count(*) FROM vectors_m{m}").fetchone()[0] for m in models}


def test_jobs_reject_bad_ids_and_unknown_jobs(lode: Lode) -> None:
    with pytest.raises(InputError, match="not a job id"):
        Jobs(lode).get("nope")
    with pytest.raises(NotFound, match="no index job"):
        Jobs(lode).cancel(str(uuid.uuid4()))


def test_health_counts_waiting_jobs_and_live_workers(lode_home: Path, tmp_path: Path) -> None:
    queue = queue_settings()
    engine = Lode(Settings(home=lode_home, embedder="none", queue=queue))
    try:
        Queue(engine.db).defer("collect_garbage", timestamp=0)
        waiting = health_report(engine)["checks"]["queue"]
        assert waiting["waiting"] == 1 and waiting["oldest_waiting_seconds"] >= 0
        # other tests' workers may be alive: the check warns only when nobody could take the job
        assert waiting["status"] == ("warn" if waiting["workers"] == 0 else "pass")
        with worker_process(queue, tmp_path / "worker.log"):
            wait_until(lambda: health_report(engine)["checks"]["queue"]["waiting"] == 0, 60, "the worker took the job")
            check = health_report(engine)["checks"]["queue"]
            assert check["workers"] >= 1 and check["status"] == "pass"
    finally:
        engine.close()
