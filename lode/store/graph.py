"""The graph's SQL over one psycopg connection. It never commits: the caller's unit of work does.

Per file (in the file's transaction): insert / delete_file write or remove the file's graph_files row (with its
references and bindings as JSON text) and nodes, drop the edges going out of it, and queue the file with the names
it defined or bound. After a run (one transaction): resolve re-resolves the queued files and every file whose
last resolution looked up a queued name or reached into a queued file, so edges equal a clean build after any
sequence of edits, renames and deletes. The queue lives in the database, so a run killed between the two
still leaves the work for the next resolve. Each repository's edges are a partition of graph_edges, created by
its first resolve.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult

import psutil
import psycopg

from lode.graph.facts import FileFacts
from lode.graph.resolve import (
    BindingInfo,
    FileInfo,
    NodeInfo,
    Resolver,
    SymbolTable,
    Target,
    definition_keys,
    fact_keys,
    name_key,
)
from lode.store import copy_format
from lode.store.db import scalar
from lode.store.repositories import CHUNK_ID_BITS as _BITS
from lode.store.repositories import chunk_id

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ResolveReport:
    references: int = 0  # references resolved
    edges: int = 0  # edges written for them
    external: int = 0  # of which to external nodes
    batches: int = 0  # runs of files resolved and written one after the other (ResolvePlan)
    processes: int = 0  # forked resolvers; 0: resolved in the process
    memo_entries: int = 0  # a resolver's memo bound


_NODE_COLUMNS = "id, repo_id, file_id, kind, name, name_path, path, start_line, end_line, guard"
_EDGE_COLUMNS = "repo_id, source_id, target_id, target_name, kind, confidence, line"


@dataclass(slots=True)
class GraphBatch:
    """A file's graph rows, formatted where the facts were extracted (a worker process), so the writer only
    passes them on: nodes, bindings, bases and references as JSON; the hashed names it defines as an array
    literal (adapting thousands of ints per file cost the writer more than the rest of the statement)."""

    repo_id: int
    file_id: int
    file: tuple[str, str, str, str]  # path, language, module, namespace
    nodes: str  # [[ordinal, kind, name, name path, start line, end line, guard], ...]
    bindings: str
    bases: str
    references: str
    keys: str  # '{1,2,...}'

    @classmethod
    def of(cls, repo_id: int, file_id: int, facts: FileFacts) -> GraphBatch:
        symbols = facts.symbols
        ordinals = [s.ordinal for s in symbols]
        return cls(
            repo_id,
            file_id,
            (facts.path, facts.language, facts.module, facts.namespace),
            _json([(s.ordinal, s.kind, s.name, s.name_path, s.start_line, s.end_line, s.guard) for s in symbols]),
            _json([(ordinals[b.scope], symbols[b.scope].name_path, b.name, b.target, b.kind)
                   for b in facts.bindings]),
            _json([(ordinals[r.source], r.name) for r in facts.references if r.kind == "inherits"]),
            _json([(ordinals[r.source], r.kind, r.name, r.line, r.hint)
                   + (() if r.arguments is None else (r.arguments,)) for r in facts.references]),
            _key_array(fact_keys(facts)),
        )


def _rows(rows: Iterable[tuple[object, ...]]) -> bytes:
    return "".join([copy_format.row(row) for row in rows]).encode()


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _key_array(names: set[str]) -> str:
    """graph_dirty_files.keys of the names, as a bigint[] literal."""
    return "{" + ",".join(map(str, sorted({name_key(name) for name in names}))) + "}"


def _edge_lines(repo_id: int, file_id: int, resolved: list[tuple[list, list[Target]]]) -> list[str]:
    """graph_edges COPY lines, formatted by hand (there are many): only an external name needs escaping."""
    base = chunk_id(file_id, 0)
    lines: list[str] = []
    for (ordinal, kind, _, line, *_), targets in resolved:
        for target_id, target_name, confidence in targets:
            target = f"\\N\t{copy_format.field(target_name)}" if target_id is None else f"{target_id}\t\\N"
            lines.append(f"{repo_id}\t{base | ordinal}\t{target}\t{kind}\t{confidence}\t{line}\n")
    return lines


@dataclass(slots=True)
class _ResolvedPart:
    edges: bytes  # graph_edges COPY rows
    dependencies: bytes  # graph_file_dependencies COPY rows
    references: int
    edge_count: int
    external: int


_ANALYZE_AFTER_EDGES = 5000  # a resolution writing more (and > 10 % of the stored edges) refreshes statistics
_PARALLEL_JSON = 1_000_000  # a resolve with fewer characters of references per worker (~20k) runs in the process
_RUNS_PER_RESOLVER = 4  # batches per forked resolver at least, so the parent writes one while they work on others
_BATCH_SHARE = 256  # a batch holds at most the budget / this in references' JSON (4 MiB of 1 GiB)
_MEMO_ENTRY_BYTES = 1200  # a memo entry with its values, measured on CPython's Lib/ (55 MB for 48k entries)
_TABLE_ENTRY_BYTES = 480  # the symbol table per node, binding and base, measured there (43 MB for 94k)
_MIN_MEMO_MB = 32
_forked: tuple[Resolver, int] | None = None


@dataclass(frozen=True, slots=True)
class ResolvePlan:
    """How one resolution fits LODE_MEMORY_BUDGET_MB. The symbol table is whole (any file may name any
    definition); the references stream through in batches, and what grows besides is bounded: each resolver's
    memo, and the batches in flight. A forked resolver ends up with its own copy of the table (reference counts
    write to its pages), so resolvers are forked only when the budget holds a table for each."""

    processes: int  # forked resolvers; 0: resolve in this process
    batch_chars: int  # references' JSON per batch
    memo_entries: int  # a resolver's memo is emptied past this many entries
    over_budget: bool  # the table and the smallest memo alone exceed the budget

    @classmethod
    def within(cls, budget_mb: int, table_mb: float, workers: int, total_chars: int) -> ResolvePlan:
        batch_chars = max(1, min(budget_mb * 2**20 // _BATCH_SHARE, total_chars))
        batch_mb = 3 * batch_chars / 2**20  # the JSON, and the edge rows made from it
        available = budget_mb - table_mb
        processes = min(workers, total_chars // _PARALLEL_JSON)
        while processes > 1 and available < processes * (table_mb + _MIN_MEMO_MB + 3 * batch_mb):
            processes -= 1
        if processes > 1:
            batch_chars = max(1, min(batch_chars, -(-total_chars // (processes * _RUNS_PER_RESOLVER))))
            memo_mb = (available - processes * (table_mb + 3 * batch_mb)) / processes
        else:
            processes = 0
            memo_mb = available - 2 * batch_mb
        return cls(processes, batch_chars, int(max(memo_mb, _MIN_MEMO_MB) * 2**20 // _MEMO_ENTRY_BYTES),
                   memo_mb < _MIN_MEMO_MB)


def _resolve_part(resolver: Resolver, files: list[tuple[int, str]], repo_id: int) -> _ResolvedPart:
    """Resolve whole files: (file id, its references' JSON) -> edges and one dependency row per file. The JSON
    is decoded here, in the forked resolvers, not in their parent."""
    edges: list[str] = []
    dependencies: list[tuple[int, int, str]] = []
    references = external = 0
    for file_id, text in files:
        stored = json.loads(text)
        resolved, looked_up = resolver.resolve(file_id, stored)
        references += len(stored)
        edges += _edge_lines(repo_id, file_id, resolved)
        external += sum(1 for _, targets in resolved for target in targets if target[0] is None)
        dependencies.append((file_id, repo_id, "{" + ",".join(map(str, looked_up)) + "}"))
    return _ResolvedPart("".join(edges).encode(), _rows(dependencies), references, len(edges), external)


def _resolve_forked_part(files: list[tuple[int, str]]) -> _ResolvedPart:
    assert _forked is not None
    resolver, repo_id = _forked
    return _resolve_part(resolver, files, repo_id)


def _batches(files: list[tuple[int, int]], batch_chars: int) -> Iterator[list[int]]:
    """Runs of file ids, in id order (neighbours share memoised lookups: a package's modules import each other),
    with up to batch_chars of references' JSON each (a larger file alone)."""
    batch: list[int] = []
    size = 0
    for file_id, chars in files:
        if batch and size + chars > batch_chars:
            yield batch
            batch, size = [], 0
        batch.append(file_id)
        size += chars
    if batch:
        yield batch


def _resolve_batches(resolver: Resolver, repo_id: int, batches: Iterator[list[tuple[int, str]]], processes: int
                     ) -> Iterator[_ResolvedPart]:
    """Each batch's edges, in order. Forked resolvers share the symbol table copy-on-write (and the paused
    collector) and keep their memo from one batch to the next; two batches per resolver are in flight, so the
    parent reads and writes while they work, and no more than that waits in memory."""
    if processes == 0:
        for batch in batches:
            yield _resolve_part(resolver, batch, repo_id)
        return
    global _forked
    _forked = (resolver, repo_id)
    try:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            in_flight: deque[AsyncResult[_ResolvedPart]] = deque()
            for batch in batches:
                in_flight.append(pool.apply_async(_resolve_forked_part, (batch,)))
                if len(in_flight) >= 2 * processes:
                    yield in_flight.popleft().get()
            while in_flight:
                yield in_flight.popleft().get()
    finally:
        _forked = None


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Resolution allocates millions of objects that refcounting frees (no cycles) beside a symbol table that
    lives until the end: the cyclic collector's passes over that heap found nothing and cost about a quarter of
    the resolver's CPU time on CPython's Lib/."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def edges_partition(repo_id: int) -> str:
    """A repository's graph_edges partition, created by its first resolution."""
    return f"graph_edges_r{int(repo_id)}"


def _range(file_id: int) -> tuple[int, int]:
    """The ids of a file's nodes: [start, end)."""
    return chunk_id(file_id, 0), chunk_id(file_id + 1, 0)


class GraphStore:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def replace_file(self, repo_id: int, file_id: int, facts: FileFacts) -> None:
        """Store a file's facts under `file_id` and queue their resolution: insert(GraphBatch.of(...))."""
        self.insert(GraphBatch.of(repo_id, file_id, facts))

    def insert(self, batch: GraphBatch) -> None:
        """Store a file's rows and queue its resolution: one statement (one round trip per file).

        Ids are not reused: a changed file comes back under a new id, after delete_file(old id) in the same
        transaction (storing twice under one id fails on graph_files' primary key).
        """
        path, language, module, namespace = batch.file
        self.conn.execute(
            f"""WITH queued AS (INSERT INTO graph_dirty_files (repo_id, file_id, keys)
                                VALUES (%(repo)s, %(file)s, %(keys)s::bigint[])),
                     nodes AS (INSERT INTO graph_nodes ({_NODE_COLUMNS})
                               SELECT %(first)s::bigint | (n->>0)::bigint, %(repo)s, %(file)s, n->>1, n->>2, n->>3,
                                      %(path)s, (n->>4)::integer, (n->>5)::integer, n->>6
                                 FROM jsonb_array_elements(%(nodes)s::jsonb) n)
                INSERT INTO graph_files (file_id, repo_id, path, language, module, namespace, bindings, bases, refs)
                VALUES (%(file)s, %(repo)s, %(path)s, %(language)s, %(module)s, %(namespace)s,
                        %(bindings)s, %(bases)s, %(refs)s)""",
            {"repo": batch.repo_id, "file": batch.file_id, "first": chunk_id(batch.file_id, 0), "keys": batch.keys,
             "path": path, "language": language, "module": module, "namespace": namespace, "nodes": batch.nodes,
             "bindings": batch.bindings, "bases": batch.bases, "refs": batch.references},
        )

    def delete_file(self, repo_id: int, file_id: int) -> None:
        """Remove a file's graph rows and the edges going out of it; queue the names it defined or bound, so
        references into it are resolved again."""
        start, end = _range(file_id)
        rows = self.conn.execute(
            """WITH nodes AS (DELETE FROM graph_nodes WHERE id >= %(start)s AND id < %(end)s
                              RETURNING name_path, name),
                    files AS (DELETE FROM graph_files WHERE file_id = %(file)s RETURNING path, language, bindings),
                    e AS (DELETE FROM graph_edges
                           WHERE repo_id = %(repo)s AND source_id >= %(start)s AND source_id < %(end)s),
                    d AS (DELETE FROM graph_file_dependencies WHERE file_id = %(file)s)
               SELECT NULL, NULL, NULL, (SELECT json_agg(json_build_array(name_path, name)) FROM nodes)
               UNION ALL SELECT path, language, bindings, NULL FROM files""",
            {"start": start, "end": end, "file": file_id, "repo": repo_id},
        ).fetchall()
        stored = [row for row in rows if row[0] is not None]
        if stored:
            path, language, bindings, _ = stored[0]
            nodes = next(row[3] for row in rows if row[0] is None) or []
            scoped_names = [(scope, name) for _, scope, name, _, _ in json.loads(bindings)]
            keys = definition_keys(path, language, nodes, scoped_names)
            self.conn.execute(
                "INSERT INTO graph_dirty_files (repo_id, file_id, keys) VALUES (%s, %s, %s::bigint[])",
                (repo_id, file_id, _key_array(keys)),
            )

    def delete_repo(self, repo_id: int) -> None:
        self.conn.execute(f"DROP TABLE IF EXISTS {edges_partition(repo_id)}")
        for table in ("graph_files", "graph_nodes", "graph_file_dependencies", "graph_dirty_files"):
            self.conn.execute(f"DELETE FROM {table} WHERE repo_id = %s", (repo_id,))

    def backlog(self, repo_id: int) -> int:
        """Files whose graph work is queued for resolve()."""
        return scalar(self.conn.execute(
            "SELECT count(DISTINCT file_id) FROM graph_dirty_files WHERE repo_id = %s", (repo_id,)
        ))

    def summary(self, repo_id: int) -> dict[str, int]:
        """The repository's graph nodes, and the files whose resolution is still queued."""
        nodes = scalar(self.conn.execute("SELECT count(*) FROM graph_nodes WHERE repo_id = %s", (repo_id,)))
        return {"nodes": nodes, "pending_files": self.backlog(repo_id)}

    def queued(self, repo_ids: list[int]) -> list[int]:
        """Those of the repositories with graph work queued (one round trip, for every graph query)."""
        return [row[0] for row in self.conn.execute(
            "SELECT DISTINCT repo_id FROM graph_dirty_files WHERE repo_id = ANY(%s) ORDER BY 1", (repo_ids,)
        )]

    def resolve(self, repo_id: int, workers: int = 1, budget_mb: int = 1024) -> ResolveReport:
        """Resolve the queued work: the stored files, and every file whose last resolution looked up a changed
        name or reached into a removed or replaced file, whole. Consumes the queue; run it in one transaction
        (nothing is lost if it rolls back). Memory: see ResolvePlan."""
        report = ResolveReport()
        files = self._files_to_resolve(repo_id)
        if not files:
            return report
        partition = edges_partition(repo_id)
        new_partition = scalar(self.conn.execute("SELECT to_regclass(%s) IS NULL", (partition,)))
        if new_partition:  # filled without indexes; attaching it builds them once, sorted
            self.conn.execute(f"CREATE TABLE {partition} (LIKE graph_edges, CHECK (repo_id = {int(repo_id)}))")
        with _collector_paused(), self.conn.cursor() as cur:
            before = _rss_mb()
            table = self._symbol_table(repo_id)
            # the process's growth, unless it reused memory freed earlier (a server resolves again and again)
            table_mb = max(_rss_mb() - before,
                           (len(table.nodes) + len(table.bindings) + len(table.bases)) * _TABLE_ENTRY_BYTES / 2**20)
            plan = ResolvePlan.within(budget_mb, table_mb, workers, sum(chars for _, chars in files))
            report.processes, report.memo_entries = plan.processes, plan.memo_entries
            if plan.over_budget:
                log.warning("graph resolution of repository %s needs more than LODE_MEMORY_BUDGET_MB=%s: its "
                            "symbol table alone takes %.0f MB", repo_id, budget_mb, table_mb)
            batches = (self._references(ids) for ids in _batches(files, plan.batch_chars))
            for part in _resolve_batches(Resolver(table, plan.memo_entries), repo_id, batches, plan.processes):
                with cur.copy(f"COPY {partition} ({_EDGE_COLUMNS}) FROM STDIN") as copy:
                    copy.write(part.edges)
                with cur.copy("COPY graph_file_dependencies (file_id, repo_id, keys) FROM STDIN") as copy:
                    copy.write(part.dependencies)
                report.batches += 1
                report.references += part.references
                report.edges += part.edge_count
                report.external += part.external
        if new_partition:  # the CHECK constraint spares the scan that proves its rows belong
            self.conn.execute(f"ALTER TABLE graph_edges ATTACH PARTITION {partition} FOR VALUES IN ({int(repo_id)})")
        stored = scalar(self.conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (partition,)))
        if report.edges > max(_ANALYZE_AFTER_EDGES, stored // 10):  # a first load's plans need statistics
            # traversals join graph_edges itself, and the planner estimates those joins from the parent's own
            # statistics, which autovacuum never gathers; ONLY (PostgreSQL 18) spares re-reading every partition.
            # The parent comes first, as after an ATTACH: two resolutions lock the two tables in the same order.
            only = "ONLY " if self.conn.info.server_version >= 180000 else ""
            self.conn.execute(f"ANALYZE {only}graph_edges")
            self.conn.execute(f"ANALYZE {partition}, graph_file_dependencies")
        return report

    def _files_to_resolve(self, repo_id: int) -> list[tuple[int, int]]:
        """Consume the queue: the stored files to resolve, with the length of their references' JSON, in id
        order; their old edges and dependencies are gone.

        Queued files still stored came in after the last resolve (or are queued again). Stale files are those
        whose last resolution looked up a queued name or reached into a queued file. A first load has nothing
        to go stale, and no edges to remove: its queue's names are not even read.
        """
        has_history = scalar(self.conn.execute(
            "SELECT EXISTS (SELECT 1 FROM graph_file_dependencies WHERE repo_id = %s)", (repo_id,)
        ))
        if has_history:
            rows = self.conn.execute(
                f"""WITH queue AS (DELETE FROM graph_dirty_files WHERE repo_id = %(repo)s RETURNING file_id, keys),
                    stale AS (
                        SELECT file_id FROM graph_file_dependencies
                         WHERE keys && (SELECT coalesce(array_agg(DISTINCT k), '{{}}') FROM queue, unnest(queue.keys) k)
                           AND repo_id = %(repo)s
                        UNION SELECT file_id FROM queue
                        UNION SELECT DISTINCT e.source_id >> {_BITS} FROM (SELECT DISTINCT file_id FROM queue) f
                          JOIN graph_edges e ON e.target_id >= f.file_id << {_BITS}
                                            AND e.target_id < (f.file_id + 1) << {_BITS} AND e.repo_id = %(repo)s),
                    e AS (DELETE FROM graph_edges USING stale
                           WHERE repo_id = %(repo)s
                             AND source_id >= stale.file_id << {_BITS} AND source_id < (stale.file_id + 1) << {_BITS}),
                    d AS (DELETE FROM graph_file_dependencies USING stale
                           WHERE graph_file_dependencies.file_id = stale.file_id)
                    SELECT g.file_id, length(g.refs) FROM stale JOIN graph_files g ON g.file_id = stale.file_id
                     WHERE g.refs <> '[]' ORDER BY 1""",
                {"repo": repo_id},
            ).fetchall()
        else:
            rows = self.conn.execute(
                """WITH queue AS (DELETE FROM graph_dirty_files WHERE repo_id = %s RETURNING file_id)
                   SELECT g.file_id, length(g.refs) FROM graph_files g WHERE g.refs <> '[]'
                      AND g.file_id IN (SELECT file_id FROM queue) ORDER BY 1""",
                (repo_id,),
            ).fetchall()
        return [(file_id, chars) for file_id, chars in rows]

    def _references(self, file_ids: list[int]) -> list[tuple[int, str]]:
        """The files' references as stored (JSON text), in id order."""
        return [(file_id, refs) for file_id, refs in self.conn.execute(
            "SELECT file_id, refs FROM graph_files WHERE file_id = ANY(%s) ORDER BY 1", (file_ids,))]

    def _symbol_table(self, repo_id: int) -> SymbolTable:
        """The repository's symbol table. Its strings repeat (a scope's name path in each of its bindings, `self`
        and `__init__` everywhere) and come from the database as copies: each is kept once."""
        conn = self.conn
        strings: dict[str, str] = {}
        one = strings.setdefault
        files: list[FileInfo] = []
        bindings: list[BindingInfo] = []
        bases: list[tuple[int, str]] = []
        for file_id, path, language, module, namespace, file_bindings, file_bases in conn.execute(
            "SELECT file_id, path, language, module, namespace, bindings, bases FROM graph_files WHERE repo_id = %s",
            (repo_id,),
        ):
            files.append(FileInfo(file_id, path, one(language, language), module, namespace))
            base = chunk_id(file_id, 0)
            bindings += [BindingInfo(file_id, base | scope, one(scope_path, scope_path), one(name, name),
                                     one(target, target), one(kind, kind))
                         for scope, scope_path, name, target, kind in json.loads(file_bindings)]
            bases += [(base | source, one(expression, expression)) for source, expression in json.loads(file_bases)]
        nodes = [
            NodeInfo(node_id, file_id, one(kind, kind), one(name, name), one(name_path, name_path))
            for node_id, file_id, kind, name, name_path in conn.execute(
                "SELECT id, file_id, kind, name, name_path FROM graph_nodes WHERE repo_id = %s", (repo_id,)
            )
        ]
        return SymbolTable(files, nodes, bindings, bases)

    def python_modules(self, repo_id: int) -> list[tuple[int, str, str]]:
        """(file id, path, module name) of the repository's Python files, as last indexed."""
        return [(row[0], row[1], row[2]) for row in self.conn.execute(
            "SELECT file_id, path, module FROM graph_files WHERE repo_id = %s AND language = 'python'", (repo_id,))]

    def files_without_graph(self, repo_id: int) -> set[int]:
        """The ids of the repository's files that have no graph rows: indexed while LODE_GRAPH was off."""
        return {row[0] for row in self.conn.execute(
            """SELECT f.id FROM files f WHERE f.repo_id = %s
                  AND NOT EXISTS (SELECT 1 FROM graph_files g WHERE g.file_id = f.id)""", (repo_id,))}
