"""What an index holds, for comparing two indexes of the same tree."""

from __future__ import annotations

import numpy as np

from lode.engine import Lode


def index_snapshot(lode: Lode, repo: str) -> dict:
    """Everything an index holds for a repository, without ids and timestamps, for equality checks."""
    with lode.db.connection() as conn:
        repo_row = conn.execute(
            "SELECT id, chunk_count, total_length FROM repositories WHERE name = %s", (repo,)
        ).fetchone()
        assert repo_row is not None, f"repository {repo} not found"
        repo_id = repo_row[0]
        files = conn.execute(
            "SELECT path, language, content_hash, fallback FROM files WHERE repo_id = %s ORDER BY path", (repo_id,)
        ).fetchall()
        chunks = conn.execute(
            """SELECT path, kind, name, name_path, start_line, end_line, start_byte, end_byte, signature, docstring,
                      content_hash, length FROM chunks WHERE repo_id = %s ORDER BY path, start_byte, end_byte""",
            (repo_id,),
        ).fetchall()
        chunk_at = dict(conn.execute("SELECT id, (path, start_byte) FROM chunks WHERE repo_id = %s", (repo_id,)))
        postings = []
        for term, ids, tfs, lengths in conn.execute(
            "SELECT term, chunk_ids, tfs, lengths FROM postings WHERE repo_id = %s", (repo_id,)
        ):
            for cid, tf, length in zip(np.frombuffer(ids, "<i8"), np.frombuffer(tfs, "<i4"),
                                       np.frombuffer(lengths, "<i4")):
                postings.append((*chunk_at[int(cid)], term, int(tf), int(length)))
        postings.sort()
        orphans = conn.execute(
            """SELECT (SELECT count(*) FROM postings p WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = p.file_id))
                    + (SELECT count(*) FROM chunks c WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = c.file_id))"""
        ).fetchone()[0]
        skipped = conn.execute(
            "SELECT path, reason FROM skipped_files WHERE repo_id = %s ORDER BY path", (repo_id,)
        ).fetchall()
        edges = conn.execute(
            """SELECT s.name_path, s.path, coalesce(t.name_path, e.target_name), e.kind, e.confidence, e.line
                 FROM graph_edges e JOIN graph_nodes s ON s.id = e.source_id
                 LEFT JOIN graph_nodes t ON t.id = e.target_id
                WHERE e.repo_id = %s ORDER BY 1, 2, 3, 4, 6""",
            (repo_id,),
        ).fetchall()
        dangling = conn.execute(
            """SELECT count(*) FROM graph_edges e WHERE e.repo_id = %s AND (
                   NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.source_id)
                   OR (e.target_id IS NOT NULL
                       AND NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.target_id)))""",
            (repo_id,),
        ).fetchone()[0]
    assert dangling == 0, "dangling graph edges"
    assert orphans == 0, "orphaned chunks or postings"
    return {
        "files": files, "chunks": chunks, "postings": postings, "skipped": skipped, "edges": edges,
        "stats": (repo_row[1], round(repo_row[2], 3)),
    }
