"""All SQL lives in lode/store: every other module of lode (the interfaces, the services, the engine, the jobs,
the indexer, the graph, search, the cache) runs statements only through a store class (issue 16). A statement is
a call of execute, executemany, cursor or copy; what is left outside the store is listed in ALLOWED with the
reason."""

from __future__ import annotations

import ast
from pathlib import Path

import lode

ROOT = Path(lode.__file__).parent
STORE = ROOT / "store"
STATEMENT_CALLS = {"execute", "executemany", "cursor", "copy"}

# (module path under lode/, enclosing function) -> why its statements are not in lode/store yet
ALLOWED: dict[tuple[str, str], str] = {}


def _statements(path: Path) -> set[str]:
    """The functions of `path` (Class.method) that call a statement method."""
    found: set[str] = set()

    def visit(node: ast.AST, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, [*scope, child.name])
                continue
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr in STATEMENT_CALLS):
                found.add(".".join(scope) or "<module>")
            visit(child, scope)

    visit(ast.parse(path.read_text(encoding="utf-8")), [])
    return found


def statements_outside_the_store() -> set[tuple[str, str]]:
    return {(str(path.relative_to(ROOT)), function)
            for path in sorted(ROOT.rglob("*.py")) if STORE not in path.parents for function in _statements(path)}


def test_the_scan_finds_a_statement(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("class A:\n    def f(self, conn):\n        conn.execute('SELECT 1')\n"
                      "def g(conn):\n    with conn.cursor() as cur:\n        pass\n")
    assert _statements(sample) == {"A.f", "g"}


def test_no_module_outside_the_store_runs_sql() -> None:
    found = statements_outside_the_store()
    unexpected = sorted(found - ALLOWED.keys())
    assert not unexpected, f"SQL outside lode/store (move it to a store class, or allow it with a reason): {unexpected}"
    stale = sorted(ALLOWED.keys() - found)
    assert not stale, f"no SQL there any more: take these off ALLOWED: {stale}"


def test_the_scan_reads_the_store_and_every_package() -> None:
    """The walk reaches lode's subpackages: it finds the store's statements when the store is not left out."""
    in_store = {str(path.relative_to(ROOT)) for path in STORE.rglob("*.py") if _statements(path)}
    assert {"store/jobs.py", "store/graph.py", "store/postings.py"} <= in_store
    scanned = {path.parent.name for path in ROOT.rglob("*.py") if STORE not in path.parents}
    assert {"graph", "search", "embedding", "api", "services"} <= scanned
