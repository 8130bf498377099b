"""The unit of work: the only code that opens a write transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from lode.store.graph import GraphStore
from lode.store.db import Database, set_local
from lode.store.repositories import (
    Chunks,
    Files,
    IndexRuns,
    PostingsPartition,
    Repositories,
    SkippedFiles,
    TermStats,
)
from lode.store.vectors import Vectors


@dataclass(slots=True)
class UnitOfWork:
    conn: psycopg.Connection
    repos: Repositories
    files: Files
    chunks: Chunks
    skipped: SkippedFiles
    runs: IndexRuns
    vectors: Vectors
    term_stats: TermStats

    def delete_file(self, repo_id: int, file_id: int) -> tuple[int, int]:
        """Remove a file and everything derived from it; return the (chunks, BM25 length) it took away.

        Chunks go before vectors: a backfill storing vectors holds FOR SHARE on the chunks, so this waits
        for it and then sees (and deletes) what it stored.
        """
        removed = self.files.delete(file_id)
        self.vectors.delete_file(file_id)
        GraphStore(self.conn).delete_file(repo_id, file_id)
        return removed

    def delete_repository(self, repo_id: int) -> None:
        self.vectors.delete_repository(repo_id)
        GraphStore(self.conn).delete_repo(repo_id)
        self.repos.delete(repo_id)

    def postings_partition(self, repo_id: int) -> PostingsPartition:
        return PostingsPartition(self.conn, repo_id)


@contextmanager
def unit_of_work(db: Database, *, synchronous_commit: bool = True,
                 timeout: float | None = None) -> Iterator[UnitOfWork]:
    """One transaction (Database.transaction, `timeout` its statement_timeout): committed when the block ends
    cleanly, rolled back on any exception.

    synchronous_commit=False suits bulk indexing: a server crash may lose the last few commits, never
    consistency, and the next run re-indexes what was lost.
    """
    with db.transaction(timeout) as conn:
        if not synchronous_commit:
            set_local(conn, "synchronous_commit", "off")
        yield UnitOfWork(
            conn=conn,
            repos=Repositories(conn),
            files=Files(conn),
            chunks=Chunks(conn),
            skipped=SkippedFiles(conn),
            runs=IndexRuns(conn),
            vectors=Vectors(conn),
            term_stats=TermStats(conn),
        )
