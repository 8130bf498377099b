"""The static provider: a token table distilled from the shipped all-MiniLM-L6-v2, for very large repositories.

model2vec's recipe: each vocabulary token's output state, as the model sees it alone between [CLS] and [SEP], is
one row; PCA to 256 dimensions; a Zipf weight by vocabulary rank (BERT's vocabulary is roughly in frequency order).
A text is the weighted mean of its tokens' rows, so embedding costs a table lookup: about 50x the model's speed on
CPU, at a large quality cost (docs/benchmarks.md). model2vec's own distill needs torch and transformers, which the
lean install leaves out, so the table is distilled here through ONNX Runtime, once per LODE_HOME, and cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lode.embedding.base import EmbeddingError, EmbedResult
from lode.embedding.export import MODEL_NAME, SHIPPED_INT8, TOKENIZER, atomic_path, file_lock

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

DIMENSION = 256
MAX_TOKENS = 4096  # a lookup per token: far past the model's 256, still bounded
UNKNOWN_TOKEN = 100  # [UNK] in the model's vocabulary
_VERSION = "v1"  # bump when the recipe changes: the model id, hence the vectors table, changes with it
_BATCH = 1024  # tokens per model run while distilling; every run has the same 3-token shape, so no padding


class StaticEmbedder:
    """Distils the table on first use (about a minute on 2 cores), under a file lock shared by processes."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.model_id = f"{MODEL_NAME}@static-{_VERSION}"
        self._loaded: tuple[np.ndarray, np.ndarray, Tokenizer] | None = None
        self._load_lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed(self, texts: Sequence[str]) -> EmbedResult:
        vectors: list[np.ndarray | None] = []
        errors: dict[int, str] = {}
        for i, text in enumerate(texts):
            if isinstance(text, str):
                vectors.append(self.embed_query(text))
            else:
                vectors.append(None)
                errors[i] = "not a string"
        return EmbedResult(vectors, errors)

    def embed_query(self, text: str) -> np.ndarray:
        table, weights, tokenizer = self._load()
        # no words at all: [UNK]'s row, a constant direction, so the chunk is still stored and searchable
        ids = tokenizer.encode(text, add_special_tokens=False).ids[:MAX_TOKENS] or [UNKNOWN_TOKEN]
        pooled = (table[ids] * weights[ids, None]).sum(axis=0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)

    def _load(self) -> tuple[np.ndarray, np.ndarray, Tokenizer]:
        with self._load_lock:
            if self._loaded is None:
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(TOKENIZER))
                tokenizer.no_padding()
                tokenizer.no_truncation()
                table = np.load(self._table())
                ranks = np.arange(len(table), dtype=np.float32)
                self._loaded = table, np.log(ranks + 2), tokenizer
            return self._loaded

    def _table(self) -> Path:
        target = self.cache_dir / f"{MODEL_NAME}-static-{_VERSION}.npy"
        if target.exists():
            return target
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            with file_lock(self.cache_dir / f"{target.stem}.lock"):
                if target.exists():  # another process distilled it while we waited
                    return target
                log.warning("distilling the static embedder from %s in %s (once, about a minute)",
                            MODEL_NAME, self.cache_dir)
                started = time.monotonic()
                table = distill()
                with atomic_path(target) as tmp, open(tmp, "wb") as handle:
                    np.save(handle, table)
                log.info("distilled %s in %.1f s", target, time.monotonic() - started)
        except OSError as exc:
            raise EmbeddingError(f"cannot write the static embedder's table in {self.cache_dir}: {exc}") from exc
        return target


def token_states(token_ids: np.ndarray) -> np.ndarray:
    """The shipped model's output state of each token seen alone: [CLS] token [SEP], the middle position."""
    import onnxruntime
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    session = onnxruntime.InferenceSession(str(SHIPPED_INT8), providers=["CPUExecutionProvider"])
    states = np.empty((len(token_ids), 384), dtype=np.float32)
    for start in range(0, len(token_ids), _BATCH):
        ids = token_ids[start:start + _BATCH].astype(np.int64)
        batch = np.stack([np.full_like(ids, cls), ids, np.full_like(ids, sep)], axis=1)
        states[start:start + len(ids)] = session.run(None, {"input_ids": batch,
                                                            "attention_mask": np.ones_like(batch)})[0][:, 1]
    return states


def distill() -> np.ndarray:
    """The table: every vocabulary token's state, centred and projected on its first DIMENSION components."""
    from tokenizers import Tokenizer

    vocabulary = Tokenizer.from_file(str(TOKENIZER)).get_vocab_size()
    states = token_states(np.arange(vocabulary))
    centred = states - states.mean(axis=0)
    components = np.linalg.svd(centred, full_matrices=False)[2][:DIMENSION]
    return (centred @ components.T).astype(np.float32)
