"""Discovery: which files of a tree to index, and reading one safely.

Listing honours git ignore rules (git itself inside a work tree, pathspec outside one).
Discovery only lstats; read_source is the only place a file is opened.
"""

from __future__ import annotations

import codecs
import errno
import fnmatch
import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from lode.config import Settings
from lode.model import Candidate, Skipped, SkipReason

VCS_DIRS = frozenset({".git", ".hg", ".svn"})

# Matched against the lower-cased file name.
SECRET_PATTERNS = (
    ".env*", "*.pem", "*.key", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "*.p12", "*.pfx", "*.tfstate", "*.tfstate.backup", ".npmrc", ".netrc", ".pgpass",
)  # fmt: skip
GENERATED_PATTERNS = (
    "*.min.js", "*.min.css", "*.map", "package-lock.json", "yarn.lock", "pnpm-lock.yaml",
    "cargo.lock", "poetry.lock", "uv.lock", "composer.lock", "gemfile.lock",
)  # fmt: skip

_GIT = ("git", "-c", "core.fsmonitor=false", "-c", "core.quotepath=off")
_NOT_REGULAR_KINDS = {
    stat.S_IFIFO: "FIFO",
    stat.S_IFSOCK: "socket",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}


class RootError(ValueError):
    """The path given as a root cannot be indexed. The message is one line."""


@dataclass(frozen=True, slots=True)
class SourceText:
    text: str
    content_hash: str  # blake2b-128 of the raw bytes, hex
    size: int  # bytes read


def ensure_indexable_root(path: Path) -> Path:
    """Resolve path and check that it is an existing directory."""
    try:
        resolved = Path(path).expanduser().resolve(strict=True)
    except FileNotFoundError:
        raise RootError(f"{path}: no such directory") from None
    except (OSError, RuntimeError) as exc:
        raise RootError(f"{path}: cannot resolve ({getattr(exc, 'strerror', None) or exc})") from None
    if not resolved.is_dir():
        raise RootError(f"{path}: not a directory")
    return resolved


def discover(root: Path, settings: Settings) -> Iterator[Candidate | Skipped]:
    """Yield every non-ignored file under root, sorted by path, as a Candidate or a Skipped.

    The tree is listed on the first next(); each path is then lstat-ed as it is yielded.
    """
    root_str = str(Path(root).resolve())
    listing = _git_listing(root_str) if _in_git_work_tree(root_str) else _walk_listing(root_str)
    yielded: set[str] = set()
    for rel in sorted(listing):
        item = _classify(root_str, rel, listing[rel], settings)
        # Distinct undecodable names can collapse into one replaced path; yield it once.
        if item is not None and item.path not in yielded:
            yielded.add(item.path)
            yield item


def read_source(root: Path, candidate: Candidate, settings: Settings) -> SourceText | Skipped:
    """Read and decode one file, never following a symlink or blocking on a special file."""
    path, limit = candidate.path, settings.max_file_bytes
    try:
        fd = os.open(os.path.join(root, path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return Skipped(path, SkipReason.VANISHED, "deleted before reading")
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symlink since discovery
            return Skipped(path, SkipReason.NOT_REGULAR, "now a symlink")
        return Skipped(path, SkipReason.UNREADABLE, exc.strerror or str(exc))
    try:
        with open(fd, "rb", closefd=True) as f:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return Skipped(path, SkipReason.NOT_REGULAR, _file_kind(st.st_mode))
            # Ask for what fstat reports (+1 to see growth) rather than the limit: far cheaper for small files.
            raw = f.read(min(st.st_size, limit) + 1)
            if len(raw) > st.st_size:  # grew since fstat: read on up to the limit
                raw += f.read(limit + 1 - len(raw))
    except OSError as exc:
        return Skipped(path, SkipReason.UNREADABLE, exc.strerror or str(exc))
    if len(raw) > limit:
        return Skipped(path, SkipReason.TOO_LARGE, f"more than {limit:,} bytes when read")
    if not raw:
        return Skipped(path, SkipReason.EMPTY, "0 bytes when read")
    text = _decode(path, raw, settings.max_line_length)
    if isinstance(text, Skipped):
        return text
    return SourceText(text, hashlib.blake2b(raw, digest_size=16).hexdigest(), len(raw))


# --- listing ---------------------------------------------------------------------------------


def _in_git_work_tree(root: str) -> bool:
    try:
        done = subprocess.run(("git", "-C", root, "rev-parse", "--show-toplevel"), capture_output=True, check=False)
    except OSError:  # git not installed
        return False
    return done.returncode == 0


def _git_ls_files(root: str, *args: str) -> list[str]:
    done = subprocess.run((*_GIT, "ls-files", "-z", *args), cwd=root, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git ls-files failed in {root}: {os.fsdecode(done.stderr).strip()}")
    return [os.fsdecode(p) for p in done.stdout.split(b"\0") if p]


def _git_listing(root: str) -> dict[str, bool]:
    """Map each path under root (relative to it) to whether git tracks it."""
    # Two calls instead of one `--cached --others` so that a tracked file missing from disk
    # (deleted in the work tree) can be told from one that vanished during discovery.
    listing = dict.fromkeys(_git_ls_files(root, "--cached"), True)
    listing.update(dict.fromkeys(_git_ls_files(root, "--others", "--exclude-standard"), False))
    # "dir/" entries are nested repositories and submodules; VCS metadata is never indexed.
    return {p: t for p, t in listing.items() if not p.endswith("/") and VCS_DIRS.isdisjoint(p.split("/")[:-1])}


def _walk_listing(root: str) -> dict[str, bool]:
    """Walk root without following symlinks, applying every .gitignore on the way down."""
    files: dict[str, bool] = {}
    stack: list[tuple[str, list[tuple[str, pathspec.GitIgnoreSpec]]]] = [("", [])]
    while stack:
        rel_dir, specs = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel_dir)) as it:
                entries = list(it)
        except OSError:  # unreadable directory: git skips it too
            continue
        spec = _read_gitignore(entries)
        if spec is not None:
            specs = [*specs, (rel_dir, spec)]
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if (is_dir and entry.name in VCS_DIRS) or _ignored(rel, is_dir, specs):
                continue
            if is_dir:
                stack.append((rel, specs))
            else:
                files[rel] = False
    return files


def _read_gitignore(entries: list[os.DirEntry[str]]) -> pathspec.GitIgnoreSpec | None:
    for entry in entries:
        if entry.name == ".gitignore" and entry.is_file(follow_symlinks=False):  # like git: no symlinks
            try:
                with open(entry.path, "rb") as f:
                    lines = f.read().decode("utf-8", "surrogateescape").splitlines()
            except OSError:
                return None
            return pathspec.GitIgnoreSpec.from_lines(lines)
    return None


def _ignored(rel: str, is_dir: bool, specs: list[tuple[str, pathspec.GitIgnoreSpec]]) -> bool:
    """Git precedence: the deepest .gitignore with a matching pattern decides; last pattern wins in it."""
    for base, spec in reversed(specs):
        sub = rel[len(base) + 1 :] if base else rel
        decision = spec.check_file(sub + "/" if is_dir else sub).include
        if decision is not None:
            return decision
    return False


# --- classification --------------------------------------------------------------------------


def _name_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


_SECRET_RE = _name_matcher(SECRET_PATTERNS)
_GENERATED_RE = _name_matcher(GENERATED_PATTERNS)


def _matching_pattern(name: str, patterns: tuple[str, ...]) -> str:
    return next(p for p in patterns if fnmatch.fnmatchcase(name, p))


def _file_kind(mode: int) -> str:
    return _NOT_REGULAR_KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _printable(name: str) -> str:
    """Replace the surrogate escapes of undecodable bytes with U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _classify(root: str, rel: str, tracked: bool, settings: Settings) -> Candidate | Skipped | None:
    """Decide from the name and lstat alone. None: not a file to report."""
    abs_path = os.path.join(root, rel)
    try:
        st = os.lstat(abs_path)
    except FileNotFoundError:
        # A tracked file deleted in the work tree is simply absent; anything else vanished under us.
        return None if tracked else Skipped(_printable(rel), SkipReason.VANISHED, "deleted during discovery")
    except OSError as exc:
        return Skipped(_printable(rel), SkipReason.UNREADABLE, exc.strerror or str(exc))

    if stat.S_ISDIR(st.st_mode):  # e.g. a tracked file replaced by a directory
        return None
    if _printable(rel) != rel:
        return Skipped(_printable(rel), SkipReason.BAD_FILENAME, "file name is not valid UTF-8")
    name = rel.rsplit("/", 1)[-1].lower()
    if _SECRET_RE.match(name):
        return Skipped(rel, SkipReason.SECRET, f"name matches {_matching_pattern(name, SECRET_PATTERNS)}")
    if _GENERATED_RE.match(name):
        return Skipped(rel, SkipReason.GENERATED, f"name matches {_matching_pattern(name, GENERATED_PATTERNS)}")
    if stat.S_ISLNK(st.st_mode):
        return _classify_symlink(root, rel, abs_path)
    if not stat.S_ISREG(st.st_mode):
        return Skipped(rel, SkipReason.NOT_REGULAR, _file_kind(st.st_mode))
    if st.st_size > settings.max_file_bytes:
        return Skipped(rel, SkipReason.TOO_LARGE, f"{st.st_size:,} bytes > {settings.max_file_bytes:,}")
    if st.st_size == 0:
        return Skipped(rel, SkipReason.EMPTY, "0 bytes")
    return Candidate(path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _classify_symlink(root: str, rel: str, abs_path: str) -> Skipped:
    try:
        target = os.path.realpath(abs_path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(rel, SkipReason.SYMLINK_LOOP, "symlink loop")
        return Skipped(rel, SkipReason.SYMLINK_BROKEN, f"target: {exc.strerror or exc}")
    if target != root and not target.startswith(root + os.sep):
        return Skipped(rel, SkipReason.SYMLINK_OUTSIDE_ROOT, f"-> {_printable(target)}")
    return Skipped(rel, SkipReason.SYMLINK_INSIDE_ROOT, f"-> {_printable(os.path.relpath(target, root))}")


# --- decoding ---------------------------------------------------------------------------------


def _decode(path: str, raw: bytes, max_line_length: int) -> str | Skipped:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = raw.decode("utf-16")  # the codec reads and drops the BOM
        except UnicodeDecodeError as exc:
            return Skipped(path, SkipReason.UNDECODABLE, f"invalid UTF-16: {exc.reason}")
        if "\0" in text:  # e.g. UTF-32 LE, whose BOM starts like UTF-16's; NUL cannot be stored
            return Skipped(path, SkipReason.BINARY, "contains NUL characters")
    else:
        raw = raw.removeprefix(codecs.BOM_UTF8)
        if b"\0" in raw:
            return Skipped(path, SkipReason.BINARY, "contains NUL bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return Skipped(path, SkipReason.UNDECODABLE, f"invalid UTF-8 at byte {exc.start:,}")
    if len(text) > max_line_length:
        longest = max(map(len, text.splitlines()))
        if longest > max_line_length:
            return Skipped(path, SkipReason.MINIFIED, f"a line of {longest:,} characters > {max_line_length:,}")
    return text
