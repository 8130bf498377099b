"""Reference vectors for tests/integration/test_embedding_local.py, embedded by the torch export (needs the export
extra).

Usage: python bench/embed_reference.py [--out tests/fixtures/embedding_reference.npz]
The texts: CoSQA functions and queries (every 250th function, every 40th query) and edge cases (empty, one
token, non-Latin scripts, past the 256-token truncation). The int8 model is quantised afresh from a fresh fp32
export, as Lode did on first use before the model shipped; both embed through Lode's own pipeline (one text a
run, mean pooling, L2 normalisation). The default suite then checks the shipped model against them without torch.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cosqa import load
from lode.embedding.export import build_int8
from lode.embedding.local import LocalEmbedder

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "embedding_reference.npz"
EDGE_CASES = [
    "", "x", "x = 1", "    \n\t", "def f(): pass", "日本語のテキストを読み込む", "читать файл построчно",
    "emoji 🎉 in a comment # ✓", "function parseHTTPResponse(res) { return res.headers['content-type']; }",
    "def handler(request):\n" + "".join(f"    value_{i} = request.get('field_{i}', {i})\n" for i in range(120)),
]


def texts() -> list[str]:
    corpus, queries = load(None)
    functions = [corpus[i] for i in sorted(corpus)[::250]]
    return functions + [q["query"] for q in queries[::40]] + EDGE_CASES


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    inputs = texts()
    with tempfile.TemporaryDirectory(prefix="lode-reference-") as tmp:
        int8 = Path(tmp) / "int8.onnx"
        build_int8(int8)
        vectors = {
            "int8": LocalEmbedder(Path(tmp), quantize=True, threads=1, model=int8).embed(inputs).vectors,
            "fp32": LocalEmbedder(Path(tmp) / "cache", quantize=False, threads=1).embed(inputs).vectors,
        }
    np.savez_compressed(args.out, texts=np.array(inputs), **{k: np.stack(v) for k, v in vectors.items()})
    print(f"wrote {len(inputs)} texts to {args.out}")


if __name__ == "__main__":
    main()
