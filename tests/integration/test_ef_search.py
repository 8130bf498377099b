"""hnsw.ef_search of the vector legs: LODE_EF_SEARCH, the auto schedule, and what a real search sets."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from lode.config import Settings
from lode.engine import Lode
from lode.services.search import CHUNKS_PER_EF, EF_SEARCH_MAX, EF_SEARCH_MIN, LEG_DEPTH, ef_search
from lode.store.vectors import HNSW_EF_CONSTRUCTION, HNSW_M, LEGS, Vectors, vectors_table
from tests.support.trees import SEMANTIC_CORPUS, write_tree
from tests.support.embedding_stub import http_env


def test_auto_grows_with_the_index_within_pgvectors_range() -> None:
    sizes = [0, 1_000, 10_000, 30_000, 66_000, 125_000, 264_000, 527_000, 10_000_000]
    efs = [ef_search("auto", n, LEG_DEPTH) for n in sizes]
    assert efs == sorted(efs), "never fewer candidates for a larger index"
    assert efs[0] == EF_SEARCH_MIN and efs[-1] == EF_SEARCH_MAX == 1000  # pgvector refuses more than 1000
    assert ef_search("auto", CHUNKS_PER_EF * 400, LEG_DEPTH) == 400
    assert ef_search("auto", CHUNKS_PER_EF * 400 + 1, LEG_DEPTH) == 401  # rounded up


def test_never_below_the_legs_depth_nor_above_the_maximum() -> None:
    assert ef_search("auto", 0, 150) == 150
    assert ef_search(40, 1_000_000, 100) == 100  # a fixed setting still returns a whole leg
    assert ef_search(40, 1_000_000, 10) == 40
    assert ef_search(600, 0, 100) == 600
    assert ef_search("auto", 0, 5000) == EF_SEARCH_MAX


@pytest.mark.parametrize(("raw", "parsed"), [("auto", "auto"), ("400", 400), ("1", 1), ("1000", 1000)])
def test_setting_parses(raw: str, parsed: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODE_EF_SEARCH", raw)
    assert Settings().ef_search == parsed


@pytest.mark.parametrize("raw", ["0", "1001", "-5", "12.5", "fast", ""])
def test_bad_setting_is_refused(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODE_EF_SEARCH", raw)
    with pytest.raises(ValidationError, match="ef_search"):
        Settings()


def test_searches_run_their_legs_with_the_decided_ef(lode_home: Path, tmp_path: Path, stub: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    model = f"stub-ef-{uuid.uuid4().hex[:8]}"  # a model, so vector tables, of its own: a known graph size
    for key, value in http_env(stub, model).items():
        monkeypatch.setenv(key, value)
    write_tree(tmp_path, SEMANTIC_CORPUS)
    repo = f"t-{uuid.uuid4().hex[:10]}"
    engine = Lode(Settings(home=lode_home))
    try:
        engine.indexing.index(tmp_path, repo)
        engine.embeddings.embed(repo)
        with engine.db.connection() as conn:
            model_row = conn.execute("SELECT embedding_model FROM repositories WHERE name = %s", (repo,)).fetchone()
            stored = conn.execute(f"SELECT count(*) FROM {vectors_table(model_row[0])}").fetchone()[0]
            assert Vectors(conn).served_chunks(model_row[0]) == stored == len(SEMANTIC_CORPUS)
            built = conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%hnsw%%'",
                                 (vectors_table(model_row[0]),)).fetchall()
            assert len(built) == len(LEGS) and all(
                f"m='{HNSW_M}', ef_construction='{HNSW_EF_CONSTRUCTION}'" in row[0] for row in built), built
    finally:
        engine.close()

    seen: list[int] = []
    nearest = Vectors.nearest

    def recording(self: Vectors, *args: object, **kwargs: object) -> object:
        seen.append(int(self.conn.execute("SHOW hnsw.ef_search").fetchone()[0]))
        return nearest(self, *args, **kwargs)

    monkeypatch.setattr(Vectors, "nearest", recording)
    monkeypatch.setattr(Vectors, "served_chunks", lambda self, model: 66_000)  # as if the graphs were that large
    for setting, k, expected in [("auto", 10, ef_search("auto", 66_000, LEG_DEPTH)), (150, 10, 150), (150, 200, 200)]:
        seen.clear()
        engine = Lode(Settings(home=lode_home, ef_search=setting, cache={"enabled": False}))
        try:
            answer = engine.search.query("post payload", repo=repo, mode="semantic", k=k)
        finally:
            engine.close()
        assert answer["degraded"] == [] and answer["hits"]
        assert seen == [expected, expected], (setting, k)  # both legs
    assert ef_search("auto", 66_000, LEG_DEPTH) > EF_SEARCH_MIN  # the auto case differs from the floor
