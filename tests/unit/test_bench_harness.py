"""The pure parts of the benchmark harness (bench/run): exponent fit, replica renaming, marker-section rewriting."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from bench import corpora, report
from bench.baselines import rg_pattern
from bench.scaling import fit_exponent

# ---- exponent fit -------------------------------------------------------------------------------------


@pytest.mark.parametrize("exponent", [0.5, 1.0, 1.7])
def test_fit_recovers_a_power_law(exponent: float) -> None:
    xs = [1e3, 1e4, 5e4, 1e5, 5e5]
    fit = fit_exponent(xs, [3.0 * x**exponent for x in xs])
    assert fit is not None
    assert fit["exponent"] == pytest.approx(exponent, abs=1e-9)
    assert fit["coefficient"] == pytest.approx(3.0, rel=1e-6)
    assert fit["r2"] == pytest.approx(1.0)


def test_fit_of_noisy_points_is_a_least_squares_slope() -> None:
    fit = fit_exponent([1, 2, 4, 8], [1.0, 2.2, 3.9, 8.4])
    assert fit is not None
    assert 0.9 < fit["exponent"] < 1.1 and fit["r2"] < 1.0


def test_fit_needs_two_distinct_positive_points() -> None:
    assert fit_exponent([10, 10], [1, 2]) is None
    assert fit_exponent([0, 10], [1, 2]) is None  # log of 0 is dropped, leaving one point
    assert fit_exponent([], []) is None


# ---- replicas -----------------------------------------------------------------------------------------

SOURCE = b'''"""Module doc mentioning Parser."""
import re


def parse(text, *, strict=False):
    return Parser(text).run() if strict else parse_loose(text)


async def parse_loose(text):
    return f"{text!r} \\N{EM DASH} parse"


class Parser:
    def run(self):  # a method: not top level, not renamed
        return parse(self.text)


def match(x):  # a soft keyword: never renamed
    match x:
        case 1:
            return re.match("a", "a")
'''


def _identifiers(source: bytes) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)} | {
        node.name for node in ast.walk(ast.parse(source)) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                                  ast.ClassDef))}


def test_renaming_suffixes_top_level_names_and_their_uses() -> None:
    names = corpora.top_level_names([SOURCE])
    assert names == {b"parse", b"parse_loose", b"Parser"}
    renamed = corpora.rename(SOURCE, names, 3)
    ast.parse(renamed)  # still parses
    found = _identifiers(renamed)
    assert {"parse_c3", "parse_loose_c3", "Parser_c3"} <= found
    assert not {"parse", "parse_loose", "Parser"} & found
    assert {"run", "match", "re"} <= found  # methods, soft keywords and imports are left alone
    assert b"\\N{EM DASH}" in renamed
    assert corpora.rename(SOURCE, names, 0) == SOURCE


def test_keywords_and_string_prefixes_are_never_renamed() -> None:
    source = b'def f(x):\n    return f"{x}" or rb"y"\n\ndef rb():\n    pass\n'
    names = corpora.top_level_names([source, b"def or(x):\n    pass\n"])  # test data has such files
    assert b"f" not in names and b"rb" not in names and b"or" not in names
    ast.parse(corpora.rename(source, names, 1))


def test_build_writes_copies_under_their_own_directories(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "mod.py").write_bytes(SOURCE)
    (source / "pkg" / "data.txt").write_text("Parser is named here too\n")
    (source / "top.py").write_bytes(b"def top():\n    return 1\n")
    (source / "native.so").write_bytes(b"\x7fELF")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"x")

    corpus = corpora.build("t", source, tmp_path / "out", scale=2.5)
    files = sorted(p.relative_to(corpus.root).as_posix() for p in corpus.root.rglob("*") if p.is_file())
    # two whole copies and half of a third: whole top-level entries in sorted order, so all of pkg/
    assert files == ["copy0/pkg/data.txt", "copy0/pkg/mod.py", "copy0/top.py", "copy1/pkg/data.txt",
                     "copy1/pkg/mod.py", "copy1/top.py", "copy2/pkg/data.txt", "copy2/pkg/mod.py"]
    assert corpus.files == 8
    assert corpus.bytes == sum((corpus.root / f).stat().st_size for f in files)
    assert (corpus.root / "copy0/pkg/mod.py").read_bytes() == SOURCE
    copy1 = (corpus.root / "copy1/pkg/mod.py").read_bytes()
    assert b"class Parser_c1:" in copy1 and b"def parse_c1(" in copy1
    assert (corpus.root / "copy1/pkg/data.txt").read_text() == "Parser is named here too\n"  # verbatim
    assert corpora.complete_marker(corpus.root).exists()  # beside the tree: the indexer never sees it
    # a finished tree is reused as it is
    again = corpora.build("t", source, tmp_path / "out", scale=2.5)
    assert (again.files, again.bytes) == (corpus.files, corpus.bytes)


def test_stdlib_replica_copies_parse_where_the_original_does(tmp_path: Path) -> None:
    lib = corpora.stdlib_dir()
    sample = [rel for rel in corpora.base_files(lib) if rel.suffix == ".py" and len(rel.parts) == 1][:40]
    sources = [(lib / rel).read_bytes() for rel in sample]
    names = corpora.top_level_names(sources)
    changed = 0
    for source in sources:
        try:
            ast.parse(source)
        except SyntaxError:
            continue
        renamed = corpora.rename(source, names, 7)
        ast.parse(renamed)
        changed += renamed != source
    assert changed >= len(sources) // 2


# ---- report sections ----------------------------------------------------------------------------------


def test_marker_sections_are_replaced_and_prose_is_kept() -> None:
    document = ("# Benchmarks\n\nHand-written intro.\n\n<!-- bench:scaling -->\n| old | table |\n"
                "<!-- /bench:scaling -->\n\nAnalysis that must survive.\n\n<!-- bench:other -->\nkeep me\n"
                "<!-- /bench:other -->\n")
    out = report.replace_sections(document, {"scaling": ("Scaling", "| new | table |\n")})
    assert "| new | table |" in out and "| old | table |" not in out
    assert "Hand-written intro." in out and "Analysis that must survive." in out
    assert "keep me" in out  # sections with no new data are left alone
    assert report.replace_sections(out, {"scaling": ("Scaling", "| new | table |\n")}) == out  # idempotent


def test_missing_sections_are_appended_with_markers() -> None:
    out = report.replace_sections("# Benchmarks\n\nProse.\n", {"quality": ("Quality", "a table")})
    assert out.startswith("# Benchmarks\n\nProse.\n")
    assert re.search(r"## Quality\n\n<!-- bench:quality -->\na table\n<!-- /bench:quality -->\n$", out)
    again = report.replace_sections(out, {"quality": ("Quality", "another table")})
    assert again.count("<!-- bench:quality -->") == 1 and "another table" in again


def _results() -> dict:
    point = {"corpus": "lib-x1", "files": 10, "source_bytes": 2_000_000, "files_indexed": 9, "chunks": 1000,
             "searchable_s": 1.0, "graph_s": 0.5, "index_s": 1.5, "peak_rss_python_mb": 100.0,
             "rss_added_python_mb": 60.0,
             "peak_rss_postgres_mb": 200.0, "db_bytes_lexical_graph": 6_000_000, "db_ratio_lexical_graph": 3.0,
             "latency": {"lexical": {"p50_ms": 2.0, "p95_ms": 4.0, "n": 5}}}
    bigger = point | {"corpus": "lib-x2", "chunks": 2000, "source_bytes": 4_000_000, "index_s": 3.0,
                      "searchable_s": 2.0, "graph_s": 1.0, "db_bytes_lexical_graph": 12_000_000}
    return {"meta": {"commit": "abc", "date": "2026-11-29 00:17 UTC"},
            "scaling": {"points": [point, bigger], "incremental": []},
            "baselines": {}, "quality": {"CoSQA": {"lode lexical": {"MRR@10": 0.3, "nDCG@10": 0.4, "R@10": 0.5}}}}


def test_render_writes_tables_fits_and_plots(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nKept.\n")
    results = json.loads(json.dumps(_results()))
    report.render(results, doc, tmp_path / "img")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nKept.\n")
    assert "Full index time against chunks: exponent **1.00**" in text  # 1.5 s -> 3.0 s for 2x the chunks
    assert "| lib-x2 | 9 | 4.000 | 2,000 |" in text
    assert "| lode lexical | 0.300 | 0.400 | 0.500 |" in text
    pngs = sorted(p.name for p in (tmp_path / "img").glob("*.png"))
    assert pngs == ["db_size.png", "hnsw_recall.png", "incremental.png", "index_time.png", "peak_rss.png",
                    "query_latency.png"]
    assert all((tmp_path / "img" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert "![index time](./img/index_time.png)" in text


def _target_rows(results: dict) -> dict[str, str]:
    rows = report.targets(results).splitlines()[2:]
    return {row.split(" | ")[0].lstrip("| "): row.split(" | ")[-1].rstrip(" |") for row in rows}


def test_targets_state_met_and_not_met_from_the_figures() -> None:
    results = _results()
    first, second = results["scaling"]["points"]
    first |= {"noop_share": 0.01, "hnsw": {"ef_search": 100, "tuned_ef": 200, "text": {"recall_at_10": 0.96},
                                           "code": {"recall_at_10": 0.99}}}
    second |= {"noop_share": 0.06, "chunks": 100_000,
               "latency": {"lexical": {"p50_ms": 5.0, "p95_ms": 12.0}, "hybrid": {"p50_ms": 9.0, "p95_ms": 25.0}},
               "hnsw": {"ef_search": 100, "tuned_ef": None, "text": {"recall_at_10": 0.90},
                        "code": {"recall_at_10": 0.97}, "sweep": [{"ef_search": 100}, {"ef_search": 800}]}}
    verdicts = _target_rows(results)
    assert verdicts["lexical + graph indexing ≥ 5 MB/s of source (2 cores)"] == "**NOT met**"  # 1.3 MB/s
    assert verdicts["hybrid P95 ≤ 30 ms at 100k chunks (nearest size: 100,000)"] == "**met**"
    assert verdicts["lexical P95 ≤ 10 ms at 100k chunks (100,000)"] == "**NOT met**"
    assert verdicts["HNSW recall@10 ≥ 0.95 at every size, at the engine's ef_search"] == "**NOT met**"  # 0.90
    assert verdicts["HNSW recall@10 ≥ 0.95 at every size, ef_search tuned per size"] == "**NOT met**"  # None
    assert "100,000: ef none ≤ 800" in report.targets(results)
    assert verdicts["no-op re-index ≤ 5 % of a full index at every size (worst)"] == "**NOT met**"  # 6 %
    second |= {"noop_share": 0.04, "hnsw": first["hnsw"]}
    verdicts = _target_rows(results)
    assert verdicts["no-op re-index ≤ 5 % of a full index at every size (worst)"] == "**met**"
    assert verdicts["HNSW recall@10 ≥ 0.95 at every size, ef_search tuned per size"] == "**met**"


def test_bottlenecks_extrapolate_embedding_from_the_largest_embedded_size() -> None:
    points = _results()["scaling"]["points"]
    points[0] |= {"embed_s": 10.0, "embed_chunks_per_s": 100.0}
    rows = report.bottlenecks(points).splitlines()
    assert rows[2].startswith("| lib-x1 | 1,000 |") and "| 10.0 | embedding (measured) |" in rows[2]
    assert "| 20.0 | embedding (extrapolated) |" in rows[3]  # 2,000 chunks at 100 chunks/s
    assert rows[3].endswith("| parse, chunk, write (until searchable) |")


def test_a_resumed_run_keeps_the_sizes_it_has(tmp_path: Path) -> None:
    from bench import suite

    reused = _results()
    reused["scaling"] |= {"incremental": [{"changed_files": 1, "files_indexed": 1, "seconds": 0.5}],
                          "incremental_corpus": "lib-x1"}
    reused["baselines"] = {"corpus": "lib-x1"}
    plan = suite.replace(suite.QUICK, lib_scales=[1, 2])
    results = {"meta": {}, "scaling": {"points": [], "incremental": []}, "baselines": {}, "quality": {}}
    saves = []
    suite.run_scaling(plan, tmp_path, results, lambda: saves.append(1), reused)
    assert results["scaling"]["points"] == reused["scaling"]["points"]  # nothing re-measured
    assert results["scaling"]["incremental"] == reused["scaling"]["incremental"]
    assert results["baselines"] == {"corpus": "lib-x1"} and not saves
    assert not (tmp_path / "corpora").exists()


def test_a_resume_refuses_synthetic_sizes_without_the_embedded_vectors(tmp_path: Path) -> None:
    from bench import suite

    reused = _results()
    reused["scaling"]["points"][0]["vectors_source"] = "real"  # lib-x1 was embedded; lib-x2 is missing
    reused["scaling"]["points"].pop()
    plan = suite.replace(suite.QUICK, lib_scales=[0.01, 0.02], embed_up_to=0.01)
    reused["scaling"]["points"][0]["corpus"] = "lib-x0.01"
    results = {"meta": {}, "scaling": {"points": [], "incremental": []}, "baselines": {}, "quality": {}}
    with pytest.raises(SystemExit, match="lib-x0.02 needs the embedded sizes' vectors"):
        suite.run_scaling(plan, tmp_path, results, lambda: None, reused)


def test_rg_pattern_is_an_or_of_the_query_words() -> None:
    assert rg_pattern("Parse the HTTP header (parse)") == "parse|the|http|header"
    assert rg_pattern("a.b") is None
    assert re.search(rg_pattern("read_file x+y") or "", "def READ_FILE():", re.IGNORECASE)
    assert rg_pattern("os.path join") == "os|path|join"
