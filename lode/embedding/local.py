"""The local provider: all-MiniLM-L6-v2 on ONNX Runtime (CPU), tokenised with the `tokenizers` library.

Sentence-transformers' recipe without torch: truncation at 256 tokens, mean pooling, L2 normalisation. Each text
runs alone (no padding), on LODE_EMBED_THREADS threads (default: the CPU count), each run single-threaded. On 2 cores
(bench/embed_throughput.py) that matches length-sorted batches of 32 on intra-op threads in fp32, beats them in
int8 (200 against 170 chunks/s), holds up better when other processes share the CPUs, and keeps int8 vectors
independent of batch-mates: dynamic quantisation scales activations per run, and batched int8 lost 0.008 MRR@10
on CoSQA where one text per run loses 0.002.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lode.config import BreakerSettings
from lode.embedding.base import BREAKER, EmbeddingError, EmbedResult, ProviderUnavailable
from lode.embedding.export import MODEL_NAME, TOKENIZER, onnx_model
from lode.resilience import CircuitBreakerError, guard

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Encoding, Tokenizer

DIMENSION = 384
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


class LocalEmbedder:
    """Loads the model lazily, so building one costs nothing: the shipped int8 file, or the fp32 export (made on
    first use, with the export extra)."""

    def __init__(self, cache_dir: Path, *, quantize: bool, threads: int, model: Path | None = None,
                 breakers: BreakerSettings | None = None) -> None:
        self.cache_dir = cache_dir
        self.breakers = breakers or BreakerSettings()  # its "embedder" breaker's limits; None: LODE_BREAKER_* now
        self.quantize = quantize
        self.threads = threads
        self.model = model  # another ONNX file of this model (benchmarks and reference vectors compare variants)
        self.model_id = f"{MODEL_NAME}@onnx-{'int8' if quantize else 'fp32'}"
        self._loaded: tuple[onnxruntime.InferenceSession, Tokenizer] | None = None
        self._load_lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed(self, texts: Sequence[str]) -> EmbedResult:
        with _breaker(self.breakers):
            return self._embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        with _breaker(self.breakers):
            session, tokenizer = self._load()
            return _run(session, tokenizer.encode(text))

    def _embed(self, texts: Sequence[str]) -> EmbedResult:
        vectors: list[np.ndarray | None] = [None] * len(texts)
        errors = {i: "not a string" for i, text in enumerate(texts) if not isinstance(text, str)}
        valid = [i for i in range(len(texts)) if i not in errors]
        if not valid:
            return EmbedResult(vectors, errors)
        session, tokenizer = self._load()
        encodings = dict(zip(valid, tokenizer.encode_batch([texts[i] for i in valid])))
        longest_first = sorted(valid, key=lambda i: -len(encodings[i].ids))  # balances the threads' work
        with ThreadPoolExecutor(self.threads, thread_name_prefix="lode-embed") as pool:
            for i, vector in zip(longest_first, pool.map(lambda i: _run(session, encodings[i]), longest_first)):
                vectors[i] = vector
        return EmbedResult(vectors, errors)

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        with self._load_lock:
            if self._loaded is None:
                self._loaded = self._open()
            return self._loaded

    def _open(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        import onnxruntime
        from tokenizers import Tokenizer

        path = self.model or onnx_model(self.cache_dir, self.quantize)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # parallel across texts instead
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EmbeddingError(f"cannot load {path}: {exc}".splitlines()[0]) from exc
        tokenizer = Tokenizer.from_file(str(TOKENIZER))
        tokenizer.enable_truncation(MAX_TOKENS)
        tokenizer.no_padding()  # tokenizer.json pads to 128 tokens
        return session, tokenizer


@contextmanager
def _breaker(config: BreakerSettings) -> Iterator[None]:
    """The "embedder" breaker: a failing model counts against it; while it is open, calls fail at once."""
    try:
        with guard(BREAKER, EmbeddingError, config=config):
            yield
    except CircuitBreakerError as exc:
        raise ProviderUnavailable(f"the local model is unavailable: {exc}") from exc


def _run(session: onnxruntime.InferenceSession, encoding: Encoding) -> np.ndarray:
    """The unit vector of one text: mean of its token states, L2-normalised."""
    ids = np.asarray([encoding.ids], dtype=np.int64)
    try:
        hidden = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]
    except Exception as exc:  # an ONNX Runtime failure is the model's, not the text's
        raise EmbeddingError(f"the local model failed: {exc}".splitlines()[0]) from exc
    pooled = hidden.mean(axis=0)
    return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)
