"""Export a repository's graph as JSON, Graphviz DOT or a Mermaid flowchart.

Edges are merged per (source, target, kind): the strongest confidence, the first evidence, and how many
references make the edge. Output is deterministic (sorted by name path) and capped at `limit` edges.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import psycopg

from lode.errors import InputError
from lode.model import EDGE_KINDS
from lode.search.filters import glob_to_regex
from lode.store.graph_queries import WALKED_KINDS, export_rows

FORMATS = ("json", "dot", "mermaid")


@dataclass(frozen=True, slots=True)
class ExportFilters:
    kinds: tuple[str, ...] = WALKED_KINDS
    min_confidence: float = 0.0
    include_external: bool = False
    path_glob: str | None = None  # keep edges whose source lies in a matching file
    limit: int = 5000


@dataclass(frozen=True, slots=True)
class _Node:
    key: str  # the node id, or "external:NAME"
    name_path: str
    kind: str
    path: str | None
    start_line: int | None
    end_line: int | None


@dataclass(frozen=True, slots=True)
class _Edge:
    source: str
    target: str
    kind: str
    confidence: float
    evidence: str
    references: int


def export(
    conn: psycopg.Connection, repo_ids: list[int], format: str = "json", filters: ExportFilters | None = None
) -> str:
    if format not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}")
    filters = filters or ExportFilters()
    if not filters.kinds or any(kind not in EDGE_KINDS for kind in filters.kinds):
        raise InputError(f"edge kinds must be among {', '.join(EDGE_KINDS)}")
    if not 1 <= filters.limit <= 100_000:
        raise InputError("--limit must be between 1 and 100000")
    nodes, edges, truncated = _load(conn, repo_ids, filters)
    if format == "json":
        return _json(nodes, edges, truncated)
    return _dot(nodes, edges) if format == "dot" else _mermaid(nodes, edges)


def _load(
    conn: psycopg.Connection, repo_ids: list[int], filters: ExportFilters
) -> tuple[list[_Node], list[_Edge], bool]:
    path = glob_to_regex(filters.path_glob) if filters.path_glob else None
    rows = export_rows(conn, repo_ids, filters.kinds, filters.min_confidence, filters.include_external, path,
                       filters.limit + 1)
    truncated = len(rows) > filters.limit
    nodes: dict[str, _Node] = {}
    edges: list[_Edge] = []
    for row in rows[: filters.limit]:
        source = _Node(str(row[0]), *row[1:6])
        target = _Node(str(row[6]) if row[6] is not None else f"external:{row[7]}", *row[7:12])
        nodes.setdefault(source.key, source)
        nodes.setdefault(target.key, target)
        edges.append(_Edge(source.key, target.key, row[12], round(row[13], 4), f"{source.path}:{row[14]}", row[15]))
    ordered = sorted(nodes.values(), key=lambda node: (node.name_path, node.path or "", node.key))
    return ordered, edges, truncated


def _json(nodes: list[_Node], edges: list[_Edge], truncated: bool) -> str:
    return json.dumps(
        {
            "nodes": [
                {
                    "id": n.key,
                    "name_path": n.name_path,
                    "kind": n.kind,
                    "path": n.path,
                    "start_line": n.start_line,
                    "end_line": n.end_line,
                }
                for n in nodes
            ],
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "kind": e.kind,
                    "confidence": e.confidence,
                    "evidence": e.evidence,
                    "references": e.references,
                }
                for e in edges
            ],
            "truncated": truncated,
        },
        indent=2,
    )


_DOT_SHAPES = {"module": "folder", "class": "box", "struct": "box", "interface": "box", "external": "ellipse"}
_DOT_STYLES = {"imports": "dashed", "inherits": "bold"}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot(nodes: list[_Node], edges: list[_Edge]) -> str:
    lines = ["digraph lode {", "  rankdir=LR;", "  node [fontname=Helvetica, fontsize=10];"]
    for node in nodes:
        attributes = f"label={_dot_string(node.name_path)}, shape={_DOT_SHAPES.get(node.kind, 'oval')}"
        if node.kind == "external":
            attributes += ", style=dashed"
        lines.append(f"  {_dot_string(node.key)} [{attributes}];")
    for edge in edges:
        style = _DOT_STYLES.get(edge.kind, "solid")
        label = _dot_string(f"{edge.kind} {edge.confidence:g}")
        lines.append(f"  {_dot_string(edge.source)} -> {_dot_string(edge.target)} [label={label}, style={style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_label(text: str) -> str:
    """Mermaid labels are quoted; quotes and angle brackets are entity-escaped."""
    return '"' + text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;") + '"'


_MERMAID_ARROWS = {"calls": "-->", "imports": "-.->", "inherits": "==>", "annotates": "-.->", "decorates": "-->"}
MERMAID_MAX_EDGES = 500  # mermaid's default maxEdges: a larger flowchart fails to render


def _mermaid(nodes: list[_Node], edges: list[_Edge]) -> str:
    """A flowchart of at most MERMAID_MAX_EDGES edges (the strongest, then in name order), saying what it left out."""
    lines = ["flowchart LR"]
    if len(edges) > MERMAID_MAX_EDGES:
        kept = sorted(range(len(edges)), key=lambda i: (-edges[i].confidence, -edges[i].references, i))
        edges = [edges[i] for i in sorted(kept[:MERMAID_MAX_EDGES])]
        lines.append(f"  %% {len(kept) - MERMAID_MAX_EDGES} of {len(kept)} edges left out: mermaid renders at most "
                     f"{MERMAID_MAX_EDGES} by default; narrow the export (--path, --kinds, --min-confidence, no "
                     f"--include-external) or use --format dot or json")
        used = {key for edge in edges for key in (edge.source, edge.target)}
        nodes = [node for node in nodes if node.key in used]
    ids = {node.key: f"n{index}" for index, node in enumerate(nodes)}
    for node in nodes:
        open_, close = ("([", "])") if node.kind == "external" else ("[", "]")
        lines.append(f"  {ids[node.key]}{open_}{_mermaid_label(node.name_path)}{close}")
    for edge in edges:
        arrow = _MERMAID_ARROWS[edge.kind]
        lines.append(
            f"  {ids[edge.source]} {arrow}|{_mermaid_label(f'{edge.kind} {edge.confidence:g}')}| {ids[edge.target]}"
        )
    return "\n".join(lines) + "\n"
