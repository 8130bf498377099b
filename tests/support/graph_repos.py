"""Shared helpers for the graph tests: a repository driven through the graph API alone (no indexer), and the
hand-written truth files of the fixture repositories (their own assumptions: tests/unit/test_graph_repos.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lode.chunking.chunker import chunk_file_with_tree
from lode.config import Settings
from lode.engine import Lode
from lode.graph.facts import FileFacts, extract_facts
from lode.store.graph import GraphStore
from lode.languages import language_for_path, module_name
from lode.store.repositories import Files, Repositories

FIXTURES = Path(__file__).parent.parent / "fixtures" / "graph"
SETTINGS = Settings(embedder="none")

EdgeRow = tuple[str, str, str, str]  # (source name_path, target name_path or external name, kind, evidence)


def file_facts(path: str, text: str, all_paths: frozenset[str]) -> FileFacts:
    """What the worker computes for one file."""
    language = language_for_path(path) or "text"
    module = module_name(path, all_paths, language)
    chunked, tree = chunk_file_with_tree(path, text, language, module, SETTINGS)
    return extract_facts(path, text, chunked.language, module, chunked, tree)


class GraphRepo:
    """A repository whose graph is written through GraphStore exactly as the indexer does: one transaction per
    changed file (delete the old id, store under a fresh id, each with its `files` row, so the session database
    holds no orphans for the fault tests' checks), then one resolve transaction."""

    def __init__(self, lode: Lode, name: str) -> None:
        self.lode = lode
        with lode.db.connection() as conn:
            self.repo_id = Repositories(conn).get_or_create(name, f"/graph-tests/{name}").id
        self.file_ids: dict[str, int] = {}
        self.texts: dict[str, str] = {}

    def apply(self, changes: Mapping[str, str | None]) -> None:
        """Add, replace (str) or delete (None) files, then resolve."""
        self.texts.update({path: text for path, text in changes.items() if text is not None})
        for path, text in changes.items():
            if text is None:
                self.texts.pop(path, None)
        all_paths = frozenset(self.texts)
        for path, text in sorted(changes.items()):
            with self.lode.db.connection() as conn, conn.transaction():
                graph = GraphStore(conn)
                old = self.file_ids.pop(path, None)
                if old is not None:
                    graph.delete_file(self.repo_id, old)
                    Files(conn).delete(old)
                if text is not None:
                    file_id = Files(conn).reserve_ids(1)[0]
                    Files(conn).insert(file_id, self.repo_id, path, language_for_path(path) or "text",
                                       len(text.encode()), 0, "graph-test", None)
                    graph.replace_file(self.repo_id, file_id, file_facts(path, text, all_paths))
                    self.file_ids[path] = file_id
        with self.lode.db.connection() as conn, conn.transaction():
            GraphStore(conn).resolve(self.repo_id)

    def load(self, root: Path) -> GraphRepo:
        files = {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}
        self.apply({path: text for path, text in files.items() if not path.endswith(".txt")})
        return self

    def edges(self, kinds: tuple[str, ...] = ("calls", "imports", "inherits")) -> list[EdgeRow]:
        """Every edge as (source, target, kind, path:line), sorted; externals are `external:NAME`."""
        with self.lode.db.connection() as conn:
            rows = conn.execute(
                """SELECT s.name_path, coalesce(t.name_path, 'external:' || e.target_name), e.kind,
                          s.path || ':' || e.line
                     FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                     LEFT JOIN graph_nodes t ON t.id = e.target_id
                    WHERE e.repo_id = %s AND e.kind = ANY(%s)""",
                (self.repo_id, list(kinds)),
            ).fetchall()
        return sorted(rows)

    def confidences(self) -> dict[tuple[str, str, str], float]:
        """The confidence of each (source, target, kind); for edges that occur once."""
        return {(s, t, k): c for s, t, k, _, c in self.snapshot()}

    def snapshot(self) -> list[tuple[str, str, str, str, float]]:
        """Every edge with its evidence and confidence, sorted: what a clean build must reproduce exactly."""
        with self.lode.db.connection() as conn:
            rows = conn.execute(
                """SELECT s.name_path, coalesce(t.name_path, 'external:' || e.target_name), e.kind,
                          s.path || ':' || e.line, e.confidence
                     FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                     LEFT JOIN graph_nodes t ON t.id = e.target_id WHERE e.repo_id = %s""",
                (self.repo_id,),
            ).fetchall()
        return sorted(rows)


def truth(root: Path) -> set[tuple[str, str]]:
    """The hand-written call graph of a fixture repository: `caller -> callee` lines of CALLS.txt."""
    edges = set()
    for line in (root / "CALLS.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            source, _, target = line.partition("->")
            edges.add((source.strip(), target.strip()))
    return edges


def in_repo_calls(repo: GraphRepo) -> set[tuple[str, str]]:
    return {(source, target) for source, target, _, _ in repo.edges(("calls",)) if not target.startswith("external:")}


def precision_recall(found: set[tuple[str, str]], expected: set[tuple[str, str]]) -> tuple[float, float]:
    hits = len(found & expected)
    return hits / max(1, len(found)), hits / max(1, len(expected))

