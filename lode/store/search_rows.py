"""The chunk rows a search reads after its legs: what the ranking priors read of each candidate, and what a hit
shows. Like the other store classes: SQL over one connection, never a commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from lode.search.filters import Filters

# (id, repo_id, path, kind, name, name_path, start_line, end_line)
CandidateRow = tuple[int, int, str, str, str | None, str | None, int, int]
# (id, repo_id, path, start_line, end_line, kind, name, name_path, language, content)
HitRow = tuple[int, int, str, int, int, str, str | None, str | None, str, str]


@dataclass(frozen=True)
class Injections:
    """The chunks a query names that its legs may have missed: definitions of its identifiers (`names`, lower
    case, of `definition_kinds`, at most `definitions_limit`) and chunks of the files it names (`paths`, at most
    `paths_limit`)."""

    names: Sequence[str] = ()
    definition_kinds: Sequence[str] = ()
    definitions_limit: int = 0
    paths: Sequence[str] = ()
    paths_limit: int = 0


class SearchRows:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def candidates(self, ids: Sequence[int], repo_ids: Sequence[int], filters: Filters, injections: Injections
                   ) -> tuple[dict[int, CandidateRow], dict[int, tuple[CandidateRow, str]]]:
        """The rows of the chunks `ids`, and the injected chunks with why ('definition' or 'frame'), the first
        reason of a chunk injected twice. One statement: a round trip costs more than these index lookups."""
        columns = "c.id, c.repo_id, c.path, c.kind, c.name, c.name_path, c.start_line, c.end_line"
        parts = [f"SELECT {columns}, NULL FROM chunks c WHERE c.id = ANY(%(ids)s)"]
        where, params = filters.sql("c")
        params.update(ids=list(ids), repos=list(repo_ids))
        if injections.names:
            params.update(names=list(injections.names), def_kinds=list(injections.definition_kinds))
            parts.append(f"""(SELECT {columns}, 'definition' FROM chunks c
                               WHERE lower(c.name) = ANY(%(names)s) AND c.repo_id = ANY(%(repos)s)
                                 AND c.kind = ANY(%(def_kinds)s) AND {where}
                               ORDER BY c.id LIMIT {int(injections.definitions_limit)})""")
        if injections.paths:
            params["paths"] = list(injections.paths)
            parts.append(f"""(SELECT {columns}, 'frame' FROM chunks c
                               WHERE c.path = ANY(%(paths)s) AND c.repo_id = ANY(%(repos)s) AND {where}
                               ORDER BY c.id LIMIT {int(injections.paths_limit)})""")
        rows: dict[int, CandidateRow] = {}
        injected: dict[int, tuple[CandidateRow, str]] = {}
        for *row, why in self.conn.execute(" UNION ALL ".join(parts), params):
            if why is None:
                rows[row[0]] = tuple(row)  # the columns selected above
            else:
                injected.setdefault(row[0], (tuple(row), why))
        return rows, injected

    def passing(self, ids: Sequence[int], filters: Filters) -> set[int]:
        """The chunks of `ids` that pass the filters."""
        where, params = filters.sql("c")
        return {row[0] for row in self.conn.execute(
            f"SELECT c.id FROM chunks c WHERE c.id = ANY(%(ids)s) AND {where}", {"ids": list(ids), **params})}

    def hits(self, ids: Sequence[int]) -> dict[int, HitRow]:
        """The rows of the chunks `ids` that still exist, by id."""
        if not ids:
            return {}
        rows = self.conn.execute(
            """SELECT id, repo_id, path, start_line, end_line, kind, name, name_path, language, content
                 FROM chunks WHERE id = ANY(%s)""",
            (list(ids),),
        ).fetchall()
        return {row[0]: row for row in rows}
