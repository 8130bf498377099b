"""Render bench results (the JSON bench/suite.py writes) into docs/benchmarks.md sections and docs/img/*.png.

Generated tables live between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`; a rerun replaces only what
is between the markers, so hand-written analysis around them stays. A section the document does not have yet
is appended at the end, under its own heading.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.scaling import fit_exponent
from lode.config import Settings

INLINE_FILES = Settings.model_fields["graph_inline_files"].default  # a run over more defers its graph resolution
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
    out["targets"] = ("Targets", targets(results))

    body = table(
        ["corpus", "files", "source MB", "chunks", "searchable s", "graph s", "full index s", "MB/s",
         "no-op re-index s", "no-op / full", "RSS added: python + workers MB", "PSS added: python + workers MB",
         "peak RSS postgres MB", "DB MB",
         "DB / source", "load avg at start"],
        [[p["corpus"], p["files_indexed"], p["source_bytes"] / 1e6, p["chunks"], p["searchable_s"], p["graph_s"],
          p["index_s"], p["source_bytes"] / 1e6 / p["index_s"], p.get("noop_s"),
          f"{100 * p['noop_share']:.2f} %" if "noop_share" in p else None, p["rss_added_python_mb"],
          p.get("pss_added_python_mb"), p["peak_rss_postgres_mb"], p["db_bytes_lexical_graph"] / 1e6,
          p["db_ratio_lexical_graph"],
          p.get("load_average_at_start")] for p in points])
    body += ("\nMB/s is source bytes (every file of the tree Lode reads) over the full index, graph included. The "
             "machine is shared with other work: the load average column says how busy it was when each size "
             "started.\n")
    curve = [p for p in points if _replica(p)]
    body += ("\nFits over the Lib/ replicas (one tree's content at every size; the plots show other corpora as "
             "squares off the line):\n\n")
    body += _fit_line("Full index time against chunks", [p["chunks"] for p in curve], [p["index_s"] for p in curve])
    deferred = [p for p in curve if p["files_indexed"] > INLINE_FILES]
    body += _fit_line(f"Graph resolution time against chunks (runs over {INLINE_FILES} files; smaller ones resolve "
                      "inline, inside searchable s)", [p["chunks"] for p in deferred], [p["graph_s"] for p in deferred])
    body += _fit_line("RSS added (python + workers) against chunks", [p["chunks"] for p in curve],
                      [p["rss_added_python_mb"] for p in curve])
    if all("pss_added_python_mb" in p for p in curve):  # runs from before PSS was sampled have none
        body += _fit_line("PSS added (python + workers: shared pages once) against chunks",
                          [p["chunks"] for p in curve], [p["pss_added_python_mb"] for p in curve])
    body += _fit_line("Peak RSS (postgres) against chunks", [p["chunks"] for p in curve],
                      [p["peak_rss_postgres_mb"] for p in curve])
    body += _fit_line("Database size against source bytes", [p["source_bytes"] for p in curve],
                      [p["db_bytes_lexical_graph"] for p in curve])
    body += (f"\n![index time](./{rel_img}/index_time.png) ![memory](./{rel_img}/peak_rss.png) "
             f"![database size](./{rel_img}/db_size.png)\n")
    out["scaling-index"] = ("Scaling: full index, memory and database size", body)

    embedded = [p for p in points if "embed_s" in p]
    if embedded:
        body = table(["corpus", "chunks", "full index s", "embed s", "index + embeddings s", "chunks/s embedded",
                      "RSS added by embedding: python MB", "DB MB with vectors", "DB / source"],
                     [[p["corpus"], p["chunks"], p["index_s"], p["embed_s"], p["index_s"] + p["embed_s"],
                       p["embed_chunks_per_s"], p["rss_added_embed_python_mb"], p["db_bytes_with_vectors"] / 1e6,
                       p["db_ratio_with_vectors"]] for p in embedded])
        body += "\n" + _fit_line("Index + embeddings time against chunks", [p["chunks"] for p in embedded],
                                 [p["index_s"] + p["embed_s"] for p in embedded])
        body += ("\nThe first embedded size also pays for loading the model into the process (its RSS and its "
                 "time), which flattens the exponent; the embedding rate of the largest embedded size is the one "
                 "to extrapolate from (see the bottleneck table).\n")
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
        have = [p for p in latency if mode in p["latency"] and _replica(p)]
        body += _fit_line(f"{mode} P50 against chunks (Lib/ replicas)", [p["chunks"] for p in have],
                          [p["latency"][mode]["p50_ms"] for p in have]) if have else ""
    body += ("\nEach query runs once per mode with the query cache off, so semantic and hybrid include embedding "
             "the query. `real` vectors come from the bundled model; `synthetic` ones are made from the largest "
             "embedded corpus's "
             "real vectors (each real vector moved a random 0–50 % of the way towards another, normalised; "
             "`bench/scaling.py` says why not noisy copies or a Gaussian), to time vector search at sizes too large to "
             "embed here (HNSW indexes rebuilt once after the load, then ANALYZE).\n")
    body += f"\n![query latency](./{rel_img}/query_latency.png)\n"
    out["scaling-query"] = ("Scaling: query latency against index size", body)

    swept = [p for p in points if "hnsw" in p]
    if swept:
        body = ("Every size with vectors: HNSW recall@10 against exact numpy cosine over the same stored vectors "
                f"({swept[0]['hnsw']['queries']} sampled queries, both legs), "
                "at the ef_search the engine uses at that size "
                "and at the smallest ef_search tried "
                f"({', '.join(str(r['ef_search']) for r in swept[0]['hnsw']['sweep'])}) that holds recall@10 ≥ 0.95 "
                "on both legs.\n\n")
        rows = []
        for p in swept:
            h = p["hnsw"]
            tuned = next((r for r in h["sweep"] if r["ef_search"] == h["tuned_ef"]), None)
            rows.append([p["corpus"], p["chunks"], p["vectors_source"], "yes" if h.get("uses_hnsw_index") else "NO",
                         h["ef_search"], f"{h['text']['recall_at_10']:.3f} / {h['code']['recall_at_10']:.3f}",
                         h["tuned_ef"] if tuned else _none_held(p),
                         f"{tuned['text']['recall_at_10']:.3f} / {tuned['code']['recall_at_10']:.3f}" if tuned else "–",
                         f"{tuned['text']['hnsw_p50_ms']:.1f} / {tuned['code']['hnsw_p50_ms']:.1f}" if tuned else "–",
                         f"{h['text']['exact_p50_ms']:.1f} / {h['code']['exact_p50_ms']:.1f}",
                         f"{tuned['text']['hnsw_speedup']:.1f} / {tuned['code']['hnsw_speedup']:.1f}" if tuned else "–",
                         f"{h['text']['hnsw_speedup']:.1f} / {h['code']['hnsw_speedup']:.1f}"])
        body += table(["corpus", "chunks", "vectors", "plan uses HNSW", "engine's ef_search",
                       "recall@10 there (text / code)", "ef_search holding 0.95", "recall@10 there",
                       "HNSW P50 ms there", "exact numpy P50 ms", "exact / HNSW time there",
                       "exact / HNSW time at the engine's ef"], rows)
        body += ("\nExact search is one single-threaded numpy matrix-vector product over vectors already in memory; "
                 "HNSW is Lode's SQL query, round trip included.\n")
        body += "\nThe whole sweep (recall@10 text / code, HNSW P50 ms text / code):\n\n"
        efs = [r["ef_search"] for r in swept[0]["hnsw"]["sweep"]]
        body += table(["corpus"] + [f"ef {ef}" for ef in efs],
                      [[p["corpus"]] + [f"{r['text']['recall_at_10']:.3f} / {r['code']['recall_at_10']:.3f} "
                                        f"({r['text']['hnsw_p50_ms']:.1f} / {r['code']['hnsw_p50_ms']:.1f} ms)"
                                        for r in p["hnsw"]["sweep"]] for p in swept])
        body += f"\n![recall against ef_search](./{rel_img}/hnsw_recall.png)\n"
        out["hnsw"] = ("Vector search: HNSW recall and ef_search against index size", body)

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
    if points:
        out["bottlenecks"] = ("The bottleneck at each size", bottlenecks(points))
    return out


def bottlenecks(points: list[dict[str, Any]]) -> str:
    """Each size's phases in seconds and per 1,000 chunks, and the largest one. Sizes not embedded show what the
    largest embedded size's rate (chunks/s) would take, marked as extrapolated."""
    embedded = [p for p in points if "embed_s" in p]
    rate = embedded[-1]["embed_chunks_per_s"] if embedded else None
    rows = []
    for p in points:
        phases = {"parse, chunk, write (until searchable)": p["searchable_s"], "graph resolution": p["graph_s"]}
        if "embed_s" in p:
            phases["embedding (measured)"] = p["embed_s"]
        elif rate:
            phases["embedding (extrapolated)"] = p["chunks"] / rate
        if "hnsw_build_s" in p:
            phases["HNSW build (bulk, 2 legs)"] = p["hnsw_build_s"]
        largest = max(phases, key=lambda name: phases[name])
        without = {k: v for k, v in phases.items() if not k.startswith("embedding")}
        rows.append([p["corpus"], p["chunks"], p["searchable_s"], 1000 * p["searchable_s"] / p["chunks"],
                     p["graph_s"], 1000 * p["graph_s"] / p["chunks"], p.get("hnsw_build_s"),
                     phases.get("embedding (measured)", phases.get("embedding (extrapolated)")), largest,
                     max(without, key=lambda name: without[name])])
    body = table(["corpus", "chunks", "searchable s", "s per 1k chunks", "graph s", "s per 1k chunks",
                  "HNSW build s", "embedding s", "largest phase", "largest without embeddings"], rows)
    if rate:
        body += (f"\nEmbedding s above {embedded[-1]['corpus']} is extrapolated from its measured "
                 f"{rate:.1f} chunks/s (two views a chunk); it was not run at those sizes.\n")
    return body


def _none_held(point: dict[str, Any]) -> str:
    return f"none ≤ {point['hnsw']['sweep'][-1]['ef_search']}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def targets(results: dict[str, Any]) -> str:
    """Issue #8's targets against this run's figures, one row each, met or not."""
    points = results["scaling"]["points"]
    rows = []
    if points:
        speeds = [(p["source_bytes"] / 1e6 / p["index_s"], p["corpus"]) for p in points]
        rows.append(["lexical + graph indexing ≥ 5 MB/s of source (2 cores)",
                     ", ".join(f"{c} {v:.2f}" for v, c in speeds) + " MB/s",
                     _verdict(all(v >= 5 for v, _ in speeds))])
        replicas = [p for p in points if p["corpus"].startswith("lib-")]  # one tree's content, N times
        for label, have in (("every size", points), ("the Lib/ replicas", replicas)):
            fit = fit_exponent([p["chunks"] for p in have], [p["index_s"] for p in have])
            if fit:
                rows.append([f"full-index time exponent ≤ 1.1 (time against chunks, {label})",
                             f"{fit['exponent']:.3f} (R² {fit['r2']:.3f})", _verdict(fit["exponent"] <= 1.1)])
        hybrid = [p for p in points if "hybrid" in p.get("latency", {})]
        if hybrid:
            near = min(hybrid, key=lambda p: abs(p["chunks"] - 100_000))
            p95 = near["latency"]["hybrid"]["p95_ms"]
            rows.append([f"hybrid P95 ≤ 30 ms at 100k chunks (nearest size: {near['chunks']:,})", f"{p95:.1f} ms",
                         _verdict(p95 <= 30)])
        near = min(points, key=lambda p: abs(p["chunks"] - 100_000))
        p95 = near["latency"]["lexical"]["p95_ms"]
        rows.append([f"lexical P95 ≤ 10 ms at 100k chunks ({near['chunks']:,})", f"{p95:.1f} ms", _verdict(p95 <= 10)])
        worst = max(points, key=lambda p: p["latency"]["lexical"]["p95_ms"])
        p95 = worst["latency"]["lexical"]["p95_ms"]
        rows.append(["lexical P95 ≤ 10 ms at every size (worst)", f"{p95:.1f} ms at {worst['chunks']:,} chunks",
                     _verdict(p95 <= 10)])
        swept = [p for p in points if "hnsw" in p]
        if swept:
            recalls = [(min(p["hnsw"][leg]["recall_at_10"] for leg in ("text", "code")), p) for p in swept]
            rows.append(["HNSW recall@10 ≥ 0.95 at every size, at the engine's ef_search",
                         ", ".join(f"{p['chunks']:,} (ef {p['hnsw']['ef_search']}): {r:.3f}" for r, p in recalls)
                         + " (worse leg)",
                         _verdict(all(r >= 0.95 for r, _ in recalls))])
            rows.append(["HNSW recall@10 ≥ 0.95 at every size, ef_search tuned per size",
                         ", ".join(f"{p['chunks']:,}: ef {p['hnsw']['tuned_ef'] or _none_held(p)}" for p in swept),
                         _verdict(all(p["hnsw"]["tuned_ef"] is not None for p in swept))])
        noop = [p for p in points if "noop_share" in p]
        if noop:
            worst = max(noop, key=lambda p: p["noop_share"])
            rows.append(["no-op re-index ≤ 5 % of a full index at every size (worst)",
                         f"{100 * worst['noop_share']:.2f} % at {worst['chunks']:,} chunks",
                         _verdict(all(p["noop_share"] <= 0.05 for p in noop))])
    base = results.get("baselines", {})
    if "ripgrep" in base:
        ratio = base["ripgrep"]["p50_ms"] / base["lode_lexical"]["p50_ms"]
        rows.append([f"(ratio) ripgrep P50 / Lode lexical P50 on {base['corpus']}", f"{ratio:.2f}", "reported"])
    return table(["target (issue #8)", "this run", "verdict"], rows)


def _replica(point: dict[str, Any]) -> bool:
    """A size of the Lib/ replica curve (one tree's content N times), as against another corpus; rows without a
    corpus (incremental re-index counts) are one curve."""
    return point.get("corpus", "lib-").startswith("lib-")


def _total(point: dict[str, Any]) -> float:
    return point["index_s"] + point.get("embed_s", 0.0)


def plots(results: dict[str, Any], img_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    points = results["scaling"]["points"]
    written = []
    Series = tuple[str, list[dict[str, Any]], Callable[[dict[str, Any]], float], Callable[[dict[str, Any]], float]]

    def save(name: str, xlabel: str, ylabel: str, series: list[Series]) -> None:
        """Each series (label, points, x of a point, y of a point) is a line over the Lib/ replicas, with its
        fitted exponent; other corpora (site-packages) are unconnected squares of the same colour."""
        fig, ax = plt.subplots(figsize=(6, 4))
        drawn = [s for s in series if s[1]]
        for label, have, fx, fy in drawn:
            line = sorted((fx(p), fy(p)) for p in have if _replica(p))
            fit = fit_exponent([x for x, _ in line], [y for _, y in line])
            (handle,) = ax.plot([x for x, _ in line], [y for _, y in line], "o-",
                                label=f"{label} (exp {fit['exponent']:.2f})" if fit else label)
            others = [p for p in have if not _replica(p)]
            if others:
                ax.plot([fx(p) for p in others], [fy(p) for p in others], "s", color=handle.get_color())
        if not drawn:
            ax.text(0.5, 0.5, "not measured in this run", ha="center", transform=ax.transAxes)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if drawn:
            if any(not _replica(p) for s in drawn for p in s[1]):
                ax.plot([], [], "s", color="grey", label="squares: site-packages")
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(img_dir / f"{name}.png", dpi=100)
        plt.close(fig)
        written.append(img_dir / f"{name}.png")

    def chunks(p: dict[str, Any]) -> float:
        return p["chunks"]

    def source(p: dict[str, Any]) -> float:
        return p["source_bytes"]

    embedded = [p for p in points if "embed_s" in p]
    deferred = [p for p in points if p["files_indexed"] > INLINE_FILES]
    save("index_time", "chunks", "seconds", [
        ("full index (lexical + graph)", points, chunks, lambda p: p["index_s"]),
        ("until searchable", points, chunks, lambda p: p["searchable_s"]),
        (f"graph resolution (runs over {INLINE_FILES} files)", deferred, chunks, lambda p: p["graph_s"]),
        ("+ embeddings", embedded, chunks, lambda p: p["index_s"] + p["embed_s"])])
    save("peak_rss", "chunks", "peak RSS MB", [
        ("added: python + workers", points, chunks, lambda p: p["rss_added_python_mb"]),
        ("postgres", points, chunks, lambda p: p["peak_rss_postgres_mb"])])
    save("db_size", "source bytes", "database bytes", [
        ("lexical + graph", points, source, lambda p: p["db_bytes_lexical_graph"]),
        ("with vectors", embedded, source, lambda p: p["db_bytes_with_vectors"])])
    rows = results["scaling"]["incremental"]
    save("incremental", "changed files", "re-index seconds",
         [("re-index", rows, lambda r: r["changed_files"], lambda r: r["seconds"])])
    series: list[Series] = []
    for mode in ("lexical", "semantic", "hybrid"):
        have = [p for p in points if mode in p.get("latency", {})]
        for pct in ("p50", "p95"):
            series.append((f"{mode} {pct.upper()}", have, chunks,
                           lambda p, mode=mode, pct=pct: p["latency"][mode][f"{pct}_ms"]))
    save("query_latency", "chunks", "ms", series)
    swept = [p for p in points if "hnsw" in p]
    fig, ax = plt.subplots(figsize=(6, 4))
    for p in swept:
        sweep = p["hnsw"]["sweep"]
        ax.plot([r["ef_search"] for r in sweep], [min(r["text"]["recall_at_10"], r["code"]["recall_at_10"])
                                                  for r in sweep], "o-", label=f"{p['chunks']:,} chunks")
    ax.axhline(0.95, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    if swept:
        efs = [r["ef_search"] for r in swept[0]["hnsw"]["sweep"]]
        ax.set_xticks(efs, [str(ef) for ef in efs])
        ax.minorticks_off()
    ax.set_xlabel("hnsw.ef_search")
    ax.set_ylabel("recall@10, worse leg")
    ax.grid(True, which="both", alpha=0.3)
    if swept:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(img_dir / "hnsw_recall.png", dpi=100)
    plt.close(fig)
    written.append(img_dir / "hnsw_recall.png")
    return written


def render(results: dict[str, Any], doc: Path, img_dir: Path) -> None:
    existing = doc.read_text() if doc.exists() else "# Benchmarks\n"
    plots(results, img_dir)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(replace_sections(existing, sections(results, img_dir.resolve(), doc.parent.resolve())))
