"""BM25 over the postings table.

Documents are chunks. A chunk's terms are its content plus its name (weighted NAME_WEIGHT, a BM25F-style
field boost) and its qualifier (the enclosing name path, or the file path for windows). Scoring is Okapi
BM25 with the Lucene/bm25s idf. One statement fetches each query term's postings, concatenated; numpy scores
them, so the cost per matching chunk is a few nanoseconds rather than a SQL executor row.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import psycopg

from lode.model import Chunk
from lode.search.filters import Filters
from lode.search.tokens import term_counts, tokenize
from lode.store.repositories import CHUNK_ID_DTYPE, COUNT_DTYPE, ChunkPostings

K1 = 1.5
B = 0.75
NAME_WEIGHT = 4


def chunk_postings(chunk: Chunk, path: str) -> ChunkPostings:
    terms = term_counts(chunk.content)
    extra: list[tuple[str, int]] = []  # the docstring is part of the content already
    if chunk.name:
        extra.extend((term, NAME_WEIGHT) for term in tokenize(chunk.name))
    qualifier = chunk.name_path.rsplit(".", 1)[0] if chunk.name_path else path
    extra.extend((term, 1) for term in tokenize(qualifier))
    for term, weight in extra:
        terms[term] = terms.get(term, 0) + weight
    return ChunkPostings(chunk=chunk, terms=terms, length=sum(terms.values()))


def query_terms(query: str) -> Counter[str]:
    return Counter(tokenize(query))


def search(
    conn: psycopg.Connection,
    query: str,
    repo_ids: list[int],
    corpus_size: int,
    total_length: float,
    filters: Filters,
    limit: int,
    terms: Counter[str] | None = None,
) -> list[tuple[int, float]]:
    """Return (chunk_id, score) pairs, best first. The caller sets the statement timeout. `terms`: the query's
    terms when the caller chose them (a long query's), else all of the query's."""
    postings = term_scores(conn, query, repo_ids, corpus_size, total_length, terms)
    if postings is None:
        return []
    chunk_ids, scores = accumulate(*postings)
    if filters.sql("c")[0] == "TRUE":
        return [(int(chunk_ids[i]), float(scores[i])) for i in best(chunk_ids, scores, limit)]
    order = best(chunk_ids, scores, len(scores))
    return _filtered(conn, chunk_ids[order], scores[order], filters, limit)


def term_scores(
    conn: psycopg.Connection, query: str, repo_ids: list[int], corpus_size: int, total_length: float,
    terms: Counter[str] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Fetch the query terms' postings; return (chunk ids, BM25 term scores), one entry per posting, or None
    when no term matches."""
    terms = query_terms(query) if terms is None else terms
    if not terms or corpus_size == 0:
        return None
    rows = conn.execute(
        """SELECT term, string_agg(chunk_ids, ''::bytea), string_agg(tfs, ''::bytea), string_agg(lengths, ''::bytea)
             FROM postings WHERE term = ANY(%s) AND repo_id = ANY(%s) GROUP BY term""",
        (list(terms), repo_ids),
    ).fetchall()
    if not rows:
        return None
    avg_length = total_length / corpus_size
    ids_parts, score_parts = [], []
    for term, ids_blob, tfs_blob, lengths_blob in rows:
        ids = np.frombuffer(ids_blob, dtype=CHUNK_ID_DTYPE)
        tf = np.frombuffer(tfs_blob, dtype=COUNT_DTYPE).astype(np.float64)
        length = np.frombuffer(lengths_blob, dtype=COUNT_DTYPE).astype(np.float64)
        df = len(ids)
        idf = math.log(1 + (corpus_size - df + 0.5) / (df + 0.5))
        ids_parts.append(ids)
        score_parts.append(terms[term] * idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg_length)))
    return np.concatenate(ids_parts), np.concatenate(score_parts)


def document_frequencies(conn: psycopg.Connection, terms: list[str], repo_ids: list[int]) -> dict[str, int]:
    """Chunks containing each term (terms in no chunk are left out): sizes of the postings, not their contents."""
    rows = conn.execute(
        "SELECT term, sum(octet_length(chunk_ids)) FROM postings WHERE term = ANY(%s) AND repo_id = ANY(%s) "
        "GROUP BY term",
        (terms, repo_ids),
    ).fetchall()
    return {term: int(size) // CHUNK_ID_DTYPE.itemsize for term, size in rows}


def accumulate(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the scores of each chunk id: (the distinct ids ascending, their sums)."""
    low = int(ids.min())
    span = int(ids.max()) - low + 1
    if span > max(8 * len(ids), 1 << 20):  # ids far apart (several repositories): sort instead
        distinct, inverse = np.unique(ids, return_inverse=True)
        return distinct, np.bincount(inverse, weights=scores)
    offsets = ids - low  # a repository's chunk ids are dense: count into an array over their range, no sort
    sums = np.bincount(offsets, weights=scores, minlength=span)
    present = np.flatnonzero(np.bincount(offsets, minlength=span))
    return present + low, sums[present]


def best(chunk_ids: np.ndarray, scores: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the `limit` best scores, best first, ties by chunk id; only those are sorted."""
    candidates = np.arange(len(scores))
    if len(scores) > limit:
        cut = len(scores) - limit
        candidates = np.flatnonzero(scores >= np.partition(scores, cut)[cut])  # ties at the cut stay in
    order = np.lexsort((chunk_ids[candidates], -scores[candidates]))[:limit]
    return candidates[order]


def _filtered(
    conn: psycopg.Connection, ranked_ids: np.ndarray, ranked_scores: np.ndarray, filters: Filters, limit: int
) -> list[tuple[int, float]]:
    """Walk the ranking in growing batches, keeping the chunks that pass the filters, until `limit` are found."""
    where, params = filters.sql("c")
    kept: list[tuple[int, float]] = []
    start, batch = 0, max(limit * 20, 500)
    while start < len(ranked_ids) and len(kept) < limit:
        window = ranked_ids[start : start + batch]
        passing = {
            row[0]
            for row in conn.execute(
                f"SELECT c.id FROM chunks c WHERE c.id = ANY(%(ids)s) AND {where}",
                {"ids": window.tolist(), **params},
            )
        }
        for offset, cid in enumerate(window.tolist()):
            if cid in passing:
                kept.append((cid, float(ranked_scores[start + offset])))
        start += batch
        batch *= 4
    return kept[:limit]
