"""Pruned top-k lexical search (MaxScore over term_stats) against exhaustive BM25 scoring, on real stdlib files
indexed in the embedded PostgreSQL: the same chunks in the same order with the same scores, for many queries,
at several k, after a first load, after incremental changes and deletes, and over two repositories."""

from __future__ import annotations

import random
import shutil
import sysconfig
from pathlib import Path

import pytest

from lode.engine import Lode
from lode.search import lexical
from lode.search.filters import Filters

STDLIB = Path(sysconfig.get_paths()["stdlib"])
PACKAGES = ("json", "email", "logging", "concurrent", "importlib", "xml", "http", "urllib")  # ~200 files
LIMITS = (1, 10, 100)


def copy_corpus(target: Path, packages: tuple[str, ...] = PACKAGES) -> Path:
    for package in packages:
        shutil.copytree(STDLIB / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "test*"))
    return target


def repo_facts(lode: Lode, names: list[str]) -> tuple[list[int], int, int]:
    with lode.db.connection() as conn:
        rows = conn.execute(
            "SELECT id, chunk_count, total_length, term_stats_ready FROM repositories WHERE name = ANY(%s)", (names,)
        ).fetchall()
    assert len(rows) == len(names) and all(ready for *_, ready in rows)
    return [r[0] for r in rows], sum(r[1] for r in rows), sum(r[2] for r in rows)


def sample_queries(lode: Lode, names: list[str], count: int, seed: int) -> list[str]:
    """Docstring sentences, split names, and mixes of a rare term with common ones (the case pruning is for)."""
    with lode.db.connection() as conn:
        docs = [r[0] for r in conn.execute(
            "SELECT split_part(c.docstring, '.', 1) FROM chunks c JOIN repositories r ON r.id = c.repo_id"
            " WHERE r.name = ANY(%s) AND length(c.docstring) > 20 ORDER BY c.id", (names,))]
        symbols = [r[0] for r in conn.execute(
            "SELECT c.name FROM chunks c JOIN repositories r ON r.id = c.repo_id"
            " WHERE r.name = ANY(%s) AND c.name IS NOT NULL ORDER BY c.id", (names,))]
        terms = [r[0] for r in conn.execute(
            "SELECT term FROM term_stats s JOIN repositories r ON r.id = s.repo_id"
            " WHERE r.name = ANY(%s) AND df > 0 ORDER BY df DESC, term", (names,))]
    rng = random.Random(seed)
    common, rare = terms[:40], terms[len(terms) // 2:]
    mixes = [" ".join([rng.choice(rare), *rng.sample(common, rng.randint(1, 5))]) for _ in range(count // 4)]
    only_common = [" ".join(rng.sample(common, rng.randint(1, 4))) for _ in range(count // 4)]
    return (rng.sample(docs, min(count // 4, len(docs)))
            + [s.replace("_", " ") for s in rng.sample(symbols, min(count // 4, len(symbols)))]
            + mixes + only_common + ["self self return", "zzzunmatched", "zzzunmatched self"])


def exhaustive(lode: Lode, query: str, repo_ids: list[int], chunks: int, length: int,
               limit: int) -> list[tuple[int, float]]:
    with lode.db.connection() as conn:
        postings = lexical.term_scores(conn, query, repo_ids, chunks, length)
    if postings is None:
        return []
    ids, sums = lexical.accumulate(*postings)
    return [(int(ids[i]), float(sums[i])) for i in lexical.best(ids, sums, limit)]


def assert_pruned_equals_exhaustive(lode: Lode, names: list[str], seed: int) -> None:
    """Compare both rankings on sampled queries, at several k, directly and through lexical.search."""
    repo_ids, chunks, length = repo_facts(lode, names)
    for query in sample_queries(lode, names, 80, seed):
        for limit in LIMITS:
            with lode.db.connection() as conn:
                ranked = lexical.top_k(conn, lexical.query_terms(query), repo_ids, chunks, length, limit)
                through_search = lexical.search(conn, query, repo_ids, chunks, length, Filters(), limit)
            expected = exhaustive(lode, query, repo_ids, chunks, length, limit)
            assert ranked is not None and ranked[0] == expected, (query, limit)  # ids, order and float scores
            assert through_search == expected, (query, limit)


def assert_term_stats_match_postings(lode: Lode, name: str) -> None:
    with lode.db.connection() as conn:
        (repo_id,) = conn.execute("SELECT id FROM repositories WHERE name = %s", (name,)).fetchone()
        stats = dict(conn.execute("SELECT term, df FROM term_stats WHERE repo_id = %s AND df <> 0", (repo_id,)))
        counted = dict(conn.execute(
            "SELECT term, sum(length(chunk_ids) / 8) FROM postings WHERE repo_id = %s GROUP BY term", (repo_id,)))
    assert stats == counted


@pytest.fixture(scope="module")
def corpus(lode: Lode, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = copy_corpus(tmp_path_factory.mktemp("pruning") / "src")
    name = "pruning-stdlib"
    lode.indexing.index(root, name)
    return root, name


def test_pruned_top_k_equals_exhaustive_after_a_first_load(lode: Lode, corpus: tuple[Path, str]) -> None:
    _, name = corpus
    assert_term_stats_match_postings(lode, name)
    assert_pruned_equals_exhaustive(lode, [name], seed=1)


def test_common_terms_are_read_only_where_a_rarer_one_matched(lode: Lode, corpus: tuple[Path, str]) -> None:
    """A term in a few dozen chunks with the two most common terms: once the rare term's top 10 is known, the
    common terms cannot lift a chunk without it into the top 10, so they are read for its chunks' files only."""
    _, name = corpus
    repo_ids, chunks, length = repo_facts(lode, [name])
    with lode.db.connection() as conn:
        common = [r[0] for r in conn.execute(
            "SELECT term FROM term_stats WHERE repo_id = %s ORDER BY df DESC, term LIMIT 2", repo_ids)]
        rare = [r[0] for r in conn.execute(
            "SELECT term FROM term_stats WHERE repo_id = %s AND df BETWEEN 30 AND 60 ORDER BY term LIMIT 20",
            repo_ids)]
    assert len(rare) == 20
    for term in rare:
        query = " ".join([term, *common])
        with lode.db.connection() as conn:
            ranked = lexical.top_k(conn, lexical.query_terms(query), repo_ids, chunks, length, 10)
            assert ranked is not None
            pruned, read = ranked
            postings = lexical.term_scores(conn, query, repo_ids, chunks, length)
            within_its_files = conn.execute(
                """SELECT sum(length(chunk_ids) / 8) FROM postings WHERE repo_id = %(repo)s AND (term = %(rare)s
                   OR term = ANY(%(common)s) AND file_id IN (SELECT file_id FROM postings
                                                             WHERE repo_id = %(repo)s AND term = %(rare)s))""",
                {"repo": repo_ids[0], "rare": term, "common": common}).fetchone()[0]
        assert postings is not None and pruned == exhaustive(lode, query, repo_ids, chunks, length, 10)
        assert read <= within_its_files < len(postings[0]), query


def test_pruned_top_k_stays_exact_through_incremental_changes_and_deletes(
    lode: Lode, corpus: tuple[Path, str]
) -> None:
    root, name = corpus
    with lode.db.connection() as conn:
        indexed = [root / r[0] for r in conn.execute(
            "SELECT f.path FROM files f JOIN repositories r ON r.id = f.repo_id WHERE r.name = %s AND"
            " f.path LIKE '%%.py' ORDER BY f.path", (name,))]
    rng = random.Random(7)
    changed = rng.sample(indexed, 25)
    for path in changed[:15]:  # new chunks full of common terms, and a new rare one
        path.write_text(path.read_text() + "\n\ndef self_return_value(self):\n    'Return the value of self.'\n"
                        "    return self.value  # zqxrareword\n")
    for path in changed[15:]:
        path.unlink()
    shutil.copytree(STDLIB / "asyncio", root / "asyncio_copy", ignore=shutil.ignore_patterns("__pycache__"))
    report = lode.indexing.index(root, name)
    assert report.files_deleted == 10 and report.files_indexed > 15
    assert_term_stats_match_postings(lode, name)
    assert_pruned_equals_exhaustive(lode, [name], seed=2)
    shutil.rmtree(root / "asyncio_copy")  # a whole package gone: its terms' df falls to 0
    lode.indexing.index(root, name)
    assert_term_stats_match_postings(lode, name)
    assert_pruned_equals_exhaustive(lode, [name], seed=3)


def test_pruned_top_k_over_two_repositories(lode: Lode, corpus: tuple[Path, str], tmp_path: Path) -> None:
    _, name = corpus
    other = "pruning-other"
    lode.indexing.index(copy_corpus(tmp_path / "other", ("json", "email", "asyncio")), other)
    assert_pruned_equals_exhaustive(lode, [name, other], seed=4)


def test_a_repository_without_term_stats_is_searched_exhaustively_until_its_next_run(
    lode: Lode, tmp_path: Path, repo_name: str
) -> None:
    root = copy_corpus(tmp_path / "src", ("json",))
    lode.indexing.index(root, repo_name)
    with lode.db.connection() as conn:  # as an index from before migration 0016 is
        (repo_id,) = conn.execute("UPDATE repositories SET term_stats_ready = false WHERE name = %s RETURNING id",
                                  (repo_name,)).fetchone()
        conn.execute("DELETE FROM term_stats WHERE repo_id = %s", (repo_id,))
        conn.commit()
        chunks, length = conn.execute("SELECT chunk_count, total_length FROM repositories WHERE id = %s",
                                      (repo_id,)).fetchone()
        assert lexical.top_k(conn, lexical.query_terms("decode json object"), [repo_id], chunks, length, 10) is None
        hits = lexical.search(conn, "decode json object", [repo_id], chunks, length, Filters(), 10)
    assert hits and hits == exhaustive(lode, "decode json object", [repo_id], chunks, length, 10)
    lode.indexing.index(root, repo_name)  # nothing changed; its maintenance rebuilds the stats
    assert_term_stats_match_postings(lode, repo_name)
    assert_pruned_equals_exhaustive(lode, [repo_name], seed=5)

