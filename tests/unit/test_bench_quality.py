"""The search-quality harness (bench/quality.py): its scores against hand-computed values, its query kinds, its
bm25s baseline, and a whole run over a tiny git repository laid out like semble-dev (real git, real process, real
embedded PostgreSQL)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import quality
from bench import quality_metrics as qm

# ---- scores -----------------------------------------------------------------------------------------------


def test_ndcg_counts_each_target_at_its_first_file() -> None:
    # targets at ranks 1 and 3: DCG = 1 + 1/log2(4) = 1.5; ideal (T = 2) = 1 + 1/log2(3)
    assert qm.file_ndcg_at_10(["a.py", "x.py", "b.py"], ["a.py", "b.py"]) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert qm.file_ndcg_at_10(["a.py", "x.py", "b.py"], ["a.py", "b.py"]) == pytest.approx(0.919720, abs=1e-6)


def test_ndcg_keeps_the_first_occurrence_of_a_file_and_cuts_at_10() -> None:
    # x.py twice: a.py is the second distinct file, gain 1/log2(3) against an ideal of 1
    assert qm.file_ndcg_at_10(["x.py", "x.py", "a.py"], ["a.py"]) == pytest.approx(1 / math.log2(3))
    eleventh = [f"f{i}.py" for i in range(10)] + ["a.py"]
    assert qm.file_ndcg_at_10(eleventh, ["a.py"]) == 0.0
    assert qm.file_ndcg_at_10([], ["a.py"]) == 0.0


def test_ndcg_ideal_has_at_most_ten_gains() -> None:
    targets = [f"t{i}.py" for i in range(12)]
    assert qm.file_ndcg_at_10(targets[:10], targets) == pytest.approx(1.0)
    # 5 of 12 targets found at ranks 1..5: sum of the first five gains over the ideal of ten
    gains = [1 / math.log2(r + 2) for r in range(10)]
    assert qm.file_ndcg_at_10(targets[:5], targets) == pytest.approx(sum(gains[:5]) / sum(gains))


def test_paths_match_equal_or_after_a_slash() -> None:
    assert qm.paths_match("src/pkg/a.py", "pkg/a.py")
    assert qm.paths_match("pkg/a.py", "src/pkg/a.py")
    assert not qm.paths_match("src/xpkg/a.py", "pkg/a.py")
    assert qm.file_ndcg_at_10(["lib/pkg/a.py"], ["pkg/a.py"]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        qm.file_ndcg_at_10(["a.py"], [])


def test_acc_at_k_needs_every_gold_file_and_mrr_takes_the_best() -> None:
    ranked = ["a.py", "c.py", "c.py", "b.py", "d.py"]  # distinct: a, c, b, d
    assert qm.acc_at_k(ranked, ["a.py", "b.py"], 1) == 0.0
    assert qm.acc_at_k(ranked, ["a.py", "b.py"], 2) == 0.0
    assert qm.acc_at_k(ranked, ["a.py", "b.py"], 3) == 1.0
    assert qm.acc_at_k(ranked, ["a.py"], 1) == 1.0
    assert qm.mrr_at_10(ranked, ["b.py", "d.py"]) == pytest.approx(1 / 3)
    assert qm.mrr_at_10(ranked, ["z.py"]) == 0.0
    assert qm.hit_at_k(ranked, ["c.py"], 1) == 0.0 and qm.hit_at_k(ranked, ["c.py"], 2) == 1.0


def test_definition_hit_needs_the_file_and_a_span_holding_the_line() -> None:
    hit = {"path": "pkg/mod.py", "start_line": 10, "end_line": 20}
    assert qm.is_definition_hit(hit, "pkg/mod.py", 10)
    assert qm.is_definition_hit(hit, "pkg/mod.py", 20)
    assert not qm.is_definition_hit(hit, "pkg/mod.py", 21)
    assert not qm.is_definition_hit(hit, "pkg/other.py", 12)


# ---- query kinds and the bm25s baseline -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind"), [
    ("url_for", "symbol"), ("Flask.url_for", "symbol"), ("Rack::Builder", "symbol"), ("getUser", "symbol"),
    ("how are routes matched", "natural language"), ("HTTP middleware chain", "natural language"),
    ("where is url_for defined", "mixed"), ("How does getUser cache results", "mixed"),
    ("retry in `fetch` on timeout", "mixed"),
    ("Traceback (most recent call last):\n  File \"a.py\", line 1\nValueError", "long"), ("word " * 80, "long"),
])
def test_query_kinds(text: str, kind: str) -> None:
    assert quality.query_kind(text) == kind


def test_bm25s_over_files_splits_identifiers_and_ranks_paths(tmp_path: Path) -> None:
    (tmp_path / "router.py").write_text("def match_route(path):\n    return lookup(path)\n")
    (tmp_path / "cookies.py").write_text("class CookieJar:\n    def getCookieValue(self):\n        pass\n")
    (tmp_path / "empty.py").write_text("\n")
    bm25 = quality.FileBM25()
    bm25.index(tmp_path, ["cookies.py", "empty.py", "router.py"])
    assert bm25.search("cookie value")[0] == "cookies.py"  # camelCase parts, stemmed
    assert bm25.search("matching routes")[0] == "router.py"  # snake_case parts and the file name
    assert bm25.search("the of and") == []  # stop words only: nothing to rank
    assert "empty.py" not in bm25.search("cookie route")  # a file with no matching word is not listed


# ---- options and summaries --------------------------------------------------------------------------------


def test_ablations_and_env_pairs_reach_the_engine_environment() -> None:
    args = quality.parse_args(["--set", "semble", "--env", "LODE_X=1", "--env", "LODE_RANKING_DISABLE=a",
                               "--ablate", "defs", "--ablate", "paths"])
    assert dict(args.env) == {"LODE_X": "1", "LODE_RANKING_DISABLE": "a,defs,paths"}
    assert args.label == "no-defs-paths" and args.sets == ["semble"]
    assert args.home == quality.DEFAULT_CACHE / "home"
    for bad in (["--env", "NOEQUALS"], ["--set", "nope"], ["--modes", "lexical,fuzzy"], ["--label", "a b"]):
        with pytest.raises(SystemExit):
            quality.parse_args(bad)


def _row(repo: str, ndcg: float, error: str | None = None) -> dict:
    return {"set": "semble", "repo": repo, "mode": "hybrid", "kind": "symbol", "category": "symbol",
            "language": "go", "ms": 10.0, "error": error, "ndcg10": ndcg, "mrr10": ndcg}


def test_summary_means_per_repository_then_over_repositories() -> None:
    summary = quality.summarize([_row("a", 1.0), _row("a", 0.0), _row("a", 0.5), _row("b", 0.25, "InputError: x")])
    hybrid = summary["semble"]["hybrid"]
    assert hybrid["overall"]["ndcg10"] == pytest.approx(0.4375)  # mean over the 4 queries
    assert hybrid["overall"]["mean_of_repos"] == pytest.approx((0.5 + 0.25) / 2)  # a: 0.5, b: 0.25
    assert hybrid["repo"]["b"]["refused"] == 1 and hybrid["overall"]["refused"] == 1
    merged = quality.merge([{"meta": {"command": "one", "date": "d", "load_average": [1, 1, 1]}, "indexes": {},
                             "queries": [_row("a", 1.0)]},
                            {"meta": {"command": "two", "date": "d", "load_average": [2, 2, 2]}, "indexes": {},
                             "queries": [_row("b", 0.0)]}])
    assert merged["meta"]["command"] == "one; two"
    assert merged["summary"]["semble"]["hybrid"]["overall"]["mean_of_repos"] == pytest.approx(0.5)


def test_markdown_gives_each_cell_and_its_change_against_a_base_run() -> None:
    meta = {"command": "python -m bench.quality", "machine": "m", "date": "d", "load_average": [1.0, 1.0, 1.0]}
    base = {"meta": meta, "summary": quality.summarize([_row("a", 0.25), _row("b", 0.5)])}
    now = {"meta": meta, "summary": quality.summarize([_row("a", 0.75), _row("b", 0.5, "InputError: long")])}
    text = quality.markdown(now, base)
    assert "| repo: a | 1 | 0.750 (+0.500) | 0 |" in text
    assert "| repo: b | 1 | 0.500 (+0.000) | 1 |" in text
    assert "| mean of repositories | 2 | 0.625 (+0.250) | 1 |" in text
    assert "(+" not in quality.markdown(now)


# ---- a whole run ------------------------------------------------------------------------------------------

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
