"""Exact and regular-expression search over the indexed files, as grep does (the MCP tool search_pattern).

Patterns run on RE2 (google-re2): matching takes time linear in the text, so no pattern can backtrack for ever,
and a pattern whose compiled program would exceed MAX_PROGRAM_BYTES is refused. The files are read from the
repository root, and only while their bytes are those indexed (a changed file is listed as stale, not searched),
so every match is one the index would cite. The whole search stops at LODE_TIMEOUT_PATTERN_SEARCH and says how
far it got.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]

from lode.errors import InputError

MAX_PATTERN_CHARS = 1000
MAX_PROGRAM_BYTES = 8 << 20  # RE2's memory budget for one compiled pattern
MAX_LINE_CHARS = 300  # a matching line longer than this is cut around the match


def compile_pattern(pattern: str, *, regex: bool, ignore_case: bool) -> Any:
    """The compiled pattern, or an InputError saying what is wrong with it."""
    if not pattern or len(pattern) > MAX_PATTERN_CHARS:
        raise InputError(f"the pattern needs 1 to {MAX_PATTERN_CHARS} characters")
    if "\x00" in pattern:
        raise InputError("the pattern contains a NUL character")
    options = re2.Options()
    options.log_errors = False  # the error reaches the caller instead of the server's stderr
    options.max_mem = MAX_PROGRAM_BYTES
    options.literal = not regex
    options.case_sensitive = not ignore_case
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InputError(f"invalid regular expression {pattern!r}: {reason} (RE2 syntax: no backreferences or "
                         f"lookaround; pass regex=false to match the text exactly)") from None


@dataclass(frozen=True, slots=True)
class LineMatch:
    line: int  # 1-based
    column: int  # 1-based, in code points
    text: str  # the line, cut to MAX_LINE_CHARS around the match


def matching_lines(compiled: Any, text: str) -> Iterator[LineMatch]:
    """The lines of `text` where the pattern matches, each once, at its first match on that line."""
    line, counted_to, last_line = 1, 0, 0
    for match in compiled.finditer(text):
        offset = match.start()
        line += text.count("\n", counted_to, offset)
        counted_to = offset
        if line == last_line:
            continue
        last_line = line
        start = text.rfind("\n", 0, offset) + 1
        end = text.find("\n", offset)
        whole = text[start:end if end >= 0 else len(text)].removesuffix("\r")
        column = offset - start
        first = max(0, min(column - MAX_LINE_CHARS // 3, len(whole) - MAX_LINE_CHARS))
        yield LineMatch(line, column + 1, whole[first:first + MAX_LINE_CHARS])


@dataclass
class PatternSearch:
    """Collects matches over files until `limit` matches or the deadline."""

    compiled: Any
    limit: int
    seconds: float

    def run(self, files: Iterable[tuple[str, str, str | None]], files_total: int) -> dict[str, Any]:
        """`files` yields (repo, path, text or None when the file is not as indexed)."""
        deadline = time.monotonic() + self.seconds
        matches: list[dict[str, Any]] = []
        stale: list[str] = []
        searched, truncated, timed_out = 0, False, False
        for repo, path, text in files:
            if time.monotonic() > deadline:
                timed_out = True
                break
            if text is None:
                stale.append(path)
                continue
            searched += 1
            for found in matching_lines(self.compiled, text):
                if len(matches) == self.limit:
                    truncated = True
                    break
                matches.append({"repo": repo, "path": path, "line": found.line, "column": found.column,
                                "text": found.text})
            if truncated:
                break
        return {"matches": matches, "files_searched": searched, "files_total": files_total, "stale": stale,
                "truncated": truncated, "timed_out": timed_out}
