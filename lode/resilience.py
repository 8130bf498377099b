"""Resilience at the adapters: one circuit breaker per outside dependency, shared by the whole process.

Adapters (the Redis cache layer, the embedding providers, the database read paths) wrap their calls in
`breaker(name)`. An open breaker raises `CircuitBreakerError` at once; the caller degrades (skips L2, searches
lexical-only, ...). Breaker states are reported by `breaker_states()` for /health and `lode health`.
"""

from __future__ import annotations

import threading

from circuitbreaker import CircuitBreaker, CircuitBreakerError

from lode.config import get_settings

__all__ = ["CircuitBreakerError", "breaker", "breaker_states", "reset_breakers"]

_breakers: dict[str, CircuitBreaker] = {}
_lock = threading.Lock()


def breaker(name: str, expected_exception: type[BaseException] | tuple[type[BaseException], ...] = Exception) -> CircuitBreaker:
    """The process-wide breaker for one dependency ("redis", "embedder", "database"), created on first use.

    Thresholds come from settings.breakers (LODE_BREAKER_FAILURE_THRESHOLD, LODE_BREAKER_RECOVERY_SECONDS).
    `expected_exception` is only read when the breaker is created: the failures that count against it.
    """
    with _lock:
        found = _breakers.get(name)
        if found is None:
            config = get_settings().breakers
            found = _breakers[name] = CircuitBreaker(
                failure_threshold=config.failure_threshold,
                recovery_timeout=config.recovery_seconds,
                expected_exception=expected_exception,
                name=name,
            )
        return found


def breaker_states() -> dict[str, dict[str, object]]:
    """{name: {"state": closed|open|half_open, "failures": n, "open_remaining": seconds}} for every breaker."""
    with _lock:
        breakers = list(_breakers.values())
    return {
        b.name: {"state": b.state, "failures": b.failure_count, "open_remaining": round(max(0.0, b.open_remaining), 3) if b.opened else 0.0}
        for b in breakers
    }


def reset_breakers() -> None:
    """Forget every breaker (tests, and a settings reload)."""
    with _lock:
        _breakers.clear()
