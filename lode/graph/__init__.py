"""The code graph: definitions as nodes; calls, imports, inheritance, annotations and decorators as edges, with a
confidence and evidence.

Pipeline: `extract_facts` in the worker (facts.py), whose rows `GraphBatch.of` formats (lode/store/graph.py);
`GraphStore.insert`/`replace_file` and `delete_file` in each file's transaction; `GraphStore.resolve` once after
a run, with the resolver of resolve.py. lode/store/graph_queries.py and `export` (export.py) read the graph.
"""

from lode.graph.export import ExportFilters, export
from lode.graph.facts import FactsTimeout, FileFacts, extract_facts

__all__ = [
    "ExportFilters",
    "FileFacts",
    "FactsTimeout",
    "export",
    "extract_facts",
]
