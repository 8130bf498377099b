"""The default embedder (the shipped int8 model) against the torch export it replaced, on the whole CoSQA dev set.

Usage: python bench/embed_equivalence.py [--queries N]   (needs the export extra: torch, the weights)
The reference is what Lode did on first use before the model shipped: a fresh torch export of the weights package,
quantised by ONNX Runtime. Both embed the 6,267 functions and the 500 queries through Lode's pipeline; the table
gives the per-text cosine between the two and dense-only MRR@10 (brute-force cosine, as bench/embed_throughput.py).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, quality
from bench.cosqa import load
from lode.config import Settings
from lode.embedding import get_embedder
from lode.embedding.export import SHIPPED_INT8, build_int8
from lode.embedding.local import LocalEmbedder


def mrr(functions: np.ndarray, queries: np.ndarray, ids: list[int], targets: list[int]) -> float:
    top = np.argsort(-(queries @ functions.T), axis=1)[:, :10]
    return quality([([ids[j] for j in row], target) for row, target in zip(top, targets)])["MRR@10"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries")
    args = parser.parse_args()
    corpus, queries = load(args.queries)
    ids = sorted(corpus)
    texts = [corpus[i] for i in ids]
    questions = [q["query"] for q in queries]
    with tempfile.TemporaryDirectory(prefix="lode-equivalence-") as tmp:
        shipped = get_embedder(Settings(home=Path(tmp), embedder="local"))
        assert isinstance(shipped, LocalEmbedder) and shipped.quantize
        exported = Path(tmp) / "exported-int8.onnx"
        build_int8(exported)
        reference = LocalEmbedder(Path(tmp), quantize=True, threads=shipped.threads, model=exported)
        same_bytes = (hashlib.sha256(exported.read_bytes()).digest()
                      == hashlib.sha256(SHIPPED_INT8.read_bytes()).digest())
        vectors = {}
        for name, embedder in (("shipped", shipped), ("torch export", reference)):
            vectors[name] = (np.stack(embedder.embed(texts).vectors),
                             np.stack([embedder.embed_query(q) for q in questions]))
            print(f"embedded with {name}", file=sys.stderr, flush=True)

    (new_f, new_q), (old_f, old_q) = vectors["shipped"], vectors["torch export"]
    cos_f, cos_q = (new_f * old_f).sum(axis=1), (new_q * old_q).sum(axis=1)
    targets = [q["target"] for q in queries]
    mrr_new, mrr_old = mrr(new_f, new_q, ids, targets), mrr(old_f, old_q, ids, targets)
    print(f"Shipped int8 model against a fresh torch export + int8 quantisation, CoSQA dev: {len(texts):,} functions, "
          f"{len(questions)} queries; {machine()}\n")
    print(f"The two ONNX files are {'byte for byte the same' if same_bytes else 'different files'}.\n")
    print("| texts | n | min cosine | texts below 0.999 |\n| --- | --- | --- | --- |")
    for label, cosines in (("functions", cos_f), ("queries", cos_q)):
        print(f"| {label} | {len(cosines):,} | {cosines.min():.6f} | {int((cosines < 0.999).sum())} |")
    print(f"\nDense-only MRR@10: shipped {mrr_new:.4f}, torch export {mrr_old:.4f}, "
          f"difference {mrr_new - mrr_old:+.4f}")


if __name__ == "__main__":
    main()
