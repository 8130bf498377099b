"""Disk footprint of a Lode database per indexed chunk, by part: chunks and files, lexical postings, code graph,
vector tables, HNSW indexes, everything else. Index a representative repository, run this, multiply by the
chunks you plan for (docs/scaling.md). Reads the database LODE_DATABASE_URL names (or the embedded one).

    python deploy/footprint.py [--json]
"""

from __future__ import annotations

import json
import sys

from lode.engine import Lode

_SIZES = """
    SELECT COALESCE(i.indrelid, c.oid)::regclass::text AS owner, c.relname, pg_table_size(c.oid)  -- TOAST, FSM, VM
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      LEFT JOIN pg_index i ON i.indexrelid = c.oid
     WHERE c.relkind IN ('r', 'i', 'm')
"""


def part_of(owner: str, relname: str) -> str:
    """The part a table, or an index of the table `owner`, counts towards."""
    if owner.startswith("vectors_m"):
        return "hnsw_indexes" if relname.endswith("_hnsw") else "vectors"
    for prefix, part in (("vector_cache_m", "vector_cache"), ("postings", "postings"), ("graph_", "graph"),
                         ("chunks", "chunks_files"), ("files", "chunks_files")):
        if owner.startswith(prefix):
            return part
    return "other"


def footprint(lode: Lode) -> dict[str, object]:
    with lode.db.connection() as conn:
        chunks = int(conn.execute("SELECT COALESCE(sum(chunk_count), 0) FROM repositories").fetchone()[0])
        database = int(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0])
        parts = dict.fromkeys(("chunks_files", "postings", "graph", "vectors", "hnsw_indexes", "vector_cache",
                               "other"), 0)
        for owner, relname, size in conn.execute(_SIZES).fetchall():
            parts[part_of(owner, relname)] += int(size)
    per_chunk = {name: round(size / chunks) if chunks else None for name, size in parts.items()}
    return {"chunks": chunks, "database_bytes": database, "bytes": parts, "bytes_per_chunk": per_chunk,
            "database_bytes_per_chunk": round(database / chunks) if chunks else None}


def main() -> None:
    with Lode() as lode:
        report = footprint(lode)
    if "--json" in sys.argv[1:]:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['chunks']:,} chunks, database {report['database_bytes'] / 2**20:,.1f} MiB "
          f"({report['database_bytes_per_chunk']} bytes per chunk)")
    for name, size in report["bytes"].items():
        print(f"  {name:<13} {size / 2**20:10,.1f} MiB  {report['bytes_per_chunk'][name]} bytes per chunk")


if __name__ == "__main__":
    main()
