"""Queries of the code graph (callers, callees, references, paths, statistics, exports): each first settles the
graph resolution still queued, then answers through the cache while nothing is left queued."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from lode import graph
from lode.errors import InputError
from lode.indexer import Indexer
from lode.services.base import RepoScope, Service, check_text, repos_in_scope
from lode.model import EDGE_KINDS
from lode.store import graph_queries
from lode.store.graph import GraphStore
from lode.store.repositories import RepoRow


class GraphService(Service):
    def neighbours(
        self, direction: str, symbol: str, *, repo: RepoScope = None, depth: int = 1,
        kinds: tuple[str, ...] = ("calls",), min_confidence: float = 0.0, limit: int = 200,
    ) -> dict[str, Any]:
        """Callers (direction "callers") or callees of a symbol, up to `depth` hops."""
        check_text("the symbol", symbol)
        return self._cached(repo, ("neighbours", direction, symbol, depth, kinds, min_confidence, limit),
                            lambda: self._neighbours(direction, symbol, repo, depth, kinds, min_confidence, limit))

    def _neighbours(self, direction: str, symbol: str, repo: RepoScope, depth: int, kinds: tuple[str, ...],
                    min_confidence: float, limit: int) -> dict[str, Any]:
        walk = graph_queries.callers if direction == "callers" else graph_queries.callees
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = repos_in_scope(conn, repo)
            traversal = walk(conn, [r.id for r in repos], symbol, depth=depth, kinds=kinds,
                             min_confidence=min_confidence, limit=limit)
        names = {r.id: r.name for r in repos}
        return {"symbol": node_json(traversal.start, names), "direction": direction, "depth": depth,
                "truncated": traversal.truncated, "results": [hop_json(h, names) for h in traversal.hops]}

    def refs(self, symbol: str, *, repo: RepoScope = None, kinds: tuple[str, ...] = EDGE_KINDS,
             min_confidence: float = 0.0, limit: int = 200) -> dict[str, Any]:
        """Every use of a symbol (calls, imports, base classes, annotations, decorators), each with its kind."""
        check_text("the symbol", symbol)
        return self._cached(repo, ("refs", symbol, kinds, min_confidence, limit),
                            lambda: self._refs(symbol, repo, kinds, min_confidence, limit))

    def _refs(self, symbol: str, repo: RepoScope, kinds: tuple[str, ...], min_confidence: float,
              limit: int) -> dict[str, Any]:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = repos_in_scope(conn, repo)
            found = graph_queries.references(conn, [r.id for r in repos], symbol, kinds=kinds,
                                             min_confidence=min_confidence, limit=limit)
        names = {r.id: r.name for r in repos}
        return {"symbol": node_json(found.symbol, names), "truncated": found.truncated,
                "refs": [node_json(use.source, names) | {"kind": use.kind, "confidence": round(use.confidence, 3),
                                                         "evidence": use.evidence} for use in found.uses]}

    def path(self, source: str, target: str, *, repo: RepoScope = None, max_depth: int = 6) -> dict[str, Any]:
        check_text("the source symbol", source)
        check_text("the target symbol", target)
        return self._cached(repo, ("path", source, target, max_depth),
                            lambda: self._path(source, target, repo, max_depth))

    def _path(self, source: str, target: str, repo: RepoScope, max_depth: int) -> dict[str, Any]:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = repos_in_scope(conn, repo)
            found = graph_queries.path(conn, [r.id for r in repos], source, target, max_depth=max_depth)
        names = {r.id: r.name for r in repos}
        if found is None:
            return {"from": source, "to": target, "found": False, "path": []}
        return {"from": node_json(found.start, names), "to": node_json(found.end, names), "found": True,
                "direction": found.direction, "path": [hop_json(h, names) for h in found.hops]}

    def stats(self, repo: RepoScope = None) -> dict[str, Any]:
        return self._cached(repo, ("stats",), lambda: self._stats(repo))

    def _stats(self, repo: RepoScope) -> dict[str, Any]:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = repos_in_scope(conn, repo)
            result = graph_queries.stats(conn, [r.id for r in repos])
        names = {r.id: r.name for r in repos}
        for entry in result["top_fan_in"] + result["top_fan_out"]:
            entry["symbol"] = node_json(entry["symbol"], names)
        return result

    def export(self, fmt: str, filters: graph.ExportFilters, repo: RepoScope = None) -> str:
        return self._cached(repo, ("export", fmt, asdict(filters)), lambda: self._export(fmt, filters, repo))

    def _export(self, fmt: str, filters: graph.ExportFilters, repo: RepoScope) -> str:
        with self.db.read(self.settings.timeouts.graph_traversal) as conn:
            repos = repos_in_scope(conn, repo)
            return graph.export(conn, [r.id for r in repos], fmt, filters)

    def resolve(self, repo: str, wait: float | None = None) -> bool:
        """Finish a repository's queued graph resolution (see Indexer.resolve_graph); False if an index run or
        another resolution held the repository for longer than `wait` seconds."""
        self.require()
        with self.db.connection() as conn:
            row = repos_in_scope(conn, repo)[0]
        return Indexer(self.db, self.settings).resolve_graph(row.id, wait)

    def settle(self, repos: list[RepoRow]) -> bool:
        """Resolve queued graph work before a graph query, waiting for a running index or resolution up to the
        graph traversal timeout. False when work is still queued: the answer then uses the edges as they are,
        and is not cached (resolution does not bump the generation)."""
        self.require()  # every graph query and search(expand=True) passes here first
        with self.db.read() as conn:
            queued = GraphStore(conn).queued([r.id for r in repos])
        indexer = Indexer(self.db, self.settings)
        resolved = [indexer.resolve_graph(repo_id, wait=self.settings.timeouts.graph_traversal) for repo_id in queued]
        return all(resolved)  # every queued repository is resolved, not only those before the first that times out

    def require(self) -> None:
        """The one check of LODE_GRAPH for queries: with it off there is no graph to answer from."""
        if not self.settings.graph:
            raise InputError("the code graph is off (LODE_GRAPH=false): set LODE_GRAPH=true and re-index to build it")

    def _cached(self, repo: RepoScope, params: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self.db.read() as conn:
            repos = repos_in_scope(conn, repo)
        settled = self.settle(repos)
        result = self.lode.cache.through("graph", repos, params, compute, cacheable=lambda _: settled)
        if isinstance(result, dict):  # export returns text
            result = {**result, "graph_pending": not settled}  # True: resolution was still running
        return result


def node_json(node: graph_queries.GraphNode, repo_names: dict[int, str]) -> dict[str, Any]:
    return {"repo": repo_names.get(node.repo_id), "name_path": node.name_path, "kind": node.kind,
            "path": node.path, "start_line": node.start_line, "end_line": node.end_line,
            "external": node.id is None, "guard": node.guard}


def hop_json(hop: graph_queries.Hop, repo_names: dict[int, str]) -> dict[str, Any]:
    return node_json(hop.symbol, repo_names) | {
        "depth": hop.depth, "via": hop.via, "edge": hop.edge_kind, "confidence": round(hop.confidence, 3),
        "evidence": hop.evidence,
    }
