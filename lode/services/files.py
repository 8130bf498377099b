"""The text of indexed files: lines of a file, the indexed text of a line range, a file's or folder's outline, and
lines that match a pattern. A file is read only while its bytes are those indexed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lode.config import Settings
from lode.discover import RootUnavailable, SourceTree
from lode.errors import InputError, NotFound
from lode.model import Candidate, Skipped
from lode.search.filters import Filters
from lode.search.pattern import PatternSearch, compile_pattern
from lode.services.base import RepoScope, Service, check_text, repos_in_scope
from lode.store.repositories import FileRow, Files
from lode.store.symbols import Symbols

LAST_LINE = 2**31 - 1  # past the end of any file (line numbers are PostgreSQL integers)
MAX_OUTLINE = 2000  # definitions in one outline
MAX_GREP_MATCHES = 1000
OUTLINE_SKIPPED_KINDS = ("window", "module")  # text windows and whole-module chunks are not definitions


class FileService(Service):
    def source(self, repo: str, path: str, start_line: int, end_line: int) -> str:
        """The indexed text of the chunks within lines start_line..end_line of a file, in order; a chunk that
        overlaps an earlier one (a method inside its class's chunk, an overlapping window) is left out."""
        with self.db.connection() as conn:
            row = repos_in_scope(conn, repo)[0]
            return "\n".join(Symbols(conn).source(row.id, path, start_line, end_line))

    def lines(self, repo: str, path: str, start_line: int = 1, end_line: int | None = None) -> dict[str, Any]:
        """Lines start_line..end_line (1-based, inclusive; to the end when None) of an indexed file.

        Read from the file while its bytes are still those indexed (origin "file": the file's lines, numbered as
        the index numbers them), so that nothing is served that the index does not hold. Otherwise (changed, gone
        or unreadable since) the indexed text of the chunks in that range (origin "index", with the reason): a
        chunk elides the bodies of nested definitions, so those lines are not the file's."""
        check_text("the path", path)
        if start_line < 1 or (end_line is not None and end_line < start_line):
            raise InputError(f"the lines must satisfy 1 <= start_line <= end_line, not {start_line}..{end_line}")
        with self.db.read() as conn:
            row = repos_in_scope(conn, repo)[0]
            indexed = Files(conn).get(row.id, path)
        if indexed is None:
            raise NotFound(f"{path!r} is not an indexed file of repository {repo!r}")
        text, stale = _indexed_file_text(row.root, indexed, self.settings)
        if text is None:
            indexed_text = self.source(repo, path, start_line, end_line or LAST_LINE)
            lines = indexed_text.split("\n") if indexed_text else []
        else:
            every = [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")]
            if start_line > len(every):
                raise InputError(f"{path} has {len(every)} lines; start_line {start_line} is past its end")
            lines = every[start_line - 1:end_line]
        return {"repo": row.name, "path": path, "absolute_path": str(Path(row.root) / path),
                "start_line": start_line, "end_line": start_line + len(lines) - 1,
                "origin": "index" if text is None else "file", "stale": stale, "lines": lines}

    def outline(self, repo: str, path: str = "", limit: int = MAX_OUTLINE) -> dict[str, Any]:
        """The definitions (name, kind, signature, lines) of an indexed file, or of every indexed file below a
        folder ("" for the whole repository), in path and line order; a definition split over several chunks
        (a long class) is one entry."""
        path = path.strip().strip("/")
        check_text("the path", path)
        if not 1 <= limit <= MAX_OUTLINE:
            raise InputError(f"the limit must be between 1 and {MAX_OUTLINE}")
        with self.db.read(self.settings.timeouts.symbol_lookup) as conn:
            row = repos_in_scope(conn, repo)[0]
            entries = Symbols(conn).outline(row.id, path, list(OUTLINE_SKIPPED_KINDS), limit + 1)
            files = Symbols(conn).files_under(row.id, path)
        if not files:
            raise NotFound(f"{path!r} is neither an indexed file nor a folder of indexed files of repository "
                           f"{row.name!r}")
        return {"repo": row.name, "path": path, "files": files, "truncated": len(entries) > limit,
                "symbols": [asdict(entry) for entry in entries[:limit]]}

    def grep(self, pattern: str, *, repo: RepoScope = None, regex: bool = False,
             ignore_case: bool = False, path: str | None = None, languages: tuple[str, ...] = (),
             limit: int = 100) -> dict[str, Any]:
        """Lines of the indexed files that match a pattern, exactly or as an RE2 regular expression
        (lode/search/pattern.py), read from the files while their bytes are those indexed."""
        compiled = compile_pattern(pattern, regex=regex, ignore_case=ignore_case)
        if not 1 <= limit <= MAX_GREP_MATCHES:
            raise InputError(f"the limit must be between 1 and {MAX_GREP_MATCHES}")
        for label, values in (("the path glob", (path,) if path else ()), ("the language", languages)):
            for value in values:
                check_text(label, value)
        filters = Filters(languages=languages, path_glob=path)
        filters.sql("f")  # validates the glob before any database work
        with self.db.read() as conn:
            repos = {r.id: r for r in repos_in_scope(conn, repo)}
            indexed = Files(conn).matching(list(repos), filters)

        def texts() -> Iterator[tuple[str, str, str | None]]:
            with ExitStack() as roots:
                trees: dict[int, SourceTree | None] = {}
                for repo_id, indexed_file in indexed:
                    if repo_id not in trees:  # one open root per repository; None when it cannot be opened
                        try:
                            trees[repo_id] = roots.enter_context(SourceTree(repos[repo_id].root))
                        except (OSError, RootUnavailable):
                            trees[repo_id] = None
                    tree = trees[repo_id]
                    text = None if tree is None else _indexed_text_in(tree, indexed_file, self.settings)[0]
                    yield repos[repo_id].name, indexed_file.path, text

        search = PatternSearch(compiled, limit, self.settings.timeouts.pattern_search)
        return {"pattern": pattern, "regex": regex, "ignore_case": ignore_case} | search.run(texts(), len(indexed))


def _indexed_file_text(root: str, indexed: FileRow, settings: Settings) -> tuple[str | None, str | None]:
    """The file's text if its bytes are still those indexed (read below the root without following a symlink),
    else None and why not."""
    try:
        with SourceTree(root) as tree:
            return _indexed_text_in(tree, indexed, settings)
    except (OSError, RootUnavailable) as exc:
        return None, f"the repository root cannot be opened: {exc}"


def _indexed_text_in(tree: SourceTree, indexed: FileRow, settings: Settings) -> tuple[str | None, str | None]:
    """As _indexed_file_text, in a root already open (many files of one repository)."""
    try:
        read = tree.read(Candidate(indexed.path, indexed.size, indexed.mtime_ns), settings)
    except (OSError, RootUnavailable) as exc:
        return None, f"the file cannot be read now: {exc}"
    if isinstance(read, Skipped):
        return None, f"the file cannot be read now: {read.detail or read.reason}"
    if read.content_hash != indexed.content_hash:
        return None, "the file changed since it was indexed"
    return read.text, None
