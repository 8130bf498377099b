"""Reads of the chunks by name and by path: the symbol table behind `lode symbols`, a file's outline and the
indexed text of a line range. Like the other store classes: SQL over one connection, never a commit."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(slots=True)
class SymbolMatch:
    """A definition found by name; a definition split over several chunks (a long class) is one match."""

    repo: str
    path: str
    start_line: int
    end_line: int
    kind: str
    name: str | None
    name_path: str | None
    language: str
    signature: str | None
    docstring: str | None


@dataclass(slots=True)
class OutlineEntry:
    path: str
    start_line: int
    end_line: int
    kind: str
    name: str | None
    name_path: str | None
    signature: str | None


def like_escaped(text: str) -> str:
    """`text` matched literally by LIKE (its default escape character is the backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Symbols:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def lookup(self, name: str, repo_ids: list[int], limit: int) -> list[SymbolMatch]:
        """Definitions named `name` exactly, case-insensitively, or as the tail of a qualified name (`a.b` finds
        `x.a.b`), best kind of match first."""
        last = name.rsplit(".", 1)[-1]  # every match, exact or qualified, ends with this name
        params = {"name": name, "last": last, "suffix": "%." + like_escaped(name), "limit": limit,
                  "repos": repo_ids}
        with self.conn.cursor(row_factory=class_row(SymbolMatch)) as cur:
            return cur.execute(
                """SELECT repo, path, start_line, end_line, kind, name, name_path, language, signature, docstring
                     FROM (SELECT r.name AS repo, c.path, min(c.start_line) AS start_line,
                                  max(c.end_line) AS end_line, c.kind, c.name, c.name_path, c.language,
                                  min(c.signature) AS signature, min(c.docstring) AS docstring,
                                  min(CASE WHEN c.name_path = %(name)s THEN 0 WHEN c.name = %(name)s THEN 1
                                           WHEN lower(c.name) = lower(%(name)s) THEN 2 ELSE 3 END) AS rank
                             FROM chunks c JOIN repositories r ON r.id = c.repo_id
                            WHERE lower(c.name) = lower(%(last)s) AND c.repo_id = ANY(%(repos)s)
                              AND (lower(c.name) = lower(%(name)s) OR c.name_path = %(name)s
                                   OR c.name_path LIKE %(suffix)s)
                            GROUP BY r.name, c.path, c.kind, c.name, c.name_path, c.language) found
                    ORDER BY rank, repo, path, start_line
                    LIMIT %(limit)s""",
                params,
            ).fetchall()

    def similar_names(self, name: str, repo_ids: list[int], limit: int = 10) -> list[str]:
        """Qualified names whose last part is close to `name`'s (trigram similarity): a scan, for a miss only."""
        last = name.rsplit(".", 1)[-1]
        rows = self.conn.execute(
            """SELECT name_path FROM chunks
                WHERE repo_id = ANY(%(repos)s) AND name_path IS NOT NULL AND similarity(name, %(last)s) > 0.5
                GROUP BY name_path ORDER BY max(similarity(name, %(last)s)) DESC, name_path LIMIT %(limit)s""",
            {"repos": repo_ids, "last": last, "limit": limit},
        )
        return [row[0] for row in rows]

    def outline(self, repo_id: int, path: str, skipped_kinds: list[str], limit: int) -> list[OutlineEntry]:
        """The named chunks of the file `path`, or of every file below the folder `path` ("" for all), in path
        and line order, `limit` at most; chunks of one definition are one entry."""
        params = {"repo": repo_id, "path": path, "below": _below(path), "limit": limit, "skip": skipped_kinds}
        with self.conn.cursor(row_factory=class_row(OutlineEntry)) as cur:
            return cur.execute(
                """SELECT path, min(start_line) AS start_line, max(end_line) AS end_line, kind, name, name_path,
                          min(signature) AS signature
                     FROM chunks
                    WHERE repo_id = %(repo)s AND (path = %(path)s OR path LIKE %(below)s)
                      AND name IS NOT NULL AND kind <> ALL(%(skip)s)
                    GROUP BY path, kind, name, name_path
                    ORDER BY path, min(start_line), max(end_line) DESC
                    LIMIT %(limit)s""",
                params,
            ).fetchall()

    def files_under(self, repo_id: int, path: str) -> int:
        """Indexed files that are `path` or below the folder `path`."""
        row = self.conn.execute(
            "SELECT count(*) FROM files WHERE repo_id = %(repo)s AND (path = %(path)s OR path LIKE %(below)s)",
            {"repo": repo_id, "path": path, "below": _below(path)},
        ).fetchone()
        return int(row[0]) if row else 0

    def source(self, repo_id: int, path: str, start_line: int, end_line: int) -> list[str]:
        """The indexed text of the chunks within lines start_line..end_line of a file, in order, leaving out a
        chunk that overlaps an earlier one (a method inside its class's chunk, an overlapping window)."""
        parts, end = [], -1
        for text, start_byte, end_byte in self.conn.execute(
            """SELECT content, start_byte, end_byte FROM chunks
                WHERE repo_id = %s AND path = %s AND start_line >= %s AND end_line <= %s
                ORDER BY start_byte, end_byte DESC""",
            (repo_id, path, start_line, end_line),
        ):
            if start_byte >= end:
                parts.append(text)
                end = end_byte
        return parts


def _below(path: str) -> str:
    """The LIKE pattern of the paths below the folder `path`; every path for ""."""
    return like_escaped(path) + "/%" if path else "%"
