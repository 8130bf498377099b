"""End-to-end indexing against the real embedded PostgreSQL: incremental equality, no-op runs, crashes."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.snapshot import index_snapshot
from tests.support.trees import PY_UTIL, base_tree, write_tree
from tests.support.cli import run_cli
from lode.config import Settings
from lode.engine import Lode

def test_index_then_search_finds_definitions(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, base_tree())
    report = lode.indexing.index(tmp_path, repo_name)
    assert report.files_indexed == 5 and report.files_skipped == 0 and report.chunks > 0

    hits = lode.search.query("register hook", repo=repo_name, mode="lexical")["hits"]
    assert hits[0]["name_path"] == "tiny.models.Request.register_hook"
    assert hits[0]["path"] == "tiny/models.py" and hits[0]["legs"]["lexical"] == 1

    ts_hits = lode.search.query("add route", repo=repo_name, mode="lexical", languages=("typescript",))["hits"]
    assert ts_hits and all(h["language"] == "typescript" for h in ts_hits)
    assert ts_hits[0]["name"] == "addRoute"

    only_util = lode.search.query("parse", repo=repo_name, mode="lexical", path="tiny/util*")["hits"]
    assert {h["path"] for h in only_util} == {"tiny/util.py"}
    classes = lode.search.query("request", repo=repo_name, mode="lexical", kinds=("class",))["hits"]
    assert classes and {h["kind"] for h in classes} == {"class"}


def test_name_matches_outrank_body_mentions(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, {
        "a.py": "def load_config(path):\n    return open(path).read()\n",
        "b.py": "def main():\n    # we load config here, then config again, config config\n    load(1)\n",
    })
    lode.indexing.index(tmp_path, repo_name)
    hits = lode.search.query("load config", repo=repo_name, mode="lexical")["hits"]
    assert hits[0]["name"] == "load_config"


@pytest.mark.parametrize("query", [
    "'; DROP TABLE chunks; --", "a & b | !c", "foo:* <-> bar", '"unterminated', "%_\\", "SELECT * FROM files",
    "(((", "🙂 émoji", "register_hook OR 1=1",
])
def test_queries_are_plain_text(lode: Lode, tmp_path: Path, repo_name: str, query: str) -> None:
    write_tree(tmp_path, base_tree())
    lode.indexing.index(tmp_path, repo_name)
    result = lode.search.query(query, repo=repo_name, mode="lexical")
    assert isinstance(result["hits"], list)
    assert lode.search.query("register hook", repo=repo_name, mode="lexical")["hits"], "the index survived"


def test_symbols_exact_qualified_and_suffix(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, base_tree())
    lode.indexing.index(tmp_path, repo_name)
    by_name = lode.search.symbols("register_hook", repo=repo_name)["symbols"]
    assert [s["name_path"] for s in by_name] == ["tiny.models.Request.register_hook"]
    by_suffix = lode.search.symbols("Request.register_hook", repo=repo_name)["symbols"]
    assert by_suffix[0]["start_line"] == 11 and by_suffix[0]["kind"] == "method"
    qualified = lode.search.symbols("tiny.util.parse_header_links", repo=repo_name)["symbols"]
    assert qualified[0]["signature"].startswith("def parse_header_links(value)")
    missing = lode.search.symbols("register_hok", repo=repo_name)
    assert missing["symbols"] == [] and "tiny.models.Request.register_hook" in missing["suggestions"]


def _row_versions(lode: Lode, repo: str) -> dict:
    """xmin of every row Lode keeps for a repository: any rewrite changes it."""
    with lode.db.connection() as conn:
        rid = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo,)).fetchone()[0]
        return {
            table: conn.execute(
                f"SELECT array_agg(xmin::text ORDER BY xmin::text) FROM {table} WHERE {col} = %s", (rid,)
            ).fetchone()[0]
            for table, col in [("repositories", "id"), ("files", "repo_id"), ("chunks", "repo_id"),
                               ("postings", "repo_id"), ("skipped_files", "repo_id"), ("index_runs", "repo_id")]
        }


def test_noop_reindex_writes_nothing(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, base_tree())
    (tmp_path / ".env").write_text("SECRET=1\n")
    lode.indexing.index(tmp_path, repo_name)
    before = _row_versions(lode, repo_name)
    report = lode.indexing.index(tmp_path, repo_name)
    assert (report.files_indexed, report.files_deleted, report.files_unchanged) == (0, 0, 5)
    assert _row_versions(lode, repo_name) == before

    os.utime(tmp_path / "tiny/util.py", ns=(1, 1))  # touched, same content: only the mtime is recorded
    report = lode.indexing.index(tmp_path, repo_name)
    assert report.files_indexed == 0 and report.files_unchanged == 5
    after = _row_versions(lode, repo_name)
    assert after["chunks"] == before["chunks"] and after["postings"] == before["postings"]


def test_incremental_edits_equal_a_clean_index(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    live, clean = tmp_path / "live", tmp_path / "clean"
    write_tree(live, base_tree())
    lode.indexing.index(live, repo_name)

    (live / "tiny/util.py").write_text(PY_UTIL + "\n\ndef unquote(value):\n    return value.strip('\"')\n")
    (live / "tiny/models.py").rename(live / "tiny/request.py")  # rename
    (live / "web/app.ts").unlink()  # delete
    write_tree(live, {"web/routes.ts": "export const routes = ['/a', '/b'];\n"})  # add
    report = lode.indexing.index(live, repo_name)
    assert (report.files_indexed, report.files_deleted) == (3, 2)

    shutil.copytree(live, clean)
    lode.indexing.index(clean, repo_name + "-clean")
    assert index_snapshot(lode, repo_name) == index_snapshot(lode, repo_name + "-clean")
    hits = lode.search.query("register hook", repo=repo_name, mode="lexical")["hits"]
    assert hits[0]["name_path"] == "tiny.request.Request.register_hook"


def test_random_edit_sequences_equal_a_clean_index(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    """Chunks, postings and graph edges (incoming ones included) after random edits equal a clean index."""
    rng = random.Random(7)
    live = tmp_path / "live"
    names = [f"pkg/m{i}.py" for i in range(12)]
    write_tree(live, {"pkg/__init__.py": "", **{
        n: f"from pkg.m{(i + 1) % 12} import f{(i + 1) % 12}\n\ndef f{i}():\n    return f{(i + 1) % 12}()\n"
        for i, n in enumerate(names)}})
    lode.indexing.index(live, repo_name)
    for step in range(6):
        for _ in range(4):
            target = live / rng.choice(names)
            action = rng.choice(["edit", "delete", "create", "rename"])
            if action == "delete" and target.exists():
                target.unlink()
            elif action == "rename" and target.exists():
                target.rename(target.with_name(f"r{step}_{target.name}"))
            else:
                callee = rng.randrange(12)
                target.write_text(f"from pkg.m{callee} import f{callee}\n\nclass C{step}:\n    def m(self, x):\n"
                                  f"        return f{callee}(x * {rng.randint(0, 99)})\n")
        lode.indexing.index(live, repo_name)
    clean = tmp_path / "clean"
    shutil.copytree(live, clean)
    lode.indexing.index(clean, repo_name + "-clean")
    live_snapshot = index_snapshot(lode, repo_name)
    assert any(kind == "calls" and target.startswith("pkg.") for _, _, target, kind, _, _ in live_snapshot["edges"])
    assert live_snapshot == index_snapshot(lode, repo_name + "-clean")


MID_RUN_FILES = 1500  # enough that a signal sent once 50 files are stored lands mid-run on a fast, idle machine


def _generate_repo(root: Path, files: int) -> None:
    body = "\n\n".join(
        f"def handler_{j}(request, payload):\n    \"\"\"Handle request number {j}.\"\"\"\n"
        f"    total = sum(payload) + {j}\n    return request.respond(total)\n" for j in range(8)
    )
    for i in range(files):
        write_tree(root, {f"svc{i % 20}/mod_{i}.py": f"# module {i}\n\n{body}\n\nclass Service{i}:\n"
                          f"    def run(self):\n        return handler_0(self, [{i}])\n"})


def test_sigkill_mid_run_then_rerun_equals_clean(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str) -> None:
    live = tmp_path / "live"
    _generate_repo(live, MID_RUN_FILES)
    proc = subprocess.Popen([sys.executable, "-m", "lode", "index", str(live), "--repo", repo_name, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    deadline = time.monotonic() + 60
    indexed = 0
    while time.monotonic() < deadline and proc.poll() is None:
        with lode.db.connection() as conn:
            row = conn.execute(
                "SELECT count(*) FROM files f JOIN repositories r ON r.id = f.repo_id WHERE r.name = %s",
                (repo_name,),
            ).fetchone()
        indexed = row[0]
        if indexed >= 50:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert 50 <= indexed < MID_RUN_FILES, "the kill landed mid-run"

    report = lode.indexing.index(live, repo_name)
    assert report.files_indexed + report.files_unchanged == MID_RUN_FILES
    with lode.db.connection() as conn:
        statuses = [row[0] for row in conn.execute(
            "SELECT status FROM index_runs r JOIN repositories p ON p.id = r.repo_id WHERE p.name = %s ORDER BY r.id",
            (repo_name,),
        )]
    assert statuses == ["aborted", "done"]

    clean = tmp_path / "clean"
    shutil.copytree(live, clean)
    lode.indexing.index(clean, repo_name + "-clean")
    assert index_snapshot(lode, repo_name) == index_snapshot(lode, repo_name + "-clean")


def test_empty_index_says_so(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    report = lode.indexing.index(tmp_path, repo_name)
    assert report.files_indexed == 0 and report.warnings and "EMPTY" in report.warnings[0]
    assert lode.repos.status(repo_name)["repos"][0]["empty"] is True


def test_remove_repository(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, base_tree())
    lode.indexing.index(tmp_path, repo_name)
    lode.repos.remove(repo_name)
    assert repo_name not in {r["repo"] for r in lode.repos.all()}
    with lode.db.connection() as conn:
        left = conn.execute("SELECT count(*) FROM chunks c WHERE NOT EXISTS "
                            "(SELECT 1 FROM repositories r WHERE r.id = c.repo_id)").fetchone()[0]
        orphan_postings = conn.execute("SELECT count(*) FROM postings p WHERE NOT EXISTS "
                                       "(SELECT 1 FROM files f WHERE f.id = p.file_id)").fetchone()[0]
    assert left == 0 and orphan_postings == 0


def test_ctrl_c_mid_run_leaves_a_consistent_index(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    live = tmp_path / "live"
    _generate_repo(live, MID_RUN_FILES)
    # a shell's background job (CI) starts with SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler: restore the default, as in an interactive terminal
    proc = subprocess.Popen([sys.executable, "-m", "lode", "index", str(live), "--repo", repo_name],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with lode.db.connection() as conn:
            indexed = conn.execute(
                "SELECT count(*) FROM files f JOIN repositories r ON r.id = f.repo_id WHERE r.name = %s",
                (repo_name,),
            ).fetchone()[0]
        if indexed >= 50:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the interrupt: the signal must land mid-run"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert b"interrupted" in stderr
    with lode.db.connection() as conn:
        status = conn.execute(
            "SELECT status FROM index_runs r JOIN repositories p ON p.id = r.repo_id WHERE p.name = %s",
            (repo_name,),
        ).fetchone()[0]
    assert status == "aborted"
    lode.indexing.index(live, repo_name)
    clean = tmp_path / "clean"
    shutil.copytree(live, clean)
    lode.indexing.index(clean, repo_name + "-clean")
    assert index_snapshot(lode, repo_name) == index_snapshot(lode, repo_name + "-clean")


def test_a_file_whose_worker_overruns_index_file_timeout_is_killed_and_skipped(tmp_path: Path, repo_name: str) -> None:
    files = {f"pkg/m{i}.py": f"def f{i}():\n    return {i}\n" for i in range(40)}  # enough for worker processes
    files["slow.py"] = "x = " + "(\n" * 250_000 + "1" + ")\n" * 250_000  # >= 0.6 s to chunk; the others take ms
    write_tree(tmp_path, files)
    env = {"LODE_TIMEOUT_INDEX_FILE": "0.15", "LODE_TIMEOUT_PARSE": "60", "LODE_INDEX_WORKERS": "2"}
    code, report, _ = run_cli("index", str(tmp_path), "--repo", repo_name, "--json", env=env)
    assert code == 0 and report["files_indexed"] == 40 and report["files_skipped"] == 1
    code, status, _ = run_cli("status", "--repo", repo_name, "--skipped", "--json")
    (skip,) = status["repos"][0]["skipped_files"]
    assert skip["path"] == "slow.py" and skip["reason"] == "index_timeout"
    code, again, _ = run_cli("index", str(tmp_path), "--repo", repo_name, "--json")  # retried: default timeout
    assert code == 0 and again["files_indexed"] == 1 and again["files_skipped"] == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_directory_swapped_for_a_symlink_during_a_run_is_not_followed(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                       repo_name: str, workers: int) -> None:
    """Issue 15, item 1: sub/*.py are listed, then sub becomes a link to a folder outside the root before they
    are read; inline (workers=1) and in worker processes (40 files, 2 workers)."""
    names = ["config.py", *(f"m{i}.py" for i in range(40))]
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_tree(root, {"top.py": "def top():\n    return 1\n", **{f"sub/{n}": "def inside():\n    return 1\n"
                                                               for n in names}})
    write_tree(outside, dict.fromkeys(names, "SWAPPED_IN_SECRET = 1\n"))
    swapped: list[bool] = []

    def on_progress(progress) -> None:  # discovery is done, nothing is read yet
        if not swapped:
            (root / "sub").rename(tmp_path / "moved")
            os.symlink(outside, root / "sub")
            swapped.append(True)

    engine = Lode(Settings(home=lode_home, embedder="none", index_workers=workers))
    try:
        report = engine.indexing.index(root, repo_name, on_progress)
    finally:
        engine.close()
    assert swapped and report.files_indexed == 1 and report.files_skipped == len(names)
    assert lode.repos.status(repo_name)["repos"][0]["skipped"] == {"symlink_outside_root": len(names)}
    with lode.db.connection() as conn:
        leaked = conn.execute("SELECT count(*) FROM chunks WHERE content LIKE '%%SWAPPED_IN_SECRET%%'").fetchone()[0]
    assert leaked == 0
