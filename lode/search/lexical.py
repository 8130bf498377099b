"""BM25 over the postings table.

Documents are chunks. A chunk's terms are its content plus its name (weighted NAME_WEIGHT, a BM25F-style
field boost) and its qualifier (the enclosing name path, or the file path for windows). Scoring is Okapi
BM25 with the Lucene/bm25s idf; numpy scores fetched postings, so the cost per matching chunk is a few
nanoseconds rather than a SQL executor row.

Top k without reading every posting (MaxScore, Turtle & Flood 1995): no chunk gets more than
qtf * idf * (K1 + 1) from a term, and term_stats gives every term's df (so its idf and that bound) up front.
Terms are read whole rarest first while the bounds of the terms not yet read add up to at least the k-th best
partial score; once they add up to less, no chunk outside the ones seen can reach the top k, and the remaining
(common, long) terms are read only for the files of the chunks that still can, through the (term, file_id)
index. The result is the exhaustive ranking: same chunks, same order, the same float scores (every chunk's
terms are summed in the same order, sorted by term, on both paths).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import psycopg

from lode.model import Chunk
from lode.search.filters import Filters
from lode.search.tokens import term_counts, tokenize
from lode.store.postings import Postings, TermPostings
from lode.store.repositories import CHUNK_ID_BITS, CHUNK_ID_DTYPE, ChunkPostings
from lode.store.search_rows import SearchRows

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
    terms = query_terms(query) if terms is None else terms
    if not terms or corpus_size == 0 or limit <= 0:
        return []
    unfiltered = filters.sql("c")[0] == "TRUE"
    if unfiltered and (pruned := top_k(conn, terms, repo_ids, corpus_size, total_length, limit)) is not None:
        return pruned[0]
    postings = term_scores(conn, query, repo_ids, corpus_size, total_length, terms)
    if postings is None:
        return []
    chunk_ids, scores = accumulate(*postings)
    if unfiltered:
        return [(int(chunk_ids[i]), float(scores[i])) for i in best(chunk_ids, scores, limit)]
    order = best(chunk_ids, scores, len(scores))
    return _filtered(conn, chunk_ids[order], scores[order], filters, limit)


def idf(df: int, corpus_size: int) -> float:
    return math.log(1 + (corpus_size - df + 0.5) / (df + 0.5))


def _bm25(weight: float, tf: np.ndarray, length: np.ndarray, avg_length: float) -> np.ndarray:
    """A term's BM25 scores; `weight` is its query count times its idf."""
    return weight * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg_length))


def term_scores(
    conn: psycopg.Connection, query: str, repo_ids: list[int], corpus_size: int, total_length: float,
    terms: Counter[str] | None = None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Fetch the query terms' postings; return (chunk ids, BM25 term scores), one entry per posting, or None
    when no term matches. Terms are concatenated in sorted order, the order top_k sums them in."""
    terms = query_terms(query) if terms is None else terms
    if not terms or corpus_size == 0:
        return None
    fetched = Postings(conn).fetch(list(terms), repo_ids)
    if not fetched:
        return None
    avg_length = total_length / corpus_size
    ids_parts, score_parts = [], []
    for term in sorted(fetched):
        ids, tf, length = fetched[term]
        ids_parts.append(ids)
        score_parts.append(_bm25(terms[term] * idf(len(ids), corpus_size), tf, length, avg_length))
    return np.concatenate(ids_parts), np.concatenate(score_parts)


# Below this many candidate files, the remaining terms are read in one statement: a round trip then costs more
# than the files that reading them one at a time would prune.
_FEW_FILES = 64

# Bounds and thresholds are compared with this relative slack, so that float rounding in a sum can never prune
# a chunk whose exact score reaches the k-th best.
_SLACK = 1e-9


def _kth_best(scores: np.ndarray, limit: int) -> float:
    """The limit-th highest score, or 0 when there are fewer scores: a lower bound of the final k-th best
    when the scores are lower bounds of chunks' scores."""
    if len(scores) < limit:
        return 0.0
    return float(np.partition(scores, len(scores) - limit)[len(scores) - limit])


def top_k(
    conn: psycopg.Connection, terms: Counter[str], repo_ids: list[int], corpus_size: int, total_length: float,
    limit: int,
) -> tuple[list[tuple[int, float]], int] | None:
    """The exhaustive ranking's first `limit` entries, reading common terms only where they can matter
    (MaxScore; see the module docstring), and how many postings it read; None, having read nothing, unless
    term_stats is ready for every repository searched."""
    postings = Postings(conn)
    # the dfs, and the postings of the rarest terms up to half of all the bounds, in one round trip: the threshold
    # never exceeds the bounds of the terms read, so until then the unread ones may still reach it
    stats = postings.stats_and_first_read(terms, repo_ids, corpus_size)
    if stats is None:
        return None
    dfs, first = stats
    if not dfs:
        return [], 0
    avg_length = total_length / corpus_size
    weight = {term: terms[term] * idf(df, corpus_size) for term, df in dfs.items()}
    bound = {term: w * (K1 + 1) for term, w in weight.items()}  # tf/(tf + ...) < 1: no chunk gets more
    unread = sorted(set(dfs) - set(first), key=lambda term: (dfs[term], term), reverse=True)  # popped rarest first
    unread_bound = sum(bound[term] for term in unread)
    scored: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    postings_read = 0

    def read(fetched: dict[str, TermPostings]) -> None:
        nonlocal postings_read
        for term, (ids, tf, length) in fetched.items():
            scored[term] = (ids, _bm25(weight[term], tf, length, avg_length))
            postings_read += len(ids)

    # Essential terms, read whole, rarest first, until no chunk that none of them holds can reach the top k.
    read(first)
    seen, partial, threshold = np.empty(0, CHUNK_ID_DTYPE), np.empty(0), 0.0
    while True:
        if scored:
            seen, partial = accumulate(*_joined(scored))
            threshold = _kth_best(partial, limit)
        if not unread or unread_bound * (1 + _SLACK) < threshold:
            break
        term = unread.pop()
        read(postings.fetch([term], repo_ids))
        unread_bound -= bound[term]
    # The other terms, for the chunks whose partial score plus what they could still get reaches the threshold:
    # one term a statement while that prunes many files, the rest together once few are left.
    candidates = partial + unread_bound * (1 + _SLACK) >= threshold * (1 - _SLACK)
    seen, partial = seen[candidates], partial[candidates]
    while unread and len(seen):
        files = np.unique(seen >> CHUNK_ID_BITS)
        if len(files) > _FEW_FILES:
            batch = [unread.pop()]
        else:
            batch, unread = unread, []
        read(postings.fetch(batch, repo_ids, files))
        for term in batch:
            unread_bound -= bound[term]
            if term in scored:
                ids, scores = scored[term]
                inside = np.isin(ids, seen)
                scored[term] = ids, scores = ids[inside], scores[inside]
                partial = partial + _sum_into(seen, ids, scores)
        threshold = max(threshold, _kth_best(partial, limit))
        keep = partial + unread_bound * (1 + _SLACK) >= threshold * (1 - _SLACK)
        seen, partial = seen[keep], partial[keep]
    if not len(seen):
        return [], postings_read
    # Exact scores of what is left, summed term by term in sorted order, as the exhaustive path sums them.
    ids, scores = _joined(scored)
    inside = np.isin(ids, seen)
    chunk_ids, sums = accumulate(ids[inside], scores[inside])
    return [(int(chunk_ids[i]), float(sums[i])) for i in best(chunk_ids, sums, limit)], postings_read


def _joined(scored: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The scored terms' (ids, scores) concatenated in sorted term order."""
    parts = [scored[term] for term in sorted(scored)]
    return np.concatenate([ids for ids, _ in parts]), np.concatenate([scores for _, scores in parts])


def _sum_into(targets: np.ndarray, ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per entry of the sorted, distinct `targets`, the sum of `scores` of its entries in `ids` (all in targets)."""
    return np.bincount(np.searchsorted(targets, ids), weights=scores, minlength=len(targets))


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
    rows = SearchRows(conn)
    kept: list[tuple[int, float]] = []
    start, batch = 0, max(limit * 20, 500)
    while start < len(ranked_ids) and len(kept) < limit:
        window = ranked_ids[start : start + batch]
        passing = rows.passing(window.tolist(), filters)
        for offset, cid in enumerate(window.tolist()):
            if cid in passing:
                kept.append((cid, float(ranked_scores[start + offset])))
        start += batch
        batch *= 4
    return kept[:limit]
