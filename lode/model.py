"""Plain data passed between the pipeline stages. No behaviour beyond small derived properties."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

# The graph's edge kinds that queries walk and list (`contains` is structure, not a use); here so that the CLI's
# help can name them without importing the graph
EDGE_KINDS = ("calls", "imports", "inherits", "annotates", "decorates")
# A file's module node in the graph has the id (file_id << 20) | MODULE_ORDINAL (made by lode.graph.facts, joined
# on by the graph's queries in lode/store)
MODULE_ORDINAL = 0xFFFFF


class Mode(enum.StrEnum):
    """How a search finds its candidates. The values are what the CLI's --mode, REST's and MCP's `mode` take and
    what a result's `mode` says."""

    HYBRID = "hybrid"  # the lexical leg and both vector legs, fused
    LEXICAL = "lexical"  # BM25 only
    SEMANTIC = "semantic"  # the vector legs only


class SkipReason(str, enum.Enum):
    """Why a file was not indexed. Stored in the database; values are a stable contract."""

    SECRET = "secret"  # matches the secrets deny list (.env*, *.pem, ...)
    GENERATED = "generated"  # lock files, *.min.js, source maps
    NOT_REGULAR = "not_regular"  # FIFO, socket, device
    SYMLINK_OUTSIDE_ROOT = "symlink_outside_root"
    SYMLINK_BROKEN = "symlink_broken"
    SYMLINK_LOOP = "symlink_loop"
    SYMLINK_INSIDE_ROOT = "symlink_inside_root"  # its target is indexed under its own path
    BAD_FILENAME = "bad_filename"  # not valid UTF-8
    TOO_LARGE = "too_large"
    EMPTY = "empty"
    BINARY = "binary"
    MINIFIED = "minified"  # very long lines: minified or generated
    UNDECODABLE = "undecodable"
    UNREADABLE = "unreadable"  # permission denied or I/O error
    VANISHED = "vanished"  # deleted between listing and reading
    INDEX_TIMEOUT = "index_timeout"  # its worker ran past LODE_TIMEOUT_INDEX_FILE and was killed; retried next run
    WORKER_DIED = "worker_died"  # its worker process crashed (e.g. in a native parser); retried next run


@dataclass(frozen=True, slots=True)
class Skipped:
    path: str  # relative to the root, '/'-separated
    reason: SkipReason
    detail: str = ""
    # Set for files skipped after reading (binary, undecodable, ...), so an unchanged one is not read again.
    size: int | None = None
    mtime_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A regular file found by discovery, not yet read."""

    path: str  # relative to the root, '/'-separated
    size: int
    mtime_ns: int


CHUNK_KINDS = ("function", "method", "class", "struct", "interface", "trait", "enum", "module", "window")


@dataclass(slots=True)
class Chunk:
    """One searchable unit of a file: a definition, a part of one, module-level code or a line window."""

    kind: str  # one of CHUNK_KINDS
    name: str | None
    name_path: str | None  # qualified, e.g. "pkg.module.Class.method"
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    start_byte: int
    end_byte: int
    content: str  # the text that is searched and shown; class bodies elide their methods
    signature: str | None = None
    docstring: str | None = None
    content_hash: str = ""
    guard: str | None = None  # a definition under a module-level if/try/with: why it may not exist (chunker)


@dataclass(slots=True)
class ChunkedFile:
    """The result of chunking one file."""

    language: str
    chunks: list[Chunk]
    fallback: str | None = None  # why line windows were used: unsupported_language | parse_error | parse_timeout


@dataclass(slots=True)
class Hit:
    repo: str
    path: str
    start_line: int
    end_line: int
    kind: str
    name: str | None
    name_path: str | None
    language: str
    score: float
    legs: dict[str, Any] = field(default_factory=dict)  # ranks per leg; with ranking, the fused score and priors
    snippet: str = ""
    # [line, start, end] over the snippet (search/highlight.py)
    highlights: list[list[int]] = field(default_factory=list)
    snippet_line: int = 0  # the file's line number of the snippet's first line
    chunk_id: int = 0
