"""The `jobs` table of index jobs (lode/jobs.py), and the deletion of what nothing reads any more (its periodic
garbage collection). Like the other store classes: SQL over one connection, never a commit; the caller owns the
transaction, and with it how long a row lock taken here is held."""

from __future__ import annotations

from typing import Any

import psycopg

from lode.store.query_vectors import trim as trim_query_vectors
from lode.store.rows import one_row
from lode.store.vectors import cache_table, vectors_table

JOB_COLUMNS = ("id, repo, path, state, phase, files_total, files_done, chunks, embeddings_done, embeddings_pending, "
               "embeddings_failed, eta_seconds, error, report, created_at, started_at, finished_at, attempts, owner")


class JobRows:
    """Rows of `jobs`; those returned whole have the columns of JOB_COLUMNS, in its order."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    # ---- what the API reads and asks -----------------------------------------------------------------------

    def insert(self, job_id: str, repo: str, path: str, allowed_root: str | None, owner: str) -> None:
        """A queued job; UniqueViolation while the repository has an active one."""
        self.conn.execute("INSERT INTO jobs (id, repo, path, allowed_root, state, owner) "
                          "VALUES (%s, %s, %s, %s, 'queued', %s)",
                          (job_id, repo, path, allowed_root, owner))

    def set_queue_job(self, job_id: str, queue_job_id: int | None) -> tuple[Any, ...]:
        """Record the queue job that runs the job; return the job."""
        return one_row(self.conn.execute(f"UPDATE jobs SET queue_job_id = %s WHERE id = %s RETURNING {JOB_COLUMNS}",
                                         (queue_job_id, job_id)))

    def get(self, job_id: str) -> tuple[Any, ...] | None:
        return self.conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,)).fetchone()

    def newest(self, repos: tuple[str, ...] | None, states: tuple[str, ...] | None,
               limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` jobs of `repos` (None: all) in `states` (None or empty: any), newest first."""
        return self.conn.execute(
            f"""SELECT {JOB_COLUMNS} FROM jobs WHERE (%(all)s OR repo = ANY(%(repos)s))
                   AND (%(any_state)s OR state = ANY(%(states)s))
                 ORDER BY created_at DESC LIMIT %(limit)s""",
            {"all": repos is None, "repos": list(repos or ()), "any_state": not states,
             "states": list(states or ()), "limit": limit},
        ).fetchall()

    def active(self, repo: str) -> tuple[Any, ...] | None:
        """The repository's queued or running job, if any (there is at most one)."""
        return self.conn.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE repo = %s AND state IN ('queued', 'running')",
                                 (repo,)).fetchone()

    def lock(self, job_id: str) -> tuple[str, int | None] | None:
        """(state, queue job id) of the job, its row locked FOR UPDATE until the transaction ends."""
        row = self.conn.execute("SELECT state, queue_job_id FROM jobs WHERE id = %s FOR UPDATE",
                                (job_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def request_cancel(self, job_id: str) -> None:
        """Ask the job to stop: a queued one is cancelled at once, a running one by its worker."""
        self.conn.execute(
            """UPDATE jobs SET cancel_requested = true,
                      state = CASE state WHEN 'queued' THEN 'cancelled' ELSE state END,
                      error = CASE state WHEN 'queued' THEN 'cancelled by request' END,
                      finished_at = CASE state WHEN 'queued' THEN now() END
                WHERE id = %s""",
            (job_id,),
        )

    # ---- what the worker running a job writes ----------------------------------------------------------------

    def start(self, job_id: str, worker: str) -> tuple[str, str, str | None] | None:
        """Mark the job running on `worker`; its (path, repo, allowed root), or None when it is no longer
        active or a cancel was requested."""
        row = self.conn.execute(
            """UPDATE jobs SET state = 'running', phase = 'indexing', started_at = coalesce(started_at, now()),
                      heartbeat_at = now(), owner = %s, attempts = attempts + 1, error = NULL
                WHERE id = %s AND state IN ('queued', 'running') AND NOT cancel_requested
                RETURNING path, repo, allowed_root""",
            (worker, job_id),
        ).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def write(self, job_id: str, values: dict[str, Any]) -> bool:
        """Set the columns named by `values` and the heartbeat; return whether a cancel was requested."""
        assignments = ", ".join(f"{name} = %({name})s" for name in values)
        row = self.conn.execute(f"""UPDATE jobs SET {assignments}, heartbeat_at = now() WHERE id = %(id)s
                                    RETURNING cancel_requested""", {**values, "id": job_id}).fetchone()
        return bool(row and row[0])

    def requeue(self, job_id: str) -> None:
        """Put a running job back to queued, for the next worker."""
        self.conn.execute("""UPDATE jobs SET state = 'queued', phase = NULL, eta_seconds = NULL,
                                    error = 'its worker shut down; waiting for the next worker'
                              WHERE id = %s AND state = 'running'""", (job_id,))

    def finish(self, job_id: str, state: str, error: str | None) -> int:
        """End the job in `state` if it is still active; return the rows updated (0 or 1)."""
        return self.conn.execute(
            """UPDATE jobs SET state = %s, error = %s, phase = NULL, eta_seconds = NULL, finished_at = now()
                WHERE id = %s AND state IN ('queued', 'running')""",
            (state, error, job_id),
        ).rowcount

    # ---- maintenance -------------------------------------------------------------------------------------

    def fail_orphaned(self) -> int:
        """Fail the active jobs whose queue job is over (no longer todo or doing); return how many."""
        return self.conn.execute(
            """UPDATE jobs SET state = 'failed', phase = NULL, eta_seconds = NULL, finished_at = now(),
                      error = 'its workers stopped while running it, too many times'
                WHERE state IN ('queued', 'running') AND queue_job_id IS NOT NULL AND NOT EXISTS (
                      SELECT 1 FROM procrastinate_jobs p
                       WHERE p.id = jobs.queue_job_id AND p.status IN ('todo', 'doing'))""").rowcount

    def delete_finished(self, retention_hours: int) -> int:
        """Delete the jobs finished more than `retention_hours` ago; return how many."""
        return self.conn.execute(
            "DELETE FROM jobs WHERE state NOT IN ('queued', 'running')"
            " AND finished_at < now() - make_interval(hours => %s)",
            (retention_hours,)).rowcount


def delete_garbage(conn: psycopg.Connection, retention_hours: int, query_vectors_kept: int) -> dict[str, int]:
    """Delete what nothing reads any more; return the rows removed by kind: finished jobs and finished queue jobs
    older than `retention_hours`, query embeddings beyond `query_vectors_kept`, and the vectors, cached vectors,
    failures and query embeddings of models that no repository serves or is switching to."""
    removed: dict[str, int] = {}
    removed["jobs"] = JobRows(conn).delete_finished(retention_hours)
    removed["queue_jobs"] = conn.execute(
        """DELETE FROM procrastinate_jobs p WHERE p.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
              AND NOT EXISTS (SELECT 1 FROM procrastinate_events e
                               WHERE e.job_id = p.id AND e.at >= now() - make_interval(hours => %s))""",
        (retention_hours,)).rowcount
    unused = [row[0] for row in conn.execute(
        """SELECT m.id FROM embedding_models m WHERE NOT EXISTS (
               SELECT 1 FROM repositories r WHERE m.id IN (r.embedding_model, r.next_embedding_model))""")]
    removed["vectors"] = removed["vector_cache"] = 0
    for model in unused:
        removed["vectors"] += conn.execute(f"DELETE FROM {vectors_table(model)}").rowcount
        removed["vector_cache"] += conn.execute(f"DELETE FROM {cache_table(model)}").rowcount
    removed["embedding_failures"] = conn.execute(
        "DELETE FROM embedding_failures WHERE model = ANY(%s)", (unused,)).rowcount
    removed["query_vectors"] = conn.execute(
        """DELETE FROM query_vectors q WHERE NOT EXISTS (
               SELECT 1 FROM embedding_models m JOIN repositories r
                   ON m.id IN (r.embedding_model, r.next_embedding_model) WHERE m.model_id = q.model_id)""",
    ).rowcount
    removed["query_vectors"] += trim_query_vectors(conn, query_vectors_kept)
    return removed
