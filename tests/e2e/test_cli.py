"""The `lode` command in real processes: JSON contracts, exit codes, hostile input end to end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from lode.engine import Lode
from tests.support.trees import base_tree, write_tree

SEARCH_HIT_KEYS = {"repo", "path", "start_line", "end_line", "kind", "name", "name_path", "language", "score",
                   "legs", "snippet"} | {"highlights", "snippet_line"}  # the contract's, extended additively (issue 19)


def test_index_and_search_json_contracts(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, base_tree())
    code, report, _ = run_cli("index", str(tmp_path), "--repo", repo_name, "--json")
    assert code == 0
    assert {"repo", "files_indexed", "files_unchanged", "files_deleted", "files_skipped", "chunks", "seconds",
            "embeddings"} <= report.keys()
    assert report["repo"] == repo_name and report["files_indexed"] == 5
    assert report["embeddings"].keys() == {"done", "pending", "failed"}

    code, result, _ = run_cli("search", "register hook", "--repo", repo_name, "--mode", "lexical", "-k", "3",
                              "--json")
    assert code == 0 and result["mode"] == "lexical" and result["query"] == "register hook"
    assert result["degraded"] == [] and 1 <= len(result["hits"]) <= 3
    hit = result["hits"][0]
    assert hit.keys() == SEARCH_HIT_KEYS
    assert hit["path"] == "tiny/models.py" and hit["legs"]["lexical"] == 1
    assert {leg: hit["legs"][leg] for leg in ("text", "code")} == {"text": None, "code": None}
    assert hit["legs"].keys() == {"lexical", "text", "code", "fused", "priors"}  # extended: the ranking stage

    code, result, _ = run_cli("search", "register hook", "--repo", repo_name, "--json")
    assert code == 0 and result["mode"] == "hybrid" and result["degraded"] == ["text", "code"]

    code, result, _ = run_cli("symbols", "Request.register_hook", "--json")
    assert code == 0 and any(s["repo"] == repo_name for s in result["symbols"])

    code, result, _ = run_cli("repos", "--json")
    assert code == 0 and repo_name in {r["repo"] for r in result["repos"]}

    code, result, _ = run_cli("status", "--repo", repo_name, "--json")
    assert code == 0 and result["repos"][0]["files"] == 5 and result["repos"][0]["last_run"]["status"] == "done"

    code, result, _ = run_cli("repos", "rm", repo_name, "--json")
    assert code == 0 and result == {"removed": repo_name}
    code, _, stderr = run_cli("status", "--repo", repo_name, "--json")
    assert code == 2 and "no repository" in stderr


@pytest.mark.parametrize("make_path, message", [
    (lambda tmp: tmp / "does-not-exist", "no such directory"),
    (lambda tmp: (tmp / "file.py").write_text("x = 1\n") and tmp / "file.py", "not a directory"),
])
def test_bad_paths_exit_2_with_one_line(tmp_path: Path, lode: Lode, make_path, message: str) -> None:
    path = make_path(tmp_path)
    code, _, stderr = run_cli("index", str(path))
    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["search", "   "], "empty"),
    (["search", "x", "-k", "0"], "-k"),
    (["search", "x", "--mode", "fuzzy"], "--mode"),
    (["search", "x", "--repo", "nope-not-here"], "no repository"),
    (["index", ".", "--repo", "bad name/.."], "invalid repository name"),
])
def test_bad_input_exit_2(lode: Lode, args: list[str], message: str) -> None:
    code, _, stderr = run_cli(*args)
    assert code == 2 and message in stderr


def test_hostile_corpus_end_to_end(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    (root / "ok.py").write_text("def fine():\n    return 1\n")
    (root / ".env").write_text("AWS_SECRET_ACCESS_KEY=hunter2supersecret\n")
    (root / "server.pem").write_text("-----BEGIN PRIVATE KEY-----\nhunter2pem\n")
    (root / "passwd_link").symlink_to("/etc/passwd")
    (root / "loop_a").symlink_to(root / "loop_b")
    (root / "loop_b").symlink_to(root / "loop_a")
    (root / "dangling").symlink_to(root / "missing")
    os.mkfifo(root / "pipe")
    (root / "blob.bin").write_bytes(b"\x7fELF\x00\x00binary")
    (root / "empty.py").write_text("")
    (root / "bad.py").write_bytes(b"x = '\xff\xfe\xfa'\n")
    (root / "utf16.py").write_bytes("def wide():\n    return 'utf16'\n".encode("utf-16"))
    (root / "min.js").write_text("var a=1;" * 5000)
    with open(root / "huge.py", "wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    (root / os.fsdecode(b"bad\xffname.py")).write_text("x = 1\n")

    code, report, _ = run_cli("index", str(root), "--repo", repo_name, "--json", timeout=60)
    assert code == 0
    assert report["files_indexed"] == 2  # ok.py and the UTF-16 file

    code, status, _ = run_cli("status", "--repo", repo_name, "--skipped", "--json")
    reasons = {item["path"]: item["reason"] for item in status["repos"][0]["skipped_files"]}
    assert reasons == {
        ".env": "secret", "server.pem": "secret", "passwd_link": "symlink_outside_root",
        "loop_a": "symlink_loop", "loop_b": "symlink_loop", "dangling": "symlink_broken", "pipe": "not_regular",
        "blob.bin": "binary", "empty.py": "empty", "bad.py": "undecodable", "min.js": "minified",
        "huge.py": "too_large", "bad\ufffdname.py": "bad_filename",
    }
    with lode.db.connection() as conn:
        leaked = conn.execute(
            "SELECT count(*) FROM chunks WHERE content LIKE '%%hunter2%%' OR content LIKE '%%root:x:0:0%%'"
        ).fetchone()[0]
        terms = conn.execute("SELECT count(*) FROM postings WHERE term IN ('hunter2supersecret', 'hunter2pem')"
                             ).fetchone()[0]
    assert leaked == 0 and terms == 0
    hits = lode.search.query("wide utf16", repo=repo_name, mode="lexical")["hits"]
    assert hits and hits[0]["path"] == "utf16.py"


def test_graph_commands(lode: Lode, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/b.py": "def helper(x):\n    return x\n\n\ndef run():\n    return 0\n",
        "pkg/a.py": "from .b import helper\n\n\nclass A:\n    def run(self):\n        return helper(self.go())\n\n"
                    "    def go(self):\n        return 1\n",
    })
    assert run_cli("index", str(tmp_path), "--repo", repo_name, "--json")[0] == 0
    code, callers, _ = run_cli("graph", "callers", "helper", "--repo", repo_name, "--json")
    assert code == 0 and callers["symbol"]["name_path"] == "pkg.b.helper"
    assert [(h["name_path"], h["evidence"]) for h in callers["results"]] == [("pkg.a.A.run", "pkg/a.py:6")]
    code, callees, _ = run_cli("graph", "callees", "pkg.a.A.run", "--repo", repo_name, "--depth", "2", "--json")
    assert code == 0 and {h["name_path"] for h in callees["results"]} == {"pkg.a.A.go", "pkg.b.helper"}
    code, found, _ = run_cli("graph", "path", "A.run", "helper", "--repo", repo_name, "--json")
    assert code == 0 and found["found"] and [h["name_path"] for h in found["path"]] == ["pkg.b.helper"]
    code, _, stderr = run_cli("graph", "callers", "run", "--repo", repo_name)
    assert code == 2 and "ambiguous" in stderr and "pkg.b.run" in stderr and "pkg.a.A.run" in stderr
    code, _, stderr = run_cli("graph", "callers", "helper", "--repo", repo_name, "--depth", "11")
    assert code == 2
    code, mermaid, _ = run_cli("graph", "export", "--repo", repo_name, "--format", "mermaid")
    assert code == 0 and mermaid.startswith("flowchart") and "pkg.b.helper" in mermaid
    code, result, _ = run_cli("search", "helper", "--repo", repo_name, "--mode", "lexical", "--expand", "--json")
    top = next(h for h in result["hits"] if h["name_path"] == "pkg.b.helper")
    assert [c["name_path"] for c in top["callers"]] == ["pkg.a.A.run"]


@pytest.mark.parametrize(("variable", "value", "says"), [
    ("LODE_EF_SEARCH", "abc", "should be 'auto' or"),
    ("LODE_TIMEOUT_PARSE", "0", "greater than 0"),
    ("LODE_TIMEOUT_DB_QUERY", "soon", "valid number"),
    ("LODE_INDEX_WORKERS", "-3", "greater than or equal to 1"),
    ("LODE_QUEUE_STALL_SECONDS", "0", "greater than or equal to 1"),
    ("LODE_EMBEDDER", "gpu", "'local', 'static', 'http' or 'none'"),
])
def test_an_invalid_setting_is_one_clear_line_and_exit_2(variable: str, value: str, says: str) -> None:
    code, payload, stderr = run_cli("status", "--json", env={variable: value})
    assert code == 2, stderr
    assert payload["error"]["exit_code"] == 2 and payload["error"]["message"].startswith("invalid setting: ")
    assert stderr.startswith(f"lode: error: invalid setting: {variable}={value!r}: ") and says in stderr, stderr
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1
