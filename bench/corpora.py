"""Benchmark corpora that exist offline: CPython's Lib/, the project's own site-packages, and synthetic replicas.

A replica of scale s is copies 0..ceil(s)-1 of a base tree, each under its own directory `copyK/`; copy 0 is
the base unchanged, copy K>0 has every top-level def/class name of the base (and every use of it, as a whole
identifier token, in code, strings and comments alike) suffixed with `_cK`, so no two copies share symbols.
A fractional last copy takes the first top-level entries of the base in sorted order (whole
packages). Only Python files are renamed; other files are copied verbatim.
"""

from __future__ import annotations

import keyword
import math
import re
import shutil
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Site-packages rules (deterministic): skip these distributions (torch alone is ~770 MB, mostly native code),
# compiled artefacts and anything over lode's file-size limit. What is left is source the indexer would read.
SITE_PACKAGES_SKIP_DIRS = frozenset({"torch", "__pycache__", "site-packages", "functorch", "torchgen"})
BINARY_SUFFIXES = frozenset({".so", ".pyd", ".dll", ".dylib", ".a", ".o", ".lib", ".exe", ".bin", ".onnx",
                             ".pyc", ".whl", ".zip", ".gz", ".xz", ".bz2", ".tar", ".pt", ".pth", ".npz", ".npy",
                             ".safetensors", ".pkl", ".dat", ".db", ".sqlite"})
MAX_FILE_BYTES = 1 << 20

TOP_LEVEL_DEF = re.compile(rb"^(?:async[ \t]+def|def|class)[ \t]+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
# An identifier token, or a \N{UNICODE NAME} escape, which is kept whole.
IDENTIFIER = re.compile(rb"\\N\{[^}\n]*\}|(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*")
# Renaming these would change how a file parses: keywords (test data defines `def or(...)`), soft keywords,
# string prefixes (f"..." is not f_c1"...") and the module hooks Python looks up by name.
NEVER_RENAME = frozenset(
    {w.encode() for w in keyword.kwlist + keyword.softkwlist}
    | {p.encode() for p in ("r", "u", "b", "f", "br", "rb", "fr", "rf", "t", "tr", "rt")}
    | {b"__init__", b"__getattr__", b"__dir__", b"__all__"})


@dataclass(frozen=True)
class Corpus:
    name: str
    root: Path
    files: int
    bytes: int


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def site_packages_dir() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def base_files(source: Path, skip_dirs: frozenset[str] = frozenset({"site-packages", "__pycache__"})) -> list[Path]:
    """Relative paths of the regular files a base corpus takes from `source`, sorted."""
    picked = []
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if any(part in skip_dirs for part in rel.parts[:-1]) or rel.parts[0] in skip_dirs:
            continue
        if path.is_symlink() or not path.is_file() or path.suffix.lower() in BINARY_SUFFIXES:
            continue
        if path.stat().st_size > MAX_FILE_BYTES:
            continue
        picked.append(rel)
    return sorted(picked)


def top_level_names(sources: list[bytes]) -> frozenset[bytes]:
    names = {m.group(1) for text in sources for m in TOP_LEVEL_DEF.finditer(text)}
    return frozenset(names - NEVER_RENAME)


def rename(text: bytes, names: frozenset[bytes], copy: int) -> bytes:
    """Suffix every whole identifier token in `names` with _c<copy> (copy 0 is returned unchanged)."""
    if copy == 0:
        return text
    suffix = b"_c%d" % copy
    return IDENTIFIER.sub(lambda m: m.group() + suffix if m.group() in names else m.group(), text)


def whole_entries(files: list[Path], share: float) -> list[Path]:
    """The first top-level entries (a package with all its files) holding at least `share` of the files: a
    package cut in half would leave imports dangling that no real tree has."""
    if share >= 1:
        return files
    target, taken, last = round(len(files) * share), [], None
    for rel in files:
        if len(taken) >= target and rel.parts[0] != last:
            break
        taken.append(rel)
        last = rel.parts[0]
    return taken


def complete_marker(target: Path) -> Path:
    """A finished tree's marker (its file count and bytes), beside the tree so that it is not indexed."""
    return target.with_name(target.name + ".complete")


def build(name: str, source: Path, target: Path, scale: float = 1.0,
          skip_dirs: frozenset[str] = frozenset({"site-packages", "__pycache__"})) -> Corpus:
    """Write `scale` copies of `source` under target/copyK/ (see the module docstring); reuse a finished tree."""
    done = complete_marker(target)
    files = base_files(source, skip_dirs)
    if done.exists():
        count, size = (int(x) for x in done.read_text().split())
        return Corpus(name, target, count, size)
    if target.exists():
        shutil.rmtree(target)
    python = [rel for rel in files if rel.suffix == ".py"]
    names = top_level_names([(source / rel).read_bytes() for rel in python]) if scale > 1 else frozenset()
    count = size = 0
    for copy in range(math.ceil(scale)):
        share = min(1.0, scale - copy)
        for rel in whole_entries(files, share):
            out = target / f"copy{copy}" / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            data = (source / rel).read_bytes()
            out.write_bytes(rename(data, names, copy) if rel.suffix == ".py" else data)
            count, size = count + 1, size + out.stat().st_size
    done.write_text(f"{count} {size}")
    return Corpus(name, target, count, size)


def stdlib(target: Path, scale: float = 1.0) -> Corpus:
    """CPython's Lib/ without site-packages (as bench/index_cpython.py copies it), `scale` times."""
    return build(f"lib-x{scale:g}", stdlib_dir(), target, scale)


def site_packages(target: Path, scale: float = 1.0) -> Corpus:
    """The project's own .venv site-packages under SITE_PACKAGES_SKIP_DIRS and the binary/size rules."""
    return build(f"site-packages-x{scale:g}", site_packages_dir(), target, scale, SITE_PACKAGES_SKIP_DIRS)
