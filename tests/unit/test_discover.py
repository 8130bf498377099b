"""Discovery and safe reading, against real files, real git and a hostile corpus."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from lode.config import Settings
from lode.discover import (RootError, RootUnavailable, SourceText, SourceTree, discover, ensure_indexable_root,
                           read_source)
from lode.model import Candidate, Skipped, SkipReason
from tests.support.trees import git, git_tree_through_symlinked_directories, write

LIMIT = 64 * 1024
MAX_LINE = 200


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user git config (global excludes!), no repository above tmp_path, no user config.toml."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.setenv("LODE_HOME", str(tmp_path / "lode-home"))


@pytest.fixture
def cfg(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "lode-home", max_file_bytes=LIMIT, max_line_length=MAX_LINE)


def outcome(root: Path, settings: Settings) -> dict[str, SkipReason | str]:
    """Path -> skip reason, or "text" for a file that reads back as text."""
    result: dict[str, SkipReason | str] = {}
    for item in discover(root, settings):
        if isinstance(item, Skipped):
            result[item.path] = item.reason
        else:
            read = read_source(root, item, settings)
            result[item.path] = read.reason if isinstance(read, Skipped) else "text"
    return result


def paths(root: Path, settings: Settings) -> set[str]:
    return {item.path for item in discover(root, settings)}


# --- hostile corpus ---------------------------------------------------------------------------


def build_hostile_corpus(root: Path) -> dict[str, SkipReason | str]:
    """Create the corpus; return the expected outcome per path."""
    write(root, "ok.py")
    write(root, "sub/deep/ok.go", "package main\n")
    write(root, "binary.dat", b"\x7fELF\x00\x01\x02")
    write(root, "empty.py", b"")
    with open(root / "huge.txt", "wb") as f:  # sparse: 100 MB on lstat, nothing on disk
        f.truncate(100 * 1024 * 1024)
    write(root, "bundle.js", "var a=1;" * 100)  # one 800-character line, no .min.js name
    write(root, "latin1.py", b"caf\xe9 = 1\n")
    write(root, "utf16le.txt", codecs.BOM_UTF16_LE + "h\u00e9llo\n".encode("utf-16-le"))
    write(root, "utf16be.txt", codecs.BOM_UTF16_BE + "w\u00f6rld\n".encode("utf-16-be"))
    write(root, "bom.py", codecs.BOM_UTF8 + b"x = 1\n")
    os.symlink("loop_b", root / "loop_a")
    os.symlink("loop_a", root / "loop_b")
    os.symlink("/etc/passwd", root / "passwd")
    os.symlink("nowhere", root / "dangling")
    os.symlink("ok.py", root / "alias.py")
    os.symlink("sub", root / "sublink")  # a symlinked directory is not descended
    os.mkfifo(root / "pipe")
    write(root, ".env", "TOKEN=x\n")
    write(root, ".env.local", "TOKEN=x\n")
    write(root, "server.pem", "-----BEGIN-----\n")
    write(root, "id_rsa", "key\n")
    write(root, "deploy/terraform.tfstate", "{}\n")
    write(root, "package-lock.json", "{}\n")
    write(root, "app.min.js", "x\n")
    write(root, "app.js.map", "{}\n")
    (root / os.fsdecode(b"bad\xff.py")).write_text("x = 1\n")
    return {
        "ok.py": "text",
        "sub/deep/ok.go": "text",
        "binary.dat": SkipReason.BINARY,
        "empty.py": SkipReason.EMPTY,
        "huge.txt": SkipReason.TOO_LARGE,
        "bundle.js": SkipReason.MINIFIED,
        "latin1.py": SkipReason.UNDECODABLE,
        "utf16le.txt": "text",
        "utf16be.txt": "text",
        "bom.py": "text",
        "loop_a": SkipReason.SYMLINK_LOOP,
        "loop_b": SkipReason.SYMLINK_LOOP,
        "passwd": SkipReason.SYMLINK_OUTSIDE_ROOT,
        "dangling": SkipReason.SYMLINK_BROKEN,
        "alias.py": SkipReason.SYMLINK_INSIDE_ROOT,
        "sublink": SkipReason.SYMLINK_INSIDE_ROOT,
        "pipe": SkipReason.NOT_REGULAR,
        ".env": SkipReason.SECRET,
        ".env.local": SkipReason.SECRET,
        "server.pem": SkipReason.SECRET,
        "id_rsa": SkipReason.SECRET,
        "deploy/terraform.tfstate": SkipReason.SECRET,
        "package-lock.json": SkipReason.GENERATED,
        "app.min.js": SkipReason.GENERATED,
        "app.js.map": SkipReason.GENERATED,
        "bad\ufffd.py": SkipReason.BAD_FILENAME,
    }


@pytest.mark.timeout(20)
def test_hostile_corpus_outside_git(tmp_path: Path, cfg: Settings) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    expected = build_hostile_corpus(root)
    assert outcome(root, cfg) == expected


@pytest.mark.timeout(20)
def test_hostile_corpus_in_git(tmp_path: Path, cfg: Settings) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    expected = build_hostile_corpus(root)
    git(root, "init", "-q")
    del expected["pipe"]  # git lists only files and symlinks: a FIFO is never seen
    assert outcome(root, cfg) == expected


def test_discovery_yields_sorted_relative_paths_with_lstat_data(tmp_path: Path, cfg: Settings) -> None:
    for rel in ("b.py", "a/z.py", "a.py", "a/b/c.py"):
        write(tmp_path / "r", rel)
    root = tmp_path / "r"
    items = list(discover(root, cfg))
    assert [i.path for i in items] == ["a.py", "a/b/c.py", "a/z.py", "b.py"]
    st_ = os.lstat(root / "a/b/c.py")
    assert items[1] == Candidate(path="a/b/c.py", size=st_.st_size, mtime_ns=st_.st_mtime_ns)


def test_skip_details_are_human(tmp_path: Path, cfg: Settings) -> None:
    with open(tmp_path / "huge.txt", "wb") as f:
        f.truncate(1_234_567)
    write(tmp_path, "zero.py", b"")  # decided from lstat: never handed to read_source
    assert list(discover(tmp_path, cfg)) == [
        Skipped("huge.txt", SkipReason.TOO_LARGE, f"1,234,567 bytes > {LIMIT:,}"),
        Skipped("zero.py", SkipReason.EMPTY, "0 bytes"),
    ]


@pytest.mark.parametrize("in_git", [False, True])
def test_vcs_directories_are_never_listed(tmp_path: Path, cfg: Settings, in_git: bool) -> None:
    if in_git:
        git(tmp_path, "init", "-q")
    for rel in (".git/stray.py", ".hg/store/x.py", ".svn/entries", "sub/.hg/y.py", "keep.py"):
        write(tmp_path, rel)
    assert paths(tmp_path, cfg) == {"keep.py"}


def test_vanished_between_listing_and_lstat(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path, "a.py")
    write(tmp_path, "b.py")
    it = discover(tmp_path, cfg)
    assert next(it).path == "a.py"  # the listing is complete now
    (tmp_path / "b.py").unlink()
    assert list(it) == [Skipped("b.py", SkipReason.VANISHED, "deleted during discovery")]


def test_undecodable_names_do_not_produce_duplicate_paths(tmp_path: Path, cfg: Settings) -> None:
    for raw in (b"x\xfe.py", b"x\xff.py"):
        (tmp_path / os.fsdecode(raw)).write_text("x = 1\n")
    assert [i.path for i in discover(tmp_path, cfg)] == ["x\ufffd.py"]


# --- ignore rules -----------------------------------------------------------------------------


def build_ignore_tree(root: Path) -> None:
    write(root, ".gitignore", "*.log\n!keep.log\nbuild/\n/top_only.txt\n")
    write(root, "main.py")
    write(root, "debug.log", "x\n")
    write(root, "keep.log", "x\n")
    write(root, "build/out.py")
    write(root, "top_only.txt", "x\n")
    write(root, "pkg/top_only.txt", "x\n")  # anchored pattern: only the top one is ignored
    write(root, "pkg/.gitignore", "generated_*.py\n!special.log\nnested.log\n")
    write(root, "pkg/special.log", "x\n")  # a deeper negation overrides the parent's *.log
    write(root, "pkg/generated_api.py")
    write(root, "pkg/mod.py")
    write(root, "pkg/nested.log", "x\n")
    write(root, "pkg/sub/generated_x.py")  # nested patterns apply below their directory
    write(root, "other/generated_api.py")  # ...and not beside it


IGNORE_TREE_KEPT = {
    ".gitignore",
    "main.py",
    "keep.log",
    "pkg/top_only.txt",
    "pkg/.gitignore",
    "pkg/mod.py",
    "pkg/special.log",
    "other/generated_api.py",
}


def test_gitignore_rules_outside_git(tmp_path: Path, cfg: Settings) -> None:
    build_ignore_tree(tmp_path)
    assert paths(tmp_path, cfg) == IGNORE_TREE_KEPT


def test_gitignore_rules_in_git(tmp_path: Path, cfg: Settings) -> None:
    build_ignore_tree(tmp_path)
    git(tmp_path, "init", "-q")
    write(tmp_path, ".git/info/exclude", "excluded_locally.py\n")
    write(tmp_path, "excluded_locally.py")
    write(tmp_path, "pkg/excluded_locally.py")
    assert paths(tmp_path, cfg) == IGNORE_TREE_KEPT


def test_git_tracked_untracked_and_deleted(tmp_path: Path, cfg: Settings) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, ".gitignore", "*.log\n")
    write(tmp_path, "tracked.py")
    write(tmp_path, "forced.log", "x\n")
    write(tmp_path, "deleted.py")
    git(tmp_path, "add", "tracked.py", "deleted.py")
    git(tmp_path, "add", "-f", "forced.log")  # tracked files are never ignored
    (tmp_path / "deleted.py").unlink()  # deleted in the work tree: silently absent
    write(tmp_path, "untracked.py")
    assert paths(tmp_path, cfg) == {".gitignore", "tracked.py", "forced.log", "untracked.py"}


def test_git_root_in_subdirectory_lists_only_its_subtree(tmp_path: Path, cfg: Settings) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, ".gitignore", "*.tmp\n")
    write(tmp_path, "outside.py")
    write(tmp_path, "sub/inside.py")
    write(tmp_path, "sub/deeper/x.py")
    write(tmp_path, "sub/scratch.tmp", "x\n")  # the parent's .gitignore still applies
    assert paths(tmp_path / "sub", cfg) == {"inside.py", "deeper/x.py"}


def test_git_nested_repository_is_not_listed(tmp_path: Path, cfg: Settings) -> None:
    git(tmp_path, "init", "-q")
    write(tmp_path, "main.py")
    write(tmp_path, "vendor/lib/lib.py")
    git(tmp_path / "vendor/lib", "init", "-q")
    assert paths(tmp_path, cfg) == {"main.py"}


# --- symlinked directories on the way (issue 15, item 1) --------------------------------------


def test_git_listed_paths_through_symlinked_directories_are_skipped(tmp_path: Path, cfg: Settings) -> None:
    root = git_tree_through_symlinked_directories(tmp_path)
    found = {item.path: item for item in discover(root, cfg)}
    assert found["etc/passwd"] == Skipped("etc/passwd", SkipReason.SYMLINK_OUTSIDE_ROOT,
                                          f"etc -> {tmp_path / 'outside'}")
    assert found["alias/x.py"] == Skipped("alias/x.py", SkipReason.SYMLINK_INSIDE_ROOT, "alias -> real")
    assert isinstance(found["real/x.py"], Candidate) and isinstance(found["ok.py"], Candidate)
    assert outcome(root, cfg)["etc/passwd"] is SkipReason.SYMLINK_OUTSIDE_ROOT


def test_a_directory_swapped_for_a_symlink_after_listing_is_not_read(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path / "outside", "config.py", "TOKEN = 'OUTSIDE_SECRET'\n")
    root = tmp_path / "root"
    write(root, "sub/config.py", "TOKEN = 'inside'\n")
    write(root, "sub/deeper/more.py", "x = 1\n")
    [config, more] = [item for item in discover(root, cfg) if isinstance(item, Candidate)]
    (root / "sub" / "config.py").unlink()
    (root / "sub" / "deeper" / "more.py").unlink()
    (root / "sub" / "deeper").rmdir()
    (root / "sub").rmdir()
    os.symlink(tmp_path / "outside", root / "sub")
    outside = Skipped("sub/config.py", SkipReason.SYMLINK_OUTSIDE_ROOT, f"sub -> {tmp_path / 'outside'}")
    assert read_source(root, config, cfg) == outside
    with SourceTree(root) as tree:  # as a worker process reads: one tree for many files
        assert tree.read(config, cfg) == outside
        assert tree.read(more, cfg) == Skipped("sub/deeper/more.py", SkipReason.SYMLINK_OUTSIDE_ROOT,
                                               f"sub -> {tmp_path / 'outside'}")


def test_a_directory_swapped_for_a_file_or_removed_is_vanished(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path, "a/b/c.py")
    write(tmp_path, "d/e.py")
    [c, e] = [item for item in discover(tmp_path, cfg) if isinstance(item, Candidate)]
    (tmp_path / "a" / "b" / "c.py").unlink()
    (tmp_path / "a" / "b").rmdir()
    write(tmp_path, "a/b", "now a file\n")
    (tmp_path / "d" / "e.py").unlink()
    (tmp_path / "d").rmdir()
    with SourceTree(tmp_path) as tree:
        assert tree.read(c, cfg).reason is SkipReason.VANISHED  # type: ignore[union-attr]
        assert tree.read(e, cfg).reason is SkipReason.VANISHED  # type: ignore[union-attr]


def test_a_tree_confined_to_a_directory_refuses_a_symlink_on_the_way(tmp_path: Path) -> None:
    write(tmp_path, "allowed/proj/a.py")
    write(tmp_path, "outside/proj/a.py")
    allowed = tmp_path / "allowed"
    with SourceTree(allowed / "proj", within=allowed) as tree:
        assert tree.root == str(allowed / "proj")
    (allowed / "proj" / "a.py").unlink()
    (allowed / "proj").rmdir()
    os.symlink(tmp_path / "outside" / "proj", allowed / "proj")
    with pytest.raises(RootUnavailable, match="'proj' on the way from the allowed root .* is no longer a plain "
                                              "directory") as swapped:
        SourceTree(allowed / "proj", within=allowed)
    with pytest.raises(RootUnavailable, match="is not under the allowed root") as elsewhere:
        SourceTree(tmp_path / "outside" / "proj", within=allowed)
    for exc in (swapped.value, elsewhere.value):
        assert "\n" not in str(exc)


@pytest.mark.parametrize("in_git", [False, True])
def test_walk_and_git_listing_reach_files_only_through_plain_directories(tmp_path: Path, cfg: Settings,
                                                                         in_git: bool) -> None:
    """Descriptor-relative listing keeps every ordinary case: deep and sibling directories, names sorting
    around '/', nested .gitignore files."""
    names = ["a.py", "a/b.py", "a/b/c.py", "a/b.d/e.py", "a/b0.py", "z/y/x/w.py", "a/.gitignore"]
    for name in names:
        write(tmp_path, name, "ignored.py\n" if name.endswith(".gitignore") else "x = 1\n")
    write(tmp_path, "a/b/ignored.py")
    if in_git:
        git(tmp_path, "init", "-q")
    found = list(discover(tmp_path, cfg))
    assert [item.path for item in found] == sorted(names)
    assert all(isinstance(item, Candidate) for item in found)
    with SourceTree(tmp_path) as tree:
        assert all(isinstance(tree.read(item, cfg), SourceText) for item in found)  # type: ignore[arg-type]


# --- read_source ------------------------------------------------------------------------------


def read(root: Path, rel: str, cfg: Settings) -> SourceText | Skipped:
    st_ = os.lstat(root / rel)
    return read_source(root, Candidate(rel, st_.st_size, st_.st_mtime_ns), cfg)


def test_read_source_text_hash_and_size(tmp_path: Path, cfg: Settings) -> None:
    import hashlib

    raw = codecs.BOM_UTF8 + b"a = 1\r\nb = 2\n"
    write(tmp_path, "x.py", raw)
    got = read(tmp_path, "x.py", cfg)
    assert got == SourceText("a = 1\r\nb = 2\n", hashlib.blake2b(raw, digest_size=16).hexdigest(), len(raw))


def test_read_source_utf16_is_text_but_utf32_is_binary(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path, "le.txt", "x = '\u00e9'\n".encode("utf-16"))
    write(tmp_path, "be.txt", codecs.BOM_UTF16_BE + "y\n".encode("utf-16-be"))
    write(tmp_path, "odd.txt", codecs.BOM_UTF16_LE + b"a\x00b")
    write(tmp_path, "u32.txt", codecs.BOM_UTF32_LE + "z\n".encode("utf-32-le"))
    assert read(tmp_path, "le.txt", cfg).text == "x = '\u00e9'\n"  # type: ignore[union-attr]
    assert read(tmp_path, "be.txt", cfg).text == "y\n"  # type: ignore[union-attr]
    assert read(tmp_path, "odd.txt", cfg).reason is SkipReason.UNDECODABLE  # type: ignore[union-attr]
    assert read(tmp_path, "u32.txt", cfg).reason is SkipReason.BINARY  # type: ignore[union-attr]


def test_read_source_line_length_limit(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path, "at_limit.py", "x" * MAX_LINE + "\n" + "y\n" * 500)
    write(tmp_path, "over_limit.py", "y\n" * 500 + "x" * (MAX_LINE + 1) + "\n")
    assert isinstance(read(tmp_path, "at_limit.py", cfg), SourceText)
    assert read(tmp_path, "over_limit.py", cfg) == Skipped(
        "over_limit.py", SkipReason.MINIFIED, f"a line of {MAX_LINE + 1:,} characters > {MAX_LINE:,}"
    )


def test_read_source_caps_a_file_that_grew(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path, "grew.py", "x\n" * LIMIT)  # 2 x LIMIT bytes, but discovered when small
    got = read_source(tmp_path, Candidate("grew.py", 10, 0), cfg)
    assert isinstance(got, Skipped) and got.reason is SkipReason.TOO_LARGE
    write(tmp_path, "exact.py", "x\n" * (LIMIT // 2))  # exactly at the limit: indexed
    assert isinstance(read_source(tmp_path, Candidate("exact.py", 10, 0), cfg), SourceText)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_read_source_does_not_trust_the_reported_size(tmp_path: Path) -> None:
    # /proc files are regular files whose size reads as 0: like a file growing after fstat.
    proc, status = Path("/proc/self"), Candidate("status", 0, 0)
    got = read_source(proc, status, Settings(home=tmp_path, max_file_bytes=LIMIT))
    assert isinstance(got, SourceText) and got.text.startswith("Name:") and "\nPid:" in got.text
    tiny = read_source(proc, status, Settings(home=tmp_path, max_file_bytes=16))
    assert isinstance(tiny, Skipped) and tiny.reason is SkipReason.TOO_LARGE


@pytest.mark.timeout(20)
def test_read_source_never_opens_special_files_or_symlinks(tmp_path: Path, cfg: Settings) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it blocking would hang forever
    os.symlink("/etc/passwd", tmp_path / "link")
    write(tmp_path, "empty.py", b"")
    assert read_source(tmp_path, Candidate("pipe", 1, 0), cfg).reason is SkipReason.NOT_REGULAR  # type: ignore[union-attr]
    assert read_source(tmp_path, Candidate("link", 1, 0), cfg).reason is SkipReason.NOT_REGULAR  # type: ignore[union-attr]
    assert read_source(tmp_path, Candidate("gone.py", 1, 0), cfg).reason is SkipReason.VANISHED  # type: ignore[union-attr]
    assert read_source(tmp_path, Candidate("empty.py", 1, 0), cfg).reason is SkipReason.EMPTY  # type: ignore[union-attr]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_read_source_unreadable(tmp_path: Path, cfg: Settings) -> None:
    write(tmp_path, "secret.py").chmod(0)
    assert read(tmp_path, "secret.py", cfg).reason is SkipReason.UNREADABLE  # type: ignore[union-attr]


@hsettings(max_examples=60, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0\ufeff"), min_size=1, max_size=300))
def test_read_source_round_trips_utf8_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    root = tmp_path_factory.mktemp("rt")
    settings = Settings(home=root, max_file_bytes=LIMIT, max_line_length=10_000)
    raw = text.encode()
    write(root, "t.txt", raw)
    got = read(root, "t.txt", settings)
    assert isinstance(got, SourceText) and got.text == text and got.size == len(raw)


# --- ensure_indexable_root --------------------------------------------------------------------


def test_ensure_indexable_root(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "d", tmp_path / "dlink")
    assert ensure_indexable_root(tmp_path / "dlink") == (tmp_path / "d").resolve()

    write(tmp_path, "f.py")
    with pytest.raises(RootError, match="not a directory") as not_dir:
        ensure_indexable_root(tmp_path / "f.py")
    with pytest.raises(RootError, match="no such directory") as missing:
        ensure_indexable_root(tmp_path / "missing")
    for exc in (not_dir.value, missing.value):
        assert isinstance(exc, ValueError) and "\n" not in str(exc)
