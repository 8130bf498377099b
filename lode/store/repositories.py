"""Repositories: the SQL for each table, over one connection. They never commit; the unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

import psutil
import psycopg
from psycopg.rows import class_row

from lode.model import Chunk, Skipped
from lode.search.filters import Filters
from lode.store import copy_format


@dataclass(slots=True)
class RepoRow:
    id: int
    name: str
    root: str
    generation: int
    chunk_count: int
    total_length: int
    created_at: datetime
    updated_at: datetime
    embedding_model: int | None  # the model whose vectors serve searches
    next_embedding_model: int | None  # the model being filled during a switch
    term_stats_ready: bool  # term_stats holds this repository's dfs (migration 0016)


@dataclass(slots=True)
class FileRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str


@dataclass(slots=True)
class ChunkPostings:
    """A chunk ready to store, with its weighted term frequencies and BM25 length."""

    chunk: Chunk
    terms: dict[str, int]
    length: int


class Repositories:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def get(self, name: str, *, for_update: bool = False) -> RepoRow | None:
        lock = " FOR UPDATE" if for_update else ""
        with self.conn.cursor(row_factory=class_row(RepoRow)) as cur:
            return cur.execute(f"SELECT * FROM repositories WHERE name = %s{lock}", (name,)).fetchone()

    def get_or_create(self, name: str, root: str) -> RepoRow:
        with self.conn.cursor(row_factory=class_row(RepoRow)) as cur:
            cur.execute(
                "INSERT INTO repositories (name, root) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING RETURNING *",
                (name, root),
            )
            row = cur.fetchone()
        if row is None:
            return self.get(name)  # type: ignore[return-value]
        self.conn.execute(
            f"CREATE TABLE {postings_partition(row.id)} PARTITION OF postings FOR VALUES IN ({row.id})"
        )
        return row

    def all(self) -> list[RepoRow]:
        with self.conn.cursor(row_factory=class_row(RepoRow)) as cur:
            return cur.execute("SELECT * FROM repositories ORDER BY name").fetchall()

    def serving_model(self, repo_id: int, *, for_update: bool = False) -> int | None:
        """The embedding model whose vectors serve the repository's searches (None: none yet, or no such row)."""
        lock = " FOR UPDATE" if for_update else ""
        row = self.conn.execute(f"SELECT embedding_model FROM repositories WHERE id = %s{lock}", (repo_id,)).fetchone()
        return None if row is None else row[0]

    def record_change(self, repo_id: int, chunk_delta: int, length_delta: int) -> None:
        """Bump the generation and the BM25 corpus statistics. Runs inside every file's unit of work."""
        self.conn.execute(
            """UPDATE repositories
                  SET generation = generation + 1, chunk_count = chunk_count + %s,
                      total_length = total_length + %s, updated_at = now()
                WHERE id = %s""",
            (chunk_delta, length_delta, repo_id),
        )

    def set_embedding_models(self, repo_id: int, serving: int | None, next_model: int | None) -> None:
        self.conn.execute(
            "UPDATE repositories SET embedding_model = %s, next_embedding_model = %s, generation = generation + 1,"
            " updated_at = now() WHERE id = %s",
            (serving, next_model, repo_id),
        )

    def delete(self, repo_id: int) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {postings_partition(repo_id)}")
        TermStats(self.conn).delete_repository(repo_id)
        self.conn.execute("DELETE FROM chunks WHERE repo_id = %s", (repo_id,))
        self.conn.execute("DELETE FROM repositories WHERE id = %s", (repo_id,))  # cascades to files


def postings_partition(repo_id: int) -> str:
    return f"postings_r{int(repo_id)}"


class PostingsPartition:
    """One repository's postings partition. A first load fills it without indexes; finish_load then rewrites it
    sorted by term (a term's rows become neighbours, so a search reads few pages), indexes it and swaps it in."""

    def __init__(self, conn: psycopg.Connection, repo_id: int) -> None:
        self.conn = conn
        self.repo_id = repo_id
        self.table = postings_partition(repo_id)

    def drop_indexes(self) -> None:
        """Before a first load: its rows go in unindexed, and term_stats is rebuilt at its end."""
        self.conn.execute(
            f"DROP INDEX IF EXISTS {self.table}_term_idx, {self.table}_term_file_idx, {self.table}_file_idx"
        )
        TermStats(self.conn).set_ready(self.repo_id, False)

    def finish_load(self) -> bool:
        """Sort, index and swap in the partition unless it is ready (term_stats_ready is set in the swap's
        transaction and cleared with drop_indexes); return whether it did. A partition from before migration
        0016 (no (term, file_id) index, no term_stats) is rewritten the same way at its next run.

        Needs an autocommit connection: the swap is its own transaction, and VACUUM cannot run in one.
        """
        if TermStats(self.conn).ready([self.repo_id]):
            return False
        sorted_table = f"{self.table}_sorted"
        self.conn.execute(f"DROP TABLE IF EXISTS {sorted_table}")
        self.conn.execute(
            f"CREATE TABLE {sorted_table} (LIKE postings INCLUDING STORAGE, CHECK (repo_id = {self.repo_id}))"
        )
        self.conn.execute(f"INSERT INTO {sorted_table} SELECT * FROM {self.table} ORDER BY term, file_id")
        # (term, file_id): a pruned search reads a common term's rows for given files only
        self.conn.execute(f"CREATE INDEX {sorted_table}_term_file_idx ON {sorted_table} (term, file_id)")
        self.conn.execute(f"CREATE INDEX {sorted_table}_file_idx ON {sorted_table} (file_id)")
        with self.conn.transaction():
            self.conn.execute(f"ALTER TABLE postings DETACH PARTITION {self.table}")
            self.conn.execute(f"DROP TABLE {self.table}")
            self.conn.execute(f"ALTER TABLE {sorted_table} RENAME TO {self.table}")
            for suffix in ("term_file_idx", "file_idx"):
                self.conn.execute(f"ALTER INDEX {sorted_table}_{suffix} RENAME TO {self.table}_{suffix}")
            self.conn.execute(
                f"ALTER TABLE postings ATTACH PARTITION {self.table} FOR VALUES IN ({self.repo_id})"
            )
            TermStats(self.conn).rebuild(self.repo_id, self.table)
        self.conn.execute(f"VACUUM (ANALYZE) {self.table}")  # visibility map and statistics
        return True


class TermStats:
    """Each term's df per repository (migration 0016), for pruned lexical search. Kept per file in the file's
    transaction while a repository's stats are ready; a first load skips that and rebuilds them at its end."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def ready(self, repo_ids: list[int]) -> bool:
        row = self.conn.execute(
            "SELECT count(*) = cardinality(%(ids)s::int[]) FROM repositories"
            " WHERE id = ANY(%(ids)s) AND term_stats_ready",
            {"ids": repo_ids},
        ).fetchone()
        return bool(row and row[0])

    def file_terms(self, repo_id: int, file_id: int) -> tuple[list[str], list[int]]:
        """A file's terms and the chunks holding each: read before its postings are deleted, for count_file."""
        rows = self.conn.execute(
            "SELECT term, length(chunk_ids) / %s FROM postings WHERE repo_id = %s AND file_id = %s",
            (CHUNK_ID_DTYPE.itemsize, repo_id, file_id),
        ).fetchall()
        return [row[0] for row in rows], [int(row[1]) for row in rows]

    def count_file(self, repo_id: int, file_id: int | None, removed: tuple[list[str], list[int]]) -> None:
        """Count the postings of `file_id` (just inserted; None for none) and uncount `removed` (the file_terms
        of the file it replaces, or of a deleted file). Only terms whose df changes are written: an edit that
        keeps most of a file's terms rewrites few rows."""
        terms, counts = removed
        self.conn.execute(
            """INSERT INTO term_stats (repo_id, term, df)
               SELECT %(repo)s, term, sum(n) FROM (
                   SELECT term, length(chunk_ids) / %(width)s FROM postings
                    WHERE repo_id = %(repo)s AND file_id = %(file)s
                   UNION ALL
                   SELECT * FROM unnest(%(terms)s::text[], %(counts)s::bigint[])) AS delta(term, n)
                GROUP BY term HAVING sum(n) <> 0
               ON CONFLICT (repo_id, term) DO UPDATE SET df = term_stats.df + excluded.df""",
            {"repo": repo_id, "file": file_id, "width": CHUNK_ID_DTYPE.itemsize, "terms": terms,
             "counts": [-count for count in counts]},
        )

    def rebuild(self, repo_id: int, table: str) -> None:
        """Recount a repository's stats from its postings partition `table` and mark them ready."""
        self.conn.execute("DELETE FROM term_stats WHERE repo_id = %s", (repo_id,))
        self.conn.execute(
            f"INSERT INTO term_stats (repo_id, term, df) SELECT %s, term, sum(length(chunk_ids) / %s) FROM {table}"
            " GROUP BY term",
            (repo_id, CHUNK_ID_DTYPE.itemsize),
        )
        self.set_ready(repo_id, True)

    def set_ready(self, repo_id: int, ready: bool) -> None:
        self.conn.execute("UPDATE repositories SET term_stats_ready = %s WHERE id = %s", (ready, repo_id))

    def delete_repository(self, repo_id: int) -> None:
        self.conn.execute("DELETE FROM term_stats WHERE repo_id = %s", (repo_id,))


class Files:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def by_path(self, repo_id: int) -> dict[str, FileRow]:
        with self.conn.cursor(row_factory=class_row(FileRow)) as cur:
            rows = cur.execute(
                "SELECT id, path, size, mtime_ns, content_hash FROM files WHERE repo_id = %s", (repo_id,)
            ).fetchall()
        return {row.path: row for row in rows}

    def get(self, repo_id: int, path: str) -> FileRow | None:
        with self.conn.cursor(row_factory=class_row(FileRow)) as cur:
            return cur.execute(
                "SELECT id, path, size, mtime_ns, content_hash FROM files WHERE repo_id = %s AND path = %s",
                (repo_id, path),
            ).fetchone()

    def delete(self, file_id: int) -> tuple[int, int]:
        """Delete a file with its chunks and postings; return the (chunks, length) it took away."""
        self.conn.execute("DELETE FROM postings WHERE file_id = %s", (file_id,))
        removed = self.conn.execute(
            "WITH gone AS (DELETE FROM chunks WHERE id >= %s AND id < %s RETURNING length) "
            "SELECT count(*), coalesce(sum(length), 0) FROM gone",
            (chunk_id(file_id, 0), chunk_id(file_id + 1, 0)),
        ).fetchone()
        self.conn.execute("DELETE FROM files WHERE id = %s", (file_id,))
        assert removed is not None
        return int(removed[0]), int(removed[1])

    def reserve_ids(self, count: int) -> list[int]:
        """File ids handed to worker processes before the rows exist; unused ones are simply skipped."""
        if count == 0:
            return []
        rows = self.conn.execute("SELECT nextval('files_id_seq') FROM generate_series(1, %s)", (count,))
        return [int(row[0]) for row in rows]

    def insert(
        self, file_id: int, repo_id: int, path: str, language: str, size: int, mtime_ns: int, content_hash: str,
        fallback: str | None,
    ) -> None:
        self.conn.execute(
            """INSERT INTO files (id, repo_id, path, language, size, mtime_ns, content_hash, fallback)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s)""",
            (file_id, repo_id, path, language, size, mtime_ns, content_hash, fallback),
        )

    def touch(self, file_id: int, size: int, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content did not change."""
        self.conn.execute("UPDATE files SET size = %s, mtime_ns = %s WHERE id = %s", (size, mtime_ns, file_id))

    def summary(self, repo_id: int) -> FilesSummary:
        files, fallbacks = self.conn.execute(
            "SELECT count(*), count(fallback) FROM files WHERE repo_id = %s", (repo_id,)
        ).fetchone() or (0, 0)
        languages: dict[str, int] = dict(self.conn.execute(
            "SELECT language, count(*) FROM files WHERE repo_id = %s GROUP BY 1 ORDER BY 2 DESC", (repo_id,)
        ).fetchall())
        return FilesSummary(files, fallbacks, languages)

    def matching(self, repo_ids: list[int], filters: Filters) -> list[tuple[int, FileRow]]:
        """(repository id, file) of the files that pass `filters` (languages, path glob), by repository and path."""
        clause, params = filters.sql("f")
        rows = self.conn.execute(
            f"""SELECT repo_id, id, path, size, mtime_ns, content_hash FROM files f
                 WHERE repo_id = ANY(%(repos)s) AND {clause} ORDER BY repo_id, path""",
            params | {"repos": repo_ids},
        ).fetchall()
        return [(repo_id, FileRow(*rest)) for repo_id, *rest in rows]

    def first_by_path(self, repo_id: int, limit: int) -> list[FileRow]:
        """The repository's first `limit` files in path order."""
        with self.conn.cursor(row_factory=class_row(FileRow)) as cur:
            return cur.execute(
                "SELECT id, path, size, mtime_ns, content_hash FROM files WHERE repo_id = %s ORDER BY path LIMIT %s",
                (repo_id, limit),
            ).fetchall()


@dataclass(slots=True)
class FilesSummary:
    files: int
    with_fallback: int  # files chunked by the fallback (text windows) rather than their grammar
    languages: dict[str, int]  # files per language, most first


CHUNK_ID_BITS = 20  # chunk id = (file_id << 20) | ordinal: room for 1,048,576 chunks a file
CHUNK_ID_DTYPE = np.dtype("<i8")  # the packed arrays in postings rows
COUNT_DTYPE = np.dtype("<i4")


def chunk_id(file_id: int, ordinal: int) -> int:
    return (file_id << CHUNK_ID_BITS) | ordinal


@dataclass(slots=True)
class ChunkBatch:
    """A file's chunks and postings as COPY text, formatted in a worker process."""

    chunk_rows: bytes
    posting_rows: bytes
    count: int
    total_length: int


class Chunks:
    CHUNK_COLUMNS = (
        "id, file_id, repo_id, path, language, kind, name, name_path, start_line, end_line, start_byte, end_byte,"
        " signature, docstring, content, content_hash, length"
    )
    POSTING_COLUMNS = "term, repo_id, file_id, chunk_ids, tfs, lengths"

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    @classmethod
    def format(cls, repo_id: int, file_id: int, path: str, language: str, items: Sequence[ChunkPostings]) -> ChunkBatch:
        """Format a file's chunk and posting rows. Runs in worker processes, so it is written for speed: the
        packed arrays of all the file's postings are built with numpy at once, then sliced per term."""
        field = copy_format.field
        after_id = f"\t{file_id}\t{repo_id}\t{field(path)}\t{field(language)}\t"
        chunk_lines = []
        lengths = []
        term_index: dict[str, int] = {}  # term -> its row, in order of first appearance
        term_of_pair: list[int] = []  # per (chunk, term) pair, chunk by chunk
        tf_of_pair: list[int] = []
        ordinal_of_pair: list[int] = []
        for ordinal, item in enumerate(items):
            c = item.chunk
            chunk_lines.append(
                f"{chunk_id(file_id, ordinal)}{after_id}{field(c.kind)}\t{field(c.name)}\t{field(c.name_path)}\t"
                f"{c.start_line}\t{c.end_line}\t{c.start_byte}\t{c.end_byte}\t{field(c.signature)}\t"
                f"{field(c.docstring)}\t{field(c.content)}\t{field(c.content_hash)}\t{item.length}\n"
            )
            lengths.append(item.length)
            terms = item.terms
            term_of_pair.extend([term_index.setdefault(term, len(term_index)) for term in terms])
            tf_of_pair.extend(terms.values())
            ordinal_of_pair.extend([ordinal] * len(terms))
        # pairs grouped by term (stable: a term's chunks stay in ordinal order), as the packed arrays store them
        order = np.argsort(np.array(term_of_pair, dtype=np.int64), kind="stable")
        ordinals = np.array(ordinal_of_pair, dtype=np.int64)[order]
        ids_hex = (ordinals | chunk_id(file_id, 0)).astype(CHUNK_ID_DTYPE).tobytes().hex()
        tfs_hex = np.array(tf_of_pair, dtype=COUNT_DTYPE)[order].tobytes().hex()
        lengths_hex = np.array(lengths, dtype=COUNT_DTYPE)[ordinals].tobytes().hex()
        ends = np.cumsum(np.bincount(np.array(term_of_pair, dtype=np.int64), minlength=len(term_index))).tolist()
        prefix = f"\t{repo_id}\t{file_id}\t\\\\x"
        posting_lines = []
        start = 0
        for term, end in zip(term_index, ends):
            # terms are word characters only (see search.tokens), so they need no COPY escaping
            posting_lines.append(
                f"{term}{prefix}{ids_hex[16 * start:16 * end]}\t\\\\x{tfs_hex[8 * start:8 * end]}"
                f"\t\\\\x{lengths_hex[8 * start:8 * end]}\n"
            )
            start = end
        return ChunkBatch(
            chunk_rows="".join(chunk_lines).encode(),
            posting_rows="".join(posting_lines).encode(),
            count=len(items),
            total_length=sum(lengths),
        )

    def insert(self, batch: ChunkBatch) -> None:
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY chunks ({self.CHUNK_COLUMNS}) FROM STDIN") as copy:
                copy.write(batch.chunk_rows)
            with cur.copy(f"COPY postings ({self.POSTING_COLUMNS}) FROM STDIN") as copy:
                copy.write(batch.posting_rows)


class SkippedFiles:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def all(self, repo_id: int) -> list[Skipped]:
        from lode.model import SkipReason

        rows = self.conn.execute(
            "SELECT path, reason, detail, size, mtime_ns FROM skipped_files WHERE repo_id = %s ORDER BY path",
            (repo_id,),
        ).fetchall()
        return [Skipped(path, SkipReason(reason), detail, size, mtime) for path, reason, detail, size, mtime in rows]

    def replace(self, repo_id: int, skipped: Sequence[Skipped]) -> None:
        self.conn.execute("DELETE FROM skipped_files WHERE repo_id = %s", (repo_id,))
        with self.conn.cursor() as cur, cur.copy(
            "COPY skipped_files (repo_id, path, reason, detail, size, mtime_ns) FROM STDIN"
        ) as copy:
            for item in skipped:
                copy.write_row((repo_id, item.path, item.reason.value, item.detail, item.size, item.mtime_ns))


class IndexRuns:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def start(self, repo_id: int, pid: int) -> int:
        row = self.conn.execute(
            "INSERT INTO index_runs (repo_id, status, pid) VALUES (%s, 'running', %s) RETURNING id", (repo_id, pid)
        ).fetchone()
        assert row is not None
        return int(row[0])

    def finish(self, run_id: int, status: str, files_indexed: int, files_deleted: int, error: str | None) -> None:
        self.conn.execute(
            """UPDATE index_runs SET status = %s, finished_at = now(), files_indexed = %s, files_deleted = %s,
                      error = %s WHERE id = %s""",
            (status, files_indexed, files_deleted, error, run_id),
        )

    def mark_dead_runs_aborted(self, repo_id: int) -> None:
        """Runs still 'running' whose process is gone were killed: show them as aborted."""
        import psutil

        rows = self.conn.execute(
            "SELECT id, pid FROM index_runs WHERE repo_id = %s AND status = 'running'", (repo_id,)
        ).fetchall()
        for run_id, pid in rows:
            if not psutil.pid_exists(pid):
                self.conn.execute(
                    "UPDATE index_runs SET status = 'aborted', error = 'process died' WHERE id = %s", (run_id,)
                )

    def latest(self, repo_id: int) -> dict | None:
        row = self.conn.execute(
            """SELECT id, status, started_at, finished_at, files_indexed, files_deleted, error, pid
                 FROM index_runs WHERE repo_id = %s ORDER BY id DESC LIMIT 1""",
            (repo_id,),
        ).fetchone()
        if row is None:
            return None
        keys = ("id", "status", "started_at", "finished_at", "files_indexed", "files_deleted", "error")
        run = dict(zip(keys, row[:7]))
        if run["status"] == "running" and not psutil.pid_exists(row[7]):  # killed: the next run records it
            run["status"], run["error"] = "aborted", "process died"
        return run

