"""The core that every interface shares: the CLI, the REST API and the MCP server call this and nothing below it."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg

from lode.config import Settings, get_settings
from lode.discover import RootError, ensure_indexable_root
from lode.errors import InputError, LodeError, NotFound
from lode.indexer import Indexer, IndexReport, ProgressCallback
from lode.model import Hit
from lode.search import lexical
from lode.search.filters import Filters
from lode.search.tokens import tokenize
from lode.store.db import Database
from lode.store.repositories import IndexRuns, RepoRow, Repositories, SkippedFiles
from lode.store.uow import unit_of_work

MODES = ("hybrid", "lexical", "semantic")
MAX_QUERY_CHARS = 2000
MAX_K = 200
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Lode:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            url = self.settings.database_url
            if not url:
                from lode.store import embedded

                url = embedded.start(self.settings.home)
            self._db = Database(url, self.settings).open()
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Lode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- indexing -------------------------------------------------------------------------------------

    def index(self, path: str | Path, repo: str | None = None, on_progress: ProgressCallback | None = None) -> IndexReport:
        try:
            root = ensure_indexable_root(Path(path))
        except RootError as exc:
            raise InputError(str(exc)) from exc
        name = repo or _default_repo_name(root)
        _check_repo_name(name)
        with self.db.connection() as conn:
            existing = Repositories(conn).get(name)
        if existing and Path(existing.root) != root:
            raise InputError(
                f"repository {name!r} is indexed from {existing.root}; pass --repo to index {root} under another name"
            )
        report = Indexer(self.db, self.settings).run(root, name, on_progress)
        with self.db.connection() as conn:
            row = Repositories(conn).get(name)
        report.chunks = row.chunk_count if row else 0
        return report

    # ---- queries --------------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        repo: str | None = None,
        mode: str = "hybrid",
        k: int = 10,
        languages: tuple[str, ...] = (),
        path: str | None = None,
        kinds: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        _check_query(query)
        if mode not in MODES:
            raise InputError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not 1 <= k <= MAX_K:
            raise InputError(f"-k must be between 1 and {MAX_K}")
        if mode == "semantic":
            raise LodeError("semantic search needs an embedding index, which this index does not have yet")
        filters = Filters(languages=languages, kinds=kinds, path_glob=path)
        filters.sql("c")  # validates the glob before any database work
        degraded = ["text", "code"] if mode == "hybrid" else []
        with self.db.connection() as conn, conn.transaction():
            repos = self._repos_for(conn, repo)
            if not repos:
                return {"query": query, "mode": mode, "degraded": degraded, "hits": []}
            conn.execute(f"SET LOCAL statement_timeout = {int(self.settings.timeouts.lexical_search * 1000)}")
            try:
                ranked = lexical.search(
                    conn, query, [r.id for r in repos], sum(r.chunk_count for r in repos),
                    sum(r.total_length for r in repos), filters, k,
                )
            except psycopg.errors.QueryCanceled as exc:
                raise LodeError(
                    f"lexical search timed out after {self.settings.timeouts.lexical_search}s "
                    "(LODE_TIMEOUT_LEXICAL_SEARCH)"
                ) from exc
            hits = self._hits(conn, ranked, {r.id: r.name for r in repos}, query)
        return {"query": query, "mode": mode, "degraded": degraded, "hits": [_hit_json(h) for h in hits]}

    def symbols(self, name: str, *, repo: str | None = None, limit: int = 20) -> dict[str, Any]:
        name = name.strip()
        if not name or len(name) > 500:
            raise InputError("a symbol name needs 1 to 500 characters")
        if not 1 <= limit <= MAX_K:
            raise InputError(f"--limit must be between 1 and {MAX_K}")
        last = name.rsplit(".", 1)[-1]  # every match, exact or qualified, ends with this name
        suffix = "%." + name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params = {"name": name, "last": last, "suffix": suffix, "limit": limit}
        with self.db.connection() as conn, conn.transaction():
            params["repos"] = [r.id for r in self._repos_for(conn, repo)]
            conn.execute(f"SET LOCAL statement_timeout = {int(self.settings.timeouts.symbol_lookup * 1000)}")
            rows = conn.execute(
                """SELECT r.name, c.path, min(c.start_line), max(c.end_line), c.kind, c.name, c.name_path,
                          c.language, min(c.signature),
                          min(CASE WHEN c.name_path = %(name)s THEN 0 WHEN c.name = %(name)s THEN 1
                                   WHEN lower(c.name) = lower(%(name)s) THEN 2 ELSE 3 END) AS rank
                     FROM chunks c JOIN repositories r ON r.id = c.repo_id
                    WHERE lower(c.name) = lower(%(last)s) AND c.repo_id = ANY(%(repos)s)
                      AND (lower(c.name) = lower(%(name)s) OR c.name_path = %(name)s
                           OR c.name_path LIKE %(suffix)s)
                    GROUP BY r.name, c.path, c.kind, c.name, c.name_path, c.language
                    ORDER BY rank, r.name, c.path, min(c.start_line)
                    LIMIT %(limit)s""",
                params,
            ).fetchall()
            suggestions: list[str] = []
            if not rows:  # a miss: suggest close names (a scan, only on this path)
                suggestions = [
                    row[0]
                    for row in conn.execute(
                        """SELECT name_path FROM chunks
                            WHERE repo_id = ANY(%(repos)s) AND name_path IS NOT NULL AND similarity(name, %(last)s) > 0.5
                            GROUP BY name_path ORDER BY max(similarity(name, %(last)s)) DESC, name_path LIMIT 10""",
                        params,
                    )
                ]
        keys = ("repo", "path", "start_line", "end_line", "kind", "name", "name_path", "language", "signature")
        return {
            "query": name,
            "symbols": [dict(zip(keys, row[:9])) for row in rows],
            "suggestions": suggestions,
        }

    # ---- repositories and status ------------------------------------------------------------------------

    def repositories(self) -> list[dict[str, Any]]:
        with self.db.connection() as conn:
            return [_repo_json(row) for row in Repositories(conn).all()]

    def remove_repository(self, name: str) -> None:
        with unit_of_work(self.db) as uow:
            row = uow.repos.get(name, for_update=True)
            if row is None:
                raise NotFound(f"no repository named {name!r}")
            uow.repos.delete(row.id)

    def status(self, repo: str | None = None, *, skipped: bool = False) -> dict[str, Any]:
        out = []
        with self.db.connection() as conn:
            for row in self._repos_for(conn, repo):
                files, fallbacks = conn.execute(
                    "SELECT count(*), count(fallback) FROM files WHERE repo_id = %s", (row.id,)
                ).fetchone()  # type: ignore[misc]
                languages = dict(conn.execute(
                    "SELECT language, count(*) FROM files WHERE repo_id = %s GROUP BY 1 ORDER BY 2 DESC", (row.id,)
                ).fetchall())
                skipped_rows = SkippedFiles(conn).all(row.id)
                by_reason: dict[str, int] = {}
                for item in skipped_rows:
                    by_reason[item.reason.value] = by_reason.get(item.reason.value, 0) + 1
                entry = _repo_json(row) | {
                    "files": files,
                    "files_with_fallback": fallbacks,
                    "languages": languages,
                    "skipped": by_reason,
                    "empty": row.chunk_count == 0,
                    "last_run": IndexRuns(conn).latest(row.id),
                    "embeddings": {"done": 0, "pending": 0, "failed": 0},
                }
                if skipped:
                    entry["skipped_files"] = [
                        {"path": s.path, "reason": s.reason.value, "detail": s.detail} for s in skipped_rows
                    ]
                out.append(entry)
        return {"repos": out}

    # ---- helpers ----------------------------------------------------------------------------------------

    def _repos_for(self, conn: psycopg.Connection, name: str | None) -> list[RepoRow]:
        repos = Repositories(conn)
        if name is None:
            return repos.all()
        row = repos.get(name)
        if row is None:
            raise NotFound(f"no repository named {name!r}; `lode repos` lists them")
        return [row]

    def _hits(self, conn: psycopg.Connection, ranked: list[tuple[int, float]], repo_names: dict[int, str],
              query: str) -> list[Hit]:
        if not ranked:
            return []
        rows = conn.execute(
            """SELECT id, repo_id, path, start_line, end_line, kind, name, name_path, language, content
                 FROM chunks WHERE id = ANY(%s)""",
            ([cid for cid, _ in ranked],),
        ).fetchall()
        by_id = {row[0]: row for row in rows}
        terms = set(tokenize(query))
        hits = []
        for rank, (chunk_id, score) in enumerate(ranked, start=1):
            row = by_id.get(chunk_id)
            if row is None:  # replaced between the two statements
                continue
            _, repo_id, path, start, end, kind, name, name_path, language, content = row
            hits.append(Hit(
                repo=repo_names[repo_id], path=path, start_line=start, end_line=end, kind=kind, name=name,
                name_path=name_path, language=language, score=round(score, 6),
                legs={"lexical": rank, "text": None, "code": None}, snippet=snippet(content, terms),
                chunk_id=chunk_id,
            ))
        return hits


def snippet(content: str, terms: set[str], lines: int = 6) -> str:
    """The window of `lines` lines that mentions the most query terms (stems match as substrings)."""
    all_lines = content.splitlines()
    if len(all_lines) <= lines:
        return content.rstrip()
    scores = [sum(term in line for term in terms) for line in content.lower().splitlines()]
    best = max(range(len(all_lines) - lines + 1), key=lambda i: (sum(scores[i : i + lines]), -i))
    return "\n".join(all_lines[best : best + lines])


def _check_query(query: str) -> None:
    if not query or not query.strip():
        raise InputError("the query is empty")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    if "\x00" in query:
        raise InputError("the query contains a NUL character")


def _default_repo_name(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.name).strip("-.") or "root"
    return name[:128]


def _check_repo_name(name: str) -> None:
    if not _REPO_NAME.match(name):
        raise InputError(f"invalid repository name {name!r}: use letters, digits, '.', '_' and '-' (max 128)")


def _repo_json(row: RepoRow) -> dict[str, Any]:
    return {
        "repo": row.name, "root": row.root, "generation": row.generation, "chunks": row.chunk_count,
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
    }


def _hit_json(hit: Hit) -> dict[str, Any]:
    out = asdict(hit)
    out.pop("chunk_id")
    return out
