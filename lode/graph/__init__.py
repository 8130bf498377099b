"""The code graph: definitions as nodes; calls, imports and inheritance as edges with a confidence and evidence.

Pipeline: `extract_facts` (and `GraphBatch.of`, which formats its rows) in the worker (facts.py, store.py);
`GraphStore.insert`/`replace_file` and `delete_file` in each file's transaction; `GraphStore.resolve` once after
a run (store.py, resolve.py). `queries` and `export` read the graph.
"""

from lode.graph.export import ExportFilters, export
from lode.graph.facts import FactsTimeout, FileFacts, extract_facts
from lode.graph.queries import (
    AmbiguousSymbol,
    GraphNode,
    GraphPath,
    Hop,
    SymbolNotFound,
    Traversal,
    callees,
    callers,
    find_symbol,
    path,
    stats,
)
from lode.graph.store import GraphBatch, GraphStore, ResolveReport

__all__ = [
    "AmbiguousSymbol",
    "ExportFilters",
    "FileFacts",
    "GraphBatch",
    "GraphNode",
    "GraphPath",
    "GraphStore",
    "Hop",
    "ResolveReport",
    "FactsTimeout",
    "SymbolNotFound",
    "Traversal",
    "callees",
    "callers",
    "export",
    "extract_facts",
    "find_symbol",
    "path",
    "stats",
]
