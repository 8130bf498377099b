"""Render bench results (the JSON bench/suite.py writes) into docs/benchmarks.md sections and docs/img/*.png.

Generated tables live between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; a rerun replaces only what
is between the markers, so hand-written analysis around them stays. A section the document does not have yet
is appended at the end, under its own heading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.scaling import fit_exponent

SECTION = re.compile(r"(<!-- bench:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /bench:(?P=name) -->)", re.DOTALL)


def replace_sections(document: str, sections: dict[str, tuple[str, str]]) -> str:
    """Replace each marked section's body; append missing ones as `## title` + markers. sections: name ->
    (title, body)."""
    present = set()

    def swap(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in sections:
            return match.group(0)
        present.add(name)
        return match.group(1) + sections[name][1].rstrip("\n") + "\n" + match.group(4)

    out = SECTION.sub(swap, document)
    for name, (title, body) in sections.items():
        if name not in present:
            out = (out.rstrip("\n") + f"\n\n## {title}\n\n<!-- bench:{name} -->\n{body.rstrip()}\n"
                   f"<!-- /bench:{name} -->\n")
    return out


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _fit_line(label: str, xs: list[float], ys: list[float]) -> str:
    fit = fit_exponent(xs, ys)
    if fit is None:
        return f"{label}: too few points to fit.\n"
    return f"{label}: exponent **{fit['exponent']:.2f}** (log-log least squares, R² {fit['r2']:.3f}).\n"


def sections(results: dict[str, Any], img_dir: Path, doc_dir: Path) -> dict[str, tuple[str, str]]:
    meta = results["meta"]
    rel_img = img_dir.relative_to(doc_dir) if img_dir.is_relative_to(doc_dir) else img_dir
    points = results["scaling"]["points"]
    out: dict[str, tuple[str, str]] = {}
    out["run"] = ("Benchmark run (bench/run)", table(["fact", "value"], [[k, v] for k, v in meta.items()]))

    chunks = [p["chunks"] for p in points]
    body = table(
        ["corpus", "files", "source MB", "chunks", "searchable s", "graph s", "full index s", "MB/s",
         "RSS added: python + workers MB", "peak RSS postgres MB", "DB MB", "DB / source"],
        [[p["corpus"], p["files_indexed"], p["source_bytes"] / 1e6, p["chunks"], p["searchable_s"], p["graph_s"],
          p["index_s"], p["source_bytes"] / 1e6 / p["index_s"], p["rss_added_python_mb"], p["peak_rss_postgres_mb"],
          p["db_bytes_lexical_graph"] / 1e6, p["db_ratio_lexical_graph"]] for p in points])
    body += "\n" + _fit_line("Full index time against chunks", chunks, [p["index_s"] for p in points])
    body += _fit_line("Graph resolution time against chunks", chunks, [p["graph_s"] for p in points])
    body += _fit_line("RSS added (python + workers) against chunks", chunks, [p["rss_added_python_mb"] for p in points])
    body += _fit_line("Peak RSS (postgres) against chunks", chunks, [p["peak_rss_postgres_mb"] for p in points])
    body += _fit_line("Database size against source bytes", [p["source_bytes"] for p in points],
                      [p["db_bytes_lexical_graph"] for p in points])
    body += f"\n![index time](./{rel_img}/index_time.png) ![memory](./{rel_img}/peak_rss.png) " \
            f"![database size](./{rel_img}/db_size.png)\n"
    out["scaling-index"] = ("Scaling: full index, memory and database size", body)

    embedded = [p for p in points if "embed_s" in p]
    if embedded:
        body = table(["corpus", "chunks", "embed s", "chunks/s", "RSS added: python MB", "DB MB with vectors",
                      "DB / source"],
                     [[p["corpus"], p["chunks"], p["embed_s"], p["embed_chunks_per_s"], p["rss_added_embed_python_mb"],
                       p["db_bytes_with_vectors"] / 1e6, p["db_ratio_with_vectors"]] for p in embedded])
        body += "\n" + _fit_line("Embedding time against chunks", [p["chunks"] for p in embedded],
                                 [p["embed_s"] for p in embedded])
        out["scaling-embed"] = ("Scaling: + embeddings (smaller sizes only)", body)

    rows = results["scaling"]["incremental"]
    if rows:
        body = table(["changed files", "files re-indexed", "re-index s (graph included)"],
                     [[r["changed_files"], r["files_indexed"], r["seconds"]] for r in rows])
        body += "\n" + _fit_line("Re-index time against changed files", [r["changed_files"] for r in rows],
                                 [r["seconds"] for r in rows])
        body += f"\n![incremental](./{rel_img}/incremental.png)\n"
        out["scaling-incremental"] = (f"Scaling: incremental re-index ({results['scaling']['incremental_corpus']})",
                                      body)

    latency = [p for p in points if "latency" in p]
    body = table(["corpus", "chunks", "vectors"] + [f"{m} P50 / P95 ms" for m in ("lexical", "semantic", "hybrid")],
                 [[p["corpus"], p["chunks"], p.get("vectors_source", "none")]
                  + [f"{p['latency'][m]['p50_ms']:.1f} / {p['latency'][m]['p95_ms']:.1f}" if m in p["latency"] else "–"
                     for m in ("lexical", "semantic", "hybrid")] for p in latency])
    body += "\n"
    for mode in ("lexical", "semantic", "hybrid"):
        have = [p for p in latency if mode in p["latency"]]
        body += _fit_line(f"{mode} P50 against chunks", [p["chunks"] for p in have],
                          [p["latency"][mode]["p50_ms"] for p in have]) if have else ""
    body += ("\nEach query runs once per mode with the query cache off, so semantic and hybrid include embedding "
             "the query. `real` vectors come from the bundled model; `synthetic` ones are real vectors of the "
             "embedded corpus reused with Gaussian noise (σ 0.02), to time vector search at sizes too large to embed "
             "here (HNSW indexes rebuilt once after the load).\n")
    body += f"\n![query latency](./{rel_img}/query_latency.png)\n"
    out["scaling-query"] = ("Scaling: query latency against index size", body)

    base = results.get("baselines", {})
    if base:
        rows = []
        lexical = base["lode_lexical"]
        for name, key in (("ripgrep (OR regex, files with a match)", "ripgrep"),
                          ("bm25s in memory (its tokenizer, top 10)", "bm25s")):
            if key in base:
                rows.append([name, base[key]["p50_ms"], base[key]["p95_ms"], base[key]["p50_ms"] / lexical["p50_ms"]])
        body = (f"On {base['corpus']} ({base['chunks']:,} chunks), the same {lexical['n']} queries.\n\n"
                + table(["system", "P50 ms", "P95 ms", "P50 / Lode lexical P50"],
                        [["Lode lexical", lexical["p50_ms"], lexical["p95_ms"], 1.0], *rows]))
        if "bm25s" in base:
            body += f"\nbm25s index build: {base['bm25s']['build_s']:.1f} s over {base['bm25s']['chunks']:,} chunks.\n"
        if "vectors" in base:
            v = base["vectors"]
            body += (f"\nHNSW (ef_search {v['ef_search']}) against exact numpy cosine over the same "
                     f"{v['vectors']:,} stored vectors ({base['vectors_corpus']}), {v['queries']} queries:\n\n")
            body += table(["leg", "recall@10", "HNSW P50 ms (SQL)", "exact P50 ms (numpy, in memory)",
                           "exact / HNSW time"],
                          [[leg, v[leg]["recall_at_10"], v[leg]["hnsw_p50_ms"], v[leg]["exact_p50_ms"],
                            v[leg]["hnsw_speedup"]] for leg in ("text", "code")])
            body += "\nTarget recall@10 ≥ 0.95: " + ", ".join(
                f"{leg} {'met' if v[leg]['recall_at_10'] >= 0.95 else 'NOT met'}" for leg in ("text", "code")) + ".\n"
        out["baselines"] = ("Side by side: ripgrep, bm25s, exact vector search", body)

    quality = results.get("quality", {})
    if quality:
        body = ""
        for name, rows in quality.items():
            body += f"\n{name}:\n\n" + table(["system", "MRR@10", "nDCG@10", "R@10"],
                                             [[s, m["MRR@10"], m["nDCG@10"], m["R@10"]] for s, m in rows.items()])
        out["quality"] = ("Quality: lexical, semantic and hybrid next to bm25s", body.lstrip("\n"))

    profile = results.get("profile")
    if profile:
        body = (f"pyinstrument over one full index of {profile['corpus']} with one index worker, so parsing, "
                f"chunking, tokenizing, writing and graph resolution all run in the profiled process "
                f"({profile['seconds']:.1f} s under the profiler; the suite's other runs use every core). Share of "
                "the run by function (self time, top entries):\n\n")
        body += table(["function", "self s", "share"], [[f["function"], f["self_s"], f"{100 * f['share']:.1f} %"]
                                                       for f in profile["top"]])
        if profile.get("areas"):
            body += "\nBy area (Lode package, or the library the time is spent in):\n\n"
            body += table(["area", "self s", "share"], [[a["function"], a["self_s"], f"{100 * a['share']:.1f} %"]
                                                        for a in profile["areas"]])
        body += "\nPhase shares at each size (from the scaling table):\n\n"
        body += table(["corpus", "chunks", "parse + write (searchable)", "graph resolution", "embedding"],
                      [[p["corpus"], p["chunks"], f"{100 * p['searchable_s'] / _total(p):.0f} %",
                        f"{100 * p['graph_s'] / _total(p):.0f} %",
                        f"{100 * p['embed_s'] / _total(p):.0f} %" if "embed_s" in p else "not run"] for p in points])
        out["profile"] = ("Where the time goes (profile)", body)
    return out


def _total(point: dict[str, Any]) -> float:
    return point["index_s"] + point.get("embed_s", 0.0)


def plots(results: dict[str, Any], img_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    points = results["scaling"]["points"]
    chunks = [p["chunks"] for p in points]
    written = []

    def save(name: str, xlabel: str, ylabel: str, series: list[tuple[str, list[float], list[float]]]) -> None:
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = [s for s in series if s[1]]
        for label, xs, ys in drawn:
            fit = fit_exponent(xs, ys)
            ax.plot(xs, ys, "o-", label=f"{label} (exp {fit['exponent']:.2f})" if fit else label)
        if not drawn:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if drawn:
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(img_dir / f"{name}.png", dpi=100)
        plt.close(fig)
        written.append(img_dir / f"{name}.png")

    embedded = [p for p in points if "embed_s" in p]
    save("index_time", "chunks", "seconds", [
        ("full index (lexical + graph)", chunks, [p["index_s"] for p in points]),
        ("until searchable", chunks, [p["searchable_s"] for p in points]),
        ("graph resolution", chunks, [p["graph_s"] for p in points]),
        ("+ embeddings", [p["chunks"] for p in embedded], [p["index_s"] + p["embed_s"] for p in embedded])])
    save("peak_rss", "chunks", "peak RSS MB", [
        ("added: python + workers", chunks, [p["rss_added_python_mb"] for p in points]),
        ("postgres", chunks, [p["peak_rss_postgres_mb"] for p in points])])
    save("db_size", "source bytes", "database bytes", [
        ("lexical + graph", [p["source_bytes"] for p in points], [p["db_bytes_lexical_graph"] for p in points]),
        ("with vectors", [p["source_bytes"] for p in embedded], [p["db_bytes_with_vectors"] for p in embedded])])
    rows = results["scaling"]["incremental"]
    save("incremental", "changed files", "re-index seconds",
         [("re-index", [r["changed_files"] for r in rows], [r["seconds"] for r in rows])])
    latency = [p for p in points if "latency" in p]
    series = []
    for mode in ("lexical", "semantic", "hybrid"):
        have = [p for p in latency if mode in p["latency"]]
        series.append((f"{mode} P50", [p["chunks"] for p in have], [p["latency"][mode]["p50_ms"] for p in have]))
        series.append((f"{mode} P95", [p["chunks"] for p in have], [p["latency"][mode]["p95_ms"] for p in have]))
    save("query_latency", "chunks", "ms", series)
    return written


def render(results: dict[str, Any], doc: Path, img_dir: Path) -> None:
    existing = doc.read_text() if doc.exists() else "# Benchmarks\n"
    plots(results, img_dir)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(replace_sections(existing, sections(results, img_dir.resolve(), doc.parent.resolve())))
