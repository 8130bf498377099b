"""The vector leg (Vectors.nearest) on real PostgreSQL and pgvector: HNSW answers equal the exact ranking, a filter
that k vectors pass gets k, a selective filter is ranked exactly without the HNSW index, and no match is []."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import psycopg
import pytest

from lode.engine import Lode
from lode.search.filters import Filters, glob_to_regex
from lode.store.repositories import Files, Repositories, chunk_id
from lode.store import vectors as vectors_module
from lode.store.vectors import ChunkVectors, Vectors, vectors_table

DIMENSION = 16
EXACT_MAX = 1000  # the leg's threshold, scaled down with the corpus
BIG_FILES, BIG_CHUNKS = 50, 50  # big/fN.py: more vectors than EXACT_MAX, so a filter on them scans the index
SMALL_FILES, SMALL_CHUNKS = 2, 20  # small/fN.py: a selective filter
FUNCTIONS = 30  # chunks of kind "function" (the rest are windows): a filter the index scan finds few of


@pytest.fixture(autouse=True)
def _small_exact_max(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors_module, "EXACT_MAX", EXACT_MAX)


@dataclass
class Corpus:
    conn: psycopg.Connection
    model: int
    repo_id: int
    ids: np.ndarray
    paths: list[str]
    kinds: list[str]
    vectors: np.ndarray  # unit rows, rounded to halfvec as stored

    def exact(self, query: np.ndarray, limit: int, keep: np.ndarray | None = None) -> list[int]:
        rounded = query.astype(np.float16).astype(np.float32)  # as the leg's query::halfvec
        sims = self.vectors @ (rounded / np.linalg.norm(rounded))
        order = [i for i in np.argsort(-sims, kind="stable") if keep is None or keep[i]]
        return [int(self.ids[i]) for i in order[:limit]]

    def similarities(self, query: np.ndarray, ids: list[int]) -> list[float]:
        rows = [int(np.flatnonzero(self.ids == cid)[0]) for cid in ids]
        return (self.vectors[rows] @ (query / np.linalg.norm(query))).tolist()

    def nearest(self, query: np.ndarray, filters: Filters, limit: int, **settings: str) -> list[tuple[int, float]]:
        """Vectors.nearest under SET LOCAL settings, as the engine's vector leg runs it; nothing outlives it."""
        with self.conn.transaction(force_rollback=True):
            self.settle(**settings)
            return Vectors(self.conn).nearest(self.model, "code", query, [self.repo_id], filters, limit)

    def settle(self, **settings: str) -> None:
        """The engine's leg settings, and no sort where the index can order: at a few thousand vectors the planner
        would rather sort them all, so the HNSW path would go untested (at 125k it picks the index unaided)."""
        defaults = {"hnsw.ef_search": "400", "hnsw.iterative_scan": "relaxed_order", "enable_sort": "off"}
        for name, value in (defaults | settings).items():
            self.conn.execute("SELECT set_config(%s, %s, true)", (name, value))

    def hnsw_scans(self) -> int:
        """Scans of the code leg's HNSW index in this transaction."""
        return int(self.conn.execute("SELECT pg_stat_get_xact_numscans(%s::regclass)",
                                     (f"{vectors_table(self.model)}_code_hnsw",)).fetchone()[0])


@pytest.fixture(scope="module")
def corpus(lode: Lode) -> Iterator[Corpus]:
    """A repository of random vectors in a model of its own, inside one transaction rolled back at the end."""
    rng = np.random.default_rng(7)
    with psycopg.connect(lode.db.url) as conn:
        model = Vectors(conn).register_model(f"test-leg-{uuid.uuid4().hex[:8]}", DIMENSION)
        repo = Repositories(conn).get_or_create(f"t-{uuid.uuid4().hex[:10]}", "/nowhere")
        Repositories(conn).set_embedding_models(repo.id, model, None)
        files = [(f"big/f{i}.py", BIG_CHUNKS) for i in range(BIG_FILES)]
        files += [(f"small/f{i}.py", SMALL_CHUNKS) for i in range(SMALL_FILES)]
        ids, paths = [], []
        for (path, chunks), file_id in zip(files, Files(conn).reserve_ids(len(files))):
            Files(conn).insert(file_id, repo.id, path, "python", 1, 0, "", None)
            ids += [chunk_id(file_id, ordinal) for ordinal in range(chunks)]
            paths += [path] * chunks
        kinds = ["window"] * len(ids)
        for i in rng.choice(len(ids), FUNCTIONS, replace=False):
            kinds[i] = "function"
        with conn.cursor().copy("COPY chunks (id, file_id, repo_id, path, language, kind, start_line, end_line, "
                                "start_byte, end_byte, content, content_hash, length) FROM STDIN") as copy:
            for cid, path, kind in zip(ids, paths, kinds):
                copy.write_row((cid, cid >> 20, repo.id, path, "python", kind, 1, 1, 0, 0, "x", "", 1))
        vectors = rng.standard_normal((len(ids), DIMENSION)).astype(np.float16).astype(np.float32)
        Vectors(conn).store(model, [ChunkVectors(cid, repo.id, v, v) for cid, v in zip(ids, vectors)], {})
        for table in ("files", "chunks", vectors_table(model)):  # the planner's row counts, as a real index has
            conn.execute(f"ANALYZE {table}")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield Corpus(conn, model, repo.id, np.array(ids), paths, kinds, vectors)
        conn.rollback()


def query(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(DIMENSION).astype(np.float32)


def matching(corpus: Corpus, glob: str) -> np.ndarray:
    pattern = glob_to_regex(glob)
    return np.array([re.search(pattern, path) is not None for path in corpus.paths])


def test_the_corpus_puts_each_filter_on_the_intended_side_of_exact_max(corpus: Corpus) -> None:
    assert matching(corpus, "big/**").sum() > EXACT_MAX >= matching(corpus, "small/**").sum()


@pytest.mark.parametrize("seed", range(5))
def test_hnsw_with_the_re_sort_returns_the_exact_top_k_in_order(corpus: Corpus, seed: int) -> None:
    q = query(seed)
    with corpus.conn.transaction(force_rollback=True):
        before = corpus.hnsw_scans()
        hits = corpus.nearest(q, Filters(), 10)
        assert corpus.hnsw_scans() > before
    assert {cid for cid, _ in hits} == set(corpus.exact(q, 10))
    similarities = [sim for _, sim in hits]
    assert similarities == sorted(similarities, reverse=True)  # relaxed_order's candidates, re-sorted
    assert similarities == pytest.approx(corpus.similarities(q, [cid for cid, _ in hits]), abs=1e-3)


@pytest.mark.parametrize(("filters", "limit"), [
    (Filters(kinds=("function",)), 20),  # few pass: the index scan stops short, the exact pass completes it
    (Filters(path_glob="big/**", kinds=("function",)), 10),
    (Filters(path_glob="small/**"), 30),
    (Filters(path_glob="!big/**"), 30),
    (Filters(path_glob="big/**"), 100),
    (Filters(languages=("python",)), 100),
])
def test_a_filter_that_k_vectors_pass_returns_k(corpus: Corpus, filters: Filters, limit: int) -> None:
    keep = np.ones(len(corpus.ids), dtype=bool)
    if filters.path_glob:
        excluded = filters.path_glob.startswith("!")
        keep &= matching(corpus, filters.path_glob.removeprefix("!")) != excluded
    if filters.kinds:
        keep &= np.array([kind in filters.kinds for kind in corpus.kinds])
    assert keep.sum() >= limit
    q = query(11)
    # a scan budget far below the filtered set: main's single HNSW scan returned fewer than `limit` here
    hits = corpus.nearest(q, filters, limit, **{"hnsw.ef_search": "20", "hnsw.max_scan_tuples": "200"})
    assert len(hits) == limit
    assert [cid for cid, _ in hits][:5] == corpus.exact(q, 5, keep)


def test_a_selective_filter_is_ranked_exactly_without_the_index(corpus: Corpus) -> None:
    q = query(12)
    vectors = Vectors(corpus.conn)
    with corpus.conn.transaction(force_rollback=True):
        corpus.settle()
        before = corpus.hnsw_scans()
        hits = vectors.nearest(corpus.model, "code", q, [corpus.repo_id], Filters(path_glob="small/**"), 10)
        assert corpus.hnsw_scans() == before
        vectors.nearest(corpus.model, "code", q, [corpus.repo_id], Filters(path_glob="big/**"), 10)
        assert corpus.hnsw_scans() > before  # the probe sees a scan when there is one
    assert [cid for cid, _ in hits] == corpus.exact(q, 10, matching(corpus, "small/**"))


@pytest.mark.parametrize("filters", [Filters(path_glob="nowhere/**"), Filters(languages=("rust",)),
                                     Filters(path_glob="small/**", kinds=("class",))])
def test_a_filter_nothing_passes_returns_nothing(corpus: Corpus, filters: Filters) -> None:
    assert corpus.nearest(query(13), filters, 10) == []
