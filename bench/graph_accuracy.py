"""Code graph accuracy and cost.

1. Precision and recall of in-repository `calls` edges on the hand-made fixture repositories in
   tests/fixtures/graph (each has its true call graph written by hand in CALLS.txt).
2. A random spot-check listing of edges in CPython's `json` package, with the line of code each one stands on,
   to be judged by reading the code.
3. The worker overhead of fact extraction on CPython's Lib/ (without site-packages): extract_facts time over
   chunking + tokenizing + formatting time, per file, same process, median of --runs passes.
4. The cost of resolution on Lib/: a first full resolve, then re-resolving after one file changes.
5. With --oracle: Python call edges against Jedi on installed packages (bench/graph_oracle.py), raw precision
   and recall per package, and samples of each class of disagreement to adjudicate by hand.

Usage: python bench/graph_accuracy.py [--lib PATH] [--sample 50] [--seed 7] [--runs 3] [--skip-lib]
       [--oracle click,httpx,rich,attrs] [--oracle-lines 600] [--oracle-cache DIR] [--oracle-only]
       [--fixtures-only]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import fresh_engine, machine, median  # noqa: E402
from lode.chunking.chunker import chunk_file_with_tree  # noqa: E402
from lode.config import Settings  # noqa: E402
from lode.discover import SourceTree  # noqa: E402
from lode.engine import Lode  # noqa: E402
from lode.graph import FileFacts, extract_facts  # noqa: E402
from lode.store.graph import GraphStore, ResolveReport  # noqa: E402
from lode.languages import language_for_path, module_name  # noqa: E402
from lode.model import Candidate, Skipped  # noqa: E402
from lode.search.lexical import chunk_postings  # noqa: E402
from lode.store.repositories import Chunks, Files, Repositories  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "graph"
SETTINGS = Settings(embedder="none")


def sources(root: Path) -> list[tuple[str, str]]:
    """(path, text) of every indexable file under root, as the indexer discovers and reads them."""
    with SourceTree(root) as tree:
        found = [item for item in tree.discover(SETTINGS) if isinstance(item, Candidate)]
        texts = [(item.path, tree.read(item, SETTINGS)) for item in found]
    return [(path, source.text) for path, source in texts if not isinstance(source, Skipped)]


def facts_of(path: str, text: str, all_paths: frozenset[str]) -> FileFacts:
    language = language_for_path(path) or "text"
    module = module_name(path, all_paths, language)
    chunked, tree = chunk_file_with_tree(path, text, language, module, SETTINGS)
    return extract_facts(path, text, chunked.language, module, chunked, tree)


def store(engine: Lode, name: str, root: Path) -> tuple[int, dict[str, int]]:
    """Store every file's facts, one transaction each as the indexer does; return the repo id and file ids."""
    files = [(path, text) for path, text in sources(root) if not path.endswith(".txt")]
    all_paths = frozenset(path for path, _ in files)
    with engine.db.connection() as conn:
        repo_id = Repositories(conn).get_or_create(name, str(root)).id
        file_ids = dict(zip([path for path, _ in files], Files(conn).reserve_ids(len(files))))
    for path, text in files:
        facts = facts_of(path, text, all_paths)
        with engine.db.connection() as conn, conn.transaction():
            GraphStore(conn).replace_file(repo_id, file_ids[path], facts)
    return repo_id, file_ids


def resolve(engine: Lode, repo_id: int) -> ResolveReport:
    with engine.db.connection() as conn, conn.transaction():
        return GraphStore(conn).resolve(repo_id)


def build(engine: Lode, name: str, root: Path) -> int:
    repo_id, _ = store(engine, name, root)
    resolve(engine, repo_id)
    return repo_id


def truth(root: Path) -> set[tuple[str, str]]:
    edges = set()
    for line in (root / "CALLS.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            source, _, target = line.partition("->")
            edges.add((source.strip(), target.strip()))
    return edges


def accuracy(engine: Lode) -> None:
    print("## In-repository call edges on the hand-made fixtures\n")
    print("| fixture | language | true edges | found | correct | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for root in sorted(FIXTURES.iterdir()):
        repo_id = build(engine, f"graph-accuracy-{root.name}", root)
        with engine.db.connection() as conn:
            found = set(
                conn.execute(
                    """SELECT s.name_path, t.name_path FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                     JOIN graph_nodes t ON t.id = e.target_id WHERE e.repo_id = %s AND e.kind = 'calls'""",
                    (repo_id,),
                ).fetchall()
            )
            language = conn.execute(
                "SELECT language FROM graph_files WHERE repo_id = %s GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
                (repo_id,),
            ).fetchone()[0]
        expected = truth(root)
        correct = len(found & expected)
        print(
            f"| {root.name} | {language} | {len(expected)} | {len(found)} | {correct} | "
            f"{correct / max(1, len(found)):.3f} | {correct / max(1, len(expected)):.3f} |"
        )
        for source, target in sorted(found - expected):
            print(f"|  | false positive | {source} -> {target} | | | | |")
        for source, target in sorted(expected - found):
            print(f"|  | missed | {source} -> {target} | | | | |")
    print()


def spot_check(engine: Lode, lib: Path, sample: int, seed: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="lode-graph-json-"))
    shutil.copytree(lib / "json", work / "json", ignore=shutil.ignore_patterns("__pycache__"))
    repo_id = build(engine, "graph-accuracy-json", work)
    with engine.db.connection() as conn:
        edges = conn.execute(
            """SELECT s.name_path, coalesce(t.name_path, 'external:' || e.target_name), e.kind, e.confidence,
                      s.path, e.line
                 FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                 LEFT JOIN graph_nodes t ON t.id = e.target_id
                WHERE e.repo_id = %s ORDER BY s.path, e.line, e.kind, 2""",
            (repo_id,),
        ).fetchall()
    picked = sorted(random.Random(seed).sample(range(len(edges)), min(sample, len(edges))))
    print(f"## Spot-check: {len(picked)} of {len(edges)} edges in CPython's json package (seed {seed})\n")
    print("| # | source | target | kind | conf | evidence | code |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for number, index in enumerate(picked, 1):
        source, target, kind, confidence, path, line = edges[index]
        code = (work / path).read_text().splitlines()[line - 1].strip().replace("|", "\\|")[:70]
        print(f"| {number} | {source} | {target} | {kind} | {confidence:g} | {path}:{line} | `{code}` |")
    print()
    shutil.rmtree(work)


def overhead(lib: Path, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="lode-graph-lib-"))
    tree = work / "Lib"
    shutil.copytree(lib, tree, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True)
    files = sources(tree)
    all_paths = frozenset(path for path, _ in files)
    modules = {path: module_name(path, all_paths, language_for_path(path) or "text") for path, _ in files}
    ratios, base_times, fact_times = [], [], []
    for _ in range(runs):
        base = facts = 0.0
        for path, text in files:
            language = language_for_path(path)
            started = time.perf_counter()
            chunked, parsed = chunk_file_with_tree(path, text, language, modules[path], SETTINGS)
            Chunks.format(1, 1, path, chunked.language, [chunk_postings(chunk, path) for chunk in chunked.chunks])
            chunked_at = time.perf_counter()
            extract_facts(path, text, chunked.language, modules[path], chunked, parsed)
            done = time.perf_counter()
            base += chunked_at - started
            facts += done - chunked_at
        base_times.append(base)
        fact_times.append(facts)
        ratios.append(facts / base)
    shutil.rmtree(work)
    print(f"## Worker overhead of extract_facts on Lib/ ({len(files)} files, {runs} runs)\n")
    print("| chunk + tokenize + format, median | extract_facts, median | overhead, median (runs) |")
    print("| --- | --- | --- |")
    print(
        f"| {median(base_times):.2f} s | {median(fact_times):.2f} s | {100 * median(ratios):.1f} % "
        f"({', '.join(f'{100 * r:.1f}' for r in ratios)}) |\n"
    )


def scale(engine: Lode, lib: Path, changed: tuple[str, ...] = ("json/decoder.py", "os.py")) -> None:
    work = Path(tempfile.mkdtemp(prefix="lode-graph-lib-"))
    tree = work / "Lib"
    shutil.copytree(lib, tree, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True)
    repo_id, file_ids = store(engine, "graph-accuracy-lib", tree)
    print("## Resolution on Lib/\n")
    print("| run | references resolved | edges written (external) | seconds |")
    print("| --- | --- | --- | --- |")
    started = time.perf_counter()
    report = resolve(engine, repo_id)
    print(
        f"| first, all files | {report.references:,} | {report.edges:,} ({report.external:,}) | "
        f"{time.perf_counter() - started:.2f} |"
    )
    all_paths = frozenset(file_ids)
    for path in changed:  # the file changes (a new id, as the indexer gives it), then one resolve
        facts = facts_of(path, (tree / path).read_text(), all_paths)
        with engine.db.connection() as conn, conn.transaction():
            graph = GraphStore(conn)
            graph.delete_file(repo_id, file_ids[path])
            file_ids[path] = Files(conn).reserve_ids(1)[0]
            graph.replace_file(repo_id, file_ids[path], facts)
        started = time.perf_counter()
        report = resolve(engine, repo_id)
        print(
            f"| after editing {path} | {report.references:,} | {report.edges:,} ({report.external:,}) | "
            f"{time.perf_counter() - started:.2f} |"
        )
    print()
    shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", type=Path, default=Path(sysconfig.get_paths()["stdlib"]))
    parser.add_argument("--sample", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-lib", action="store_true", help="only the fixtures and the spot-check")
    parser.add_argument("--oracle", default="", help="packages to check against Jedi, e.g. click,httpx,rich,attrs")
    parser.add_argument("--oracle-lines", type=int, default=600, help="call lines sampled per package")
    parser.add_argument("--oracle-cache", type=Path, default=Path(tempfile.gettempdir()) / "lode-jedi-oracle")
    parser.add_argument("--oracle-show", type=int, default=8, help="disagreements printed per class")
    parser.add_argument("--oracle-only", action="store_true", help="only the Jedi comparison")
    parser.add_argument("--fixtures-only", action="store_true", help="only the hand-made fixtures")
    args = parser.parse_args()
    print(f"Machine: {machine()}\n")
    engine = fresh_engine()
    try:
        if not args.oracle_only:
            accuracy(engine)
        if not args.oracle_only and not args.fixtures_only:
            spot_check(engine, args.lib, args.sample, args.seed)
            if not args.skip_lib:
                scale(engine, args.lib)
        if args.oracle:
            from bench.graph_oracle import measure, report

            args.oracle_cache.mkdir(parents=True, exist_ok=True)
            report([measure(engine, package, args.oracle_lines, args.seed, args.oracle_cache, args.oracle_show)
                    for package in args.oracle.split(",")])
    finally:
        engine.close()
    if not args.skip_lib and not args.oracle_only and not args.fixtures_only:
        overhead(args.lib, args.runs)


if __name__ == "__main__":
    main()
