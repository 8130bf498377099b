"""The code graph: definitions as nodes; calls, imports, inheritance, annotations and decorators as edges, with a
confidence and evidence.

Pipeline: `extract_facts` (and `GraphBatch.of`, which formats its rows) in the worker (facts.py, store.py);
`GraphStore.insert`/`replace_file` and `delete_file` in each file's transaction; `GraphStore.resolve` once after
a run (store.py, resolve.py). `queries` and `export` read the graph.
"""

from lode.graph.export import ExportFilters, export
from lode.graph.facts import FactsTimeout, FileFacts, extract_facts
from lode.graph.queries import (
    EDGE_KINDS,
    AmbiguousSymbol,
    GraphNode,
    GraphPath,
    Hop,
    References,
    SymbolNotFound,
    Traversal,
    Use,
    callees,
    callers,
    find_symbol,
    path,
    references,
    stats,
)
from lode.graph.store import GraphBatch, GraphStore, ResolveReport

__all__ = [
    "EDGE_KINDS",
    "AmbiguousSymbol",
    "ExportFilters",
    "FileFacts",
    "GraphBatch",
    "GraphNode",
    "GraphPath",
    "GraphStore",
    "Hop",
    "References",
    "ResolveReport",
    "FactsTimeout",
    "SymbolNotFound",
    "Traversal",
    "Use",
    "callees",
    "callers",
    "export",
    "extract_facts",
    "find_symbol",
    "path",
    "references",
    "stats",
]
