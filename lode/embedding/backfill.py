"""The embedding backfill: fills the vectors of pending chunks in batches, resumable after any crash.

Pending means "no vector and no recorded failure for the serving model", so a killed backfill simply finds
the same chunks pending again. Identical views are embedded once: vectors are cached by (model, view hash).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from lode import errorlog
from lode.embedding.base import BREAKER, Embedder, EmbedResult, ProviderUnavailable
from lode.resilience import CircuitBreakerError, find_breaker, wait_for_recovery
from lode.embedding.views import code_view, text_view, view_hash
from lode.store.db import Database
from lode.store.uow import unit_of_work
from lode.store.vectors import ChunkVectors, Vectors

log = logging.getLogger(__name__)

BATCH = 128
T = TypeVar("T")


@dataclass(slots=True)
class BackfillProgress:
    done: int
    pending: int
    failed: int


def backfill(
    db: Database,
    embedder: Embedder,
    repo_id: int,
    model: int,
    on_progress: Callable[[BackfillProgress], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    outage_wait: float = 0.0,
    first: int = 0,
    last: int | None = None,
) -> BackfillProgress:
    """Embed every pending chunk of a repository with `model` (only ids first..last when given: one batch of a
    backfill shared by several workers); return the final counts.

    While the provider is down the backfill waits for its circuit breaker to let a probe through and carries
    on (up to `outage_wait` seconds per outage); past that, ProviderUnavailable propagates and the chunks left
    stay pending for the next run."""
    after = first - 1
    while not should_stop():
        with db.connection() as conn:
            batch = [c for c in Vectors(conn).pending(repo_id, model, BATCH, after) if last is None or c.id <= last]
        if not batch:
            break
        after = batch[-1].id
        views = [(text_view(c), code_view(c)) for c in batch]
        hashes = [(view_hash(t), view_hash(k)) for t, k in views]
        with db.connection() as conn:
            known = Vectors(conn).cached(model, [h for pair in hashes for h in pair])
        missing: dict[str, str] = {}
        for (text, code), (text_hash, code_hash) in zip(views, hashes):
            for view, digest in ((text, text_hash), (code, code_hash)):
                if digest not in known:
                    missing.setdefault(digest, view)
        fresh: dict[str, np.ndarray] = {}
        errors: dict[str, str] = {}
        if missing:
            digests = list(missing)
            result = embed_through_outages(embedder, [missing[d] for d in digests], outage_wait, should_stop)
            for i, digest in enumerate(digests):
                vector = result.vectors[i]
                if vector is None:
                    errors[digest] = result.errors.get(i, "no vector returned")
                else:
                    fresh[digest] = vector
        vectors, failures = [], []
        for chunk, (text_hash, code_hash) in zip(batch, hashes):
            text_vec = known.get(text_hash, fresh.get(text_hash))
            code_vec = known.get(code_hash, fresh.get(code_hash))
            if text_vec is None or code_vec is None:
                failures.append((chunk.id, chunk.repo_id, errors.get(text_hash) or errors.get(code_hash) or "?"))
            else:
                vectors.append(ChunkVectors(chunk.id, chunk.repo_id, text_vec, code_vec))
        with unit_of_work(db) as uow:
            uow.vectors.store(model, vectors, fresh)
            uow.vectors.record_failures(model, failures)
        if on_progress:
            on_progress(counts(db, repo_id, model))
    return counts(db, repo_id, model)


def embed_through_outages(
    embedder: Embedder, texts: Sequence[str], outage_wait: float, should_stop: Callable[[], bool] = lambda: False
) -> EmbedResult:
    """embedder.embed(texts), waiting out a provider outage (see through_outages)."""
    return through_outages(lambda: embedder.embed(texts), embedder.model_id, outage_wait, should_stop,
                           {"texts": len(texts)})


def through_outages(call: Callable[[], T], model_id: str, outage_wait: float,
                    should_stop: Callable[[], bool] = lambda: False, context: dict | None = None) -> T:
    """call(), waiting out a provider outage: after each failure, sleep until the "embedder" breaker lets a
    probe through, then try again; give up (raise) `outage_wait` seconds after the first failure."""
    deadline: float | None = None
    while True:
        try:
            return call()
        except ProviderUnavailable as exc:
            if not isinstance(exc.__cause__, CircuitBreakerError):  # a real failure, not a fast one
                errorlog.record_error("embedding.backfill", exc, severity="error", category="unavailable",
                                      context={"model": model_id, **(context or {})})
            deadline = deadline if deadline is not None else time.monotonic() + outage_wait
            found = find_breaker(BREAKER)
            log.warning("embedding provider unavailable, breaker %s; waiting up to %.0f s for it to recover: %s",
                        found.state if found else "unused", max(0.0, deadline - time.monotonic()), exc)
            if not wait_for_recovery(BREAKER, deadline, should_stop) or time.monotonic() >= deadline:
                raise


def pending_ranges(db: Database, repo_id: int, model: int, size: int) -> list[tuple[int, int]]:
    """The repository's pending chunks as (first id, last id) ranges of `size` chunks, in id order."""
    with db.connection() as conn:
        return Vectors(conn).pending_ranges(repo_id, model, size)


def counts(db: Database, repo_id: int, model: int | None) -> BackfillProgress:
    with db.connection() as conn:
        return BackfillProgress(**Vectors(conn).counts(repo_id, model))
