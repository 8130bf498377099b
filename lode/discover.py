"""Discovery: which files of a tree to index, and reading one safely.

Listing honours git ignore rules (git itself inside a work tree, pathspec outside one). A SourceTree holds the
root open, and every path below it is reached from that descriptor one directory at a time without following a
symlink, when listing, classifying and reading alike: a symlinked directory anywhere in a path (listed by git, or
swapped in while a run goes on) leads nowhere outside the root. Discovery only lstats; SourceTree.read is the only
place a file is opened.
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
from typing import Self

import pathspec

from lode.config import Settings
from lode.errors import LodeError
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
_ROOT_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_DIR_FLAGS = _ROOT_FLAGS | os.O_NOFOLLOW  # a symlink fails (ENOTDIR or ELOOP) instead of being entered
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # no blocking on a FIFO either


class RootError(ValueError):
    """The path given as a root cannot be indexed. The message is one line."""


class RootUnavailable(LodeError):
    """The root cannot be opened or listed now, or is no longer under the directory a run is confined to.
    A run that meets this changes nothing in the index. The message is one line."""


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
    """SourceTree.discover on a tree of its own, opened on the first next()."""
    with SourceTree(root) as tree:
        yield from tree.discover(settings)


def read_source(root: Path, candidate: Candidate, settings: Settings) -> SourceText | Skipped:
    """SourceTree.read on a tree opened for this one file."""
    with SourceTree(root) as tree:
        return tree.read(candidate, settings)


class _Blocked(Exception):
    """A directory on the way to a path cannot be entered as a plain directory (`prefix` is the first one)."""

    def __init__(self, prefix: str, error: OSError) -> None:
        super().__init__(prefix)
        self.prefix = prefix
        self.error = error


class SourceTree:
    """A root directory held open, below which no symlink is ever followed.

    `within`, when given, confines the tree: the root must lie under that directory (an allowed root of the API)
    and is opened from it component by component, so a directory on the way that became a symlink fails the
    open instead of leading elsewhere. The directories of the last path reached stay open (as many descriptors
    as the path is deep): paths taken in sorted order enter each directory once.
    """

    def __init__(self, root: Path | str, within: Path | None = None) -> None:
        if within is None:
            self.root = os.path.realpath(root)
            self._fd = _open_directory(self.root)
        else:
            self.root = os.path.abspath(root)
            self._fd = _open_within(self.root, os.path.realpath(within))
        self._open: list[tuple[str, int]] = []  # (name, descriptor) of each directory of the last path reached

    def close(self) -> None:
        while self._open:
            os.close(self._open.pop()[1])
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def discover(self, settings: Settings) -> Iterator[Candidate | Skipped]:
        """Yield every non-ignored file under the root, sorted by path, as a Candidate or a Skipped.

        The tree is listed on the first next(); each path is then lstat-ed as it is yielded. RootUnavailable
        if the root itself cannot be listed: a listing failure is never an empty tree.
        """
        listing = _git_listing(self.root) if _in_git_work_tree(self.root) else self._walk_listing()
        yielded: set[str] = set()
        for rel in sorted(listing):
            item = self._classify(rel, listing[rel], settings)
            # Distinct undecodable names can collapse into one replaced path; yield it once.
            if item is not None and item.path not in yielded:
                yielded.add(item.path)
                yield item

    def read(self, candidate: Candidate, settings: Settings) -> SourceText | Skipped:
        """Read and decode one file, never following a symlink or blocking on a special file."""
        path, limit = candidate.path, settings.max_file_bytes
        parent, _, name = path.rpartition("/")
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=self._directory(parent))
        except _Blocked as blocked:
            return self._blocked(path, blocked) or Skipped(path, SkipReason.VANISHED, "deleted before reading")
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

    # --- reaching a directory ---

    def _directory(self, rel_dir: str) -> int:
        """A descriptor of rel_dir ('' for the root), entered without following symlinks; _Blocked if it cannot
        be. It stays open until a path elsewhere is reached."""
        parts = rel_dir.split("/") if rel_dir else []
        kept = 0
        while kept < len(self._open) and kept < len(parts) and self._open[kept][0] == parts[kept]:
            kept += 1
        while len(self._open) > kept:
            os.close(self._open.pop()[1])
        for part in parts[kept:]:
            try:
                if part in ("", ".", ".."):  # only plain names lead downwards
                    raise OSError(errno.EINVAL, "not a plain path component")
                fd = os.open(part, _DIR_FLAGS, dir_fd=self._open[-1][1] if self._open else self._fd)
            except OSError as exc:
                raise _Blocked("/".join(parts[: len(self._open) + 1]), exc) from None
            self._open.append((part, fd))
        return self._open[-1][1] if self._open else self._fd

    def _blocked(self, rel: str, blocked: _Blocked) -> Skipped | None:
        """Why rel cannot be reached: through a symlinked directory (classified like a file symlink), or
        unreadable; None when a directory on the way is missing or is now a file."""
        if blocked.error.errno in (errno.ENOTDIR, errno.ELOOP):
            parent, _, name = blocked.prefix.rpartition("/")
            try:
                mode = os.stat(name, dir_fd=self._directory(parent), follow_symlinks=False).st_mode
            except (OSError, _Blocked):
                mode = 0
            if stat.S_ISLNK(mode):
                return _classify_symlink(self.root, _printable(rel), blocked.prefix)
            return None
        if blocked.error.errno == errno.ENOENT:
            return None
        return Skipped(_printable(rel), SkipReason.UNREADABLE,
                       f"{_printable(blocked.prefix)}/: {blocked.error.strerror or blocked.error}")

    # --- listing without git ---

    def _walk_listing(self) -> dict[str, bool]:
        """Walk the tree without following symlinks, applying every .gitignore on the way down. Each directory
        is opened from its parent's descriptor; only those of the current path stay open."""
        try:
            with os.scandir(self._fd) as it:
                entries = list(it)
        except OSError as exc:
            raise RootUnavailable(f"{self.root}: cannot list the directory ({exc.strerror or exc})") from None
        files: dict[str, bool] = {}
        stack = [_visit("", self._fd, entries, [], files)]
        try:
            while stack:
                rel_dir, fd, specs, subdirs = stack[-1]
                if not subdirs:
                    stack.pop()
                    if fd != self._fd:
                        os.close(fd)
                    continue
                name = subdirs.pop()
                try:
                    child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                except OSError:  # unreadable, or no longer a directory: git skips it too
                    continue
                try:
                    with os.scandir(child) as it:
                        entries = list(it)
                except OSError:
                    os.close(child)
                    continue
                stack.append(_visit(f"{rel_dir}/{name}" if rel_dir else name, child, entries, specs, files))
        finally:
            for _, fd, _, _ in stack:
                if fd != self._fd:
                    os.close(fd)
        return files

    # --- classification ---

    def _classify(self, rel: str, tracked: bool, settings: Settings) -> Candidate | Skipped | None:
        """Decide from the name and lstat alone. None: not a file to report."""
        parent, _, name = rel.rpartition("/")
        try:
            st = os.stat(name, dir_fd=self._directory(parent), follow_symlinks=False)
        except _Blocked as blocked:
            reason = self._blocked(rel, blocked)
            if reason is not None:
                return reason
            return None if tracked else Skipped(_printable(rel), SkipReason.VANISHED, "deleted during discovery")
        except FileNotFoundError:
            # A tracked file deleted in the work tree is simply absent; anything else vanished under us.
            return None if tracked else Skipped(_printable(rel), SkipReason.VANISHED, "deleted during discovery")
        except OSError as exc:
            return Skipped(_printable(rel), SkipReason.UNREADABLE, exc.strerror or str(exc))

        if stat.S_ISDIR(st.st_mode):  # e.g. a tracked file replaced by a directory
            return None
        if _printable(rel) != rel:
            return Skipped(_printable(rel), SkipReason.BAD_FILENAME, "file name is not valid UTF-8")
        lowered = name.lower()
        if _SECRET_RE.match(lowered):
            return Skipped(rel, SkipReason.SECRET, f"name matches {_matching_pattern(lowered, SECRET_PATTERNS)}")
        if _GENERATED_RE.match(lowered):
            return Skipped(rel, SkipReason.GENERATED,
                           f"name matches {_matching_pattern(lowered, GENERATED_PATTERNS)}")
        if stat.S_ISLNK(st.st_mode):
            return _classify_symlink(self.root, rel, rel)
        if not stat.S_ISREG(st.st_mode):
            return Skipped(rel, SkipReason.NOT_REGULAR, _file_kind(st.st_mode))
        if st.st_size > settings.max_file_bytes:
            return Skipped(rel, SkipReason.TOO_LARGE, f"{st.st_size:,} bytes > {settings.max_file_bytes:,}")
        if st.st_size == 0:
            return Skipped(rel, SkipReason.EMPTY, "0 bytes")
        return Candidate(path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns)


def _open_directory(path: str) -> int:
    try:
        return os.open(path, _ROOT_FLAGS)
    except OSError as exc:
        raise RootUnavailable(f"{path}: cannot open the directory ({exc.strerror or exc})") from None


def _open_within(root: str, within: str) -> int:
    """Open root from `within` one component at a time, following no symlink."""
    if os.path.commonpath((root, within)) != within:
        raise RootUnavailable(f"{root} is not under the allowed root {within}")
    fd = _open_directory(within)
    for part in Path(root).relative_to(within).parts:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            raise RootUnavailable(
                f"{root}: {part!r} on the way from the allowed root {within} is no longer a plain directory "
                f"({exc.strerror or exc})") from None
        finally:
            os.close(fd)
        fd = child
    return fd


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
        why = " ".join(os.fsdecode(done.stderr).split()) or f"exit code {done.returncode}"
        raise RootUnavailable(f"{root}: git ls-files failed: {why}")
    return [os.fsdecode(p) for p in done.stdout.split(b"\0") if p]


def _git_listing(root: str) -> dict[str, bool]:
    """Map each path under root (relative to it) to whether git tracks it."""
    # Two calls instead of one `--cached --others` so that a tracked file missing from disk
    # (deleted in the work tree) can be told from one that vanished during discovery.
    listing = dict.fromkeys(_git_ls_files(root, "--cached"), True)
    listing.update(dict.fromkeys(_git_ls_files(root, "--others", "--exclude-standard"), False))
    # "dir/" entries are nested repositories and submodules; VCS metadata is never indexed.
    return {p: t for p, t in listing.items() if not p.endswith("/") and VCS_DIRS.isdisjoint(p.split("/")[:-1])}


_Frame = tuple[str, int, list[tuple[str, pathspec.GitIgnoreSpec]], list[str]]


def _visit(rel_dir: str, fd: int, entries: list[os.DirEntry[str]],
           specs: list[tuple[str, pathspec.GitIgnoreSpec]], files: dict[str, bool]) -> _Frame:
    """Record a directory's files in `files`; return its frame of the walk: (path, descriptor, the .gitignore
    specs in force, the subdirectories left to visit)."""
    spec = _read_gitignore(fd, entries)
    if spec is not None:
        specs = [*specs, (rel_dir, spec)]
    subdirs = []
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if (is_dir and entry.name in VCS_DIRS) or _ignored(rel, is_dir, specs):
            continue
        if is_dir:
            subdirs.append(entry.name)
        else:
            files[rel] = False
    return rel_dir, fd, specs, subdirs


def _read_gitignore(fd: int, entries: list[os.DirEntry[str]]) -> pathspec.GitIgnoreSpec | None:
    for entry in entries:
        if entry.name == ".gitignore" and entry.is_file(follow_symlinks=False):  # like git: no symlinks
            try:
                with open(os.open(entry.name, _FILE_FLAGS, dir_fd=fd), "rb") as f:
                    lines = f.read().decode("utf-8", "surrogateescape").splitlines()
            except OSError:
                return None
            # Python's re, not RE2 (which pathspec prefers once google-re2 is installed): RE2 takes only UTF-8, and
            # names and patterns that are not UTF-8 reach here as surrogate escapes
            return pathspec.GitIgnoreSpec.from_lines(lines, backend="simple")
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


def _classify_symlink(root: str, rel: str, link: str) -> Skipped:
    """rel is the link itself, or a path through `link`, a symlinked directory on the way to it."""
    via = "" if link == rel else f"{_printable(link)} "
    try:
        target = os.path.realpath(os.path.join(root, link), strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Skipped(rel, SkipReason.SYMLINK_LOOP, f"{via}symlink loop")
        return Skipped(rel, SkipReason.SYMLINK_BROKEN, f"{via}target: {exc.strerror or exc}")
    if target != root and not target.startswith(root + os.sep):
        return Skipped(rel, SkipReason.SYMLINK_OUTSIDE_ROOT, f"{via}-> {_printable(target)}")
    return Skipped(rel, SkipReason.SYMLINK_INSIDE_ROOT, f"{via}-> {_printable(os.path.relpath(target, root))}")


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
