"""The graph's SQL over one psycopg connection. It never commits: the caller's unit of work does.

Per file (in the file's transaction): replace_file / delete_file write or remove the file's nodes, bindings and
references, drop the edges going out of it, and queue the names it defined or bound. After a run (one
transaction): resolve re-resolves what the queue points at, so edges equal a clean build after any sequence of
edits, renames and deletes. The queue lives in the database, so a run killed between the two still leaves the
work for the next resolve.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from lode.graph.facts import FileFacts
from lode.graph.resolve import (
    BindingInfo,
    Edge,
    FileInfo,
    NodeInfo,
    ReferenceInfo,
    Resolver,
    SymbolTable,
    definition_keys,
    fact_keys,
    name_key,
)
from lode.store import copy_format
from lode.store.repositories import CHUNK_ID_BITS as _BITS
from lode.store.repositories import chunk_id


@dataclass(slots=True)
class ResolveReport:
    references: int = 0  # references resolved
    edges: int = 0  # edges written for them
    external: int = 0  # of which to external nodes


_COLUMNS = {
    "graph_nodes": "id, repo_id, file_id, kind, name, name_path, path, start_line, end_line",
    "graph_bindings": "repo_id, file_id, scope_id, scope, name, target, kind",
    "graph_references": "id, repo_id, source_id, kind, name, line, hint",
    "graph_dependencies": "source_id, repo_id, keys",
    "graph_edges": "repo_id, source_id, target_id, target_name, kind, confidence, line",
}


@dataclass(slots=True)
class GraphBatch:
    """A file's graph rows as COPY text and the hashed names it defines, formatted where the facts were
    extracted (a worker process), so the writer only streams bytes."""

    repo_id: int
    file_id: int
    file: tuple[str, str, str, str]  # path, language, module, namespace
    nodes: bytes
    bindings: bytes
    references: bytes
    keys: list[int]

    @classmethod
    def of(cls, repo_id: int, file_id: int, facts: FileFacts) -> GraphBatch:
        node_ids = [chunk_id(file_id, symbol.ordinal) for symbol in facts.symbols]
        return cls(
            repo_id,
            file_id,
            (facts.path, facts.language, facts.module, facts.namespace),
            _rows(
                (node_id, repo_id, file_id, s.kind, s.name, s.name_path, facts.path, s.start_line, s.end_line)
                for node_id, s in zip(node_ids, facts.symbols)
            ),
            _rows(
                (repo_id, file_id, node_ids[b.scope], facts.symbols[b.scope].name_path, b.name, b.target, b.kind)
                for b in facts.bindings
            ),
            _rows(
                (chunk_id(file_id, ordinal), repo_id, node_ids[r.source], r.kind, r.name, r.line, r.hint)
                for ordinal, r in enumerate(facts.references)
            ),
            _hashes(fact_keys(facts)),
        )


def _rows(rows: Iterable[tuple[object, ...]]) -> bytes:
    return "".join([copy_format.row(row) for row in rows]).encode()


def _hashes(names: set[str]) -> list[int]:
    return sorted({name_key(name) for name in names})


def _edge_line(repo_id: int, edge: Edge) -> str:
    """A graph_edges COPY line, formatted by hand (there are many): only an external name needs escaping."""
    if edge.target_name is None:
        target = f"{edge.target_id}\t\\N"
    else:
        target = "\\N\t" + copy_format.field(edge.target_name)
    return f"{repo_id}\t{edge.source_id}\t{target}\t{edge.kind}\t{edge.confidence}\t{edge.line}\n"


@dataclass(slots=True)
class _ResolvedPart:
    edges: bytes  # graph_edges COPY rows
    dependencies: bytes  # graph_dependencies COPY rows
    edge_count: int
    external: int


_PARALLEL_REFERENCES = 20_000  # a resolve with fewer references per worker runs in the process
_forked: tuple[Resolver, dict[int, list[ReferenceInfo]], list[int], int, int] | None = None


def _resolve_part(
    resolver: Resolver, references: dict[int, list[ReferenceInfo]], sources: list[int], repo_id: int
) -> _ResolvedPart:
    edges: list[str] = []
    dependencies: list[tuple[int, int, str]] = []
    external = 0
    for source_id in sources:
        found, looked_up = resolver.resolve(references[source_id])
        edges += [_edge_line(repo_id, edge) for edge in found]
        external += sum(1 for edge in found if edge.target_id is None)
        dependencies.append((source_id, repo_id, "{" + ",".join(map(str, looked_up)) + "}"))
    return _ResolvedPart("".join(edges).encode(), _rows(dependencies), len(edges), external)


def _resolve_forked_part(index: int) -> _ResolvedPart:
    assert _forked is not None
    resolver, references, sources, repo_id, parts = _forked
    return _resolve_part(resolver, references, sources[index::parts], repo_id)


def _range(file_id: int) -> tuple[int, int]:
    """The ids of a file's nodes and references: [start, end)."""
    return chunk_id(file_id, 0), chunk_id(file_id + 1, 0)


class GraphStore:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def replace_file(self, repo_id: int, file_id: int, facts: FileFacts) -> None:
        """Store a file's facts under `file_id` and queue their resolution: insert(GraphBatch.of(...))."""
        self.insert(GraphBatch.of(repo_id, file_id, facts))

    def insert(self, batch: GraphBatch) -> None:
        """Store a file's rows and queue their resolution.

        Ids are not reused: a changed file comes back under a new id, after delete_file(old id) in the same
        transaction (storing twice under one id fails on graph_files' primary key).
        """
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO graph_files (file_id, repo_id, path, language, module, namespace)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (batch.file_id, batch.repo_id, *batch.file),
            )
            for table, rows in (
                ("graph_nodes", batch.nodes),
                ("graph_bindings", batch.bindings),
                ("graph_references", batch.references),
            ):
                if rows:
                    with cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                        copy.write(rows)
        self._queue(batch.repo_id, batch.file_id, batch.keys)

    def delete_file(self, repo_id: int, file_id: int) -> None:
        """Remove a file's graph rows and the edges going out of it; queue the names it defined or bound, so
        references into it are resolved again."""
        start, end = _range(file_id)
        rows = self.conn.execute(
            """WITH nodes AS (DELETE FROM graph_nodes WHERE id >= %(start)s AND id < %(end)s
                              RETURNING name_path, name),
                    bindings AS (DELETE FROM graph_bindings WHERE file_id = %(file)s RETURNING scope, name),
                    files AS (DELETE FROM graph_files WHERE file_id = %(file)s RETURNING path, language),
                    r AS (DELETE FROM graph_references WHERE id >= %(start)s AND id < %(end)s),
                    e AS (DELETE FROM graph_edges WHERE source_id >= %(start)s AND source_id < %(end)s),
                    d AS (DELETE FROM graph_dependencies WHERE source_id >= %(start)s AND source_id < %(end)s)
               SELECT 'node', name_path, name FROM nodes
               UNION ALL SELECT 'binding', scope, name FROM bindings
               UNION ALL SELECT 'file', path, language FROM files""",
            {"start": start, "end": end, "file": file_id},
        ).fetchall()
        stored = [(path, language) for what, path, language in rows if what == "file"]
        if stored:
            nodes = [(name_path, name) for what, name_path, name in rows if what == "node"]
            bindings = [(scope, name) for what, scope, name in rows if what == "binding"]
            self._queue(repo_id, file_id, _hashes(definition_keys(*stored[0], nodes, bindings)))

    def delete_repo(self, repo_id: int) -> None:
        for table in (
            "graph_files",
            "graph_nodes",
            "graph_bindings",
            "graph_references",
            "graph_edges",
            "graph_dependencies",
            "graph_dirty_names",
            "graph_dirty_files",
        ):
            self.conn.execute(f"DELETE FROM {table} WHERE repo_id = %s", (repo_id,))

    def _queue(self, repo_id: int, file_id: int, keys: list[int]) -> None:
        """Record work for resolve() in the caller's transaction: changed names, and the file itself."""
        self.conn.execute(
            """WITH names AS (INSERT INTO graph_dirty_names (repo_id, key) SELECT %(repo)s, unnest(%(keys)s::bigint[]))
               INSERT INTO graph_dirty_files (repo_id, file_id) VALUES (%(repo)s, %(file)s)""",
            {"repo": repo_id, "file": file_id, "keys": keys},
        )

    def backlog(self, repo_id: int) -> int:
        """Files whose graph work is queued for resolve()."""
        return self.conn.execute(
            "SELECT count(DISTINCT file_id) FROM graph_dirty_files WHERE repo_id = %s", (repo_id,)
        ).fetchone()[0]

    def queued(self, repo_ids: list[int]) -> list[int]:
        """Those of the repositories with graph work queued (one round trip, for every graph query)."""
        return [row[0] for row in self.conn.execute(
            "SELECT DISTINCT repo_id FROM graph_dirty_files WHERE repo_id = ANY(%s) ORDER BY 1", (repo_ids,)
        )]

    def resolve(self, repo_id: int, workers: int = 1) -> ResolveReport:
        """Resolve the queued work: the references of stored files, and those of every source node whose
        resolution looked up a changed name or reached into a removed file. Consumes the queue; run it in one
        transaction (nothing is lost if it rolls back)."""
        keys = sorted(
            {
                row[0]
                for row in self.conn.execute(
                    "DELETE FROM graph_dirty_names WHERE repo_id = %s RETURNING key", (repo_id,)
                )
            }
        )
        files = sorted(
            {
                row[0]
                for row in self.conn.execute(
                    "DELETE FROM graph_dirty_files WHERE repo_id = %s RETURNING file_id", (repo_id,)
                )
            }
        )
        report = ResolveReport()
        references = self._references_to_resolve(repo_id, keys, files)
        if not references:
            return report
        resolver = Resolver(self._symbol_table(repo_id))
        sources = sorted(references)
        report.references = sum(len(refs) for refs in references.values())
        parts = max(1, min(workers, report.references // _PARALLEL_REFERENCES))
        if parts == 1:
            results = [_resolve_part(resolver, references, sources, repo_id)]
        else:  # forked children share the symbol table copy-on-write; each resolves every parts-th source
            global _forked
            _forked = (resolver, references, sources, repo_id, parts)
            try:
                with multiprocessing.get_context("fork").Pool(parts) as pool:
                    results = pool.map(_resolve_forked_part, range(parts))
            finally:
                _forked = None
        with self.conn.cursor() as cur:
            with cur.copy(f"COPY graph_dependencies ({_COLUMNS['graph_dependencies']}) FROM STDIN") as copy:
                for part in results:
                    copy.write(part.dependencies)
            with cur.copy(f"COPY graph_edges ({_COLUMNS['graph_edges']}) FROM STDIN") as copy:
                for part in results:
                    copy.write(part.edges)
        report.edges = sum(part.edge_count for part in results)
        report.external = sum(part.external for part in results)
        return report

    def _references_to_resolve(self, repo_id: int, keys: list[int], files: list[int]) -> dict[int, list[ReferenceInfo]]:
        """The references to resolve, by source node, in id order; stale sources lose their edges.

        Sources in queued files that still exist were stored after the last resolve: they have no edges yet.
        Stale sources are those whose last resolution looked up a queued name or reached into a queued file.
        """
        params = {"files": files, "keys": keys, "repo": repo_id}
        has_history = self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM graph_dependencies WHERE repo_id = %s)", (repo_id,)
        ).fetchone()[0]
        stale = [] if not has_history else [  # a first load has nothing to go stale
            row[0]
            for row in self.conn.execute(
                f"""SELECT source_id FROM graph_dependencies WHERE keys && %(keys)s::bigint[] AND repo_id = %(repo)s
                UNION
                SELECT e.source_id FROM unnest(%(files)s::bigint[]) f(id)
                  JOIN graph_edges e ON e.target_id >= f.id << {_BITS} AND e.target_id < (f.id + 1) << {_BITS}""",
                params,
            )
        ]
        if stale:
            self.conn.execute("DELETE FROM graph_edges WHERE source_id = ANY(%s)", (stale,))
            self.conn.execute("DELETE FROM graph_dependencies WHERE source_id = ANY(%s)", (stale,))
        params["stale"] = stale
        rows = self.conn.execute(
            f"""SELECT r.id, r.source_id, r.kind, r.name, r.line, r.hint FROM unnest(%(files)s::bigint[]) f(id)
                  JOIN graph_references r ON r.id >= f.id << {_BITS} AND r.id < (f.id + 1) << {_BITS}
                UNION
                SELECT r.id, r.source_id, r.kind, r.name, r.line, r.hint FROM unnest(%(stale)s::bigint[]) s(id)
                  JOIN graph_references r ON r.id >= (s.id >> {_BITS}) << {_BITS}
                                         AND r.id < ((s.id >> {_BITS}) + 1) << {_BITS} AND r.source_id = s.id
                ORDER BY 1""",
            params,
        ).fetchall()
        by_source: dict[int, list[ReferenceInfo]] = {}
        for row in rows:
            by_source.setdefault(row[1], []).append(ReferenceInfo(*row))
        return by_source

    def _symbol_table(self, repo_id: int) -> SymbolTable:
        conn = self.conn
        files = [
            FileInfo(*row)
            for row in conn.execute(
                "SELECT file_id, path, language, module, namespace FROM graph_files WHERE repo_id = %s", (repo_id,)
            )
        ]
        nodes = [
            NodeInfo(*row)
            for row in conn.execute(
                "SELECT id, file_id, kind, name, name_path FROM graph_nodes WHERE repo_id = %s", (repo_id,)
            )
        ]
        bindings = [
            BindingInfo(*row)
            for row in conn.execute(
                "SELECT file_id, scope_id, scope, name, target, kind FROM graph_bindings WHERE repo_id = %s", (repo_id,)
            )
        ]
        bases = conn.execute(
            "SELECT source_id, name FROM graph_references WHERE repo_id = %s AND kind = 'inherits' ORDER BY id",
            (repo_id,),
        ).fetchall()
        return SymbolTable(files, nodes, bindings, bases)
