"""The cache's L3 of query embeddings: the query_vectors table (migration 0007). Unlike the other store classes it
opens its own connections, one transaction per call: the cache uses it outside any unit of work."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg

from lode.store.rows import one_row, scalar

if TYPE_CHECKING:
    from lode.store.db import Database


def trim(conn: psycopg.Connection, max_rows: int) -> int:
    """Delete the rows beyond `max_rows`, first in heap order (roughly the oldest); return how many went."""
    excess = scalar(conn.execute("SELECT count(*) FROM query_vectors")) - max_rows
    if excess <= 0:
        return 0
    return conn.execute("DELETE FROM query_vectors WHERE ctid = ANY(ARRAY(SELECT ctid FROM query_vectors LIMIT %s))",
                        (excess,)).rowcount


class QueryVectorTable:
    """Query embeddings as float32 little-endian bytes, keyed by (model id, query hash), kept to about `max_rows`
    rows: every PRUNE_EVERY writes of this process, the rows beyond that go, first in heap order (roughly the
    oldest)."""

    PRUNE_EVERY = 100

    def __init__(self, database: Callable[[], Database], max_rows: int) -> None:
        self.database = database
        self.max_rows = max_rows
        self._writes = 0

    def get(self, model_id: str, digest: bytes) -> bytes | None:
        with self.database().connection() as conn:
            row = conn.execute("SELECT vector FROM query_vectors WHERE model_id = %s AND query_hash = %s",
                               (model_id, digest)).fetchone()
        return bytes(row[0]) if row else None

    def put(self, model_id: str, digest: bytes, vector: bytes) -> None:
        self._writes += 1
        with self.database().connection() as conn, conn.transaction():
            conn.execute("INSERT INTO query_vectors (model_id, query_hash, vector) VALUES (%s, %s, %s)"
                         " ON CONFLICT DO NOTHING", (model_id, digest, vector))
            if self._writes % self.PRUNE_EVERY == 0:
                trim(conn, self.max_rows)

    def clear(self) -> int:
        with self.database().connection() as conn, conn.transaction():
            return conn.execute("DELETE FROM query_vectors").rowcount

    def stats(self) -> dict[str, int]:
        with self.database().connection() as conn:
            rows, size = one_row(conn.execute(
                "SELECT count(*), pg_total_relation_size('query_vectors') FROM query_vectors"))
        return {"entries": int(rows), "bytes": int(size)}
