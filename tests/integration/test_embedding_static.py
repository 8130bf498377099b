"""LODE_EMBEDDER=static: the token table distilled from the shipped model, its pooling, and semantic search with it
end to end on the real embedded PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from lode.config import Settings
from lode.embedding import get_embedder
from lode.embedding.export import MODEL_NAME, TOKENIZER
from lode.embedding.static import DIMENSION, UNKNOWN_TOKEN, StaticEmbedder, token_states
from lode.engine import Lode
from tests.support.trees import write_tree

CORPUS = {
    "archive/gzip_tools.py": 'def compress_file(path):\n    """Compress a file with gzip and write path.gz."""\n'
                             "    with open(path, 'rb') as src, gzip.open(path + '.gz', 'wb') as dst:\n"
                             "        shutil.copyfileobj(src, dst)\n",
    "net/download.py": 'def download_url(url, target):\n    """Download a web page over HTTP and save it."""\n'
                       "    response = httpx.get(url)\n    target.write_bytes(response.content)\n",
    "colour/pixels.py": 'def mean_rgb(pixels):\n    """Average colour of an image given as (r, g, b) tuples."""\n'
                        "    n = len(pixels)\n    return tuple(sum(p[i] for p in pixels) / n for i in range(3))\n",
}


@pytest.fixture(scope="module")
def static_home(lode: Lode) -> Path:
    """The session's LODE_HOME, its models folder holding the distilled table (distilled once for the module)."""
    StaticEmbedder(lode.settings.home / "models").embed_query("warm up")
    return lode.settings.home


def test_rows_are_the_models_states_of_each_token_alone() -> None:
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_padding()
    ids = np.array(tokenizer.encode("compress download color", add_special_tokens=False).ids)
    together = token_states(ids)
    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))

    # batched as distillation runs them or alone: the same state, to the noise of int8 activations scaled per run
    for i, token in enumerate(ids):
        assert cosine(token_states(np.array([token]))[0], together[i]) > 0.95
    assert cosine(together[0], together[1]) < 0.9  # and each token its own row


def test_text_is_the_weighted_mean_of_its_tokens(tmp_path: Path) -> None:
    """A hand-made table in the cache: no distillation, the pooling checked against its definition."""
    vocabulary = Tokenizer.from_file(str(TOKENIZER)).get_vocab_size()
    table = np.random.default_rng(7).normal(size=(vocabulary, DIMENSION)).astype(np.float32)
    models = tmp_path / "models"
    models.mkdir()
    np.save(models / f"{MODEL_NAME}-static-v1.npy", table)
    embedder = StaticEmbedder(models)
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_padding()  # tokenizer.json pads to 128 tokens
    ids = tokenizer.encode("compress a file", add_special_tokens=False).ids
    expected = (table[ids] * np.log(np.array(ids, dtype=np.float32) + 2)[:, None]).sum(axis=0)
    vector = embedder.embed_query("compress a file")
    assert vector.shape == (DIMENSION,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), rtol=1e-5, atol=1e-6)
    empty = embedder.embed_query("")  # no tokens: [UNK]'s row, still a unit vector
    np.testing.assert_allclose(empty, table[UNKNOWN_TOKEN] / np.linalg.norm(table[UNKNOWN_TOKEN]), rtol=1e-5)
    result = embedder.embed(["compress a file", 3, ""])  # type: ignore[list-item]
    assert result.errors == {1: "not a string"} and result.vectors[1] is None
    np.testing.assert_array_equal(result.vectors[0], vector)


def test_distilled_table_shape_and_cache(static_home: Path) -> None:
    cached = sorted(path.name for path in (static_home / "models").iterdir() if path.suffix == ".npy")
    assert cached == [f"{MODEL_NAME}-static-v1.npy"]
    table = np.load(static_home / "models" / cached[0])
    assert table.shape == (Tokenizer.from_file(str(TOKENIZER)).get_vocab_size(), DIMENSION)
    assert np.isfinite(table).all() and abs(float(table.mean())) < 1e-3  # centred by the PCA
    embedder = get_embedder(Settings(home=static_home, embedder="static"))
    assert isinstance(embedder, StaticEmbedder) and embedder.model_id == f"{MODEL_NAME}@static-v1"


def test_semantic_search_with_the_static_embedder(static_home: Path, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, CORPUS)
    engine = Lode(Settings(home=static_home, embedder="static"))
    try:
        engine.indexing.index(tmp_path, repo_name)
        progress = engine.embeddings.embed(repo_name)
        assert (progress.done, progress.pending, progress.failed) == (3, 0, 0)
        for query, expected in [("gzip compression of a file", "archive/gzip_tools.py"),
                                ("fetch a page from the web", "net/download.py"),
                                ("average colour of an image", "colour/pixels.py")]:
            hits = engine.search.query(query, repo=repo_name, mode="semantic", k=3)["hits"]
            assert hits[0]["path"] == expected, (query, [hit["path"] for hit in hits])
        with engine.db.connection() as conn:
            model = conn.execute("SELECT e.model_id FROM repositories r JOIN embedding_models e "
                                 "ON e.id = r.embedding_model WHERE r.name = %s", (repo_name,)).fetchone()[0]
        assert model == f"{MODEL_NAME}@static-v1"
    finally:
        engine.close()
