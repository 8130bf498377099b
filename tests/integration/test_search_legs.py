"""SearchService.legs: each leg's ranking before fusion, as a hybrid search runs them (the rankings
bench/fusion_tuning.py fuses offline). Fused, they give the hybrid search's order; alone, the lexical leg is the
lexical search; a leg that could not rank every chunk is an error, not a silent gap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lode.config import Settings
from lode.engine import Lode
from lode.errors import InputError, LodeError
from lode.search.fusion import WEIGHTS, fuse
from lode.store.search_rows import SearchRows
from tests.support.embedding_stub import http_env, start_stub
from tests.support.trees import SEMANTIC_CORPUS, write_tree

CORPUS = {
    **SEMANTIC_CORPUS,
    "io/lines.py": "def read_lines(path):\n    \"\"\"Read a file and return its lines.\"\"\"\n"
                   "    with open(path) as handle:\n        return handle.read().splitlines()\n",
    "io/writer.py": "def write_rows(fh, rows):\n    for row in rows:\n        fh.write(row)\n",
    "net/client.py": "def fetch_document(url):\n    \"\"\"Load the document at the url.\"\"\"\n    return get(url)\n",
    "docs/notes.py": "# lines of a file are read by read_lines; rows by slurp\nNOTES = 'file handle payload'\n",
}
QUERIES = ["read the lines of a file", "post the payload to the url", "slurp rows from the handle"]


@pytest.fixture(scope="module")
def engine(lode_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lode, str]]:
    """An engine with the ranking stage and the cache off, over a small tree embedded by the stub service."""
    proc, url = start_stub()
    root = tmp_path_factory.mktemp("legs-tree")
    write_tree(root, CORPUS)
    repo = f"t-{uuid.uuid4().hex[:10]}"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in http_env(url, f"stub-legs-{uuid.uuid4().hex[:8]}").items():
            patch.setenv(key, value)
        lode = Lode(Settings(home=lode_home, ranking="off", cache={"enabled": False}))
        try:
            lode.indexing.index(root, repo)
            assert lode.embeddings.embed(repo).pending == 0
            yield lode, repo
        finally:
            lode.close()
            proc.kill()
            proc.wait()


def _located(lode: Lode, ids: list[int]) -> list[tuple[str, int]]:
    with lode.db.read() as conn:
        rows = SearchRows(conn).hits(ids)
    return [(rows[cid][2], rows[cid][3]) for cid in ids]


@pytest.mark.parametrize("query", QUERIES)
def test_fused_legs_are_the_hybrid_searchs_order(engine: tuple[Lode, str], query: str) -> None:
    lode, repo = engine
    legs = lode.search.legs(query, repo=repo)
    assert set(legs) == {"lexical", "text", "code"} and all(legs.values())
    assert legs["text"] != legs["code"]  # two rankings, not one copied
    fused = fuse(legs, WEIGHTS)
    hits = lode.search.query(query, repo=repo, mode="hybrid", k=50)["hits"]
    assert [(h["path"], h["start_line"]) for h in hits] == _located(lode, [f.chunk_id for f in fused])
    assert [(h["score"], h["legs"]) for h in hits] == [(round(f.score, 6), f.ranks) for f in fused]


@pytest.mark.parametrize("query", QUERIES)
def test_the_lexical_leg_is_the_lexical_search(engine: tuple[Lode, str], query: str) -> None:
    lode, repo = engine
    lexical = lode.search.legs(query, repo=repo, depth=3)["lexical"]
    hits = lode.search.query(query, repo=repo, mode="lexical", k=3)["hits"]
    assert len(lexical) >= 2  # an order to compare
    assert [(h["path"], h["start_line"], h["score"]) for h in hits] == [
        (*where, round(score, 6)) for where, (_, score) in zip(_located(lode, [c for c, _ in lexical]), lexical)]


def test_a_leg_that_cannot_rank_every_chunk_is_an_error(engine: tuple[Lode, str], tmp_path: Path) -> None:
    lode, _ = engine
    write_tree(tmp_path, {"a.py": "def read_lines(path):\n    return open(path).readlines()\n"})
    unembedded = f"t-{uuid.uuid4().hex[:10]}"
    lode.indexing.index(tmp_path, unembedded)  # no vectors yet: the text and code legs cannot run
    with pytest.raises(LodeError, match="text, code"):
        lode.search.legs("read lines", repo=unembedded)
    with pytest.raises(InputError):
        lode.search.legs("read lines", repo=unembedded, depth=0)
