"""No import cycles among Lode's modules: every import counts, at module level or inside a function (a lazy
import hides a cycle from Python, not from the design), except those under `if TYPE_CHECKING:`."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import lode

ROOT = Path(lode.__file__).parent

# pairs that import each other while a redesign takes them apart; empty since lode/api/commands.py became
# lode/cli_server.py over lode/cli_output.py (issue 16), and it should stay so
KNOWN_CYCLES: list[tuple[str, str]] = []


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The Lode modules `module` imports: `from a import b` names the module a.b when there is one, else a."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    targets: set[str | None] = set()
    pending: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"))]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            targets.update(known(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in modules else known(base))
        pending.extend(ast.iter_child_nodes(node))
    return {t for t in targets if t is not None and t.startswith("lode") and t != module}


def import_graph() -> dict[str, set[str]]:
    """{module: the Lode modules it imports}."""
    modules = _modules()
    return {module: _imports(module, path, modules) for module, path in modules.items()}


def test_the_graph_sees_lazy_imports_and_skips_type_checking_ones() -> None:
    graph = import_graph()
    assert "lode.jobs" in graph["lode.queue"]  # inside its task functions
    assert "lode.engine" not in graph["lode.queue"]  # only under TYPE_CHECKING
    assert "lode.store.db" in graph["lode.engine"]
    assert "lode.graph.facts" in graph["lode.graph.resolve"]  # `from lode.graph import facts`: the module


def test_lode_modules_import_each_other_without_cycles() -> None:
    graph = import_graph()
    for a, b in KNOWN_CYCLES:
        assert b in graph[a] and a in graph[b], f"{a} and {b} no longer import each other: take them off KNOWN_CYCLES"
        graph[a].discard(b)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        raise AssertionError(f"an import cycle: {' -> '.join(cycle.args[1])}") from None
