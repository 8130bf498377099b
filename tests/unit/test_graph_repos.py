"""The graph tests' own helpers (tests/support/graph_repos.py) hold the assumptions those tests rely on."""

from __future__ import annotations

from tests.support.graph_repos import FIXTURES, file_facts, truth


def test_file_facts_use_module_names_of_the_package_layout() -> None:
    facts = file_facts("src/pkg/mod.py", "def f():\n    pass\n", frozenset({"src/pkg/__init__.py", "src/pkg/mod.py"}))
    assert [s.name_path for s in facts.symbols] == ["pkg.mod", "pkg.mod.f"]


def test_truth_files_parse() -> None:
    for root in FIXTURES.iterdir():
        edges = truth(root)
        assert edges and all(source and target for source, target in edges)
