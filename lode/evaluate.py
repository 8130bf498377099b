"""Retrieval evaluation: metrics, `lode eval FILE`, and the self-supervised docstring benchmark generator."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lode.errors import InputError

if TYPE_CHECKING:
    from lode.engine import Lode

METRICS = ("MRR@10", "nDCG@10", "R@1", "R@5", "R@10")


@dataclass(frozen=True, slots=True)
class Case:
    query: str
    expected: tuple[tuple[str, str | None], ...]  # (path, name_path or None)


def relevant(hit: dict[str, Any], case: Case) -> int | None:
    """The index of the expected item this hit satisfies, or None."""
    for i, (path, name_path) in enumerate(case.expected):
        if hit["path"] == path and (name_path is None or hit["name_path"] == name_path):
            return i
    return None


def score(ranked: Sequence[int | None], n_expected: int) -> dict[str, float]:
    """Metrics for one query from the relevance of its ranked hits (expected-item index, or None)."""
    seen: set[int] = set()
    gains = []
    for item in ranked:
        fresh = item is not None and item not in seen  # an expected item counts once, at its best rank
        if item is not None:
            seen.add(item)
        gains.append(1.0 if fresh else 0.0)
    first = next((i for i, g in enumerate(gains[:10]) if g), None)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(n_expected, 10)))
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains[:10]))
    return {
        "MRR@10": 0.0 if first is None else 1.0 / (first + 1),
        "nDCG@10": dcg / ideal if ideal else 0.0,
        "R@1": sum(gains[:1]) / n_expected,
        "R@5": sum(gains[:5]) / n_expected,
        "R@10": sum(gains[:10]) / n_expected,
    }


def mean(rows: Iterable[dict[str, float]]) -> dict[str, float]:
    rows = list(rows)
    return {m: round(sum(r[m] for r in rows) / len(rows), 4) if rows else 0.0 for m in METRICS}


def load_cases(path: Path) -> list[Case]:
    cases = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            expected = tuple((str(e["path"]), e.get("name_path")) for e in raw["expected"])
            if not isinstance(raw["query"], str) or not expected:
                raise ValueError("needs a query string and at least one expected item")
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}:{number}: not a benchmark line ({exc})") from None
        cases.append(Case(raw["query"], expected))
    if not cases:
        raise InputError(f"{path}: no benchmark lines")
    return cases


def evaluate(lode: Lode, cases: Sequence[Case], repo: str | None, modes: Sequence[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for mode in modes:
        per_query = []
        degraded: set[str] = set()
        for case in cases:
            response = lode.search.query(case.query, repo=repo, mode=mode, k=10)
            degraded.update(response["degraded"])
            ranked = [relevant(hit, case) for hit in response["hits"]]
            per_query.append(score(ranked, len(case.expected)))
        results[mode] = mean(per_query) | {"degraded": sorted(degraded)}
    return {"queries": len(cases), "modes": results}


def generate_docstring_benchmark(source: Path, out: Path, limit: int, seed: int = 0) -> dict[str, Any]:
    """Copy the Python files of `source` to out/tree with docstrings blanked, and write out/queries.jsonl:
    one query per function with a docstring of ≥ 5 words (its first sentence), expecting that function."""
    from lode.chunking import chunk_file
    from lode.chunking.treesitter import ParseTimeout, parse
    from lode.config import get_settings
    from lode.languages import module_name

    settings = get_settings()
    tree_dir = out / "tree"
    paths = sorted(p for p in source.rglob("*.py") if p.is_file() and not p.is_symlink())
    rels = frozenset(p.relative_to(source).as_posix() for p in paths)
    cases = []
    for file in paths:
        rel = file.relative_to(source).as_posix()
        try:
            data = file.read_bytes()
            text = data.decode("utf-8")
            tree = parse("python", data, settings.timeouts.parse)
        except (OSError, UnicodeDecodeError, ParseTimeout):
            continue
        for chunk in chunk_file(rel, text, "python", module_name(rel, rels, "python"), settings).chunks:
            doc = chunk.docstring
            if chunk.kind in ("function", "method") and doc:
                sentence = " ".join(doc.strip().split("\n\n")[0].split(". ")[0].split()).rstrip(".")
                if len(sentence.split()) >= 5:
                    cases.append({"query": sentence, "expected": [{"path": rel, "name_path": chunk.name_path}]})
        blanked = bytearray(data)
        for start, end in _docstring_ranges(tree.root_node):
            blanked[start:end] = bytes(b if b == 0x0A else 0x20 for b in data[start:end])
        target = tree_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(blanked))
    random.Random(seed).shuffle(cases)
    cases = cases[:limit]
    out.mkdir(parents=True, exist_ok=True)
    (out / "queries.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    return {"tree": str(tree_dir), "queries": str(out / "queries.jsonl"), "cases": len(cases)}


def _docstring_ranges(node: Any) -> Iterable[tuple[int, int]]:
    """Byte ranges of the contents (inside the quotes) of module, class and function docstrings."""
    stack = [node]
    while stack:
        current = stack.pop()
        body = current if current.type == "module" else current.child_by_field_name("body")
        if body is not None and body.named_children:
            first = body.named_children[0]
            if (first.type == "expression_statement" and first.named_children
                    and first.named_children[0].type == "string"):
                content = [c for c in first.named_children[0].named_children if c.type == "string_content"]
                for piece in content:
                    yield piece.start_byte, piece.end_byte
        stack.extend(c for c in current.named_children
                     if c.type in ("function_definition", "class_definition", "decorated_definition", "block"))
