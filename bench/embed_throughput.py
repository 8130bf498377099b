"""Local embedding throughput and the retrieval cost of int8, on the public CoSQA dev-500 set.

Usage: python bench/embed_throughput.py [--sample 1000] [--runs 3] [--queries N]
Throughput: chunks/s over the first `sample` functions (by id), median of `runs`, for sentence-transformers fp32
(the baseline, batches of 32 on all cores), ONNX Runtime in length-sorted batches of 32 on intra-op threads, and
Lode's scheme (each text alone, one single-threaded run per core), fp32 and int8. Quality: MRR@10 of dense-only
retrieval (brute-force cosine over all 6,267 functions, each query embedded alone as a search does) and the worst
cosine of a function's vector against Lode's fp32. The fp32 export time is measured on a fresh cache.
Needs the bench and export extras (the fp32 model and sentence-transformers come with the export extra).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, median, quality
from bench.cosqa import load
from lode.embedding.export import TOKENIZER, bundled_model_dir, onnx_model
from lode.embedding.local import MAX_TOKENS, LocalEmbedder

THREADS = os.cpu_count() or 1  # every encoder below uses all cores
Encode = Callable[[Sequence[str]], np.ndarray]
Query = Callable[[str], np.ndarray]


def lode_encoder(embedder: LocalEmbedder) -> tuple[Encode, Query]:
    def encode(texts: Sequence[str]) -> np.ndarray:
        return np.stack(embedder.embed(texts).vectors)  # type: ignore[arg-type]

    return encode, embedder.embed_query


def sentence_transformers_encoder() -> tuple[Encode, Query]:
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(THREADS)
    model = SentenceTransformer(str(bundled_model_dir()), device="cpu")

    def encode(texts: Sequence[str]) -> np.ndarray:
        return model.encode(list(texts), batch_size=32, normalize_embeddings=True)

    return encode, lambda text: encode([text])[0]


def batched_encoder(model: Path, batch_size: int = 32) -> tuple[Encode, Query]:
    """The usual ONNX recipe Lode does not use: length-sorted padded batches, intra-op threads = CPU count."""
    import onnxruntime
    from tokenizers import Tokenizer

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = THREADS
    session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()

    def encode(texts: Sequence[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            ids = np.zeros((len(batch), max(len(encodings[i].ids) for i in batch)), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, :len(encodings[i].ids)] = encodings[i].ids
            mask = (ids != 0).astype(np.int64)  # [PAD] is id 0 and never inside a text
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
            out[batch] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode, lambda text: encode([text])[0]


def per_tensor_int8(fp32: Path) -> LocalEmbedder:
    """ONNX Runtime's default dynamic quantisation (one scale per weight tensor)."""
    from onnxruntime.quantization import quantize_dynamic

    int8 = fp32.with_name("per-tensor-int8.onnx")
    quantize_dynamic(fp32, int8)
    return LocalEmbedder(fp32.parent, quantize=True, threads=THREADS, model=int8)


def throughput(encode: Encode, texts: list[str], runs: int) -> float:
    encode(texts[:64])  # warm up
    rates = []
    for _ in range(runs):
        started = time.perf_counter()
        encode(texts)
        rates.append(len(texts) / (time.perf_counter() - started))
    return median(rates)


def retrieval(encode: Encode, embed_query: Query, corpus: dict[int, str],
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
    sample = [corpus[i] for i in sorted(corpus)[:args.sample]]
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="lode-embed-bench-") as tmp:
        cache = Path(tmp) / "models"
        started = time.perf_counter()
        fp32 = onnx_model(cache, quantize=False)
        export_s = time.perf_counter() - started
        int8 = onnx_model(cache, quantize=True)  # the shipped one

        variants: dict[str, Callable[[], tuple[Encode, Query]]] = {
            "sentence-transformers fp32, batches of 32 (baseline)": sentence_transformers_encoder,
            "ONNX fp32, Lode (one text per run, a run per core)": lambda: lode_encoder(
                LocalEmbedder(cache, quantize=False, threads=THREADS)),
            "ONNX fp32, length-sorted batches of 32": lambda: batched_encoder(fp32),
            "ONNX int8 per-channel, length-sorted batches of 32": lambda: batched_encoder(int8),
            "ONNX int8 per-channel, Lode (default)":
                lambda: lode_encoder(LocalEmbedder(cache, quantize=True, threads=THREADS)),
            "ONNX int8 per-tensor (ORT's default), Lode": lambda: lode_encoder(per_tensor_int8(fp32)),
        }
        rows: dict[str, tuple[float, float | None, float | None]] = {}
        reference: np.ndarray | None = None
        for name, build in variants.items():
            encode, embed_query = build()
            rate = throughput(encode, sample, args.runs)
            mrr = cosine = None
            # sentence-transformers' vectors are Lode's fp32 (tests/integration/test_embedding_local.py)
            if not name.startswith("sentence-transformers"):
                matrix, mrr = retrieval(encode, embed_query, corpus, queries)
                reference = matrix if reference is None else reference
                cosine = float((matrix * reference).sum(axis=1).min())
            rows[name] = (rate, mrr, cosine)
            print(f"{name}: {rate:.1f} chunks/s, MRR@10 {mrr}", file=sys.stderr, flush=True)

    fp32_mrr = rows["ONNX fp32, Lode (one text per run, a run per core)"][1] or 0.0
    print(f"Local embedding, all-MiniLM-L6-v2, {len(sample)} CoSQA functions timed (median of {args.runs}), "
          f"dense-only MRR@10 on {len(queries)} queries over {len(corpus)} functions; {machine()}")
    print(f"One-time export to ONNX fp32: {export_s:.1f} s (the int8 model ships); "
          f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| variant | chunks/s | MRR@10 | ΔMRR vs fp32 | min cosine vs fp32 |\n| --- | --- | --- | --- | --- |")
    for name, (rate, mrr, cosine) in rows.items():
        cells = ("as fp32 | 0 | > 0.9999 (tested)" if mrr is None or cosine is None
                 else f"{mrr:.4f} | {mrr - fp32_mrr:+.4f} | {cosine:.3f}")
        print(f"| {name} | {rate:.1f} | {cells} |")


if __name__ == "__main__":
    main()
