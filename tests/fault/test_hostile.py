"""The hostile corpus, extended (issue #7, item 5): every kind of bad file gets its exact skip reason or fallback,
read back through `lode status --skipped --json` and the chunks table; nothing hangs (pytest-timeout) or crashes.

tests/e2e/test_cli.py keeps the original 13-kind corpus end to end; this one adds the rest.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.snapshot import index_snapshot
from tests.support.cli import run_cli
from lode.config import Settings, Timeouts
from lode.discover import discover
from lode.engine import Lode
from lode.model import Candidate, Skipped, SkipReason

MB = 1024 * 1024
PARSE_TIMEOUT = 0.3  # every file but the deep one parses in < 0.1 s; that one takes 0.15-1.5 s, by machine load


@dataclass(frozen=True)
class Skip:
    reason: str
    detail: str  # exact, or a prefix when it ends with "…"


@dataclass(frozen=True)
class Indexed:
    fallback: str | None = None
    min_chunks: int = 1
    also: tuple[str | None, ...] = ()  # other acceptable fallbacks, where the outcome depends on timing


ABSENT = "absent"  # not listed at all: ignored by .gitignore, inside a submodule, or deleted from a tracked tree


def _deep_nesting() -> str:
    return "x = " + "(\n" * 200_000 + "1" + ")\n" * 200_000  # 800 KB, lines short: the parser meets it


def build_corpus(root: Path) -> dict[str, object]:
    """Write one file of each hostile kind under root; return what each path must become."""
    root.mkdir()
    expect: dict[str, object] = {}

    def put(rel: str, data: bytes | str, outcome: object) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
        expect[rel] = outcome

    put("ok.py", "def fine():\n    return 1\n", Indexed())
    put("nul.py", b"x = 1\x00\ny = 2\n", Skip("binary", "contains NUL bytes"))
    put("latin1.py", "s = 'café'\n".encode("latin-1"), Skip("undecodable", "invalid UTF-8 at byte 8"))
    put("utf16_bom.py", "def wide():\n    return 'utf16'\n".encode("utf-16"), Indexed())
    put("utf16_nobom.py", "def wide():\n    return 1\n".encode("utf-16-le"), Skip("binary", "contains NUL bytes"))
    put("utf32.py", "def w():\n    pass\n".encode("utf-32"), Skip("binary", "contains NUL characters"))
    os.mkfifo(root / "pipe.py")
    expect["pipe.py"] = Skip("not_regular", "FIFO")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "server.sock"))
    expect["server.sock"] = Skip("not_regular", "socket")
    (root / "loop_a.py").symlink_to(root / "loop_b.py")
    (root / "loop_b.py").symlink_to(root / "loop_a.py")
    expect |= {"loop_a.py": Skip("symlink_loop", "symlink loop"), "loop_b.py": Skip("symlink_loop", "symlink loop")}
    (root / "broken.py").symlink_to(root / "missing.py")
    expect["broken.py"] = Skip("symlink_broken", "target: No such file or directory")
    (root / "outside.py").symlink_to("/etc/hostname")
    expect["outside.py"] = Skip("symlink_outside_root", "-> /etc/hostname")
    (root / "inside.py").symlink_to(root / "ok.py")
    expect["inside.py"] = Skip("symlink_inside_root", "-> ok.py")
    put("empty.py", b"", Skip("empty", "0 bytes"))
    put("blank.py", " \n\t\n\n   ", Indexed(min_chunks=0))  # stored, nothing to search
    put("crlf.py", "def windows():\r\n    return 1\r\n\r\ndef two():\r\n    return 2\r\n", Indexed(min_chunks=2))
    # tree-sitter-python ends lines at \n only: classic-Mac line ends do not parse, the file gets line windows
    put("lone_cr.py", "def mac():\r    return 1\r\rdef two():\r    return 2\r", Indexed(fallback="parse_error"))
    put("/".join(["deep"] * 120) + "/nested.py", "def deep():\n    return 1\n", Indexed())
    put("n" * 252 + ".py", "def long_name():\n    return 1\n", Indexed())
    put("new\nline.py", "def newline_name():\n    return 1\n", Indexed())
    (root / os.fsdecode(b"bad\xffname.py")).write_text("x = 1\n")
    expect["bad\ufffdname.py"] = Skip("bad_filename", "file name is not valid UTF-8")
    put(".env.production", "AWS_SECRET_ACCESS_KEY=hunter2\n", Skip("secret", "name matches .env*"))
    put("id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\nhunter2\n", Skip("secret", "name matches id_rsa*"))
    put("bundle.min.js", "var a=1;", Skip("generated", "name matches *.min.js"))
    put("bundle.js", "var a=1;" * 5000, Skip("minified", "a line of 40,000 characters > 1,000"))
    put("tiny_functions.py", "".join(f"def f{i}(): return {i}\n" for i in range(5000)), Indexed(min_chunks=10))
    put("bom_shebang.py", "\ufeff#!/usr/bin/env python3\ndef shebang():\n    return 1\n", Indexed())
    put("mixed_tabs.py", "def mixed():\n\tif True:\n        return 1\n\treturn 2\n", Indexed())
    put("unterminated.py", 'def broken():\n    return "never closed\n', Indexed(fallback="parse_error"))
    put("unterminated.js", "function f() {\n  return `open template\n", Indexed(fallback="parse_error"))
    put("elf.py", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, Skip("binary", "contains NUL bytes"))
    put("deep_nesting.py", _deep_nesting(), Indexed(fallback="parse_timeout", min_chunks=100, also=(None,)))
    with open(root / "sparse.py", "wb") as fh:
        fh.truncate(100 * MB)
    expect["sparse.py"] = Skip("too_large", f"{100 * MB:,} bytes > {MB:,}")
    put("one_line.js", "x" * (3 * MB), Skip("too_large", f"{3 * MB:,} bytes > {MB:,}"))
    put("no_extension", "plain text without a known language\n", Indexed(fallback="unsupported_language"))
    put(".gitignore", "ignored.py\nbuild/\n", Indexed(fallback="unsupported_language"))
    put("ignored.py", "def ignored():\n    return 1\n", ABSENT)
    put("build/out.py", "def built():\n    return 1\n", ABSENT)
    put("vanish.py", "def vanish():\n    return 1\n", Skip("vanished", "deleted before reading"))
    put("growing.py", "def grow_0():\n    return 0\n", Indexed())
    return expect


class Grower(threading.Thread):
    """Appends functions to a file while the index run reads it (bounded in size and time)."""

    def __init__(self, path: Path, limit: int = 200_000) -> None:
        super().__init__(daemon=True)
        self.path, self.limit, self.stop = path, limit, threading.Event()

    def run(self) -> None:
        n = 1
        while not self.stop.wait(0.001) and self.path.stat().st_size < self.limit:
            with open(self.path, "a") as fh:
                fh.write(f"\ndef grow_{n}():\n    return {n}\n")
            n += 1


def _chunks_by_path(lode: Lode, repo: str) -> dict[str, tuple[str | None, list[str]]]:
    with lode.db.connection() as conn:
        files = dict(conn.execute("SELECT f.path, f.fallback FROM files f JOIN repositories r ON r.id = f.repo_id "
                                  "WHERE r.name = %s", (repo,)).fetchall())
        chunks: dict[str, list[str]] = {}
        for path, content in conn.execute(
            "SELECT c.path, c.content FROM chunks c JOIN repositories r ON r.id = c.repo_id WHERE r.name = %s "
            "ORDER BY c.path, c.start_byte", (repo,)
        ):
            chunks.setdefault(path, []).append(content)
    return {path: (fallback, chunks.get(path, [])) for path, fallback in files.items()}


def _skipped_via_cli(repo: str) -> dict[str, tuple[str, str]]:
    code, status, stderr = run_cli("status", "--repo", repo, "--skipped", "--json")
    assert code == 0, stderr
    return {item["path"]: (item["reason"], item["detail"]) for item in status["repos"][0]["skipped_files"]}


def _check(expect: dict[str, object], skipped: dict[str, tuple[str, str]],
           indexed: dict[str, tuple[str | None, list[str]]]) -> None:
    for path, outcome in expect.items():
        if outcome == ABSENT:
            assert path not in skipped and path not in indexed, path
        elif isinstance(outcome, Skip):
            reason, detail = skipped.get(path, ("<not skipped>", ""))
            assert reason == outcome.reason, (path, reason, detail)
            if outcome.detail.endswith("…"):
                assert detail.startswith(outcome.detail[:-1]), (path, detail)
            else:
                assert detail == outcome.detail, (path, detail)
            assert path not in indexed, path
        else:
            assert isinstance(outcome, Indexed)
            assert path in indexed, (path, skipped.get(path))
            fallback, chunks = indexed[path]
            assert fallback in (outcome.fallback, *outcome.also), (path, fallback)
            assert len(chunks) >= outcome.min_chunks, (path, len(chunks))
    assert set(skipped) <= set(expect), set(skipped) - set(expect)
    assert set(indexed) <= set(expect), set(indexed) - set(expect)


def test_hostile_corpus_each_kind_gets_its_reason_or_fallback(lode: Lode, lode_home: Path, tmp_path: Path,
                                                              repo_name: str) -> None:
    root = tmp_path / "hostile"
    expect = build_corpus(root)
    kinds = len(expect)
    assert kinds >= 40
    engine = Lode(Settings(home=lode_home, embedder="none", timeouts=Timeouts(parse=PARSE_TIMEOUT)))
    grower = Grower(root / "growing.py")
    deleted: list[str] = []

    def on_progress(progress) -> None:  # discovery is done: delete a listed file before it is read
        if not deleted:
            (root / "vanish.py").unlink()
            deleted.append("vanish.py")

    grower.start()
    try:
        report = engine.indexing.index(root, repo_name, on_progress)
    finally:
        grower.stop.set()
        grower.join(timeout=10)
        engine.close()
    assert deleted and report.files_indexed == sum(isinstance(o, Indexed) for o in expect.values())

    indexed = _chunks_by_path(lode, repo_name)
    _check(expect, _skipped_via_cli(repo_name), indexed)

    final = (root / "growing.py").read_text()
    assert "".join(indexed["growing.py"][1]).replace("\n", "") in final.replace("\n", "")  # a prefix was read
    contents = {path: "\n".join(chunks) for path, (_, chunks) in indexed.items()}
    assert "def windows" in contents["crlf.py"] and "def two" in contents["lone_cr.py"]
    assert contents["bom_shebang.py"].startswith("#!/usr/bin/env python3")  # the BOM is gone
    assert "def wide" in contents["utf16_bom.py"] and "def newline_name" in contents["new\nline.py"]
    with lode.db.connection() as conn:
        leaked = conn.execute("SELECT count(*) FROM chunks WHERE content LIKE '%%hunter2%%'").fetchone()[0]
    assert leaked == 0

    report = lode.indexing.index(root, repo_name)  # a re-run: nothing unchanged is read again, the grown file is whole
    assert report.files_indexed == 1 and report.files_deleted == 0
    grown = _chunks_by_path(lode, repo_name)["growing.py"][1]
    assert f"def grow_{final.count('def grow_') - 1}" in grown[-1]


def test_deep_nesting_within_the_default_parse_timeout_is_chunked(lode: Lode, tmp_path: Path,
                                                                   repo_name: str) -> None:
    """With the default 5 s budget the 200k-deep file parses; the chunker and graph walk must not recurse."""
    (tmp_path / "deep_nesting.py").write_text(_deep_nesting())
    report = lode.indexing.index(tmp_path, repo_name)
    assert report.files_indexed == 1
    fallback, chunks = _chunks_by_path(lode, repo_name)["deep_nesting.py"]
    assert fallback in (None, "parse_timeout") and len(chunks) >= 100


def test_deep_nesting_past_its_parse_budget_is_indexed_as_line_windows(lode_home: Path, tmp_path: Path,
                                                                       repo_name: str, lode: Lode) -> None:
    """The timing-independent half of the corpus check: a budget no machine meets forces the fallback."""
    (tmp_path / "deep_nesting.py").write_text(_deep_nesting())
    engine = Lode(Settings(home=lode_home, embedder="none", timeouts=Timeouts(parse=0.001)))
    try:
        report = engine.indexing.index(tmp_path, repo_name)
    finally:
        engine.close()
    assert report.files_indexed == 1
    fallback, chunks = _chunks_by_path(lode, repo_name)["deep_nesting.py"]
    assert fallback == "parse_timeout" and len(chunks) >= 100


def test_file_deleted_during_discovery(tmp_path: Path) -> None:
    for name in ("a.py", "b.py", "c.py"):
        (tmp_path / name).write_text("x = 1\n")
    walk = discover(tmp_path, Settings())
    first = next(walk)  # the tree is listed now; each path is lstat-ed as it is yielded
    (tmp_path / "c.py").unlink()
    rest = list(walk)
    assert isinstance(first, Candidate) and first.path == "a.py"
    assert rest[-1] == Skipped("c.py", SkipReason.VANISHED, "deleted during discovery")


def index_unprivileged(lode: Lode, lode_home: Path, root: Path, repo: str,
                       home: Path) -> subprocess.CompletedProcess[str]:
    """`lode index --json` in a process that chmod 000 stops. Nothing stops root (CAP_DAC_OVERRIDE), so as root
    it runs as the embedded server's system user, which owns the server's socket directory and reaches the
    session server by URL; `home` (its LODE_HOME) is given to that user."""
    command = [sys.executable, "-m", "lode", "index", str(root), "--repo", repo, "--wait", "--json"]
    if os.geteuid() == 0:
        user = pwd.getpwuid((lode_home / "pgdata").stat().st_uid)
        assert user.pw_uid != 0, "the embedded server runs as its own system user"
        os.chown(home, user.pw_uid, user.pw_gid)
        command = ["runuser", "-u", user.pw_name, "--", *command]
        if subprocess.run([*command[:4], sys.executable, "-c", "pass"], capture_output=True, check=False).returncode:
            pytest.skip(f"{user.pw_name} cannot run {sys.executable} (a parent directory is closed to it)")
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env={
        **os.environ, "LODE_DATABASE_URL": lode.db.url, "LODE_HOME": str(home), "HOME": str(home)})


def test_unreadable_file_and_directory(lode: Lode, lode_home: Path, repo_name: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="lode-perm-"))  # under /tmp, not pytest's 0700 directories
    home = Path(tempfile.mkdtemp(prefix="lode-perm-home-"))
    try:
        (root / "ok.py").write_text("def ok():\n    return 1\n")
        (root / "no_access.py").write_text("def hidden():\n    return 1\n")
        (root / "closed").mkdir()
        (root / "closed" / "inner.py").write_text("def inner():\n    return 1\n")
        root.chmod(0o755)
        (root / "no_access.py").chmod(0)
        (root / "closed").chmod(0)
        done = index_unprivileged(lode, lode_home, root, repo_name, home)
        assert done.returncode == 0, done.stderr
        skipped = _skipped_via_cli(repo_name)
        assert skipped == {"no_access.py": ("unreadable", "Permission denied")}  # closed/: not listed, like git
        assert set(_chunks_by_path(lode, repo_name)) == {"ok.py"}
    finally:
        (root / "closed").chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def _one_error_line(code: int, stdout: object, stderr: str) -> str:
    """A failed `lode index --json`: exit code 1, one line on stderr, and that message as the JSON error."""
    [line] = stderr.strip().splitlines()
    assert code == 1 and line.startswith("lode: error: "), (code, stderr)
    document = json.loads(stdout) if isinstance(stdout, str) else stdout
    assert document == {"error": {"message": line.removeprefix("lode: error: "), "exit_code": 1}}
    return line


def test_a_root_that_cannot_be_listed_is_an_error_and_deletes_nothing(lode: Lode, lode_home: Path,
                                                                       repo_name: str) -> None:
    """Issue 15, item 12: the root indexed before is chmod 000 now; the run is made as a user it stops
    (index_unprivileged). Before, the failed listing read as an empty tree and every file was deleted."""
    root = Path(tempfile.mkdtemp(prefix="lode-closed-root-"))
    home = Path(tempfile.mkdtemp(prefix="lode-closed-home-"))
    try:
        (root / "kept.py").write_text("def kept():\n    return 1\n")
        (root / "pkg").mkdir()
        (root / "pkg" / "also.py").write_text("def also():\n    return 2\n")
        lode.indexing.index(root, repo_name)
        before = index_snapshot(lode, repo_name)
        root.chmod(0)
        done = index_unprivileged(lode, lode_home, root, repo_name, home)
        line = _one_error_line(done.returncode, done.stdout, done.stderr)
        assert line == f"lode: error: {root}: cannot open the directory (Permission denied)"
        assert index_snapshot(lode, repo_name) == before and len(before["files"]) == 2
    finally:
        root.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def test_a_git_work_tree_whose_listing_fails_is_an_error_and_deletes_nothing(lode: Lode, tmp_path: Path,
                                                                             repo_name: str) -> None:
    """A corrupt index makes `git ls-files` fail whoever runs it (root included)."""
    root = tmp_path / "work"
    root.mkdir()
    (root / "kept.py").write_text("def kept():\n    return 1\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, timeout=30)
    subprocess.run(["git", "add", "kept.py"], cwd=root, check=True, timeout=30)
    lode.indexing.index(root, repo_name)
    before = index_snapshot(lode, repo_name)
    (root / ".git" / "index").write_bytes(b"DIRC garbage")
    line = _one_error_line(*run_cli("index", str(root), "--repo", repo_name, "--json"))
    assert line.startswith(f"lode: error: {root}: git ls-files failed: ") and "index" in line
    assert index_snapshot(lode, repo_name) == before and len(before["files"]) == 1


def test_a_root_that_lists_empty_while_its_index_has_files_is_an_error(lode: Lode, tmp_path: Path,
                                                                       repo_name: str) -> None:
    """An unmounted disk leaves its mount point an empty directory: that is not every file deleted."""
    root = tmp_path / "mount-point"
    root.mkdir()
    (root / "kept.py").write_text("def kept():\n    return 1\n")
    lode.indexing.index(root, repo_name)
    before = index_snapshot(lode, repo_name)
    (root / "kept.py").rename(tmp_path / "kept.py")
    line = _one_error_line(*run_cli("index", str(root), "--repo", repo_name, "--json"))
    assert line == (f"lode: error: {root} lists no files now, but the index of {repo_name!r} holds 1: unmounted "
                    f"or emptied? Nothing was deleted; `lode repos rm {repo_name}` drops the index")
    assert index_snapshot(lode, repo_name) == before


def test_git_tree_ignored_files_submodules_and_deleted_tracked_files(lode: Lode, tmp_path: Path,
                                                                      repo_name: str) -> None:
    sub = tmp_path / "subproject"
    root = tmp_path / "work"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "protocol.file.allow=always",
           "-c", "init.defaultBranch=main"]
    for repo, files in [(sub, {"lib.py": "def sub_lib():\n    return 1\n"}),
                        (root, {"tracked.py": "def tracked():\n    return 1\n", "gone.py": "x = 1\n",
                                ".gitignore": "ignored.py\nlogs/\n"})]:
        repo.mkdir()
        for name, text in files.items():
            (repo / name).write_text(text)
        subprocess.run([*git, "init", "-q"], cwd=repo, check=True, timeout=30)
        subprocess.run([*git, "add", "."], cwd=repo, check=True, timeout=30)
        subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True, timeout=30)
    subprocess.run([*git, "submodule", "add", "-q", str(sub), "vendor/sub"], cwd=root, check=True, timeout=60,
                   capture_output=True)
    (root / "nested").mkdir()
    subprocess.run([*git, "init", "-q"], cwd=root / "nested", check=True, timeout=30)  # a nested repository
    (root / "nested" / "inner.py").write_text("def nested_inner():\n    return 1\n")
    (root / "ignored.py").write_text("def ignored():\n    return 1\n")
    (root / "logs").mkdir()
    (root / "logs" / "app.py").write_text("x = 1\n")
    (root / "untracked.py").write_text("def untracked():\n    return 1\n")
    (root / "gone.py").unlink()  # tracked, deleted in the work tree

    report = lode.indexing.index(root, repo_name)
    assert report.files_skipped == 0
    assert set(_chunks_by_path(lode, repo_name)) == {"tracked.py", "untracked.py", ".gitignore", ".gitmodules"}
    assert _skipped_via_cli(repo_name) == {}
