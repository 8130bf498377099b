"""Local embedding throughput and the retrieval cost of int8, on the public CoSQA dev-500 set.

Usage: python bench/embed_throughput.py [--sample 1000] [--runs 3] [--queries N]
Throughput: chunks/s over the first `sample` functions (by id), median of `runs`, for sentence-transformers fp32
(the baseline), Lode's ONNX fp32 (length-sorted batches), Lode's int8 (per-channel weights, one text per run: the
default), the same int8 in batches of 32, and ONNX Runtime's default per-tensor int8. Quality: MRR@10 of dense-only retrieval (brute-force cosine over
all 6,267 functions, each query embedded alone as a search does) per variant, and the worst cosine of a
function's vector against fp32. The one-time export (fp32) and quantisation times are measured on a fresh cache.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, quality
from bench.cosqa import load
from lode.embedding.export import bundled_model_dir, onnx_model
from lode.embedding.local import LocalEmbedder

Encode = Callable[[Sequence[str]], np.ndarray]


def lode_encoder(embedder: LocalEmbedder) -> tuple[Encode, Callable[[str], np.ndarray]]:
    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.stack(embedder.embed(texts).vectors)  # type: ignore[arg-type]

    return encode, embedder.embed_query


def sentence_transformers_encoder() -> tuple[Encode, Callable[[str], np.ndarray]]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(bundled_model_dir()), device="cpu")

    def encode(texts: Sequence[str]) -> np.ndarray:
        return model.encode(list(texts), batch_size=32, normalize_embeddings=True)

    return encode, lambda text: encode([text])[0]


def batched_int8(cache: Path) -> LocalEmbedder:
    """int8 in length-sorted batches of 32, which Lode does not do: activation scales are shared per batch."""
    embedder = LocalEmbedder(cache, quantize=True)
    embedder.batch_size = 32
    return embedder


def per_tensor_int8(cache: Path, fp32: Path) -> LocalEmbedder:
    """ONNX Runtime's default dynamic quantisation (one scale per weight tensor), in a cache of its own."""
    from onnxruntime.quantization import quantize_dynamic

    quantize_dynamic(fp32, cache / fp32.name.replace("-fp32.onnx", "-int8.onnx"))
    return LocalEmbedder(cache, quantize=True)


def throughput(encode: Encode, texts: list[str], runs: int) -> float:
    encode(texts[:64])  # warm up
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        encode(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    return median(rates)


def retrieval(encode: Encode, embed_query: Callable[[str], np.ndarray], corpus: dict[int, str],
              queries: list[dict]) -> tuple[np.ndarray, float]:
    """The corpus matrix and MRR@10 of brute-force cosine retrieval."""
    ids = sorted(corpus)
    matrix = encode([corpus[i] for i in ids])
    scores = np.stack([embed_query(q["query"]) for q in queries]) @ matrix.T
    top = np.argsort(-scores, axis=1)[:, :10]
    rankings = [([f"f{ids[j]}" for j in row], f"f{q['target']}") for row, q in zip(top, queries)]
    return matrix, quality(rankings)["MRR@10"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=1000, help="functions timed for throughput")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--queries", type=int, default=None, help="only the first N queries")
    args = parser.parse_args()
    corpus, queries = load(args.queries)
    load_before = os.getloadavg()[0]
    sample = [corpus[i] for i in sorted(corpus)[:args.sample]]

    with tempfile.TemporaryDirectory(prefix="lode-embed-bench-") as tmp:
        cache, alt = Path(tmp) / "models", Path(tmp) / "per-tensor"
        started = time.perf_counter()
        fp32_path = onnx_model(cache, quantize=False)
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        onnx_model(cache, quantize=True)
        quantize_s = time.perf_counter() - started
        alt.mkdir()
        shutil.copy(fp32_path, alt / fp32_path.name)

        variants = {
            "sentence-transformers fp32 (baseline)": sentence_transformers_encoder,
            "ONNX fp32, length-sorted": lambda: lode_encoder(LocalEmbedder(cache, quantize=False)),
            "ONNX int8 per-channel, one text per run (default)": lambda: lode_encoder(LocalEmbedder(cache, quantize=True)),
            "ONNX int8 per-channel, batches of 32": lambda: lode_encoder(batched_int8(cache)),
            "ONNX int8 per-tensor (ORT default)": lambda: lode_encoder(per_tensor_int8(alt, fp32_path)),
        }
        rows: dict[str, tuple[float, float | None, float | None]] = {}
        reference: np.ndarray | None = None
        for name, build in variants.items():
            encode, embed_query = build()
            rate = throughput(encode, sample, args.runs)
            if name.startswith("sentence-transformers"):  # same vectors as ONNX fp32 (tests/test_embedding_local)
                rows[name] = (rate, None, None)
                continue
            matrix, mrr = retrieval(encode, embed_query, corpus, queries)
            reference = matrix if reference is None else reference
            rows[name] = (rate, mrr, float((matrix * reference).sum(axis=1).min()))
            print(f"{name}: {rate:.1f} chunks/s, MRR@10 {mrr:.4f}", file=sys.stderr, flush=True)

    fp32_mrr = rows["ONNX fp32, length-sorted"][1]
    print(f"Local embedding, all-MiniLM-L6-v2, {len(sample)} CoSQA functions timed (median of {args.runs}), "
          f"dense-only MRR@10 on {len(queries)} queries over {len(corpus)} functions; {machine()}")
    print(f"One-time export to ONNX fp32: {export_s:.1f} s; int8 quantisation: {quantize_s:.1f} s; "
          f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| variant | chunks/s | MRR@10 | ΔMRR vs fp32 | min cosine vs fp32 |\n| --- | --- | --- | --- | --- |")
    for name, (rate, mrr, cosine) in rows.items():
        quality_cells = "as ONNX fp32 | 0 | > 0.9999 (tested)" if mrr is None or fp32_mrr is None else \
            f"{mrr:.4f} | {mrr - fp32_mrr:+.4f} | {cosine:.3f}"
        print(f"| {name} | {rate:.1f} | {quality_cells} |")


if __name__ == "__main__":
    main()
