"""The search-quality harness (bench/quality.py): its scores against hand-computed values, its query kinds, its
bm25s baseline (a whole run: tests/e2e/test_bench_runs.py)."""

from __future__ import annotations

import math
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
