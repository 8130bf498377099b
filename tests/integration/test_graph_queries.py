"""Graph queries: symbol lookup, callers/callees, paths, statistics and export, on a real PostgreSQL."""

from __future__ import annotations

import json

import pytest
from tests.support.graph_repos import FIXTURES, GraphRepo

from lode import graph
from lode.engine import Lode
from lode.errors import InputError
from lode.store import graph_queries


@pytest.fixture(scope="module")
def shop(lode: Lode) -> GraphRepo:
    return GraphRepo(lode, "graph-queries-shop").load(FIXTURES / "pyshop")


@pytest.fixture(scope="module")
def loops(lode: Lode) -> GraphRepo:
    """A call cycle a -> b -> c -> a with a tail c -> d, and modules importing each other."""
    repo = GraphRepo(lode, "graph-queries-loops")
    repo.apply(
        {
            "one.py": "import two\n\ndef a():\n    two.b()\n",
            "two.py": "import three\n\ndef b():\n    three.c()\n",
            "three.py": "import one\n\ndef c():\n    one.a()\n    d()\n\ndef d():\n    pass\n",
            "alone.py": "def e():\n    pass\n",
        }
    )
    return repo


def test_find_symbol_takes_qualified_names_suffixes_unique_short_names_and_externals(
    lode: Lode, shop: GraphRepo
) -> None:
    with lode.db.connection() as conn:
        repos = [shop.repo_id]
        product = graph_queries.find_symbol(conn, repos, "Product")
        assert (product.name_path, product.kind, product.path, product.start_line) == (
            "shop.models.Product",
            "class",
            "shop/models.py",
            20,
        )
        assert graph_queries.find_symbol(conn, repos, "Backend.save").name_path == "shop.storage.backends.Backend.save"
        assert graph_queries.find_symbol(conn, repos, "shop.models").kind == "module"
        assert graph_queries.find_symbol(conn, repos, "json.dumps").kind == "external"
        with pytest.raises(graph_queries.AmbiguousSymbol) as ambiguous:
            graph_queries.find_symbol(conn, repos, "write")
        assert len(ambiguous.value.candidates) == 3
        assert all("backends" in candidate for candidate in ambiguous.value.candidates)
        assert isinstance(ambiguous.value, InputError)  # exit code 2
        with pytest.raises(graph_queries.SymbolNotFound):
            graph_queries.find_symbol(conn, repos, "no_such_thing")


def test_callers_walk_up_by_depth_with_evidence(lode: Lode, shop: GraphRepo) -> None:
    with lode.db.connection() as conn:
        direct = graph_queries.callers(conn, [shop.repo_id], "shop.util.clamp")
        deep = graph_queries.callers(conn, [shop.repo_id], "shop.util.clamp", depth=3)
    assert {(h.symbol.name_path, h.depth) for h in direct.hops} == {
        ("shop.models.Product.__init__", 1),
        ("shop.models.Product.restock", 1),
        ("shop.pricing.Discount.__init__", 1),
    }
    hop = next(h for h in direct.hops if h.symbol.name_path == "shop.models.Product.restock")
    assert (hop.via, hop.edge_kind, hop.confidence, hop.evidence) == (
        "shop.util.clamp",
        "calls",
        1.0,
        "shop/models.py:30",
    )
    assert (hop.symbol.path, hop.symbol.start_line, hop.symbol.end_line) == ("shop/models.py", 29, 31)
    by_name = {h.symbol.name_path: h for h in deep.hops}
    assert by_name["shop.models.Order.add"].depth == 2
    assert by_name["shop.models.Order.add"].via == "shop.models.Product.restock"
    assert by_name["shop.cart.Cart.put"].depth == 3
    assert [h.depth for h in deep.hops] == sorted(h.depth for h in deep.hops)
    with lode.db.connection() as conn:
        importers = graph_queries.callers(conn, [shop.repo_id], "shop.models", kinds=("imports",))
    assert {h.symbol.name_path for h in importers.hops} == {"app", "shop.cart"}


def test_callees_reach_externals_as_leaves_and_filter_by_confidence(lode: Lode, shop: GraphRepo) -> None:
    with lode.db.connection() as conn:
        everything = graph_queries.callees(conn, [shop.repo_id], "Backend.encode")
        confident = graph_queries.callees(conn, [shop.repo_id], "app.main", min_confidence=0.9)
        all_main = graph_queries.callees(conn, [shop.repo_id], "app.main")
    assert {(h.symbol.name_path, h.symbol.kind) for h in everything.hops} == {
        ("json.dumps", "external"),
        ("entity.kind", "external"),
    }
    assert "shop.storage.backends.Backend.save" in {h.symbol.name_path for h in all_main.hops}
    assert "shop.storage.backends.Backend.save" not in {h.symbol.name_path for h in confident.hops}  # 0.72


def test_traversals_stop_on_cycles_and_honour_depth_and_limit(lode: Lode, loops: GraphRepo) -> None:
    with lode.db.connection() as conn:
        repos = [loops.repo_id]
        around = graph_queries.callees(conn, repos, "one.a", depth=10)
        limited = graph_queries.callees(conn, repos, "one.a", depth=10, limit=2)
        callers = graph_queries.callers(conn, repos, "three.d", depth=10)
        with pytest.raises(InputError):
            graph_queries.callees(conn, repos, "one.a", depth=11)
        with pytest.raises(InputError):
            graph_queries.callees(conn, repos, "one.a", kinds=("friends",))
    assert [(h.symbol.name_path, h.depth) for h in around.hops] == [("two.b", 1), ("three.c", 2), ("three.d", 3)]
    assert not around.truncated
    assert len(limited.hops) == 2 and limited.truncated
    assert [(h.symbol.name_path, h.depth) for h in callers.hops] == [("three.c", 1), ("two.b", 2), ("one.a", 3)]


def test_path_is_shortest_bounded_and_found_in_either_direction(lode: Lode, shop: GraphRepo, loops: GraphRepo) -> None:
    with lode.db.connection() as conn:
        forward = graph_queries.path(conn, [shop.repo_id], "app.main", "shop.util.slugify")
        backward = graph_queries.path(conn, [shop.repo_id], "shop.util.slugify", "app.main")
        too_short = graph_queries.path(conn, [shop.repo_id], "app.main", "shop.util.slugify", max_depth=2)
        around = graph_queries.path(conn, [loops.repo_id], "two.b", "one.a", kinds=("calls",))
        none = graph_queries.path(conn, [loops.repo_id], "one.a", "alone.e")
    assert forward is not None and forward.direction == "forward"
    assert [(h.via, h.symbol.name_path, h.evidence) for h in forward.hops] == [
        ("app.main", "shop.storage.backends.Backend.save", "app.py:12"),
        ("shop.storage.backends.Backend.save", "shop.storage.backends.Backend.path_for", "shop/storage/backends.py:10"),
        ("shop.storage.backends.Backend.path_for", "shop.util.slugify", "shop/storage/backends.py:15"),
    ]
    assert backward is not None and backward.direction == "backward"
    assert [h.symbol.name_path for h in backward.hops] == [h.symbol.name_path for h in forward.hops]
    assert too_short is None
    assert around is not None and [h.symbol.name_path for h in around.hops] == ["three.c", "one.a"]
    assert none is None


def test_stats_count_kinds_rank_fan_in_and_out_and_find_import_cycles(
    lode: Lode, shop: GraphRepo, loops: GraphRepo
) -> None:
    with lode.db.connection() as conn:
        shop_stats = graph_queries.stats(conn, [shop.repo_id], top=3)
        loop_stats = graph_queries.stats(conn, [loops.repo_id])
    assert shop_stats["nodes"] == {"class": 9, "function": 12, "method": 25, "module": 8}
    assert shop_stats["edges"]["inherits"] == {"internal": 5, "external": 0}
    assert shop_stats["edges"]["calls"]["internal"] > 40
    assert len(shop_stats["top_fan_in"]) == 3 and shop_stats["top_fan_in"][0]["callers"] == 3
    assert shop_stats["top_fan_out"][0]["symbol"].name_path == "app.main"
    assert shop_stats["import_cycles"] == []
    assert loop_stats["import_cycles"] == [["one", "three", "two"]]


def test_export_formats(lode: Lode, shop: GraphRepo) -> None:
    filters = graph.ExportFilters(kinds=("inherits",))
    with lode.db.connection() as conn:
        document = json.loads(graph.export(conn, [shop.repo_id], "json", filters))
        dot = graph.export(conn, [shop.repo_id], "dot", filters)
        mermaid = graph.export(conn, [shop.repo_id], "mermaid", filters)
        external = json.loads(
            graph.export(
                conn,
                [shop.repo_id],
                "json",
                graph.ExportFilters(kinds=("calls",), include_external=True, path_glob="shop/util.py"),
            )
        )
        capped = json.loads(graph.export(conn, [shop.repo_id], "json", graph.ExportFilters(limit=3)))
        with pytest.raises(InputError):
            graph.export(conn, [shop.repo_id], "png")
    names = {node["id"]: node["name_path"] for node in document["nodes"]}
    edges = {(names[e["source"]], names[e["target"]]) for e in document["edges"]}
    assert ("shop.models.Product", "shop.models.Entity") in edges and len(edges) == 5
    assert all(e["evidence"].count(":") == 1 and e["confidence"] == 1.0 for e in document["edges"])
    assert dot.startswith("digraph lode {") and '"shop.models.Product"' in dot and "->" in dot and dot.count("->") == 5
    assert mermaid.startswith("flowchart LR") and mermaid.count("==>") == 5 and '["shop.models.Entity"]' in mermaid
    assert {e["target"] for e in external["edges"]} >= {"external:re.compile", "external:text.lower"}
    assert {node["path"] for node in external["nodes"] if node["kind"] != "external"} == {"shop/util.py"}
    assert len(capped["edges"]) == 3 and capped["truncated"]
