"""Python call edges against an independent oracle: Jedi's goto on every call site of installed packages.

Each package is copied from site-packages into a fresh repository and built as the indexer builds it; Jedi reads
the original files (same text, same lines). A call site is a (file, line) holding an `ast.Call`; on a sample of
lines, Jedi's `goto(follow_imports=True)` on each callee name gives the true targets, kept when they are
functions or classes that are graph nodes of the package (nested functions are no nodes, by design). Lode's
edges are its in-repository `calls` edges on the same lines. Precision and recall count (file, line, target),
a target by its qualified name: a stub (`x.pyi`) and its module, or two guarded variants, are one symbol.

Disagreements are classified mechanically (what each side said at that site) and a sample of each class is
printed with its line of code, to be read by hand: docs/benchmarks.md gives the verdicts and the adjudicated
figures they lead to. Jedi's answers are cached per package version (--cache), as they take minutes.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import random
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jedi

from bench.graph_accuracy import build
from lode.engine import Lode

# distribution -> the top-level packages it installs (attrs ships attr/ and attrs/, which re-exports attr)
PACKAGES = {"click": ("click",), "httpx": ("httpx",), "rich": ("rich",), "attrs": ("attr", "attrs")}

Site = tuple[str, int]  # (path, line)
Edge = tuple[str, int, str]  # (path, line, target name path)


@dataclass
class Result:
    package: str
    lines: int
    truth: set[Edge]
    found: set[Edge]
    classes: Counter[str]
    samples: dict[str, list[str]]


def _site_packages(top: str) -> Path:
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{top} is not installed: pip install it into this venv")
    return Path(spec.origin).parent.parent


def _call_lines(text: str) -> dict[int, list[tuple[int, int]]]:
    """line -> (line, column) of each callee's last name on it."""
    lines: dict[int, list[tuple[int, int]]] = {}
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        if isinstance(function, ast.Attribute) and function.end_lineno is not None and function.end_col_offset:
            position = (function.end_lineno, function.end_col_offset - len(function.attr))
        elif isinstance(function, ast.Name):
            position = (function.lineno, function.col_offset)
        else:
            continue
        lines.setdefault(node.lineno, []).append(position)
    return lines


def _jedi_targets(root: Path, path: str, text: str, positions: list[tuple[int, int]]) -> list[tuple[str, int, str]]:
    """(path relative to root, line, name) of each function or class definition Jedi's goto reaches in root."""
    script = jedi.Script(text, path=root / path, project=jedi.Project(path=root))
    found = []
    for line, column in positions:
        for name in script.goto(line, column, follow_imports=True):
            module = name.module_path
            if name.type not in ("function", "class") or module is None or name.line is None:
                continue
            try:
                relative = Path(module).resolve().relative_to(root.resolve())
            except ValueError:
                continue
            found.append((relative.as_posix(), name.line, name.name))
    return found


def _oracle(root: Path, tops: tuple[str, ...], max_lines: int, seed: int, cache: Path) -> dict[str, Any]:
    """{"lines": [[path, line], ...], "targets": {"path:line": [[path, line, name], ...]}}, cached."""
    sites: list[Site] = []
    texts: dict[str, str] = {}
    for top in tops:
        for file in sorted((root / top).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            texts[path] = file.read_text()
            sites += [(path, line) for line in sorted(_call_lines(texts[path]))]
    chosen = sorted(random.Random(seed).sample(sites, min(max_lines, len(sites))))
    key = f"{max_lines}-{seed}-{len(sites)}"
    if cache.exists() and (stored := json.loads(cache.read_text())).get("key") == key:
        return stored
    by_file: dict[str, list[int]] = {}
    for path, line in chosen:
        by_file.setdefault(path, []).append(line)
    targets: dict[str, list[tuple[str, int, str]]] = {}
    for path, lines in by_file.items():
        calls = _call_lines(texts[path])
        for line in lines:
            targets[f"{path}:{line}"] = _jedi_targets(root, path, texts[path], calls[line])
    result = {"key": key, "lines": chosen, "targets": targets}
    cache.write_text(json.dumps(result))
    return result


def measure(engine: Lode, package: str, max_lines: int, seed: int, cache_dir: Path, show: int) -> Result:
    tops = PACKAGES.get(package, (package,))  # an importable package of that name
    root = _site_packages(tops[0])
    version = importlib.metadata.version(package)
    oracle = _oracle(root, tops, max_lines, seed, cache_dir / f"jedi-{package}-{version}-{jedi.__version__}.json")
    work = Path(tempfile.mkdtemp(prefix=f"lode-oracle-{package}-"))
    for top in tops:
        shutil.copytree(root / top, work / top, ignore=shutil.ignore_patterns("__pycache__"))
    try:
        repo_id = build(engine, f"graph-oracle-{package}", work)
        with engine.db.connection() as conn:
            nodes = conn.execute(
                "SELECT id, path, name, start_line, end_line, name_path FROM graph_nodes WHERE repo_id = %s",
                (repo_id,)).fetchall()
            edges = conn.execute(
                """SELECT s.path, e.line, e.target_id, e.target_name FROM graph_edges e
                     JOIN graph_nodes s ON s.id = e.source_id WHERE e.repo_id = %s AND e.kind = 'calls'""",
                (repo_id,)).fetchall()
        names = {node[0]: node[5] for node in nodes}
        by_file: dict[str, list[tuple[int, str, int, int]]] = {}
        for node_id, path, name, start, end, _ in nodes:
            by_file.setdefault(path, []).append((node_id, name, start, end))
        lines = {(path, line) for path, line in oracle["lines"]}
        truth: set[Edge] = set()
        for site, targets in oracle["targets"].items():
            path, _, line = site.rpartition(":")
            for target_path, target_line, name in targets:
                # the innermost node of that name around the definition's line (a nested function has none)
                holding = [n for n in by_file.get(target_path, ()) if n[1] == name and n[2] <= target_line <= n[3]]
                if holding:
                    truth.add((path, int(line), names[max(holding, key=lambda n: n[2])[0]]))
        found = {(path, line, names[target]) for path, line, target, _ in edges
                 if target is not None and (path, line) in lines}
        externals = {(path, line) for path, line, target, _ in edges if target is None and (path, line) in lines}
        classes: Counter[str] = Counter()
        samples: dict[str, list[str]] = {}
        truth_sites = {(path, line) for path, line, _ in truth}
        found_sites = {(path, line) for path, line, _ in found}
        for edge in sorted(truth ^ found):
            site = edge[:2]
            if edge in found:
                kind = "extra: oracle silent at the line" if site not in truth_sites else "extra: oracle names another"
            elif site in found_sites:
                kind = "missed: lode names another"
            elif site in externals:
                kind = "missed: lode external"
            else:
                kind = "missed: no edge"
            classes[kind] += 1
            code = (work / edge[0]).read_text().splitlines()[edge[1] - 1].strip()[:90]
            samples.setdefault(kind, []).append(f"{edge[0]}:{edge[1]} -> {edge[2]}  `{code}`")
        rng = random.Random(seed)
        samples = {kind: rng.sample(items, min(show, len(items))) for kind, items in samples.items()}
        return Result(package, len(lines), truth, found, classes, samples)
    finally:
        shutil.rmtree(work)


def report(results: list[Result]) -> None:
    print("## Python call edges against Jedi (goto on every call of sampled lines)\n")
    print("| package | lines | oracle edges | Lode edges | agreed | precision (raw) | recall (raw) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        agreed = len(r.truth & r.found)
        print(f"| {r.package} | {r.lines} | {len(r.truth)} | {len(r.found)} | {agreed} | "
              f"{agreed / max(1, len(r.found)):.3f} | {agreed / max(1, len(r.truth)):.3f} |")
    print()
    for r in results:
        print(f"### Disagreements on {r.package}\n")
        for kind, count in sorted(r.classes.items()):
            print(f"- {kind}: {count}")
            for line in r.samples.get(kind, ()):
                print(f"  - {line}")
        print()
