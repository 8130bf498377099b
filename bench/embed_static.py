"""The static embedder against the shipped model: throughput and dense-only retrieval on CoSQA dev-500.

Usage: python bench/embed_static.py [--sample 1000] [--runs 3]
Throughput: chunks/s (two views each: the TEXT view is the function's docstring and name, the CODE view its source)
over the first `sample` functions, median of `runs`, for the shipped int8 model at its 256 tokens, the same model
with the CODE view cut at 128 tokens, and LODE_EMBEDDER=static. Quality: MRR@10 of brute-force cosine over all
6,267 functions' CODE views, each query embedded alone as a search does. Needs the bench extra.
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
from lode.embedding import local
from lode.embedding.base import Embedder
from lode.embedding.static import StaticEmbedder
from lode.embedding.views import humanize

THREADS = os.cpu_count() or 1
Encode = Callable[[Sequence[str]], np.ndarray]


def stacked(embedder: Embedder) -> Encode:
    return lambda texts: np.stack(embedder.embed(texts).vectors)  # type: ignore[arg-type]


def text_view(code: str) -> str:
    """A stand-in for the chunk's TEXT view: its first line (the signature) in words, and its docstring lines."""
    first, _, rest = code.partition("\n")
    words = [humanize(first)] + [line.strip() for line in rest.splitlines() if line.strip().startswith(('"', "#"))]
    return "\n".join(words)


def throughput(encode: Encode, codes: list[str], runs: int) -> float:
    texts = [text_view(code) for code in codes]
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        encode(texts)
        encode(codes)
        timings.append(time.perf_counter() - started)
    return len(codes) / median(timings)


def retrieval(encode: Encode, embed_query: Callable[[str], np.ndarray], corpus: dict[int, str],
              queries: list[dict]) -> dict[str, float]:
    ids = sorted(corpus)
    matrix = encode([corpus[i] for i in ids])
    rankings = []
    for query in queries:
        top = np.argsort(-(matrix @ embed_query(query["query"])))[:10]
        rankings.append(([f"f{ids[i]}.py" for i in top], f"f{query['target']}.py"))
    return quality(rankings)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=1000, help="functions timed for throughput")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corpus, queries = load(None)
    sample = [corpus[i] for i in sorted(corpus)[: args.sample]]
    with tempfile.TemporaryDirectory(prefix="lode-static-") as tmp:
        started = time.perf_counter()
        static = StaticEmbedder(Path(tmp))
        static.embed_query("warm")  # distils the table
        distill_seconds = time.perf_counter() - started
        model = local.LocalEmbedder(Path(tmp), quantize=True, threads=THREADS)
        rows = {"int8 model, 256 tokens (default)": (stacked(model), model.embed_query)}
        rows["static (LODE_EMBEDDER=static)"] = (stacked(static), static.embed_query)
        results = {name: (throughput(encode, sample, args.runs), retrieval(encode, query, corpus, queries))
                   for name, (encode, query) in rows.items()}
        local.MAX_TOKENS = 128  # read when the model loads: a fresh embedder cuts at 128
        short = local.LocalEmbedder(Path(tmp), quantize=True, threads=THREADS)
        results["int8 model, 128 tokens"] = (throughput(stacked(short), sample, args.runs),
                                             retrieval(stacked(short), short.embed_query, corpus, queries))
    print(f"CoSQA dev-500: {len(queries)} queries over {len(corpus)} functions; {machine()}")
    print(f"static table distilled in {distill_seconds:.1f} s")
    print("| embedder | chunks/s (2 views) | ratio | dense MRR@10 | R@10 |\n| --- | --- | --- | --- | --- |")
    base = results["int8 model, 256 tokens (default)"][0]
    for name, (speed, metrics) in results.items():
        print(f"| {name} | {speed:.0f} | {speed / base:.2f}x | {metrics['MRR@10']:.3f} | {metrics['R@10']:.3f} |")


if __name__ == "__main__":
    main()
