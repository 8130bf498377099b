"""Graph queries over a connection: symbol lookup, callers/callees, shortest paths, statistics.

Traversals are recursive CTEs walking breadth-first. Rows are deduplicated per level (UNION) and the depth is
bounded, so a cycle cannot loop; every walk also stops after `MAX_WALK_ROWS` rows (PostgreSQL evaluates a
recursive CTE only as far as its reader fetches), and the result is cut to `limit` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from lode.errors import InputError, NotFound
from lode.model import EDGE_KINDS, MODULE_ORDINAL
from lode.store.repositories import CHUNK_ID_BITS as _BITS
from lode.store.symbols import like_escaped

WALKED_KINDS = ("calls", "imports", "inherits")  # what paths and exports follow unless told
MAX_DEPTH = 10
MAX_WALK_ROWS = 200_000


class SymbolNotFound(NotFound):
    pass


class AmbiguousSymbol(InputError):
    """A short name several symbols share; `candidates` are their qualified names with locations."""

    def __init__(self, name: str, candidates: list[str]) -> None:
        super().__init__(f"{name!r} is ambiguous: {', '.join(candidates)}")
        self.candidates = candidates


@dataclass(frozen=True, slots=True)
class GraphNode:
    """A graph node: a definition, a module, or an external name (id None, no location)."""

    id: int | None
    repo_id: int
    name_path: str
    kind: str
    path: str | None
    start_line: int | None
    end_line: int | None
    guard: str | None = None  # a definition under an if/try/with: what decides whether it exists


@dataclass(frozen=True, slots=True)
class Hop:
    """A node reached by a traversal, with the edge that first reached it."""

    symbol: GraphNode
    depth: int
    via: str  # the name path of the node on the start's side of the edge
    edge_kind: str
    confidence: float
    evidence: str  # path:line of the reference


@dataclass(slots=True)
class Traversal:
    start: GraphNode
    hops: list[Hop] = field(default_factory=list)
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Use:
    """One reference to a symbol: the definition it is in, its kind, and where it is."""

    source: GraphNode
    kind: str  # an edge kind: calls | imports | inherits | annotates | decorates
    confidence: float
    evidence: str  # path:line


@dataclass(slots=True)
class References:
    symbol: GraphNode
    uses: list[Use] = field(default_factory=list)
    truncated: bool = False


@dataclass(slots=True)
class GraphPath:
    start: GraphNode
    end: GraphNode
    direction: str  # forward: start reaches end; backward: end reaches start
    hops: list[Hop] = field(default_factory=list)


_NODE_COLUMNS = "n.id, n.repo_id, n.name_path, n.kind, n.path, n.start_line, n.end_line, n.guard"


def _like_suffix(name: str) -> str:
    return "%." + like_escaped(name)


def find_symbol(conn: psycopg.Connection, repo_ids: list[int], name: str) -> GraphNode:
    """A qualified name, a unique suffix of one (`Class.method`) or a unique short name; else an external name.

    Raises AmbiguousSymbol listing the candidates, or SymbolNotFound.
    """
    name = name.strip()
    if not name or len(name) > 500:
        raise InputError("a symbol name needs 1 to 500 characters")
    last = name.partition("(")[0].rsplit(".", 1)[-1]
    plain = "(" not in name  # Java overloads: `Repo.save` also names each `Repo.save(...)`
    rows = conn.execute(
        f"""SELECT {_NODE_COLUMNS}, n.name_path = %(name)s AS exact FROM graph_nodes n
             WHERE n.repo_id = ANY(%(repos)s) AND n.name = %(last)s
               AND (n.name_path = %(name)s OR n.name_path LIKE %(suffix)s OR n.name = %(name)s
                    OR n.name_path LIKE %(overload)s OR n.name_path LIKE %(suffix_overload)s)
             ORDER BY n.name_path, n.path LIMIT 51""",
        {"repos": repo_ids, "name": name, "last": last, "suffix": _like_suffix(name),
         "overload": like_escaped(name) + "(%" if plain else None,
         "suffix_overload": _like_suffix(name) + "(%" if plain else None},
    ).fetchall()
    exact = [row for row in rows if row[-1]]
    chosen = exact or rows
    if len(chosen) == 1:
        return GraphNode(*chosen[0][:-1])
    if chosen:
        raise AmbiguousSymbol(name, [f"{row[2]} ({row[4]}:{row[5]})" for row in chosen])
    external = conn.execute(
        "SELECT repo_id FROM graph_edges WHERE repo_id = ANY(%s) AND target_id IS NULL AND target_name = %s LIMIT 1",
        (repo_ids, name),
    ).fetchone()
    if external is not None:
        return GraphNode(None, external[0], name, "external", None, None, None)
    raise SymbolNotFound(f"no symbol named {name!r} in the graph")


def callers(
    conn: psycopg.Connection,
    repo_ids: list[int],
    symbol: str,
    depth: int = 1,
    kinds: tuple[str, ...] = ("calls",),
    min_confidence: float = 0.0,
    limit: int = 200,
) -> Traversal:
    """Who reaches `symbol` through edges of `kinds`, up to `depth` edges away, nearest first."""
    return _traverse(conn, repo_ids, find_symbol(conn, repo_ids, symbol), "in", depth, kinds, min_confidence, limit)


def callees(
    conn: psycopg.Connection,
    repo_ids: list[int],
    symbol: str,
    depth: int = 1,
    kinds: tuple[str, ...] = ("calls",),
    min_confidence: float = 0.0,
    limit: int = 200,
) -> Traversal:
    """What `symbol` reaches through edges of `kinds`, up to `depth` edges away; externals are leaves."""
    return _traverse(conn, repo_ids, find_symbol(conn, repo_ids, symbol), "out", depth, kinds, min_confidence, limit)


def _check(depth: int, kinds: tuple[str, ...], min_confidence: float, limit: int) -> None:
    if not 1 <= depth <= MAX_DEPTH:
        raise InputError(f"--depth must be between 1 and {MAX_DEPTH}")
    if not kinds or any(kind not in EDGE_KINDS for kind in kinds):
        raise InputError(f"edge kinds must be among {', '.join(EDGE_KINDS)}")
    if not 0.0 <= min_confidence <= 1.0:
        raise InputError("--min-confidence must be between 0 and 1")
    if not 1 <= limit <= 10_000:
        raise InputError("--limit must be between 1 and 10000")


def _traverse(
    conn: psycopg.Connection,
    repo_ids: list[int],
    start: GraphNode,
    direction: str,
    depth: int,
    kinds: tuple[str, ...],
    min_confidence: float,
    limit: int,
) -> Traversal:
    _check(depth, kinds, min_confidence, limit)
    near, far = ("target_id", "source_id") if direction == "in" else ("source_id", "target_id")
    if start.id is not None:
        first = f"e.{near} = %(start)s"
    elif direction == "in":
        first = "e.target_id IS NULL AND e.target_name = %(name)s"
    else:
        return Traversal(start)  # an external node has no outgoing edges
    # edges stay within a repository: the filter lets the planner read only the repositories' partitions
    edge_filter = "e.repo_id = ANY(%(repos)s) AND e.kind = ANY(%(kinds)s) AND e.confidence >= %(min)s"
    rows = conn.execute(
        f"""WITH RECURSIVE walk(node_id, external, depth, via_id, kind, confidence, line, evidence_id) AS (
                SELECT e.{far}, CASE WHEN e.target_id IS NULL THEN e.target_name END, 1, e.{near}, e.kind,
                       e.confidence, e.line, e.source_id
                  FROM graph_edges e WHERE {first} AND {edge_filter}
                UNION
                SELECT e.{far}, CASE WHEN e.target_id IS NULL THEN e.target_name END, w.depth + 1, e.{near}, e.kind,
                       e.confidence, e.line, e.source_id
                  FROM walk w JOIN graph_edges e ON e.{near} = w.node_id
                 WHERE w.depth < %(depth)s AND {edge_filter}
                   AND e.{far} IS DISTINCT FROM %(start)s::bigint),
            bounded AS (SELECT * FROM walk LIMIT %(cap)s),
            best AS (
                SELECT DISTINCT ON (node_id, external) *
                  FROM bounded ORDER BY node_id, external, depth, confidence DESC, line)
            SELECT b.depth, b.kind, b.confidence, b.line, s.path, v.name_path, b.external, {_NODE_COLUMNS},
                   (SELECT count(*) FROM bounded) >= %(cap)s
              FROM best b JOIN graph_nodes s ON s.id = b.evidence_id
              LEFT JOIN graph_nodes v ON v.id = b.via_id
              LEFT JOIN graph_nodes n ON n.id = b.node_id
             WHERE b.node_id IS NULL OR n.id IS NOT NULL
             ORDER BY b.depth, coalesce(n.name_path, b.external), n.path
             LIMIT %(limit)s + 1""",
        {
            "start": start.id,
            "name": start.name_path,
            "repos": repo_ids,
            "kinds": list(kinds),
            "min": min_confidence,
            "depth": depth,
            "cap": MAX_WALK_ROWS,
            "limit": limit,
        },
    ).fetchall()
    traversal = Traversal(start, truncated=len(rows) > limit or any(row[-1] for row in rows))
    for row in rows[:limit]:
        hop_depth, kind, confidence, line, evidence_path, via, external = row[:7]
        node = row[7:-1]
        symbol = (
            GraphNode(None, start.repo_id, external, "external", None, None, None)
            if node[0] is None
            else GraphNode(*node)
        )
        traversal.hops.append(
            Hop(symbol, hop_depth, via or start.name_path, kind, round(confidence, 4), f"{evidence_path}:{line}")
        )
    return traversal


def references(
    conn: psycopg.Connection,
    repo_ids: list[int],
    symbol: str,
    kinds: tuple[str, ...] = EDGE_KINDS,
    min_confidence: float = 0.0,
    limit: int = 200,
) -> References:
    """Every use of `symbol` (an edge into it of `kinds`), by file and line: calls, imports, base classes, type
    annotations, decorators. One entry per edge, where callers list each caller once."""
    _check(1, kinds, min_confidence, limit)
    start = find_symbol(conn, repo_ids, symbol)
    target = "e.target_id = %(id)s" if start.id is not None else "e.target_id IS NULL AND e.target_name = %(name)s"
    rows = conn.execute(
        f"""SELECT e.kind, e.confidence, e.line, {_NODE_COLUMNS}
              FROM graph_edges e JOIN graph_nodes n ON n.id = e.source_id
             WHERE {target} AND e.repo_id = ANY(%(repos)s) AND e.kind = ANY(%(kinds)s) AND e.confidence >= %(min)s
             ORDER BY n.path, e.line, e.kind, n.name_path LIMIT %(limit)s + 1""",
        {"id": start.id, "name": start.name_path, "repos": repo_ids if start.id is None else [start.repo_id],
         "kinds": list(kinds), "min": min_confidence, "limit": limit},
    ).fetchall()
    found = References(start, truncated=len(rows) > limit)
    for kind, confidence, line, *node in rows[:limit]:
        source = GraphNode(*node)
        found.uses.append(Use(source, kind, round(confidence, 4), f"{source.path}:{line}"))
    return found


def path(
    conn: psycopg.Connection,
    repo_ids: list[int],
    a: str,
    b: str,
    max_depth: int = 6,
    kinds: tuple[str, ...] = WALKED_KINDS,
    min_confidence: float = 0.0,
) -> GraphPath | None:
    """A shortest chain of edges from `a` to `b`, or else from `b` to `a`; None when neither exists within
    max_depth edges. Ties go to the alphabetically first name paths."""
    _check(max_depth, kinds, min_confidence, 1)
    start, end = find_symbol(conn, repo_ids, a), find_symbol(conn, repo_ids, b)
    for direction, source, target in (("forward", start, end), ("backward", end, start)):
        if source.id is None:
            continue
        hops = _shortest(conn, source, target, max_depth, list(kinds), min_confidence)
        if hops is not None:
            return GraphPath(start, end, direction, hops)
    return None


def _distances(conn: psycopg.Connection, origin: int, forward: bool, max_depth: int, filters: dict[str, Any]
               ) -> dict[int, int]:
    """Edges needed to reach each node from (forward) or to (backward) `origin`, up to max_depth."""
    near, far = ("source_id", "target_id") if forward else ("target_id", "source_id")
    rows = conn.execute(
        f"""WITH RECURSIVE walk(node_id, depth) AS (
                SELECT %(origin)s::bigint, 0
                UNION
                SELECT e.{far}, w.depth + 1 FROM walk w JOIN graph_edges e ON e.{near} = w.node_id
                 WHERE w.depth < %(depth)s AND e.{far} IS NOT NULL AND e.repo_id = %(repo)s
                   AND e.kind = ANY(%(kinds)s) AND e.confidence >= %(min)s)
            SELECT node_id, min(depth) FROM (SELECT * FROM walk LIMIT %(cap)s) w GROUP BY node_id""",
        {"origin": origin, "depth": max_depth, "cap": MAX_WALK_ROWS, **filters},
    ).fetchall()
    return dict(rows)


def _shortest(
    conn: psycopg.Connection,
    source: GraphNode,
    target: GraphNode,
    max_depth: int,
    kinds: list[str],
    min_confidence: float,
) -> list[Hop] | None:
    assert source.id is not None
    filters = {"repo": source.repo_id, "kinds": kinds, "min": min_confidence}  # edges stay within a repository
    if target.id is not None:
        return _shortest_to_node(conn, source.id, target.id, max_depth, filters)
    # an external name: the nearest node with an edge naming it, then that edge
    ahead = _distances(conn, source.id, True, max_depth - 1, filters)
    rows = conn.execute(
        """SELECT source_id FROM graph_edges WHERE target_id IS NULL AND target_name = %(name)s AND repo_id = %(repo)s
              AND source_id = ANY(%(ids)s) AND kind = ANY(%(kinds)s) AND confidence >= %(min)s""",
        {"name": target.name_path, "ids": list(ahead), **filters},
    ).fetchall()
    if not rows:
        return None
    last = min((row[0] for row in rows), key=lambda node: (ahead[node], node))
    hops = [] if last == source.id else _shortest_to_node(conn, source.id, last, max_depth, filters)
    assert hops is not None
    edge = _edges_between(conn, [last], None, target.name_path, filters)[0]
    return [*hops, _hop(conn, target, len(hops) + 1, last, edge)]


def _shortest_to_node(
    conn: psycopg.Connection, source: int, target: int, max_depth: int, filters: dict[str, Any]
) -> list[Hop] | None:
    """Walk forward from source, then back from target to the same depth: the nodes whose two distances add
    up to the shortest length lie on shortest paths; follow them, alphabetically first at each step."""
    ahead = _distances(conn, source, True, max_depth, filters)
    total = ahead.get(target)
    if not total:
        return None
    behind = _distances(conn, target, False, total, filters)
    on_path = [node for node, distance in ahead.items() if distance + behind.get(node, max_depth + 1) == total]
    edges = _edges_between(conn, on_path, on_path, None, filters)
    names: dict[int, str] = dict(
        conn.execute("SELECT id, name_path FROM graph_nodes WHERE id = ANY(%s)", (on_path,)).fetchall()
    )
    hops: list[Hop] = []
    current = source
    for step in range(1, total + 1):
        choices = [e for e in edges if e[0] == current and ahead.get(e[1]) == step and step + behind[e[1]] == total]
        edge = min(choices, key=lambda e: (names[e[1]], -e[3], e[4]))
        hops.append(_hop(conn, _symbol(conn, edge[1]), step, current, edge))
        current = edge[1]
    return hops


def _edges_between(
    conn: psycopg.Connection,
    sources: list[int],
    targets: list[int] | None,
    external: str | None,
    filters: dict[str, Any],
) -> list[tuple[Any, ...]]:
    """(source_id, target_id, kind, confidence, line, path) of the edges from `sources` to `targets` or to
    the external name, strongest first."""
    target_clause = "e.target_id = ANY(%(targets)s)" if targets is not None else "e.target_name = %(external)s"
    return conn.execute(
        f"""SELECT e.source_id, e.target_id, e.kind, e.confidence, e.line, s.path
              FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
             WHERE e.source_id = ANY(%(sources)s) AND {target_clause} AND e.repo_id = %(repo)s
               AND e.kind = ANY(%(kinds)s) AND e.confidence >= %(min)s
             ORDER BY e.confidence DESC, e.line""",
        {"sources": sources, "targets": targets, "external": external, **filters},
    ).fetchall()


def _symbol(conn: psycopg.Connection, node_id: int) -> GraphNode:
    row = conn.execute(f"SELECT {_NODE_COLUMNS} FROM graph_nodes n WHERE n.id = %s", (node_id,)).fetchone()
    assert row is not None
    return GraphNode(*row)


def _hop(conn: psycopg.Connection, symbol: GraphNode, depth: int, via_id: int, edge: tuple[Any, ...]) -> Hop:
    via = _symbol(conn, via_id).name_path
    return Hop(symbol, depth, via, edge[2], round(edge[3], 4), f"{edge[5]}:{edge[4]}")


def stats(conn: psycopg.Connection, repo_ids: list[int], top: int = 10) -> dict[str, Any]:
    """Node and edge counts by kind, the most called and most calling symbols, and import cycles between
    modules (strongly connected components of the module import graph)."""
    params = {"repos": repo_ids, "top": top}
    nodes: dict[str, int] = dict(
        conn.execute(
            "SELECT kind, count(*) FROM graph_nodes WHERE repo_id = ANY(%(repos)s) GROUP BY kind ORDER BY kind", params
        ).fetchall()
    )
    edges = {
        kind: {"internal": internal, "external": external}
        for kind, internal, external in conn.execute(
            """SELECT kind, count(target_id), count(*) - count(target_id) FROM graph_edges
                WHERE repo_id = ANY(%(repos)s) GROUP BY kind ORDER BY kind""",
            params,
        ).fetchall()
    }
    externals = conn.execute(
        "SELECT count(DISTINCT target_name) FROM graph_edges WHERE repo_id = ANY(%(repos)s) AND target_id IS NULL",
        params,
    ).fetchone()
    fan_in = conn.execute(
        f"""SELECT {_NODE_COLUMNS}, f.count FROM (
                SELECT target_id, count(DISTINCT source_id) AS count FROM graph_edges
                 WHERE repo_id = ANY(%(repos)s) AND kind = 'calls' AND target_id IS NOT NULL
                 GROUP BY target_id ORDER BY count DESC, target_id LIMIT %(top)s) f
              JOIN graph_nodes n ON n.id = f.target_id ORDER BY f.count DESC, n.name_path""",
        params,
    ).fetchall()
    fan_out = conn.execute(
        f"""SELECT {_NODE_COLUMNS}, f.count FROM (
                SELECT source_id, count(DISTINCT coalesce(target_id::text, target_name)) AS count FROM graph_edges
                 WHERE repo_id = ANY(%(repos)s) AND kind = 'calls'
                 GROUP BY source_id ORDER BY count DESC, source_id LIMIT %(top)s) f
              JOIN graph_nodes n ON n.id = f.source_id ORDER BY f.count DESC, n.name_path""",
        params,
    ).fetchall()
    return {
        "nodes": nodes,
        "edges": edges,
        "external_nodes": externals[0] if externals else 0,
        "top_fan_in": [{"symbol": GraphNode(*row[:8]), "callers": row[8]} for row in fan_in],
        "top_fan_out": [{"symbol": GraphNode(*row[:8]), "callees": row[8]} for row in fan_out],
        "import_cycles": import_cycles(conn, repo_ids),
    }


def import_cycles(conn: psycopg.Connection, repo_ids: list[int], limit: int = 50) -> list[list[str]]:
    """Groups of modules that import each other, directly or through others; largest first."""
    rows = conn.execute(
        f"""SELECT DISTINCT sm.name_path, tm.name_path
             FROM graph_edges e
             JOIN graph_nodes sm ON sm.id = ((e.source_id >> {_BITS}) << {_BITS}) | {MODULE_ORDINAL}
             JOIN graph_nodes tm ON tm.id = ((e.target_id >> {_BITS}) << {_BITS}) | {MODULE_ORDINAL}
            WHERE e.repo_id = ANY(%s) AND e.kind = 'imports' AND sm.id <> tm.id""",
        (repo_ids,),
    ).fetchall()
    graph: dict[str, list[str]] = {}
    for source, target in rows:
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    cycles = [sorted(component) for component in _components(graph) if len(component) > 1]
    cycles.sort(key=lambda component: (-len(component), component))
    return cycles[:limit]



def export_rows(
    conn: psycopg.Connection,
    repo_ids: list[int],
    kinds: tuple[str, ...],
    min_confidence: float,
    include_external: bool,
    path_regex: str | None,
    limit: int,
) -> list[tuple[Any, ...]]:
    """The edges of `kinds` merged per (source, target, kind), by name path, `limit` at most: the source's id,
    name path, kind, path, start and end line; the same of the target (id and location None for an external
    name, its kind 'external'); the edge kind, strongest confidence, first line and count. `path_regex` keeps
    the edges whose source lies in a matching path."""
    clauses = ["e.repo_id = ANY(%(repos)s)", "e.kind = ANY(%(kinds)s)", "e.confidence >= %(min)s"]
    if not include_external:
        clauses.append("e.target_id IS NOT NULL")
    params = {"repos": repo_ids, "kinds": list(kinds), "min": min_confidence, "limit": limit}
    if path_regex:
        clauses.append("s.path ~ %(path)s")
        params["path"] = path_regex
    return conn.execute(
        f"""SELECT s.id, s.name_path, s.kind, s.path, s.start_line, s.end_line,
                   t.id, coalesce(t.name_path, e.target_name), coalesce(t.kind, 'external'), t.path, t.start_line,
                   t.end_line, e.kind, max(e.confidence), min(e.line), count(*)
              FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
              LEFT JOIN graph_nodes t ON t.id = e.target_id
             WHERE {" AND ".join(clauses)} AND (e.target_id IS NULL OR t.id IS NOT NULL)
             GROUP BY s.id, t.id, e.target_name, e.kind
             ORDER BY s.name_path, s.path, coalesce(t.name_path, e.target_name), t.path, e.kind
             LIMIT %(limit)s""",
        params,
    ).fetchall()

def _components(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (import graphs can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components
