"""The indexed repositories: the list, their status (files, languages, skipped files, embeddings, graph), the
files of one, and removing one."""

from __future__ import annotations

from typing import Any

from lode.errors import NotFound
from lode.store.graph import GraphStore
from lode.services.base import RepoScope, Service, repos_in_scope
from lode.store.repositories import FileRow, Files, IndexRuns, RepoRow, Repositories, SkippedFiles
from lode.store.uow import unit_of_work
from lode.store.vectors import Vectors


class RepositoryService(Service):
    def all(self) -> list[dict[str, Any]]:
        with self.db.connection() as conn:
            return [_repo_json(row) for row in Repositories(conn).all()]

    def remove(self, name: str) -> None:
        with unit_of_work(self.db) as uow:
            row = uow.repos.get(name, for_update=True)
            if row is None:
                raise NotFound(f"no repository named {name!r}")
            uow.delete_repository(row.id)

    def status(self, repo: RepoScope = None, *, skipped: bool = False) -> dict[str, Any]:
        out = []
        with self.db.connection() as conn:
            models = Vectors(conn).models()

            def model_name(model: int | None) -> str | None:
                return None if model is None else models[model][0]

            for row in repos_in_scope(conn, repo):
                files = Files(conn).summary(row.id)
                skipped_rows = SkippedFiles(conn).all(row.id)
                by_reason: dict[str, int] = {}
                for item in skipped_rows:
                    by_reason[item.reason.value] = by_reason.get(item.reason.value, 0) + 1
                entry = _repo_json(row) | {
                    "files": files.files,
                    "files_with_fallback": files.with_fallback,
                    "languages": files.languages,
                    "skipped": by_reason,
                    "empty": row.chunk_count == 0,
                    "last_run": IndexRuns(conn).latest(row.id),
                    "embeddings": Vectors(conn).counts(row.id, row.next_embedding_model or row.embedding_model),
                    "embedding_model": model_name(row.embedding_model),
                    "switching_to": model_name(row.next_embedding_model),
                    "graph": {"enabled": self.settings.graph, **GraphStore(conn).summary(row.id)},
                }
                if skipped:
                    entry["skipped_files"] = [
                        {"path": s.path, "reason": s.reason.value, "detail": s.detail} for s in skipped_rows
                    ]
                out.append(entry)
        return {"repos": out}

    def indexed_files(self, repo: str, limit: int) -> list[FileRow]:
        """A repository's first `limit` indexed files in path order; none when there is no such repository."""
        with self.db.read() as conn:
            row = Repositories(conn).get(repo)
            return [] if row is None else Files(conn).first_by_path(row.id, limit)


def _repo_json(row: RepoRow) -> dict[str, Any]:
    return {
        "repo": row.name, "root": row.root, "generation": row.generation, "chunks": row.chunk_count,
        "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat(),
    }
