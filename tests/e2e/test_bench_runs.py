"""Whole benchmark runs in real processes on a real embedded PostgreSQL: the search-quality harness over a tiny
git repository laid out like semble-dev (real git), and `bench/run --quick` (slow); the parts of each harness
alone are tests/unit/test_bench_quality.py and tests/unit/test_bench_harness.py."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import quality_metrics as qm

ROUTER = '''"""Routing."""


def match_route(table, path):
    """Find the handler registered for a path."""
    return table.get(path)


class Router:
    def add_route(self, path, handler):
        self.table[path] = handler
'''
COOKIES = '''class CookieJar:
    """Stores cookies between requests."""

    def cookie_value(self, name):
        return self.cookies[name]
'''
TEST_ROUTER = '''from app.router import match_route


def test_match_route():
    assert match_route({"/": 1}, "/") == 1


def add_route():
    pass
'''


def _git(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_a_tiny_semble_like_set_runs_end_to_end(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "app").mkdir(parents=True)
    (work / "tests").mkdir()
    (work / "app" / "router.py").write_text(ROUTER)
    (work / "app" / "cookies.py").write_text(COOKIES)
    (work / "app" / "notes.md").write_text("routing notes: not in the language, left out\n")
    (work / "tests" / "test_router.py").write_text(TEST_ROUTER)
    (work / "outside.py").write_text("def outside_root():\n    pass\n")  # outside benchmark_root: left out
    _git("init", "-q", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "tiny", cwd=work)
    revision = _git("rev-parse", "HEAD", cwd=work).strip()
    mirrors = tmp_path / "mirrors"
    (mirrors / "someone+tiny").mkdir(parents=True)
    _git("clone", "-q", "--bare", str(work), str(mirrors / "someone+tiny" / "repo"), cwd=tmp_path)

    data = tmp_path / "data" / "semble-dev"
    (data / "annotations").mkdir(parents=True)
    (data / "repos.json").write_text(json.dumps({
        "tiny": {"repo": "someone/tiny", "revision": revision, "benchmark_root": "", "language": "python"},
        "gone": {"repo": "someone/gone", "revision": "0" * 40, "benchmark_root": "", "language": "go"}}))
    (data / "annotations" / "tiny.json").write_text(json.dumps([
        {"query": "how are routes matched to handlers", "relevant": ["app/router.py"], "secondary": [],
         "category": "semantic"},
        {"query": "CookieJar", "relevant": [{"path": "app/cookies.py", "start_line": 1, "end_line": 5}],
         "secondary": ["app/router.py"], "category": "symbol"},
    ]))
    cache = tmp_path / "cache"
    done = subprocess.run(
        [sys.executable, "-m", "bench.quality", "--set", "semble,symbols", "--modes", "lexical,bm25s",
         "--data", str(tmp_path / "data"), "--mirrors", str(mirrors), "--cache", str(cache), "--label", "tiny"],
        check=False, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=300,
        env={**os.environ, "LODE_EMBEDDER": "none"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "semble gone: no snapshot holds revision" in done.stderr  # left out, and said so

    checked_out = sorted(p.relative_to(cache / "src" / "semble" / "tiny").as_posix()
                         for p in (cache / "src" / "semble" / "tiny").rglob("*") if p.is_file())
    assert checked_out == ["app/cookies.py", "app/router.py", "outside.py", "tests/test_router.py"]

    [results] = (cache / "results").glob("quality-*-tiny.json")
    result = json.loads(results.read_text())
    rows = result["queries"]
    semble = {(r["id"], r["mode"]): r for r in rows if r["set"] == "semble"}
    assert set(semble) == {("tiny/0", "lexical"), ("tiny/0", "bm25s"), ("tiny/1", "lexical"), ("tiny/1", "bm25s")}
    cookie = semble[("tiny/1", "lexical")]
    assert cookie["kind"] == "symbol" and cookie["files"][0] == "app/cookies.py"
    # both targets ranked 1 and 2 or cookies.py alone first: the score is the file nDCG of the files listed
    assert cookie["ndcg10"] == pytest.approx(qm.file_ndcg_at_10(cookie["files"], ["app/cookies.py", "app/router.py"]))
    assert cookie["ndcg10"] >= 1 / (1 + 1 / math.log2(3))

    # the symbol set: names defined once outside tests (add_route is also defined in a test file: still once
    # outside tests), each query's target its definition
    symbols = {r["id"]: r for r in rows if r["set"] == "symbols" and r["mode"] == "lexical"}
    assert set(symbols) == {"tiny:CookieJar", "tiny:Router", "tiny:add_route", "tiny:cookie_value",
                            "tiny:match_route", "tiny:outside_root"}
    assert symbols["tiny:match_route"]["targets"] == ["app/router.py"]
    assert symbols["tiny:match_route"]["def1"] == 1.0
    assert symbols["tiny:match_route"]["first_hit"]["start_line"] <= 4 <= symbols["tiny:match_route"]["first_hit"][
        "end_line"]
    assert all(r["def1"] is None for r in rows if r["set"] == "symbols" and r["mode"] == "bm25s")  # files only

    assert result["meta"]["partial"] is False  # the last checkpoint is the whole run
    summary = result["summary"]
    assert summary["semble"]["lexical"]["overall"]["n"] == 2
    assert summary["semble"]["lexical"]["repo"]["tiny"]["ndcg10"] == pytest.approx(
        (semble[("tiny/0", "lexical")]["ndcg10"] + cookie["ndcg10"]) / 2, abs=1e-4)
    assert set(summary["semble"]["bm25s"]["kind"]) == {"natural language", "symbol"}
    markdown = results.with_suffix(".md").read_text()
    assert "| repo: tiny | 2 |" in markdown and "semble-dev: file nDCG@10" in markdown
    assert "symbol set" in markdown


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the subprocess's own limit: the quick suite takes over 300 s on a slow machine
def test_quick_suite_runs_end_to_end(tmp_path: Path) -> None:
    """`bench/run --quick` on real corpora and a real embedded server: every section rendered, every plot written."""
    for module in ("bm25s", "pyinstrument"):  # the bench extra: pip install -c constraints.txt -e '.[bench]'
        pytest.importorskip(module, reason="bench/run needs the bench extra (pip install -e '.[bench]')")

    root = Path(__file__).resolve().parents[2]
    out, work = tmp_path / "out", tmp_path / "work"
    done = subprocess.run([str(root / "bench" / "run"), "--quick", "--out", str(out), "--work", str(work)],
                          check=False, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "bench-results.json").read_text())
    points = results["scaling"]["points"]
    assert [p["chunks"] > 0 for p in points] == [True] * 3
    assert points[0]["vectors_source"] == "real" and points[-1]["vectors_source"] == "synthetic"
    assert all(set(p["latency"]) == {"lexical", "semantic", "hybrid"} for p in points)
    assert [r["changed_files"] for r in results["scaling"]["incremental"]] == [1, 10]
    assert results["baselines"]["vectors"]["code"]["recall_at_10"] > 0
    assert all(0 < p["noop_s"] < p["index_s"] for p in points)  # the no-op re-index, at every size
    for p in points:  # ef_search swept at every size, against exact search over the same vectors
        assert [r["ef_search"] for r in p["hnsw"]["sweep"]] == [40, 100, 200, 400, 800]
        assert p["hnsw"]["tuned_ef"] in (None, 40, 100, 200, 400, 800)
    text = (out / "benchmarks.md").read_text()
    assert text.startswith((root / "docs" / "benchmarks.md").read_text()[:200])  # the prose is kept
    for name in ("run", "targets", "scaling-index", "scaling-embed", "scaling-incremental", "scaling-query", "hnsw",
                 "baselines", "quality", "profile", "bottlenecks"):
        assert text.count(f"<!-- bench:{name} -->\n") == 1
    assert len(list((out / "img").glob("*.png"))) == 6
