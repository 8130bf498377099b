"""Embeddings and hybrid search end to end: a real PostgreSQL, real `lode` processes, and a stub embedding
service in its own process standing in for a remote OpenAI-compatible API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from lode.config import Settings
from lode.embedding.backfill import BackfillProgress
from lode.engine import Lode
from tests.support.embedding_stub import http_env, start_stub
from tests.support.polling import wait_until
from tests.support.trees import SEMANTIC_CORPUS, write_tree


def http_engine(lode_home: Path, url: str, model: str = "stub-a") -> Lode:
    old = {k: os.environ.get(k) for k in http_env(url, model)}
    os.environ.update(http_env(url, model))
    try:
        return Lode(Settings(home=lode_home))
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_hybrid_finds_semantic_only_and_lexical_only_chunks(lode: Lode, lode_home: Path, tmp_path: Path,
                                                            repo_name: str, stub: str) -> None:
    write_tree(tmp_path, SEMANTIC_CORPUS)
    engine = http_engine(lode_home, stub)
    engine.indexing.index(tmp_path, repo_name)
    before = engine.search.query("read file lines", repo=repo_name, mode="hybrid")
    assert set(before["degraded"]) == {"text", "code"}  # nothing embedded yet: lexical still answers
    progress = engine.embeddings.embed(repo_name)
    assert (progress.done, progress.pending, progress.failed) == (4, 0, 0)

    semantic = engine.search.query("read file lines", repo=repo_name, mode="hybrid")
    assert semantic["degraded"] == []
    top = semantic["hits"][0]
    assert top["name"] == "slurp"  # shares no word with the query: only the vector legs can find it
    assert top["legs"]["lexical"] is None and top["legs"]["text"] is not None

    exact = engine.search.query("frobnicate_zq", repo=repo_name, mode="hybrid")
    hit = next(h for h in exact["hits"] if h["name"] == "frobnicate_zq")
    assert hit["legs"]["lexical"] == 1 and exact["hits"][0]["name"] == "frobnicate_zq"

    only_semantic = engine.search.query("read file lines", repo=repo_name, mode="semantic")
    assert only_semantic["hits"][0]["name"] == "slurp"
    assert all(h["legs"]["lexical"] is None for h in only_semantic["hits"])
    engine.close()


def test_model_mismatch_is_refused_then_switched(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str,
                                                 stub: str) -> None:
    write_tree(tmp_path, SEMANTIC_CORPUS)
    code, report, _ = run_cli("index", str(tmp_path), "--repo", repo_name, "--wait", "--json", env=http_env(stub))
    assert code == 0 and report["embeddings"] == {"done": 4, "pending": 0, "failed": 0}

    code, _, stderr = run_cli("embed", "--repo", repo_name, env=http_env(stub, "stub-b"))
    assert code == 2 and "was embedded with http:stub-a" in stderr and "--switch" in stderr
    code, result, _ = run_cli("search", "post payload", "--repo", repo_name, "--json", env=http_env(stub, "stub-b"))
    assert code == 0 and set(result["degraded"]) == {"text", "code"} and result["hits"]

    code, progress, _ = run_cli("embed", "--repo", repo_name, "--switch", "--json", env=http_env(stub, "stub-b"))
    assert code == 0 and progress == {"done": 4, "pending": 0, "failed": 0}
    code, status, _ = run_cli("status", "--repo", repo_name, "--json")
    assert status["repos"][0]["embedding_model"] == "http:stub-b" and status["repos"][0]["switching_to"] is None
    with lode.db.connection() as conn:
        models = dict(conn.execute("SELECT model_id, id FROM embedding_models").fetchall())
        rid = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo_name,)).fetchone()[0]
        old = conn.execute(f"SELECT count(*) FROM vectors_m{models['http:stub-a']} WHERE repo_id = %s",
                           (rid,)).fetchone()[0]
    assert old == 0, "the old model's vectors are dropped after the switch"


def test_rejected_chunk_is_marked_failed_and_others_embed(lode: Lode, lode_home: Path, tmp_path: Path,
                                                          repo_name: str, stub: str) -> None:
    write_tree(tmp_path, {**SEMANTIC_CORPUS, "bad.py": "def poisoned():\n    return 'POISON'\n"})
    engine = http_engine(lode_home, stub)
    engine.indexing.index(tmp_path, repo_name)
    progress = engine.embeddings.embed(repo_name)
    assert (progress.done, progress.pending, progress.failed) == (4, 0, 1)
    engine.close()


def _vectors(lode: Lode, repo: str) -> dict[tuple[str, int], tuple[str, str]]:
    with lode.db.connection() as conn:
        rid, model = conn.execute("SELECT id, embedding_model FROM repositories WHERE name = %s", (repo,)).fetchone()
        rows = conn.execute(
            f"""SELECT c.path, c.start_line, v.text_vec::text, v.code_vec::text
                  FROM vectors_m{model} v JOIN chunks c ON c.id = v.chunk_id WHERE v.repo_id = %s""", (rid,)
        ).fetchall()
        orphans = conn.execute(
            f"SELECT count(*) FROM vectors_m{model} v WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = v.chunk_id)"
        ).fetchone()[0]
    assert orphans == 0
    return {(p, line): (t, c) for p, line, t, c in rows}


def test_backfill_resumes_after_sigkill(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str) -> None:
    slow, url = start_stub("--delay", "0.15")
    try:
        files = {f"m{i}.py": f"def handler_{i}(request):\n    return request.reply({i})\n" for i in range(300)}
        write_tree(tmp_path, files)
        env = {**os.environ, **http_env(url), "LODE_EMBED_BATCH_SIZE": "8"}
        lexical_only = {**http_env(url), "LODE_EMBEDDER": "none"}
        assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json", env=lexical_only)[0] == 0
        proc = subprocess.Popen([sys.executable, "-m", "lode", "embed", "--repo", repo_name, "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline:
            done = lode.embeddings.counts(repo_name).done
            if done >= 100:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert 100 <= done < 300, "the kill landed mid-backfill"
    finally:
        slow.kill()
        slow.wait()
    fast, url = start_stub()
    try:
        engine = http_engine(lode_home, url)
        progress = engine.embeddings.embed(repo_name)
        assert (progress.done, progress.pending, progress.failed) == (300, 0, 0)
        engine.close()
    finally:
        fast.kill()
        fast.wait()
    resumed = _vectors(lode, repo_name)
    assert len(resumed) == 300

    clean = tmp_path.parent / (tmp_path.name + "-clean")
    write_tree(clean, {f"m{i}.py": f"def handler_{i}(request):\n    return request.reply({i})\n" for i in range(300)})
    fast, url = start_stub()
    try:
        engine = http_engine(lode_home, url)
        engine.indexing.index(clean, repo_name + "-clean")
        engine.embeddings.embed(repo_name + "-clean")
        engine.close()
    finally:
        fast.kill()
        fast.wait()
    assert resumed == _vectors(lode, repo_name + "-clean")


def test_index_returns_at_once_and_embeds_in_the_background(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    slow, url = start_stub("--delay", "0.3")
    try:
        write_tree(tmp_path, SEMANTIC_CORPUS)
        code, report, _ = run_cli("index", str(tmp_path), "--repo", repo_name, "--json", env=http_env(url))
        assert code == 0 and report["embeddings"]["pending"] == 4 and report["embeddings"]["done"] == 0
        wait_until(lambda: not lode.embeddings.counts(repo_name).pending, 60, "the background backfill")
        assert lode.embeddings.counts(repo_name) == BackfillProgress(done=4, pending=0, failed=0)
    finally:
        slow.kill()
        slow.wait()


def test_one_backfill_per_repository_at_a_time(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str,
                                               stub: str) -> None:
    from lode.services.embeddings import _BACKFILL_LOCK

    write_tree(tmp_path, SEMANTIC_CORPUS)
    engine = http_engine(lode_home, stub)
    engine.indexing.index(tmp_path, repo_name)
    with lode.db.connection() as conn:
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo_name,)).fetchone()[0]
    with lode.db.advisory_lock(_BACKFILL_LOCK, repo_id) as held:  # as another process's backfill holds it
        assert held
        busy = engine.embeddings.embed(repo_name)
    assert (busy.done, busy.pending) == (0, 4), "the second backfill must leave the work to the first"
    done = engine.embeddings.embed(repo_name)
    assert (done.done, done.pending) == (4, 0)
    engine.close()


def test_no_query_embedding_before_the_first_vector_is_stored(lode_home: Path, tmp_path: Path, repo_name: str,
                                                              stub: str) -> None:
    """A backfill that has chosen its model but not stored a vector yet: hybrid answers at once, lexically,
    without asking the provider (on a fresh install the local model would otherwise load inside the deadline)."""
    write_tree(tmp_path, SEMANTIC_CORPUS)
    engine = http_engine(lode_home, stub)
    try:
        engine.indexing.index(tmp_path, repo_name)
        engine.embeddings.embed(repo_name, should_stop=lambda: True)  # sets the serving model, stores nothing
    finally:
        engine.close()
    with socket.socket() as provider:  # listens but never answers: a connection attempt would queue here
        provider.bind(("127.0.0.1", 0))
        provider.listen(8)
        provider.setblocking(False)
        engine = http_engine(lode_home, f"http://127.0.0.1:{provider.getsockname()[1]}")
        try:
            assert engine.embeddings.counts(repo_name) == BackfillProgress(done=0, pending=4, failed=0)
            assert engine.repos.status(repo_name)["repos"][0]["embedding_model"] == "http:stub-a"
            result = engine.search.query("post the payload", repo=repo_name, mode="hybrid")
        finally:
            engine.close()
        with pytest.raises(BlockingIOError):
            provider.accept()
    assert sorted(result["degraded"]) == ["code", "text"]
    assert result["hits"][0]["path"] == "net/http.py"
