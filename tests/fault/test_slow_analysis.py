"""A file that is slow to analyse is bounded whatever the run's size (issue #15, item 11), on real processes.

The file: one statement of 140,000 chained calls, `x = (a` then `.b()` on a line each (700 KB). It parses fast,
but each call's callee is the whole chain before it, so reading the references is quadratic (10,000 calls took
77 s here; the issue's 700 KB file, 91 s). Before the fix nothing bounded that: the graph facts were outside the
parse budget, and LODE_TIMEOUT_INDEX_FILE held only in runs of at least 32 changed files with 2 workers, so a
run with LODE_INDEX_WORKERS=1, or an incremental run of that one file, did not end (the subprocess timeouts
below fail the tests; tree-sitter's query cursor even crashed on it). Now every file is analysed in a killable
worker, so one that runs past LODE_TIMEOUT_INDEX_FILE is skipped as `index_timeout` even when it is the only one;
the query starts no match deeper than 10,000 levels, and the references have the parse budget (LODE_TIMEOUT_PARSE),
checked per capture, after which the file keeps its chunks and nodes with the fallback `graph_timeout`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run_cli
from lode.chunking.chunker import chunk_file_with_tree
from lode.config import Settings
from lode.engine import Lode
from lode.graph import FactsTimeout, extract_facts
from tests.support.trees import write_tree

pytestmark = pytest.mark.timeout(600)

CHAIN_CALLS = 140_000
OTHERS = {
    "shop/__init__.py": '"""The shop."""\n',
    "shop/cart.py": "from shop.prices import price\n\n\ndef total(items):\n    return sum(price(i) for i in items)\n",
    "shop/prices.py": "def price(item):\n    return item.cost * 2\n",
    "shop/checkout.py": "from shop.cart import total\n\n\ndef checkout(items):\n    return total(items)\n",
}


def _chain() -> str:
    return "x = (a\n" + ".b()\n" * CHAIN_CALLS + ")\n"


def _callers(repo: str, symbol: str) -> set[str]:
    code, found, stderr = run_cli("graph", "callers", symbol, "--repo", repo, "--json")
    assert code == 0, stderr
    return {hop["name_path"] for hop in found["results"]}


def test_graph_facts_past_their_budget_raise_facts_timeout() -> None:
    """The budget itself (process_file then keeps the file's chunks and nodes, with the fallback graph_timeout)."""
    text = OTHERS["shop/cart.py"]
    chunked, tree = chunk_file_with_tree("shop/cart.py", text, "python", "shop.cart", Settings())
    assert extract_facts("shop/cart.py", text, "python", "shop.cart", chunked, tree).references
    with pytest.raises(FactsTimeout, match="graph facts exceeded 0s"):
        extract_facts("shop/cart.py", text, "python", "shop.cart", chunked, tree, timeout_seconds=0)


def test_an_incremental_run_of_one_slow_file_is_bounded_by_the_index_file_timeout(
        lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, OTHERS)
    env = {"LODE_INDEX_WORKERS": "1", "LODE_TIMEOUT_PARSE": "3600", "LODE_TIMEOUT_INDEX_FILE": "5"}
    code, first, stderr = run_cli("index", str(tmp_path), "--repo", repo_name, "--json", env=env)
    assert code == 0 and first["files_indexed"] == 4, stderr
    (tmp_path / "chain.py").write_text(_chain())  # the only change: the facts alone would run for hours
    code, report, stderr = run_cli("index", str(tmp_path), "--repo", repo_name, "--json", env=env, timeout=300)
    assert code == 0, stderr
    assert report["files_unchanged"] == 4 and report["files_skipped"] == 1, report
    code, status, _ = run_cli("status", "--repo", repo_name, "--skipped", "--json")
    (skip,) = status["repos"][0]["skipped_files"]
    assert skip["path"] == "chain.py" and skip["reason"] == "index_timeout", skip
    assert "LODE_TIMEOUT_INDEX_FILE" in skip["detail"]
    assert _callers(repo_name, "price") == {"shop.cart.total"}
