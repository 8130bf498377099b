"""Reads of the postings and term_stats tables for lexical search (lode/search/lexical.py scores what they return).
A term's postings come back decoded: (chunk ids, term frequencies, chunk lengths), the last two as float64 for
the scoring. Like the other store classes: SQL over one connection, never a commit."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import psycopg

from lode.store.repositories import CHUNK_ID_DTYPE, COUNT_DTYPE

# (chunk ids, term frequencies, chunk lengths) of one term
TermPostings = tuple[np.ndarray, np.ndarray, np.ndarray]


def _decoded(ids: bytes, tfs: bytes, lengths: bytes) -> TermPostings:
    return (
        np.frombuffer(ids, dtype=CHUNK_ID_DTYPE),
        np.frombuffer(tfs, dtype=COUNT_DTYPE).astype(np.float64),
        np.frombuffer(lengths, dtype=COUNT_DTYPE).astype(np.float64),
    )


class Postings:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def fetch(self, terms: list[str], repo_ids: list[int], files: np.ndarray | None = None
              ) -> dict[str, TermPostings]:
        """Each term's postings in the repositories `repo_ids`; only `files`' when given (terms in none are left
        out)."""
        where = "term = ANY(%s) AND repo_id = ANY(%s)"
        params: list[object] = [terms, repo_ids]
        if files is not None:  # as one array literal: psycopg dumps a list of thousands of ints element by element
            where += " AND file_id = ANY(%s::bigint[])"
            params.append("{" + ",".join(map(str, files.tolist())) + "}")
        rows = self.conn.execute(
            "SELECT term, string_agg(chunk_ids, ''::bytea), string_agg(tfs, ''::bytea), string_agg(lengths, ''::bytea)"
            f" FROM postings WHERE {where} GROUP BY term",
            params,
        ).fetchall()
        return {term: _decoded(ids, tfs, lengths) for term, ids, tfs, lengths in rows}

    def stats_and_first_read(self, terms: Mapping[str, int], repo_ids: list[int], corpus_size: int
                             ) -> tuple[dict[str, int], dict[str, TermPostings]] | None:
        """None if term_stats is not ready for every repository; else each query term's df (terms in no chunk are
        left out), with the postings of the terms that lexical.top_k reads whole in any case, all in one round
        trip: rarest first, each term whose rarer terms' bounds add up to at most half of all the bounds.
        `terms`: each term's count in the query. A term's bound is its weight, the query count times lexical.idf,
        computed here in SQL; a rounding difference changes only what is read first."""
        rows = self.conn.execute(
            """WITH ready AS (
                   SELECT count(*) = cardinality(%(repos)s::int[]) AS ok FROM repositories
                    WHERE id = ANY(%(repos)s) AND term_stats_ready),
               s AS (
                   SELECT q.term, sum(t.df) AS df, q.qtf * ln(1 + (%(n)s - sum(t.df) + 0.5) / (sum(t.df) + 0.5)) AS w
                     FROM unnest(%(terms)s::text[], %(qtfs)s::int[]) AS q(term, qtf)
                     JOIN term_stats t ON t.term = q.term AND t.repo_id = ANY(%(repos)s)
                    GROUP BY q.term, q.qtf HAVING sum(t.df) > 0),
               o AS (
                   SELECT term, df, coalesce(sum(w) OVER (ORDER BY df, term ROWS BETWEEN UNBOUNDED PRECEDING
                                                          AND 1 PRECEDING), 0) AS rarer, sum(w) OVER () AS total
                     FROM s)
               SELECT ready.ok, o.term, o.df, p.ids, p.tfs, p.lengths FROM ready LEFT JOIN o ON ready.ok
                 LEFT JOIN LATERAL (
                   SELECT string_agg(chunk_ids, ''::bytea) AS ids, string_agg(tfs, ''::bytea) AS tfs,
                          string_agg(lengths, ''::bytea) AS lengths
                     FROM postings WHERE term = o.term AND repo_id = ANY(%(repos)s) AND o.rarer <= o.total / 2
               ) p ON true""",
            {"terms": list(terms), "qtfs": list(terms.values()), "repos": repo_ids, "n": corpus_size},
        ).fetchall()
        if not rows[0][0]:
            return None
        matched = [row[1:] for row in rows if row[1] is not None]
        first = {term: _decoded(ids, tfs, lengths) for term, _, ids, tfs, lengths in matched if ids is not None}
        return {term: int(df) for term, df, *_ in matched}, first

    def document_frequencies(self, terms: list[str], repo_ids: list[int]) -> dict[str, int]:
        """Chunks containing each term (terms in no chunk are left out): sizes of the postings, not their
        contents."""
        rows = self.conn.execute(
            "SELECT term, sum(octet_length(chunk_ids)) FROM postings WHERE term = ANY(%s) AND repo_id = ANY(%s) "
            "GROUP BY term",
            (terms, repo_ids),
        ).fetchall()
        return {term: int(size) // CHUNK_ID_DTYPE.itemsize for term, size in rows}
