"""Search quality on the public dev sets of issue 17, each mode of Lode beside bm25s over whole files, in one run.

Usage (from the project root):
    python -m bench.quality [--set semble,symbols,swebench,cosqa] [--repo NAME ...] [--limit N]
                            [--modes lexical,semantic,hybrid,bm25s] [--env K=V ...] [--ablate NAME ...]
                            [--label TEXT] [--write-docs]

Sets (data read from /work/shared/bench, never copied into the project):
- semble: semble-dev's 12 reproducible repositories (the two whose revision no snapshot holds are left out), only
  the files under each `benchmark_root` in the repository's language; file nDCG@10 as its README defines it.
- symbols: in each semble repository, every class/function/method/struct/interface/trait/enum name defined exactly
  once outside tests (per Lode's chunk table, names of 3+ characters), a fixed sample per repository
  (--symbols-per-repo); query = the bare name, target = its definition. def@1: the first hit is the definition's
  chunk; file@1: the first file is the definition's file.
- swebench: SWE-bench Lite's 77 sympy instances, each at its base commit (one working tree re-indexed
  incrementally, commits in date order), only *.py; the whole issue text is the query; file Acc@1/3/5, MRR@10.
  --one-tree runs every instance against the newest base commit instead (minutes rather than half an hour: a
  proxy for tuning).
- cosqa: CoSQA dev-500, one file per function; MRR@10 and hit@1/10 of the target's file.

Sources come from git snapshots (`fetch github:owner/name` puts them under /work/.mirror/owner+name/repo), checked
out with `git archive` into --cache/src. Lode keeps its index under --cache/home (its own LODE_HOME, embedded
PostgreSQL, the shipped embedding model); a second run reuses it (an unchanged tree re-indexes as a no-op and has
no pending embeddings). Two runs at the same time need different --cache directories only when both run swebench
(it re-indexes one tree per commit). Results: --cache/results/quality-<UTC time>[-label].json (every query, every
mode, its top files and scores) and a markdown summary beside it (.md); --write-docs puts the summary in
docs/benchmarks.md between the `<!-- bench:quality-dev -->` markers.

--env K=V sets an environment variable before the engine's settings are read (LODE_* settings, or any switch a
ranking stage reads); --ablate NAME adds NAME to LODE_RANKING_DISABLE (comma-separated) and to the run's label.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import quality_metrics as qm
from bench.common import SHARED, machine, median, percentile
from lode.errors import LodeError

DATA = SHARED / "bench"
DEFAULT_CACHE = Path("/work/cache/bench")
MIRRORS = Path("/work/.mirror")
SETS = ("semble", "symbols", "swebench", "cosqa")
MODES = ("lexical", "semantic", "hybrid", "bm25s")
ENGINE_MODES = ("lexical", "semantic", "hybrid")
HITS_PER_QUERY = 50  # chunks asked of Lode: enough for 10 distinct files in practice
SYMBOL_KINDS = ("class", "function", "method", "struct", "interface", "trait", "enum")
ABLATION_VARIABLE = "LODE_RANKING_DISABLE"
DOCS_SECTION = "quality-dev"

# Files in scope per semble language (its README: the repository's language; C and C++ include headers).
LANGUAGE_SUFFIXES = {
    "python": (".py",), "rust": (".rs",), "go": (".go",), "java": (".java",), "ruby": (".rb",),
    "typescript": (".ts", ".tsx", ".mts", ".cts"), "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".c++", ".h", ".hh", ".hpp", ".hxx", ".inl"), "csharp": (".cs",),
}

# Test code, for the symbol set's "outside tests" (the harness's own rule, independent of any ranking prior).
TEST_PATH = re.compile(
    r"(^|/)(tests?|__tests__|spec|specs|testing|testdata|test_utils?)/|(^|/)test_[^/]*$|(^|/)conftest\.py$"
    r"|_tests?\.[^/.]+$|\.(test|spec)\.[^/]+$|Tests?\.(java|cs|kt)$|_spec\.rb$")

log = logging.getLogger("bench.quality")


# ---- query kinds ------------------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|#|->)[A-Za-z_$][\w$]*)*(?:\(\))?$")
CODE_TOKEN = re.compile(
    r"[a-z0-9][A-Z]|[A-Za-z0-9]_[A-Za-z0-9]|[A-Za-z_]\.[A-Za-z_]|::|\(\)|^[A-Z]{2,}[a-z]|^_|[`<>{}\[\]=]")


def query_kind(text: str) -> str:
    """The harness's own grouping of queries (stable while the engine's classifier changes): long (issue bodies,
    tracebacks: over 300 characters or 3+ lines), symbol (one identifier, possibly qualified), mixed (prose with
    an identifier-like word in it) or natural language."""
    stripped = text.strip()
    if len(stripped) > 300 or stripped.count("\n") >= 2:
        return "long"
    if IDENTIFIER.match(stripped.strip("`")):
        return "symbol"
    words = [w.strip("'\",;:!?()`") for w in stripped.split()]
    if any(CODE_TOKEN.search(w) for w in words if w) or "`" in stripped:
        return "mixed"
    return "natural language"


# ---- data -------------------------------------------------------------------------------------------------


@dataclass
class Query:
    set: str
    repo: str  # the corpus's short name (e.g. "aiohttp", "sympy", "cosqa")
    id: str
    text: str
    targets: list[str]
    language: str
    category: str = ""  # semble's category; swebench/cosqa/symbols: the set's name
    kind: str = ""
    definition: dict[str, Any] | None = None  # symbols: {"path", "line", "name_path"}
    commit: str = ""  # swebench: the base commit

    def __post_init__(self) -> None:
        self.kind = self.kind or query_kind(self.text)


@dataclass
class Corpus:
    set: str
    name: str  # short name
    lode_repo: str  # the repository name inside Lode
    root: Path
    language: str
    queries: list[Query] = field(default_factory=list)


def semble_repos(data: Path) -> dict[str, dict[str, str]]:
    return json.loads((data / "semble-dev" / "repos.json").read_text())


def git_dir(github: str, mirrors: Path) -> Path:
    path = mirrors / github.replace("/", "+") / "repo"
    if not (path / "HEAD").exists():
        raise SystemExit(f"no git snapshot of {github} at {path}: fetch github:{github} first")
    return path


def has_commit(repo_git: Path, commit: str) -> bool:
    return subprocess.run(["git", "--git-dir", str(repo_git), "cat-file", "-e", f"{commit}^{{commit}}"],
                          check=False, capture_output=True).returncode == 0


def checkout(repo_git: Path, commit: str, target: Path, keep: Callable[[str], bool]) -> int:
    """Write the files of `commit` that `keep(path)` accepts under `target` (replaced whole); return their count.
    Symlinks and submodules are left out: the dev sets' targets are regular files."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    archive = subprocess.Popen(["git", "--git-dir", str(repo_git), "archive", "--format=tar", commit],
                               stdout=subprocess.PIPE)
    assert archive.stdout is not None
    count = 0
    with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
        for member in tar:
            if member.isfile() and keep(member.name):
                tar.extract(member, target, filter="data")
                count += 1
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed in {repo_git}")
    return count


def semble_corpora(data: Path, cache: Path, mirrors: Path, names: list[str] | None) -> list[Corpus]:
    """The reproducible semble-dev repositories, checked out once under cache/src/semble/NAME."""
    corpora = []
    for name, spec in semble_repos(data).items():
        if names and name not in names:
            continue
        gd = mirrors / spec["repo"].replace("/", "+") / "repo"
        if not (gd / "HEAD").exists() or not has_commit(gd, spec["revision"]):
            log.warning("semble %s: no snapshot holds revision %s; left out", name, spec["revision"][:12])
            continue
        root = cache / "src" / "semble" / name
        marker = root.with_name(name + ".revision")
        if not marker.exists() or marker.read_text() != spec["revision"]:
            prefix = spec["benchmark_root"].strip("/")
            suffixes = LANGUAGE_SUFFIXES[spec["language"]]
            count = checkout(gd, spec["revision"], root,
                             lambda p, prefix=prefix, suffixes=suffixes: (  # type: ignore[misc]
                                 not prefix or p.startswith(prefix + "/")) and p.endswith(suffixes))
            marker.write_text(spec["revision"])
            log.info("semble %s: %d files checked out at %s", name, count, spec["revision"][:12])
        corpus = Corpus("semble", name, f"semble-{name}", root, spec["language"])
        entries = json.loads((data / "semble-dev" / "annotations" / f"{name}.json").read_text())
        for number, entry in enumerate(entries):
            targets = [t if isinstance(t, str) else t["path"] for t in entry["relevant"] + entry.get("secondary", [])]
            corpus.queries.append(Query("semble", name, f"{name}/{number}", entry["query"], targets,
                                        spec["language"], entry.get("category", "")))
        corpora.append(corpus)
    return corpora


def swebench_instances(data: Path) -> list[dict[str, Any]]:
    return [i for i in json.loads((data / "swebench-dev" / "instances.json").read_text())
            if i["repo"] == "sympy/sympy"]


def commits_by_date(repo_git: Path, commits: list[str]) -> list[str]:
    """The commits oldest first, so that the working tree moves forward and each re-index is incremental."""
    out = subprocess.run(["git", "--git-dir", str(repo_git), "log", "--no-walk=unsorted", "--format=%ct %H",
                          *dict.fromkeys(commits)], capture_output=True, text=True, check=True).stdout
    dated = sorted((int(t), h) for t, h in (line.split() for line in out.splitlines()))
    return [h for _, h in dated]


def cosqa_corpus(data: Path, cache: Path) -> Corpus:
    root = cache / "src" / "cosqa"
    marker = root.with_name("cosqa.complete")
    functions = json.loads((data / "cosqa-dev" / "corpus.json").read_text())
    if not marker.exists():
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        for code, ident in functions.items():
            (root / f"f{ident}.py").write_text(code)
        marker.write_text(str(len(functions)))
    corpus = Corpus("cosqa", "cosqa", "cosqa", root, "python")
    for q in json.loads((data / "cosqa-dev" / "queries-dev-500.json").read_text()):
        corpus.queries.append(Query("cosqa", "cosqa", str(q["id"]), q["query"], [f"f{q['target']}.py"], "python",
                                    "cosqa"))
    return corpus


def symbol_queries(engine: Any, corpus: Corpus, per_repo: int) -> list[Query]:
    """Names defined exactly once outside tests in the indexed corpus; a fixed sample of `per_repo` (0: all),
    chosen by a hash of the name so that it does not move between runs or branches."""
    with engine.db.connection() as conn:
        rows = conn.execute(
            """SELECT c.name, c.name_path, c.path, min(c.start_line)
                 FROM chunks c JOIN repositories r ON r.id = c.repo_id
                WHERE r.name = %s AND c.kind = ANY(%s) AND c.name IS NOT NULL
                GROUP BY c.name, c.name_path, c.path""",
            (corpus.lode_repo, list(SYMBOL_KINDS))).fetchall()
    definitions: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for name, name_path, path, line in rows:
        if not TEST_PATH.search(path):
            definitions[name].append((name_path, path, line))
    unique = sorted((name, defs[0]) for name, defs in definitions.items() if len(defs) == 1 and len(name) >= 3)
    unique.sort(key=lambda item: hashlib.sha1(item[0].encode()).hexdigest())
    picked = unique[:per_repo] if per_repo else unique
    log.info("symbols %s: %d names defined once outside tests, %d sampled", corpus.name, len(unique), len(picked))
    return [Query("symbols", corpus.name, f"{corpus.name}:{name}", name, [path], corpus.language, "symbol",
                  "symbol", {"path": path, "line": line, "name_path": name_path})
            for name, (name_path, path, line) in sorted(picked)]


# ---- bm25s over whole files -------------------------------------------------------------------------------

WORD = re.compile(r"[A-Za-z0-9_]+")
CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


class FileBM25:
    """bm25s over whole files: the path and the content, identifiers split into their snake/camel parts as well
    as kept whole, lower-cased, English stop words dropped, Snowball-stemmed. Tokens are cached by content hash,
    so a tree re-read at the next commit tokenizes only the files that changed."""

    def __init__(self) -> None:
        import Stemmer  # type: ignore[import-not-found]
        from bm25s.stopwords import STOPWORDS_EN  # type: ignore[import-untyped]

        self._stem = Stemmer.Stemmer("english").stemWord
        self._stop = frozenset(STOPWORDS_EN)
        self._cache: dict[bytes, list[str]] = {}
        self._stems: dict[str, str] = {}
        self.paths: list[str] = []
        self._retriever: Any = None
        self._vocab: dict[str, int] = {}

    def tokens(self, text: str) -> list[str]:
        out = []
        for word in WORD.findall(text):
            parts = list(CAMEL.findall(word)) if not word.islower() or "_" in word else []
            for token in ([word] + parts if len(parts) > 1 else [word]):
                lower = token.lower()
                if len(lower) < 2 or lower in self._stop:
                    continue
                stem = self._stems.get(lower)
                if stem is None:
                    stem = self._stems[lower] = self._stem(lower)
                out.append(stem)
        return out

    def index(self, root: Path, paths: list[str]) -> None:
        import bm25s  # type: ignore[import-untyped]

        documents = []
        for rel in paths:
            data = (root / rel).read_bytes()
            key = hashlib.sha1(rel.encode() + b"\0" + data).digest()
            if key not in self._cache:
                self._cache[key] = self.tokens(rel.replace("/", " ") + "\n" + data.decode("utf-8", "replace"))
            documents.append(self._cache[key])
        self._vocab = {}
        ids = [[self._vocab.setdefault(t, len(self._vocab)) for t in doc] for doc in documents]
        self._retriever = bm25s.BM25()
        self._retriever.index(bm25s.tokenization.Tokenized(ids, self._vocab), show_progress=False)
        self.paths = list(paths)

    def search(self, query: str, k: int = 10) -> list[str]:
        import bm25s  # type: ignore[import-untyped]

        encoded = [self._vocab[t] for t in self.tokens(query) if t in self._vocab]
        if not encoded or not self.paths:
            return []
        docs, scores = self._retriever.retrieve(bm25s.tokenization.Tokenized([encoded], self._vocab),
                                                k=min(k, len(self.paths)), show_progress=False)
        return [self.paths[d] for d, s in zip(docs[0].tolist(), scores[0].tolist()) if s > 0]


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and not p.is_symlink())


# ---- running ----------------------------------------------------------------------------------------------


def run_query(engine: Any, bm25: FileBM25 | None, corpus: Corpus, query: Query, modes: list[str]) -> Iterator[dict]:
    """One row per mode: the ranked distinct files (top 10), the first hits' spans and the scores."""
    for mode in modes:
        started = time.perf_counter()
        error, hits = None, []
        if mode == "bm25s":
            assert bm25 is not None, "bm25s needs its index"
            files = bm25.search(query.text, 10)
        else:
            try:
                hits = engine.search.query(query.text, repo=corpus.lode_repo, mode=mode, k=HITS_PER_QUERY)["hits"]
            except LodeError as exc:  # a refused query (e.g. too long) scores 0 and is counted
                error = f"{type(exc).__name__}: {exc}"
            files = qm.distinct_files((h["path"] for h in hits), 10)
        ms = (time.perf_counter() - started) * 1000
        row: dict[str, Any] = {"set": query.set, "repo": query.repo, "id": query.id, "mode": mode, "kind": query.kind,
               "category": query.category, "language": query.language, "ms": round(ms, 2), "error": error,
               "files": files, "targets": query.targets, **score(query, files, hits if mode != "bm25s" else None)}
        if hits:
            row["first_hit"] = {k: hits[0][k] for k in ("path", "start_line", "end_line", "name_path", "kind")}
        yield row


def score(query: Query, files: list[str], hits: list[dict] | None) -> dict[str, float | None]:
    if query.set == "semble":
        return {"ndcg10": qm.file_ndcg_at_10(files, query.targets),
                "mrr10": qm.mrr_at_10(files, query.targets)}
    if query.set == "swebench":
        return {"acc1": qm.acc_at_k(files, query.targets, 1), "acc3": qm.acc_at_k(files, query.targets, 3),
                "acc5": qm.acc_at_k(files, query.targets, 5), "mrr10": qm.mrr_at_10(files, query.targets)}
    out: dict[str, float | None] = {"hit1": qm.hit_at_k(files, query.targets, 1),
                                    "hit10": qm.hit_at_k(files, query.targets, 10),
                                    "mrr10": qm.mrr_at_10(files, query.targets)}
    if query.set == "symbols":
        assert query.definition is not None
        out["def1"] = None if hits is None else float(bool(hits) and (
            hits[0].get("name_path") == query.definition["name_path"] and qm.paths_match(hits[0]["path"],
                                                                                       query.definition["path"])
            or qm.is_definition_hit(hits[0], query.definition["path"], query.definition["line"])))
    return out


def progress_logger(repo: str, every_s: float = 60.0) -> Callable[[Any], None]:
    """Log an embedding backfill's progress at most once a minute (a large corpus takes a while on CPU)."""
    last = [time.monotonic()]

    def report(progress: Any) -> None:
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            log.info("%s: embedding, %d done, %d pending", repo, progress.done, progress.pending)
    return report


def prepare_index(engine: Any, corpus: Corpus, embed: bool) -> dict[str, Any]:
    started = time.perf_counter()
    report = engine.indexing.index(corpus.root, corpus.lode_repo)
    facts: dict[str, Any] = {"files_indexed": report.files_indexed, "files_unchanged": report.files_unchanged,
                             "files_skipped": report.files_skipped, "chunks": report.chunks,
                             "index_s": round(time.perf_counter() - started, 1)}
    if embed:
        started = time.perf_counter()
        progress = engine.embeddings.embed(corpus.lode_repo, on_progress=progress_logger(corpus.lode_repo))
        facts.update(embedded=progress.done, embed_pending=progress.pending, embed_failed=progress.failed,
                     embed_s=round(time.perf_counter() - started, 1))
    return facts


def run(args: argparse.Namespace, checkpoint: Callable[[dict[str, Any]], None] = lambda result: None) -> dict[str, Any]:
    """Every chosen set, corpus by corpus; `checkpoint` gets the result so far after each corpus (and each
    swebench instance), so that a long run that is stopped keeps what it measured."""
    from lode.config import CacheSettings, Settings
    from lode.engine import Lode

    cache: Path = args.cache
    engine_modes = [m for m in args.modes if m in ENGINE_MODES]
    embed = any(m in ("semantic", "hybrid") for m in engine_modes)
    os.environ["LODE_HOME"] = str(args.home)
    engine = Lode(Settings(home=args.home, embedder="local" if embed else "none",
                           cache=CacheSettings(enabled=False)))
    rows: list[dict] = []
    indexes: dict[str, Any] = {}
    bm25 = FileBM25() if "bm25s" in args.modes else None
    try:
        if "semble" in args.sets or "symbols" in args.sets:
            for corpus in semble_corpora(args.data, cache, args.mirrors, args.repo):
                indexes[corpus.lode_repo] = facts = prepare_index(engine, corpus, embed)
                log.info("%s: %s", corpus.lode_repo, facts)
                if bm25:
                    bm25.index(corpus.root, files_under(corpus.root))
                queries = (corpus.queries[:args.limit] if args.limit else corpus.queries) if "semble" in args.sets \
                    else []
                if "symbols" in args.sets:
                    queries += symbol_queries(engine, corpus, args.limit or args.symbols_per_repo)
                rows += run_queries(engine, bm25, corpus, queries, args.modes)
                checkpoint(result(args, indexes, rows, partial=True))
        if "swebench" in args.sets and (not args.repo or "sympy" in args.repo):
            rows += run_swebench(engine, bm25, args, embed, indexes,
                                 lambda done: checkpoint(result(args, indexes, rows + done, partial=True)))
        if "cosqa" in args.sets and (not args.repo or "cosqa" in args.repo):
            corpus = cosqa_corpus(args.data, cache)
            indexes["cosqa"] = prepare_index(engine, corpus, embed)
            if bm25:
                bm25.index(corpus.root, files_under(corpus.root))
            rows += run_queries(engine, bm25, corpus, corpus.queries[:args.limit] if args.limit else corpus.queries,
                                args.modes)
    finally:
        engine.close()
    return result(args, indexes, rows)


def result(
    args: argparse.Namespace, indexes: dict[str, Any], rows: list[dict], partial: bool = False
) -> dict[str, Any]:
    return {"meta": {**meta(args), "partial": partial}, "indexes": indexes, "summary": summarize(rows),
            "queries": rows}


def run_queries(engine: Any, bm25: FileBM25 | None, corpus: Corpus, queries: list[Query],
                modes: list[str]) -> list[dict]:
    started = time.perf_counter()
    rows = [row for q in queries for row in run_query(engine, bm25, corpus, q, modes)]
    log.info("%s: %d queries x %d modes in %.0f s", corpus.lode_repo, len(queries), len(modes),
             time.perf_counter() - started)
    return rows


def run_swebench(engine: Any, bm25: FileBM25 | None, args: argparse.Namespace, embed: bool,
                 indexes: dict[str, Any], checkpoint: Callable[[list[dict]], None]) -> list[dict]:
    """Each instance at its base commit: one working tree, re-indexed incrementally, commits oldest first."""
    repo_git = git_dir("sympy/sympy", args.mirrors)
    instances = swebench_instances(args.data)
    order = {c: n for n, c in enumerate(commits_by_date(repo_git, [i["base_commit"] for i in instances]))}
    instances.sort(key=lambda i: (order[i["base_commit"]], i["instance_id"]))
    if args.limit:
        instances = instances[:args.limit]
    newest = max(instances, key=lambda i: order[i["base_commit"]])["base_commit"] if instances else ""
    root = args.cache / "src" / "swebench" / args.home.name / "sympy"  # one working tree per LODE_HOME
    corpus = Corpus("swebench", "sympy", "swebench-sympy", root, "python")
    rows: list[dict] = []
    current = (root.with_name("sympy.commit").read_text() if root.with_name("sympy.commit").exists() else "")
    for number, instance in enumerate(instances, start=1):
        commit = newest if args.one_tree else instance["base_commit"]
        if commit != current:
            root.with_name("sympy.commit").unlink(missing_ok=True)  # a half-written tree is never trusted
            checkout(repo_git, commit, root, lambda p: p.endswith(".py"))
            root.with_name("sympy.commit").write_text(commit)
            current = commit
        facts = prepare_index(engine, corpus, embed)
        indexes.setdefault("swebench-sympy", []).append({"commit": commit, **facts})
        if bm25:
            bm25.index(root, files_under(root))
        query = Query("swebench", "sympy", instance["instance_id"], instance["problem_statement"],
                      instance["gold_files"], "python", "swebench", commit=commit)
        rows += run_query(engine, bm25, corpus, query, args.modes)
        checkpoint(rows)
        log.info("swebench %d/%d %s at %s: %s", number, len(instances), instance["instance_id"], commit[:10], facts)
    return rows


# ---- summaries --------------------------------------------------------------------------------------------

METRICS = {"semble": ("ndcg10", "mrr10"), "swebench": ("acc1", "acc3", "acc5", "mrr10"),
           "cosqa": ("mrr10", "hit1", "hit10"), "symbols": ("def1", "hit1", "mrr10")}


def aggregate(rows: list[dict], metrics: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(rows)}
    for metric in metrics:
        values = [r[metric] for r in rows if r.get(metric) is not None]
        out[metric] = round(qm.mean(values), 4) if values else None
    out["refused"] = sum(1 for r in rows if r["error"])
    times = [r["ms"] for r in rows]
    out["p50_ms"], out["p95_ms"] = (round(median(times), 1), round(percentile(times, 95), 1)) if times else (0, 0)
    return out


def summarize(rows: list[dict]) -> dict[str, Any]:
    """Per set and mode: overall (semble also as the mean of its repositories' means), per repository, language,
    query kind and (semble) category."""
    summary: dict[str, Any] = {}
    for set_name in SETS:
        set_rows = [r for r in rows if r["set"] == set_name]
        if not set_rows:
            continue
        metrics = METRICS[set_name]
        summary[set_name] = per_mode = {}
        for mode in dict.fromkeys(r["mode"] for r in set_rows):
            mode_rows = [r for r in set_rows if r["mode"] == mode]
            entry = per_mode[mode] = {"overall": aggregate(mode_rows, metrics)}
            for facet in ("repo", "language", "kind", "category"):
                groups: dict[str, list[dict]] = defaultdict(list)
                for r in mode_rows:
                    groups[r[facet]].append(r)
                entry[facet] = {key: aggregate(group, metrics) for key, group in sorted(groups.items())}
            repo_means = [v[metrics[0]] for v in entry["repo"].values() if v[metrics[0]] is not None]
            entry["overall"]["mean_of_repos"] = round(qm.mean(repo_means), 4)
    return summary


def meta(args: argparse.Namespace) -> dict[str, Any]:
    return {"command": "python -m bench.quality " + " ".join(sys.argv[1:]), "machine": machine(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "load_average": os.getloadavg(),
            "label": args.label, "env": dict(args.env), "sets": args.sets, "modes": args.modes,
            "limit": args.limit, "symbols_per_repo": args.symbols_per_repo, "one_tree": args.one_tree}


def merge(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from several runs (e.g. one per set): their queries together, their facts side by side."""
    rows = [row for result in results for row in result["queries"]]
    first = results[0]["meta"]
    meta = {**first, "command": "; ".join(r["meta"]["command"] for r in results),
            "date": ", ".join(dict.fromkeys(r["meta"]["date"] for r in results)),
            "load_average": first["load_average"], "merged": [r["meta"] for r in results]}
    indexes = {k: v for r in results for k, v in r["indexes"].items()}
    return {"meta": meta, "indexes": indexes, "summary": summarize(rows), "queries": rows}


# ---- markdown ---------------------------------------------------------------------------------------------


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


# In the tables: each set's headline metrics (the JSON has every metric of METRICS).
TABLE_METRICS = {"semble": ("ndcg10",), "symbols": ("def1", "hit1"), "swebench": ("acc1", "acc3", "acc5", "mrr10"),
                 "cosqa": ("mrr10", "hit1", "hit10")}
TITLES = {"semble": "semble-dev: file nDCG@10",
          "symbols": "symbol set: def@1 (the definition's chunk first), file hit@1",
          "swebench": "swebench-dev (sympy), the whole issue text as the query: file Acc@1, Acc@3, Acc@5, MRR@10",
          "cosqa": "CoSQA dev-500: MRR@10, hit@1, hit@10 of the target file"}
FACETS = ("language", "kind", "category", "repo")


def facet_rows(per_mode: dict[str, Any], set_name: str) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """(label, {mode: aggregate}) for the overall rows, then each facet with more than one value (repo always)."""
    modes = list(per_mode)
    if set_name == "semble":
        key = METRICS["semble"][0]
        yield "mean of repositories", {m: dict(per_mode[m]["overall"], **{key: per_mode[m]["overall"]["mean_of_repos"]})
                                       for m in modes}
    yield "all queries", {m: per_mode[m]["overall"] for m in modes}
    for facet in FACETS:
        keys = list(per_mode[modes[0]][facet])
        if len(keys) < 2 and facet != "repo":
            continue
        for key in keys:
            yield f"{facet}: {key}", {m: per_mode[m][facet].get(key, {}) for m in modes}


def markdown(result: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    """Per set: one row per facet, each mode's headline metrics, then the queries Lode refused per mode. With
    `base`, each cell also gives the change against the base run's same cell."""
    m, summary = result["meta"], result["summary"]
    lines = [f"Command: `{m['command']}`; {m['machine']}; {m['date']}; load average at start "
             f"{' '.join(f'{x:.1f}' for x in m['load_average'])}"
             + (f"; env {m['env']}" if m.get("env") else "")
             + ("; PARTIAL (the run was stopped before its end)" if m.get("partial") else "") + ".", ""]
    if base:
        lines += [f"Changes (in brackets) against `{base['meta']['command']}` of {base['meta']['date']}.", ""]
    for set_name, per_mode in summary.items():
        modes, metrics = list(per_mode), TABLE_METRICS[set_name]
        lode_modes = [mode for mode in modes if mode != "bm25s"]
        head = ["facet", "queries"] + [f"{mode} {metric}" for mode in modes for metric in metrics]
        head += [f"refused ({'/'.join(lode_modes)})"] if lode_modes else []
        lines += [f"**{TITLES[set_name]}**", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        base_rows = dict(facet_rows(base["summary"][set_name], set_name)) if base and set_name in base["summary"] \
            else {}
        for label, cells in facet_rows(per_mode, set_name):
            values = [label, str(next(iter(cells.values())).get("n", 0))]
            for mode in modes:
                for metric in metrics:
                    value = cells[mode].get(metric)
                    before = base_rows.get(label, {}).get(mode, {}).get(metric)
                    delta = f" ({value - before:+.3f})" if value is not None and before is not None else ""
                    values.append(_fmt(value) + delta)
            if lode_modes:
                values.append("/".join(str(cells[mode].get("refused", 0)) for mode in lode_modes))
            lines.append("| " + " | ".join(values) + " |")
        timing = ", ".join(f"{mode} {per_mode[mode]['overall']['p50_ms']:.0f}/{per_mode[mode]['overall']['p95_ms']:.0f}"
                           for mode in modes)
        lines += ["", f"Per-query time, P50/P95 ms: {timing}.", ""]
    return "\n".join(lines)


def write_docs(text: str, docs: Path) -> None:
    from bench.report import replace_sections

    docs.write_text(replace_sections(docs.read_text(), {DOCS_SECTION: ("Search quality on the dev sets", text)}))


# ---- command line -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", dest="sets", default=",".join(SETS),
                        help=f"comma-separated sets among {', '.join(SETS)} (default: all)")
    parser.add_argument("--repo", action="append", help="only this corpus (semble name, sympy or cosqa); repeatable")
    parser.add_argument("--limit", type=int, default=0,
                        help="first N queries per corpus (symbols: N names per repository; swebench: N instances)")
    parser.add_argument("--symbols-per-repo", type=int, default=100,
                        help="symbol names sampled per repository (0: all)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated among {', '.join(MODES)}")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="environment for the engine (set before its settings are read); repeatable")
    parser.add_argument("--ablate", action="append", default=[], metavar="NAME",
                        help=f"add NAME to {ABLATION_VARIABLE} and to the label; repeatable")
    parser.add_argument("--one-tree", action="store_true",
                        help="swebench: every instance against the newest base commit's tree (one index; a quick "
                             "proxy for tuning, not the protocol: a gold file may have moved since its issue)")
    parser.add_argument("--label", default="", help="a name for the run, in the results' file name")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="sources, LODE_HOME and results")
    parser.add_argument("--home", type=Path, default=None,
                        help="LODE_HOME of the indexed corpora (default: CACHE/home); another one for a parallel run")
    parser.add_argument("--data", type=Path, default=DATA, help="the dev sets (semble-dev/, swebench-dev/, cosqa-dev/)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="RESULTS.json",
                        help="no run: merge these results files into one summary (e.g. one per set)")
    parser.add_argument("--compare", type=Path, metavar="BASE.json",
                        help="show each figure's change against this earlier results file")
    parser.add_argument("--mirrors", type=Path, default=MIRRORS, help="git snapshots as owner+name/repo")
    parser.add_argument("--write-docs", action="store_true", help="replace the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    args.sets = [s for s in args.sets.split(",") if s]
    args.modes = [m for m in args.modes.split(",") if m]
    for values, allowed, label in ((args.sets, SETS, "--set"), (args.modes, MODES, "--modes")):
        unknown = sorted(set(values) - set(allowed))
        if unknown or not values:
            parser.error(f"{label}: unknown or empty {unknown} (choose among {', '.join(allowed)})")
    pairs = []
    for pair in args.env:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            parser.error(f"--env takes K=V, not {pair!r}")
        pairs.append((key, value))
    if args.ablate:
        previous = dict(pairs).get(ABLATION_VARIABLE, "")
        pairs = [p for p in pairs if p[0] != ABLATION_VARIABLE]
        pairs.append((ABLATION_VARIABLE, ",".join(filter(None, [previous, *args.ablate]))))
        args.label = "-".join(filter(None, [args.label, "no-" + "-".join(args.ablate)]))
    if args.label and not re.fullmatch(r"[\w.,=-]+", args.label):
        parser.error("--label: letters, digits and . , = - _ only")
    args.env = pairs
    args.home = args.home or args.cache / "home"
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    for key, value in args.env:
        os.environ[key] = value
    results = args.cache / "results"
    results.mkdir(parents=True, exist_ok=True)
    stem = "quality-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + (f"-{args.label}" if args.label else "") + \
        ("-merged" if args.report else "")
    path = results / f"{stem}.json"

    def save(result: dict[str, Any]) -> None:
        path.write_text(json.dumps(result, indent=1))

    outcome = merge([json.loads(p.read_text()) for p in args.report]) if args.report else run(args, save)
    save(outcome)
    text = markdown(outcome, json.loads(args.compare.read_text()) if args.compare else None)
    path.with_suffix(".md").write_text(text)
    print(text)
    print(f"\nresults: {path}", file=sys.stderr)
    if args.write_docs:
        write_docs(text, Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md")
    return path


if __name__ == "__main__":
    main()
