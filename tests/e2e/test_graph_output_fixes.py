"""Issue 18's small fixes: the text of a backward `lode graph path`, the `--kinds` help, and mermaid exports
larger than mermaid renders."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.graph_repos import GraphRepo

from lode import graph
from lode.engine import Lode
from lode.graph.export import MERMAID_MAX_EDGES
from lode.model import EDGE_KINDS


def test_a_backward_path_prints_where_it_starts_and_ends(tmp_path: Path, repo_name: str) -> None:
    (tmp_path / "chain.py").write_text(
        "def first():\n    middle()\n\ndef middle():\n    last()\n\ndef last():\n    pass\n")
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    code, text, _ = run_cli("graph", "path", "chain.last", "chain.first", "--repo", repo_name)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert code == 0 and lines[0].startswith("chain.first (chain.py:1) (backward)"), text
    assert [line.split()[1] for line in lines[1:]] == ["chain.middle", "chain.last"]
    code, found, _ = run_cli("graph", "path", "chain.last", "chain.first", "--repo", repo_name, "--json")
    assert found["direction"] == "backward" and found["path"][-1]["name_path"] == "chain.last"


def test_the_kinds_help_lists_the_kinds_the_commands_accept() -> None:
    code, text, _ = run_cli("graph", "callers", "--help", env={"COLUMNS": "200"})
    listed = re.search(r"Edge kinds, comma-separated:\s*([\w,\s]+)\.", text)
    assert code == 0 and listed is not None
    assert [kind.strip() for kind in listed.group(1).replace("\n", "").split(",")] == list(EDGE_KINDS)
    assert "contains" not in text


def test_a_mermaid_export_stays_within_what_mermaid_renders_and_says_so(lode: Lode, repo_name: str) -> None:
    calls = "\n".join(f"    outside.f{i}()" for i in range(MERMAID_MAX_EDGES + 20))
    repo = GraphRepo(lode, repo_name)
    repo.apply({"big.py": f"import outside\ndef helper():\n    pass\ndef run():\n    helper()\n{calls}\n"})
    with lode.db.connection() as conn:
        everything = graph.export(conn, [repo.repo_id], "mermaid", graph.ExportFilters(include_external=True))
        small = graph.export(conn, [repo.repo_id], "mermaid", graph.ExportFilters())
    arrows = [line for line in everything.splitlines() if "-->" in line or "-.->" in line]
    assert len(arrows) == MERMAID_MAX_EDGES
    # 520 external calls, one internal call and the external import of `outside`
    assert f"%% 22 of {MERMAID_MAX_EDGES + 22} edges left out" in everything
    assert "big.helper" in everything  # the in-repository call is kept
    assert "%%" not in small and small.count("-->") == 1
