"""graph_edges has one partition per repository: a first resolution creates it unindexed and attaches it (which
builds its indexes once); later resolutions write into it; removing the repository drops it. Migration 0010
moves an older database's edges into such partitions."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
from tests.support.snapshot import index_snapshot
from psycopg.conninfo import make_conninfo

from lode.engine import Lode
from lode.store.graph import edges_partition
from lode.store.db import _migrations

PYSHOP = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"
PARENT_INDEXES = {"graph_edges_source_idx", "graph_edges_target_idx", "graph_edges_external_idx"}


def _partition(conn: psycopg.Connection, table: str) -> tuple[bool, set[str]]:
    """Whether `table` is attached to graph_edges, and the parent indexes its own indexes are attached to."""
    attached = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s)"
        " AND inhparent = 'graph_edges'::regclass)", (table,)).fetchone()[0]
    parents = {row[0] for row in conn.execute(
        """SELECT p.inhparent::regclass::text FROM pg_index i JOIN pg_inherits p ON p.inhrelid = i.indexrelid
            WHERE i.indrelid = to_regclass(%s)""", (table,))}
    return attached, parents


def test_a_repositorys_edges_live_in_its_own_indexed_partition_until_it_is_removed(
    lode: Lode, repo_name: str, tmp_path: Path
) -> None:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    lode.indexing.index(tree, repo_name)
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo_name,)).fetchone()[0]
        table = edges_partition(repo_id)
        assert _partition(conn, table) == (True, PARENT_INDEXES)
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0
        others = conn.execute("SELECT count(*) FROM graph_edges WHERE repo_id <> %s", (repo_id,)).fetchone()[0]
        assert conn.execute(f"SELECT count(*) FROM ONLY {table} WHERE repo_id <> %s", (repo_id,)).fetchone()[0] == 0

    # a later resolution writes into the partition: the edges equal a clean index of the edited tree
    service = next(tree.rglob("*.py"))
    service.write_text(service.read_text() + "\n\ndef added():\n    return added()\n")
    lode.indexing.index(tree, repo_name)
    lode.indexing.index(tree, f"{repo_name}-clean")
    assert index_snapshot(lode, repo_name)["edges"] == index_snapshot(lode, f"{repo_name}-clean")["edges"]

    lode.repos.remove(repo_name)
    with lode.db.connection() as conn:
        assert conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM graph_edges WHERE repo_id <> %s", (repo_id,)).fetchone()[0] >= others


def test_migrations_0010_and_0011_keep_an_older_databases_graph(lode: Lode) -> None:
    """0010 moves each repository's edges into its own partition; 0011 turns the file facts' JSON into text."""
    name = f"lode_migration_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(lode.db.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(make_conninfo(lode.db.url, dbname=name)) as conn:
            for number, _, sql in _migrations():
                if number < 10:
                    conn.execute(sql)
            rows = [(1, 1 << 20, 2 << 20, None, "calls", 1.0, 3), (1, 1 << 20, None, "os.path.join", "calls", 1.0, 4),
                    (7, 9 << 20, 10 << 20, None, "imports", 1.0, 1)]
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO graph_edges (repo_id, source_id, target_id, target_name, kind,"
                                " confidence, line) VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
            facts = ('[[0,"m","a","a.b","import"]]', '[[1,"Base"]]', '[[1,"calls","f",3,null]]')
            conn.execute("INSERT INTO graph_files"
                         " (file_id, repo_id, path, language, module, namespace, bindings, bases,"
                         " refs) VALUES (1, 1, 'a.py', 'python', 'a', 'a', %s, %s, %s)", facts)
            for number, _, sql in _migrations():
                if number >= 10:
                    conn.execute(sql)
            assert sorted(conn.execute("SELECT * FROM graph_edges").fetchall(), key=str) == sorted(rows, key=str)
            for repo_id, count in ((1, 2), (7, 1)):
                assert _partition(conn, edges_partition(repo_id)) == (True, PARENT_INDEXES)
                assert conn.execute(f"SELECT count(*) FROM {edges_partition(repo_id)}").fetchone()[0] == count
            assert conn.execute("SELECT to_regclass('graph_edges_shared')").fetchone()[0] is None
            assert conn.execute("SELECT bindings, bases, refs FROM graph_files").fetchone() == facts
    finally:
        with psycopg.connect(lode.db.url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
