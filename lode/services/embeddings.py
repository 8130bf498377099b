"""The embedding backfill of a repository (`lode embed`, the index runs' backfill, the queue's batches): which model
it uses, the switch to another one, and the counts done, pending and failed."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from lode.embedding.backfill import BackfillProgress, backfill, counts, pending_ranges, through_outages
from lode.errorlog import record_error
from lode.errors import InputError, LodeError
from lode.services.base import Service, repos_in_scope
from lode.store.repositories import RepoRow, Repositories
from lode.store.uow import unit_of_work
from lode.store.vectors import Vectors

if TYPE_CHECKING:
    from lode.embedding.base import Embedder

_BACKFILL_LOCK = 0x454D  # first key of pg_advisory_lock(int, int): one backfill per repository
_EMBED_BATCH_LOCK = 0x4542  # first key: one worker per batch of a shared backfill (second key: a hash of it)


class EmbeddingService(Service):
    def embed(
        self, repo: str, *, switch: bool = False, on_progress: Callable[[BackfillProgress], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> BackfillProgress:
        """Fill a repository's pending vectors with the configured model (resumable), holding its backfill lock.

        switch=True re-embeds a repository built with another model: the old vectors serve searches until the
        new ones are complete, then one transaction switches over and drops the old ones.
        """
        row = self._repo(repo)
        with _embedding_errors(repo):
            embedder, model = self._model(row, switch, should_stop)
            with self.db.advisory_lock(_BACKFILL_LOCK, row.id, wait=0) as held:
                if not held:
                    return counts(self.db, row.id, model)  # another process is filling this repository
                progress = backfill(self.db, embedder, row.id, model, on_progress, should_stop,
                                    outage_wait=self.settings.embedding.outage_wait_seconds)
        self.finish(row.id, model, progress)
        return progress

    def plan(self, repo: str, batch_chunks: int,
             should_stop: Callable[[], bool] = lambda: False) -> tuple[int, int, list[tuple[int, int]]]:
        """(repository id, model, ranges of chunk ids): the pending backfill split into batches of `batch_chunks`
        chunks that any number of workers can share (see embed_range)."""
        row = self._repo(repo)
        with _embedding_errors(repo):
            _, model = self._model(row, False, should_stop)
        return row.id, model, pending_ranges(self.db, row.id, model, batch_chunks)

    def embed_range(self, repo_id: int, model: int, first: int, last: int, *, wait: float | None,
                    should_stop: Callable[[], bool] = lambda: False) -> bool:
        """Embed the pending chunks of one batch (ids first..last) under the batch's advisory lock, waiting up to
        `wait` seconds for it; False if another worker held it. Running a batch twice is harmless: the second
        run finds nothing pending."""
        embedder = self._embedder()
        key = zlib.crc32(f"{repo_id}:{model}:{first}".encode()) & 0x7FFFFFFF
        with _embedding_errors(str(repo_id)), self.db.advisory_lock(_EMBED_BATCH_LOCK, key, wait) as held:
            if held:
                backfill(self.db, embedder, repo_id, model, should_stop=should_stop,
                         outage_wait=self.settings.embedding.outage_wait_seconds, first=first, last=last)
        return held

    def finish(self, repo_id: int, model: int, progress: BackfillProgress | None = None) -> BackfillProgress:
        """The repository's counts; once nothing is pending, a model switch takes effect."""
        progress = progress or counts(self.db, repo_id, model)
        if progress.pending == 0:
            with self.db.connection() as conn:
                serving = Repositories(conn).serving_model(repo_id)
            if serving not in (None, model):
                self._switch_over(repo_id, model)
        return progress

    def counts(self, repo: str) -> BackfillProgress:
        """The repository's embeddings done, pending and failed, with the model it is switching to if any."""
        with self.db.connection() as conn:
            row = repos_in_scope(conn, repo)[0]
            return BackfillProgress(**Vectors(conn).counts(row.id, row.next_embedding_model or row.embedding_model))

    def _repo(self, repo: str) -> RepoRow:
        with self.db.connection() as conn:
            return repos_in_scope(conn, repo)[0]

    def _embedder(self) -> Embedder:
        embedder = self.lode.embedder
        if embedder is None:
            raise InputError("no embedding provider: LODE_EMBEDDER is 'none'")
        return embedder

    def _model(self, row: RepoRow, switch: bool, should_stop: Callable[[], bool]) -> tuple[Embedder, int]:
        embedder = self._embedder()
        through_outages(lambda: embedder.dimension, embedder.model_id,  # may probe the provider
                        self.settings.embedding.outage_wait_seconds, should_stop)
        return embedder, self._claim_model(row, embedder, switch)

    def _claim_model(self, row: RepoRow, embedder: Embedder, switch: bool) -> int:
        """Register the provider's model; refuse to mix it into a repository built with another one."""
        with unit_of_work(self.db) as uow:
            model = uow.vectors.register_model(embedder.model_id, embedder.dimension)
            if row.embedding_model in (None, model):
                if row.embedding_model is None:
                    uow.repos.set_embedding_models(row.id, model, None)
                return model
            if row.next_embedding_model == model:
                return model
            if not switch:
                serving = uow.vectors.models()[row.embedding_model][0]
                raise InputError(
                    f"repository {row.name!r} was embedded with {serving}, but the configured model is "
                    f"{embedder.model_id}; run `lode embed --repo {row.name} --switch` to re-embed (the old "
                    "vectors keep serving until the new ones are complete)"
                )
            uow.repos.set_embedding_models(row.id, row.embedding_model, model)
            return model

    def _switch_over(self, repo_id: int, model: int) -> None:
        with unit_of_work(self.db) as uow:
            old = uow.repos.serving_model(repo_id, for_update=True)
            uow.repos.set_embedding_models(repo_id, model, None)
            if old is not None and old != model:
                uow.vectors.delete_repository_model(repo_id, old)


@contextmanager
def _embedding_errors(repo: str) -> Iterator[None]:
    """A provider that gives up ends the backfill with a LodeError; what is left stays pending."""
    from lode.embedding.base import EmbeddingError

    try:
        yield
    except EmbeddingError as exc:
        record_error("embedding.backfill", exc, severity="error", category="embedding",
                     context={"repo": repo, "stage": "gave up; chunks stay pending"})
        raise LodeError(f"embedding stopped; the chunks left stay pending: {exc}") from exc
