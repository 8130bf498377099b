"""Component health for /health and `lode health`: pass, warn (degraded, still serving) or fail (cannot serve).

Only the database can fail the whole report: without it nothing is served. Redis (the optional L2 cache), the
embedding provider, open circuit breakers, a stuck embedding backlog and queued jobs with no live worker only
degrade it to "warn".
"""

from __future__ import annotations

import time
from typing import Any

from lode.engine import Lode
from lode.resilience import breaker_states
from lode.store.queue_stats import queue_stats

_RANK = {"pass": 0, "warn": 1, "fail": 2}


def health_report(lode: Lode) -> dict[str, Any]:
    checks = {"database": database_check(lode)}
    if lode.settings.redis_url:
        checks["redis"] = _redis(lode.settings.redis_url, lode.settings.timeouts.health_probe)
    circuits = breaker_states()
    checks["embedder"] = _embedder(lode, circuits)
    checks["circuits"] = _circuits(circuits)
    if checks["database"]["status"] != "fail":
        checks["backfill"] = _backfill(lode, circuits)
        checks["queue"] = _queue(lode)
    status = max((c["status"] for c in checks.values()), key=_RANK.__getitem__)
    return {"status": status, "checks": checks}


def _timed(status: str, started: float, **details: Any) -> dict[str, Any]:
    return {"status": status, "latency_ms": round((time.monotonic() - started) * 1000, 1), **details}


def database_check(lode: Lode) -> dict[str, Any]:
    started = time.monotonic()
    try:
        lode.db.ping(lode.settings.timeouts.health_probe)
    except Exception as exc:  # any failure to reach it is the answer this check gives
        return _timed("fail", started, error=f"{type(exc).__name__}: {exc}")
    return _timed("pass", started)


def _redis(url: str, timeout: float) -> dict[str, Any]:
    import redis

    started = time.monotonic()
    client = redis.Redis.from_url(url, socket_timeout=timeout / 4, socket_connect_timeout=timeout / 4)
    try:
        client.ping()
    except Exception as exc:  # the cache is optional: down means degraded, not failed
        return _timed("warn", started, error=f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
    return _timed("pass", started)


def _embedder(lode: Lode, circuits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    provider = lode.settings.embedder
    if provider == "none":
        return {"status": "pass", "provider": provider, "detail": "no provider: lexical search only"}
    breaker = circuits.get("embedder", {})
    if breaker.get("state") == "open":
        return {"status": "warn", "provider": provider,
                "detail": f"circuit open for {breaker['open_remaining']}s more: semantic legs are degraded"}
    return {"status": "pass", "provider": provider}


def _circuits(circuits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    open_ones = sorted(name for name, state in circuits.items() if state["state"] != "closed")
    return {"status": "warn" if open_ones else "pass", "open": open_ones, "breakers": circuits}


def _backfill(lode: Lode, circuits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Embeddings still to compute, summed over repositories (the backfill queue's depth)."""
    started = time.monotonic()
    try:
        pending = sum(
            lode.embeddings.counts(repo["repo"]).pending for repo in lode.repos.all()
        ) if lode.settings.embedder != "none" else 0
    except Exception as exc:  # a failed count degrades the report; the database check tells why
        return _timed("warn", started, error=f"{type(exc).__name__}: {exc}")
    stuck = pending > 0 and circuits.get("embedder", {}).get("state") == "open"
    return _timed("warn" if stuck else "pass", started, pending=pending)


def _queue(lode: Lode) -> dict[str, Any]:
    """Workers heartbeating within LODE_QUEUE_STALL_SECONDS, and the jobs waiting for one (lode/queue.py)."""
    started = time.monotonic()
    try:
        with lode.db.connection() as conn:
            stats = queue_stats(conn, lode.settings.queue.name, lode.settings.queue.stall_seconds)
    except Exception as exc:  # a failed count degrades the report; the database check tells why
        return _timed("warn", started, error=f"{type(exc).__name__}: {exc}")
    oldest = None if stats.oldest_waiting_seconds is None else round(stats.oldest_waiting_seconds, 1)
    stranded = stats.waiting > 0 and stats.workers == 0
    return _timed("warn" if stranded else "pass", started, workers=stats.workers, waiting=stats.waiting,
                  oldest_waiting_seconds=oldest, **({"detail": "jobs wait and no worker is alive"} if stranded else {}))
