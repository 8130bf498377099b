"""The local embedder on the real bundled all-MiniLM-L6-v2, exported once into a temporary LODE_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lode.config import EmbeddingSettings, Settings
from lode.embedding import Embedder, EmbeddingError, get_embedder

READ_LINES = '''def read_lines(path):
    """Yield each line of a text file without its newline."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            yield line.rstrip("\\n")
'''
UNRELATED = '''def mean_rgb(pixels):
    """Average colour of an image given as (r, g, b) tuples."""
    n = len(pixels)
    return tuple(sum(p[i] for p in pixels) / n for i in range(3))
'''
LONG = "def handler(request):\n" + "".join(f"    value_{i} = request.get('field_{i}', {i})\n" for i in range(120))
TEXTS = ["read a file line by line", READ_LINES, UNRELATED, LONG, "", "x = 1"]


def local(home: Path, quantize: bool) -> Embedder:
    embedder = get_embedder(Settings(home=home, embedder="local", embedding=EmbeddingSettings(quantize=quantize)))
    assert embedder is not None
    return embedder


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lode-embed-home")


@pytest.fixture(scope="session")
def fp32(model_home: Path) -> Embedder:
    return local(model_home, quantize=False)


@pytest.fixture(scope="session")
def int8(model_home: Path) -> Embedder:
    return local(model_home, quantize=True)


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_unit_vectors_of_384_dimensions_in_input_order(variant: str, request: pytest.FixtureRequest) -> None:
    embedder: Embedder = request.getfixturevalue(variant)
    assert embedder.model_id == f"all-MiniLM-L6-v2@onnx-{variant}"
    assert embedder.dimension == 384
    result = embedder.embed(TEXTS)
    assert result.errors == {}
    for vector in result.vectors:
        assert vector is not None and vector.dtype == np.float32 and vector.shape == (384,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    # in input order (they run longest first, on parallel threads) and the same as each text embedded alone
    similarity = np.stack(result.vectors) @ np.stack([embedder.embed_query(t) for t in TEXTS]).T  # type: ignore[arg-type]
    assert list(similarity.argmax(axis=1)) == list(range(len(TEXTS)))
    assert similarity.diagonal().min() > 1 - 1e-5


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_a_query_is_closest_to_the_code_that_does_it(variant: str, request: pytest.FixtureRequest) -> None:
    embedder: Embedder = request.getfixturevalue(variant)
    query = embedder.embed_query("read a file line by line")
    reader, unrelated = embedder.embed([READ_LINES, UNRELATED]).vectors
    assert reader is not None and unrelated is not None
    assert float(query @ reader) > float(query @ unrelated) + 0.2


def test_a_non_string_fails_alone(fp32: Embedder) -> None:
    result = fp32.embed(["x = 1", None, "y = 2"])  # type: ignore[list-item]
    assert list(result.errors) == [1] and result.vectors[1] is None
    assert result.vectors[0] is not None and result.vectors[2] is not None


def test_fp32_matches_sentence_transformers(fp32: Embedder) -> None:
    st = pytest.importorskip("sentence_transformers")
    from lode.embedding.export import bundled_model_dir

    reference = st.SentenceTransformer(str(bundled_model_dir()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    ours = np.stack(fp32.embed(TEXTS).vectors)  # type: ignore[arg-type]
    cosines = (ours * reference).sum(axis=1)
    assert cosines.min() > 1 - 1e-4, cosines


def test_the_export_is_cached_and_leaves_no_temporary_files(fp32: Embedder, int8: Embedder, model_home: Path) -> None:
    fp32.embed_query("load both")
    int8.embed_query("load both")
    models = model_home / "models"
    files = sorted(p.name for p in models.iterdir())
    assert [f for f in files if f.endswith(".onnx")] == [
        f for f in files if f.startswith("all-MiniLM-L6-v2-") and f.endswith(("-fp32.onnx", "-int8.onnx"))
    ]
    assert len([f for f in files if f.endswith(".onnx")]) == 2 and not [f for f in files if f.endswith(".tmp")]
    stamps = {p: p.stat().st_mtime_ns for p in models.glob("*.onnx")}
    local(model_home, quantize=True).embed_query("reuse the cache")
    assert {p: p.stat().st_mtime_ns for p in models.glob("*.onnx")} == stamps


_CHILD = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    logging.basicConfig(level=logging.INFO, format="%(name)s %(message)s")
    from lode.config import EmbeddingSettings, Settings
    from lode.embedding import get_embedder
    settings = Settings(home=Path(sys.argv[1]), embedder="local", embedding=EmbeddingSettings(quantize=False))
    print(get_embedder(settings).embed_query("hello")[:3].tolist())
""")


def test_concurrent_processes_export_once(tmp_path: Path) -> None:
    children = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=180) for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert outputs[0][0] == outputs[1][0]  # the same vector from the one exported file
    assert sum(err.count("exported all-MiniLM-L6-v2") for _, err in outputs) == 1, outputs


def test_without_torch_the_export_asks_for_it(tmp_path: Path) -> None:
    code = "import sys; sys.modules['torch'] = None\n" + _CHILD  # torch cannot be imported
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert proc.returncode != 0
    last_line = proc.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"{EmbeddingError.__module__}.EmbeddingError: ")
    assert "pip install torch==2.13.0 transformers" in last_line
    assert not list((tmp_path / "models").glob("*.onnx"))


def test_embedding_threads_follow_lode_embed_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a container os.cpu_count() is the host's: LODE_EMBED_THREADS sets the pool to the CPU limit."""
    monkeypatch.setenv("LODE_EMBED_THREADS", "3")
    assert get_embedder(Settings(home=tmp_path, embedder="local")).threads == 3
    monkeypatch.setenv("LODE_EMBED_THREADS", "0")
    with pytest.raises(ValueError, match="threads"):
        Settings(home=tmp_path, embedder="local")
