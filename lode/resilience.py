"""Resilience at the adapters: one circuit breaker per outside dependency, shared by the whole process.

Adapters (the Redis cache layer, the embedding providers, the database read paths) run their calls inside
`guard(name, config=settings.breakers)` (or `breaker(...)` used as a decorator). An open breaker raises
`CircuitBreakerError` at once, without touching the dependency; the caller degrades (skips L2, searches
lexical-only, ...). After its recovery time an open breaker turns half-open and lets `half_open_probes`
concurrent calls through: one success closes it, one failure opens it again. Breaker states are reported by
`breaker_states()` for /health and `lode health`.

A breaker's limits come from the settings of its caller (`config`, a Lode's settings.breakers), not from the
process's environment, so `Lode(Settings(...))` configures the breakers it calls through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType

from circuitbreaker import STATE_HALF_OPEN, STATE_OPEN, CircuitBreaker, CircuitBreakerError

from lode.config import BreakerSettings
from lode.errors import DatabaseUnavailable

__all__ = [
    "Breaker", "CircuitBreakerError", "breaker", "breaker_states", "database_failure", "find_breaker", "guard",
    "reset_breakers", "wait_for_recovery",
]

FailurePredicate = Callable[[type, BaseException], bool]


class Breaker(CircuitBreaker):
    """circuitbreaker's breaker, with a bound on the calls let through while half-open, and fail-fast on entry
    also when used as a context manager (the library only checks that in its decorator)."""

    def __init__(self, *, half_open_probes: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.half_open_probes = half_open_probes
        self._probes = 0
        self._probe_lock = threading.Lock()
        self._probing = threading.local()

    def __enter__(self) -> None:
        state = self.state
        if state == STATE_OPEN:
            raise CircuitBreakerError(self)
        if state == STATE_HALF_OPEN:
            with self._probe_lock:
                if self._probes >= self.half_open_probes:
                    raise CircuitBreakerError(self)
                self._probes += 1
            self._probing.active = True

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if getattr(self._probing, "active", False):
            self._probing.active = False
            with self._probe_lock:
                self._probes -= 1
        return super().__exit__(exc_type, exc_value, traceback)

    @property
    def recovery_seconds(self) -> float:
        return self._recovery_timeout

    @property
    def limits(self) -> tuple[int, float, int]:
        """(failure threshold, recovery seconds, half-open probes)."""
        return self._failure_threshold, self._recovery_timeout, self.half_open_probes

    @limits.setter
    def limits(self, limits: tuple[int, float, int]) -> None:
        self._failure_threshold, self._recovery_timeout, self.half_open_probes = limits


_breakers: dict[str, Breaker] = {}
_lock = threading.Lock()


def breaker(
    name: str,
    expected_exception: type[BaseException] | tuple[type[BaseException], ...] | FailurePredicate = Exception,
    *,
    config: BreakerSettings,
) -> Breaker:
    """The process-wide breaker for one dependency ("redis", "embedder", "database"), created on first use.

    Its limits come from `config` (LODE_BREAKER_FAILURE_THRESHOLD, LODE_BREAKER_RECOVERY_SECONDS,
    LODE_BREAKER_HALF_OPEN_PROBES), with per-breaker values in LODE_BREAKER_OVERRIDES; a caller whose settings
    differ re-applies its own (the failures seen so far stay counted). `expected_exception` (types, or a
    predicate (type, exc) -> bool) is only read when the breaker is created: the failures that count.
    """
    own = config.overrides.get(name, {})
    limits = (int(own.get("failure_threshold", config.failure_threshold)),
              float(own.get("recovery_seconds", config.recovery_seconds)),
              int(own.get("half_open_probes", config.half_open_probes)))
    with _lock:
        found = _breakers.get(name)
        if found is None:
            found = _breakers[name] = Breaker(
                failure_threshold=limits[0], recovery_timeout=limits[1], half_open_probes=limits[2],
                expected_exception=expected_exception, name=name,
            )
        elif found.limits != limits:
            found.limits = limits
        return found


def find_breaker(name: str) -> Breaker | None:
    """The named breaker if a call has gone through it in this process; looking does not create it."""
    with _lock:
        return _breakers.get(name)


@contextmanager
def guard(name: str, expected_exception: type[BaseException] | tuple | FailurePredicate = Exception, *,
          config: BreakerSettings) -> Iterator[None]:
    """Run a block through the named breaker: fail fast when open, count a failure when the block raises one."""
    with breaker(name, expected_exception, config=config):
        yield


def database_failure(exc_type: type, exc: BaseException) -> bool:
    """What counts against the "database" breaker: a lost or refused connection, not a cancelled statement."""
    import psycopg

    if issubclass(exc_type, DatabaseUnavailable):
        return True
    return issubclass(exc_type, psycopg.OperationalError) and not issubclass(exc_type, psycopg.errors.QueryCanceled)


def wait_for_recovery(name: str, deadline: float, should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Sleep until the named breaker lets a probe through; False when `deadline` (monotonic) or a stop comes first."""
    found = find_breaker(name)
    while found is not None and found.state == STATE_OPEN:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or should_stop():
            return False
        time.sleep(min(0.2, remaining, max(0.01, found.open_remaining)))
    return not should_stop()


def breaker_states() -> dict[str, dict[str, object]]:
    """{name: {"state": closed|open|half_open, "failures": n, "open_remaining": seconds}} for every breaker."""
    with _lock:
        breakers = list(_breakers.values())
    return {
        b.name: {"state": b.state, "failures": b.failure_count,
                 "open_remaining": round(max(0.0, b.open_remaining), 3) if b.opened else 0.0}
        for b in breakers
    }


def reset_breakers() -> None:
    """Forget every breaker (tests, and a settings reload)."""
    with _lock:
        _breakers.clear()
