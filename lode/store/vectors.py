"""Vectors: one table per embedding model (pgvector columns have a fixed dimension), with HNSW indexes, an
embedding cache keyed by (model, view hash), and the failures a model recorded. Never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psycopg

from lode.search.filters import Filters
from lode.store.db import scalar
from lode.store.repositories import CHUNK_ID_BITS, chunk_id

LEGS = ("text", "code")
# HNSW build: pgvector's m, twice its ef_construction (64). On 66k real vectors this holds recall@10 >= 0.95 at
# ef_search 100 instead of 200, for 1.8x the bulk build and 1.3x the insert time (bench/ef_search.py)
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 128
# A filtered leg ranks exactly when the matching files hold at most this many vectors. On 121k real vectors
# (bench/vector_recall.py) exact ranking costs about 0.7 ms per thousand vectors, while an HNSW scan under a filter
# that passes 1-4 % of them costs 16-45 ms, as it must walk past everything the filter drops
EXACT_MAX = 10_000


def vectors_table(model: int) -> str:
    return f"vectors_m{int(model)}"


def cache_table(model: int) -> str:
    return f"vector_cache_m{int(model)}"


def to_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{x:.6g}" for x in vector.tolist()) + "]"


def from_literal(text: str) -> np.ndarray:
    return np.array([float(x) for x in text.strip("[]").split(",")], dtype=np.float32)


@dataclass(slots=True)
class PendingChunk:
    id: int
    repo_id: int
    language: str
    kind: str
    name: str | None
    name_path: str | None
    signature: str | None
    docstring: str | None
    content: str


@dataclass(slots=True)
class ChunkVectors:
    chunk_id: int
    repo_id: int
    text: np.ndarray
    code: np.ndarray


class Vectors:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    # ---- models ----------------------------------------------------------------------------------------

    def register_model(self, model_id: str, dimension: int) -> int:
        """The model's id, creating its tables on first use (idempotent under concurrency)."""
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('lode.register_model'))")
        row = self.conn.execute("SELECT id, dimension FROM embedding_models WHERE model_id = %s",
                                (model_id,)).fetchone()
        if row is not None:
            if row[1] != dimension:
                raise ValueError(f"model {model_id} was recorded with dimension {row[1]}, "
                                 f"the provider says {dimension}")
            return int(row[0])
        row = self.conn.execute(
            "INSERT INTO embedding_models (model_id, dimension) VALUES (%s, %s) RETURNING id", (model_id, dimension)
        ).fetchone()
        assert row is not None
        model = int(row[0])
        table, cache = vectors_table(model), cache_table(model)
        self.conn.execute(
            f"""CREATE TABLE {table} (
                    chunk_id bigint PRIMARY KEY,
                    repo_id integer NOT NULL,
                    text_vec halfvec({dimension}) NOT NULL,
                    code_vec halfvec({dimension}) NOT NULL)"""
        )
        self.conn.execute(f"CREATE INDEX {table}_repo_idx ON {table} (repo_id)")
        for leg in LEGS:
            self.conn.execute(f"CREATE INDEX {table}_{leg}_hnsw ON {table} USING hnsw ({leg}_vec halfvec_cosine_ops) "
                              f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
        self.conn.execute(f"CREATE TABLE {cache} (view_hash text PRIMARY KEY, vec halfvec({dimension}) NOT NULL)")
        return model

    def served_chunks(self, model: int) -> int:
        """Chunks of the repositories this model serves: about the size of its HNSW graphs, without a count(*)."""
        return int(scalar(self.conn.execute(
            "SELECT coalesce(sum(chunk_count), 0) FROM repositories WHERE embedding_model = %s", (model,))))

    def models(self) -> dict[int, tuple[str, int]]:
        return {row[0]: (row[1], row[2]) for row in self.conn.execute(
            "SELECT id, model_id, dimension FROM embedding_models")}

    # ---- backfill --------------------------------------------------------------------------------------

    def pending(self, repo_id: int, model: int, limit: int, after: int = -1) -> list[PendingChunk]:
        """Chunks of a repository with no vector and no recorded failure for this model, by id."""
        rows = self.conn.execute(
            f"""SELECT c.id, c.repo_id, c.language, c.kind, c.name, c.name_path, c.signature, c.docstring, c.content
                  FROM chunks c
                 WHERE c.repo_id = %(repo)s AND c.id > %(after)s
                   AND NOT EXISTS (SELECT 1 FROM {vectors_table(model)} v WHERE v.chunk_id = c.id)
                   AND NOT EXISTS (SELECT 1 FROM embedding_failures f WHERE f.model = %(model)s AND f.chunk_id = c.id)
                 ORDER BY c.id LIMIT %(limit)s""",
            {"repo": repo_id, "model": model, "limit": limit, "after": after},
        ).fetchall()
        return [PendingChunk(*row) for row in rows]

    def pending_ranges(self, repo_id: int, model: int, size: int) -> list[tuple[int, int]]:
        """The repository's pending chunks (as in pending()) as (first id, last id) ranges of `size` chunks, in id
        order."""
        return [(int(a), int(b)) for a, b in self.conn.execute(
            f"""SELECT min(id), max(id) FROM (
                    SELECT c.id, (row_number() OVER (ORDER BY c.id) - 1) / %(size)s AS batch FROM chunks c
                     WHERE c.repo_id = %(repo)s
                       AND NOT EXISTS (SELECT 1 FROM {vectors_table(model)} v WHERE v.chunk_id = c.id)
                       AND NOT EXISTS (SELECT 1 FROM embedding_failures f WHERE f.model = %(model)s
                                                                          AND f.chunk_id = c.id)) pending
                 GROUP BY batch ORDER BY batch""",
            {"repo": repo_id, "model": model, "size": size},
        )]

    def counts(self, repo_id: int, model: int | None) -> dict[str, int]:
        total = scalar(self.conn.execute("SELECT chunk_count FROM repositories WHERE id = %s", (repo_id,)))
        if model is None:
            return {"done": 0, "pending": int(total), "failed": 0}
        done = scalar(self.conn.execute(
            f"SELECT count(*) FROM {vectors_table(model)} WHERE repo_id = %s", (repo_id,)
        ))
        failed = scalar(self.conn.execute(
            "SELECT count(*) FROM embedding_failures WHERE repo_id = %s AND model = %s", (repo_id, model)
        ))
        return {"done": int(done), "pending": int(total - done - failed), "failed": int(failed)}

    def cached(self, model: int, view_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        if not view_hashes:
            return {}
        rows = self.conn.execute(
            f"SELECT view_hash, vec::text FROM {cache_table(model)} WHERE view_hash = ANY(%s)", (list(view_hashes),)
        )
        return {view_hash: from_literal(vec) for view_hash, vec in rows}

    def store(self, model: int, vectors: Sequence[ChunkVectors], new_cache: dict[str, np.ndarray]) -> int:
        """Insert vectors for chunks that still exist; return how many were stored.

        FOR SHARE on the chunks makes a concurrent re-index of their file wait for this transaction, so its
        delete of the file's vectors sees these rows: no vector outlives its chunk.
        """
        if new_cache:
            self.conn.execute(
                f"""INSERT INTO {cache_table(model)} (view_hash, vec)
                    SELECT * FROM unnest(%s::text[], %s::halfvec[]) ON CONFLICT DO NOTHING""",
                (list(new_cache), [to_literal(v) for v in new_cache.values()]),
            )
        if not vectors:
            return 0
        alive = {row[0] for row in self.conn.execute(
            "SELECT id FROM chunks WHERE id = ANY(%s) FOR SHARE", ([v.chunk_id for v in vectors],))}
        keep = [v for v in vectors if v.chunk_id in alive]
        if keep:
            self.conn.execute(
                f"""INSERT INTO {vectors_table(model)} (chunk_id, repo_id, text_vec, code_vec)
                    SELECT * FROM unnest(%s::bigint[], %s::int[], %s::halfvec[], %s::halfvec[])
                    ON CONFLICT (chunk_id) DO NOTHING""",
                ([v.chunk_id for v in keep], [v.repo_id for v in keep], [to_literal(v.text) for v in keep],
                 [to_literal(v.code) for v in keep]),
            )
        return len(keep)

    def record_failures(self, model: int, failures: Sequence[tuple[int, int, str]]) -> None:
        """(chunk_id, repo_id, error) for chunks the provider rejected."""
        if failures:
            self.conn.execute(
                """INSERT INTO embedding_failures (model, chunk_id, repo_id, error)
                   SELECT %s, * FROM unnest(%s::bigint[], %s::int[], %s::text[]) ON CONFLICT DO NOTHING""",
                (model, [f[0] for f in failures], [f[1] for f in failures], [f[2][:500] for f in failures]),
            )

    # ---- file and repository lifecycle -----------------------------------------------------------------

    def delete_file(self, file_id: int) -> None:
        low, high = chunk_id(file_id, 0), chunk_id(file_id + 1, 0)
        for model in self.models():
            self.conn.execute(f"DELETE FROM {vectors_table(model)} WHERE chunk_id >= %s AND chunk_id < %s",
                              (low, high))
        self.conn.execute("DELETE FROM embedding_failures WHERE chunk_id >= %s AND chunk_id < %s", (low, high))

    def delete_repository_model(self, repo_id: int, model: int) -> None:
        """Drop one model's vectors of a repository (after a switch to another model)."""
        self.conn.execute(f"DELETE FROM {vectors_table(model)} WHERE repo_id = %s", (repo_id,))
        self.conn.execute("DELETE FROM embedding_failures WHERE repo_id = %s AND model = %s", (repo_id, model))

    def delete_repository(self, repo_id: int) -> None:
        for model in self.models():
            self.conn.execute(f"DELETE FROM {vectors_table(model)} WHERE repo_id = %s", (repo_id,))
        self.conn.execute("DELETE FROM embedding_failures WHERE repo_id = %s", (repo_id,))

    # ---- search ----------------------------------------------------------------------------------------

    def nearest(
        self, model: int, leg: str, query: np.ndarray, repo_ids: list[int], filters: Filters, limit: int
    ) -> list[tuple[int, float]]:
        """(chunk_id, cosine similarity), nearest first.

        A language or path filter is applied to the files first: their rows are few, and each file's chunks are
        one id range, so the vectors are then selected by id, not by a regex per chunk. When those files hold at
        most EXACT_MAX vectors they are ranked exactly. Otherwise the HNSW index is scanned (iterative under
        filters) and its candidates re-sorted, because relaxed_order returns them only roughly in order; a scan
        that ends short of `limit` (pgvector stops at hnsw.max_scan_tuples) is redone exactly.
        """
        assert leg in LEGS
        file_ids = None
        if filters.languages or filters.path_glob:
            file_ids, vectors = self._matching_files(model, repo_ids, filters)
            if vectors == 0:
                return []
            if vectors <= EXACT_MAX:
                return self._exact(model, leg, query, repo_ids, file_ids, filters.kinds, limit)
        hits = self._hnsw(model, leg, query, repo_ids, file_ids, filters.kinds, limit)
        if len(hits) < limit:
            return self._exact(model, leg, query, repo_ids, file_ids, filters.kinds, limit)
        return hits

    def _matching_files(self, model: int, repo_ids: list[int], filters: Filters) -> tuple[list[int], int]:
        """The ids of the files that pass the language and path filters, and how many vectors they hold, counted
        up to EXACT_MAX + 1 on the primary key (a file's chunk ids are one range)."""
        where, params = Filters(languages=filters.languages, path_glob=filters.path_glob).sql("f")
        row = self.conn.execute(
            f"""WITH matched AS MATERIALIZED (SELECT id FROM files f WHERE f.repo_id = ANY(%(repos)s) AND {where})
                SELECT array(SELECT id FROM matched), (SELECT count(*) FROM (
                    SELECT FROM matched m JOIN {vectors_table(model)} v ON {_in_file_range("m")}
                     LIMIT %(cap)s) capped)""",
            {"repos": repo_ids, "cap": EXACT_MAX + 1, **params},
        ).fetchone()
        assert row is not None
        return row[0], row[1]

    def _exact(self, model: int, leg: str, query: np.ndarray, repo_ids: list[int], file_ids: list[int] | None,
               kinds: tuple[str, ...], limit: int) -> list[tuple[int, float]]:
        """The exact ranking of the vectors that pass the filters. They are gathered in a MATERIALIZED CTE, so
        that the sort outside it cannot be answered by the HNSW index."""
        source = f"{vectors_table(model)} v"
        if file_ids is not None:
            source = f"unnest(%(files)s::bigint[]) f(id) JOIN {source} ON {_in_file_range('f')}"
        rows = self.conn.execute(
            f"""WITH candidates AS MATERIALIZED (
                    SELECT v.chunk_id, v.{leg}_vec <=> %(q)s::halfvec AS distance FROM {source} {_kind_join(kinds)}
                     WHERE v.repo_id = ANY(%(repos)s))
                SELECT chunk_id, 1 - distance FROM candidates ORDER BY distance LIMIT %(limit)s""",
            {"q": to_literal(query), "repos": repo_ids, "files": file_ids, "kinds": list(kinds), "limit": limit},
        )
        return [(int(cid), float(sim)) for cid, sim in rows]

    def _hnsw(self, model: int, leg: str, query: np.ndarray, repo_ids: list[int], file_ids: list[int] | None,
              kinds: tuple[str, ...], limit: int) -> list[tuple[int, float]]:
        """The index scan's candidates, re-sorted: `distance + 0`, since PostgreSQL 17+ takes a CTE's output to be
        in its ORDER BY's order and would skip a plain `ORDER BY distance` (pgvector's README)."""
        in_files = "" if file_ids is None else f"AND v.chunk_id >> {CHUNK_ID_BITS} = ANY(%(files)s::bigint[])"
        rows = self.conn.execute(
            f"""WITH hits AS MATERIALIZED (
                    SELECT v.chunk_id, v.{leg}_vec <=> %(q)s::halfvec AS distance
                      FROM {vectors_table(model)} v {_kind_join(kinds)}
                     WHERE v.repo_id = ANY(%(repos)s) {in_files}
                     ORDER BY v.{leg}_vec <=> %(q)s::halfvec LIMIT %(limit)s)
                SELECT chunk_id, 1 - distance FROM hits ORDER BY distance + 0""",
            {"q": to_literal(query), "repos": repo_ids, "files": file_ids, "kinds": list(kinds), "limit": limit},
            prepare=False,  # planned with the file ids as a constant, which PostgreSQL hashes, not a parameter
        )
        return [(int(cid), float(sim)) for cid, sim in rows]


def _in_file_range(files: str) -> str:
    """A join condition: v's chunk is one of the file's (`files`.id), through the primary key's range."""
    return f"v.chunk_id >= {files}.id << {CHUNK_ID_BITS} AND v.chunk_id < ({files}.id + 1) << {CHUNK_ID_BITS}"


def _kind_join(kinds: tuple[str, ...]) -> str:
    return "JOIN chunks c ON c.id = v.chunk_id AND c.kind = ANY(%(kinds)s)" if kinds else ""
