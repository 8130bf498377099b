"""The query cache: L1 in this process → L2 Redis (shared, optional) → L3 PostgreSQL, in front of the work itself.

Kinds and their L3:
- "search" (a search document) and "graph" (a callers/callees/path/export answer): L3 is the index itself; a miss
  computes the answer from PostgreSQL.
- "vector" (a query embedding, keyed by model id and query text): L3 is the query_vectors table (migration 0007,
  lode/store/query_vectors.py), so a repeated query in a fresh process (a CLI run) needs neither Redis nor the
  embedding model.
  Chunk embeddings have their own L3, vector_cache_m<id> keyed by (model, view hash); the backfill reads it in
  batches, and an L1/L2 in front of that would only add copies.

A lookup goes L1 → L2 → L3; a hit below is promoted to the layers above, and a computed value is written through.

Keys start with the database's random identity (Database.instance_id), so that two databases sharing one Redis
never read each other's entries. They carry everything that changes an answer: for search and graph, every searched
repository's (id, generation, serving embedding model), the query's parameters, and a fingerprint of the ranking
constants and embedding settings. The generation bumps in the unit of work of every file change, file delete and
model switch, and a deleted repository's id is never reused, so stale entries become unreachable at once and are
never scanned for. What can change while the generation stays put is not cached: degraded searches (embeddings
pending, provider down) and graph answers while the repository's graph resolution is still queued.

Values are msgpack bytes in every layer; an L1 hit unpacks a private copy, so callers may change what they get.
L2 sits behind the "redis" circuit breaker and socket timeouts (LODE_TIMEOUT_CACHE_GET / _PUT, no client retries);
only writes are retried, on connection errors, a capped number of times. Redis trouble costs a miss, never a request.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgpack
import numpy as np
import redis
from cachetools import LRUCache
from prometheus_client import Counter, Gauge
from redis.backoff import NoBackoff
from redis.retry import Retry
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from lode import resilience
from lode.config import Settings
from lode.errors import LodeError, unknown_repository
from lode.store.query_vectors import QueryVectorTable

if TYPE_CHECKING:
    from lode.store.db import Database
    from lode.store.repositories import RepoRow

log = logging.getLogger(__name__)

FORMAT = "c3"  # bump when the shape of a cached value changes (c2: search hits carry highlights; c3: snippet_line)
PREFIX = f"lode:{FORMAT}"  # then the database's identity: see Cache.prefix
KINDS = ("search", "graph", "vector")
LAYERS = ("l1", "l2", "l3")
RESULTS = ("hit", "miss", "error", "skip")
REDIS_TROUBLE = (redis.RedisError, OSError)  # what counts against the "redis" breaker

REQUESTS = Counter("lode_cache_requests",
                   "Cache operations by layer, kind and result: hit, miss; for L2 also error (a lookup or write that "
                   "failed) and skip (the redis breaker was open).",
                   ["layer", "kind", "result"])
EVICTIONS = Counter("lode_cache_evictions", "Entries evicted from the in-process L1 to stay within its byte bound.",
                    ["layer"])
STORED_BYTES = Gauge("lode_cache_bytes", "Bytes held by the in-process L1 caches.", ["layer"])

_live: weakref.WeakSet[Cache] = weakref.WeakSet()
STORED_BYTES.labels("l1").set_function(lambda: sum(c.l1_bytes for c in list(_live)))


class _ByteBoundLRU(LRUCache):
    """cachetools' LRU bounded by the bytes of its values, counting evictions."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(maxsize=max_bytes, getsizeof=len)
        self.evictions = 0

    def popitem(self) -> tuple[Any, Any]:
        item = super().popitem()
        self.evictions += 1
        EVICTIONS.labels("l1").inc()
        return item


class RedisLayer:
    """L2: one client for lookups and one for writes, each with its own socket timeouts, both behind the breaker."""

    def __init__(self, url: str, settings: Settings) -> None:
        timeouts, no_retries = settings.timeouts, Retry(NoBackoff(), 0)
        self.reader = redis.Redis.from_url(url, socket_timeout=timeouts.cache_get,
                                           socket_connect_timeout=timeouts.cache_get, retry=no_retries)
        self.writer = redis.Redis.from_url(url, socket_timeout=timeouts.cache_put,
                                           socket_connect_timeout=timeouts.cache_put, retry=no_retries)
        self.put_attempts = settings.cache.put_attempts
        self.breakers = settings.breakers

    @property
    def breaker(self) -> Any:
        """The process-wide "redis" breaker (looked up per call: tests and settings reloads reset breakers)."""
        return resilience.breaker("redis", REDIS_TROUBLE, config=self.breakers)

    def get(self, key: str) -> bytes | None:
        return self.breaker.call(self.reader.get, key)

    def put(self, key: str, value: bytes, ttl: int) -> None:
        self.breaker.call(self._put_with_retries, key, value, ttl)

    def _put_with_retries(self, key: str, value: bytes, ttl: int) -> None:
        for attempt in Retrying(stop=stop_after_attempt(self.put_attempts), wait=wait_fixed(0.01), reraise=True,
                                retry=retry_if_exception_type(redis.ConnectionError)):
            with attempt:
                self.writer.set(key, value, ex=ttl)

    def delete_matching(self, pattern: str) -> int:
        """Unlink every key matching a pattern (flush only: lookups never scan)."""
        removed = 0
        batch: list[bytes] = []
        for key in self.writer.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                removed += self.writer.unlink(*batch)
                batch.clear()
        if batch:
            removed += self.writer.unlink(*batch)
        return removed

    def server_stats(self) -> dict[str, Any]:
        """Redis INFO: counts of the whole server (every client, not only Lode); db_keys of the selected db."""
        info = self.reader.info()
        return {"db_keys": self.reader.dbsize(), "used_memory": info.get("used_memory"),
                "keyspace_hits": info.get("keyspace_hits"), "keyspace_misses": info.get("keyspace_misses"),
                "evicted_keys": info.get("evicted_keys"), "expired_keys": info.get("expired_keys")}

    def close(self) -> None:
        self.reader.close()
        self.writer.close()


class Cache:
    def __init__(self, settings: Settings, database: Callable[[], Database], ranking: Sequence[Any] = ()) -> None:
        config = settings.cache
        self.enabled = config.enabled
        self.ttl = {"search": config.ttl_search, "graph": config.ttl_graph, "vector": config.ttl_vector}
        self._l1 = _ByteBoundLRU(config.l1_bytes)
        self._l1_lock = threading.Lock()
        self._l2: RedisLayer | None = None
        self._l2_problem: str | None = None  # why L2 is off although LODE_REDIS_URL is set
        if settings.redis_url and self.enabled:
            try:
                self._l2 = RedisLayer(settings.redis_url, settings)
            except ValueError as exc:  # a malformed URL: run without L2 rather than fail every command
                self._l2_problem = f"LODE_REDIS_URL is not a usable Redis URL: {exc}"
                log.warning("cache L2 is off: %s", self._l2_problem)
        self._vectors = QueryVectorTable(database, config.l3_vectors)
        self._database = database
        self._tally: Tally[tuple[str, str, str]] = Tally()
        self._tally_lock = threading.Lock()
        embedding = settings.embedding
        self._fingerprint = [FORMAT, list(ranking), settings.embedder, embedding.model, embedding.url,
                             embedding.quantize]
        _live.add(self)

    @property
    def prefix(self) -> str:
        """What every key of this database starts with."""
        return f"{PREFIX}:{self._database().instance_id}"

    @property
    def l1_bytes(self) -> int:
        return int(self._l1.currsize)

    # ---- the cascade ------------------------------------------------------------------------------------

    def through(self, kind: str, repos: Sequence[RepoRow], params: Sequence[Any], compute: Callable[[], Any],
                cacheable: Callable[[Any], bool] = lambda value: True) -> Any:
        """The answer for (repos at their generations, params): from a layer, or computed and written through."""
        if not self.enabled:
            return compute()
        key = self._key(kind, repos, params)
        raw = self._lookup(kind, key)
        if raw is not None:
            return msgpack.unpackb(raw, strict_map_key=False)
        value = compute()
        if cacheable(value):
            try:
                raw = msgpack.packb(value, strict_types=True)  # a tuple or a subclass would not come back the same
            except (TypeError, ValueError) as exc:
                log.warning("not caching a %s answer that msgpack cannot round-trip exactly: %s", kind, exc)
            else:
                self._write(kind, key, raw)
        return value

    def query_vector(self, model_id: str, query: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A query embedding: L1 → L2 → L3 (query_vectors) → the model; hits below are promoted."""
        if not self.enabled:
            return compute()
        digest = hashlib.blake2b(query.encode(), digest_size=16).digest()
        key = f"{self.prefix}:vector:{hashlib.blake2b(model_id.encode(), digest_size=8).hexdigest()}:{digest.hex()}"
        raw = self._lookup("vector", key)
        if raw is None:
            raw = self._vectors.get(model_id, digest)
            self._count("l3", "vector", "miss" if raw is None else "hit")
            if raw is None:
                raw = np.asarray(compute(), dtype="<f4").tobytes()
                self._vectors.put(model_id, digest, raw)
            self._write("vector", key, raw)
        return np.frombuffer(raw, dtype="<f4")

    def _key(self, kind: str, repos: Sequence[RepoRow], params: Sequence[Any]) -> str:
        scope = f"r{repos[0].id}" if len(repos) == 1 else "multi"  # the prefix `flush --repo` deletes
        identity = msgpack.packb([self._fingerprint, [[r.id, r.generation, r.embedding_model] for r in repos],
                                  list(params)])
        return f"{self.prefix}:{kind}:{scope}:{hashlib.blake2b(identity, digest_size=16).hexdigest()}"

    def _lookup(self, kind: str, key: str) -> bytes | None:
        with self._l1_lock:
            raw = self._l1.get(key)
        self._count("l1", kind, "miss" if raw is None else "hit")
        if raw is not None or self._l2 is None:
            return raw
        try:
            raw = self._l2.get(key)
        except resilience.CircuitBreakerError:
            self._count("l2", kind, "skip")
            return None
        except REDIS_TROUBLE as exc:
            self._count("l2", kind, "error")
            log.debug("cache L2 lookup failed: %s", exc)
            return None
        self._count("l2", kind, "miss" if raw is None else "hit")
        if raw is not None:
            self._l1_put(key, raw)
        return raw

    def _write(self, kind: str, key: str, raw: bytes) -> None:
        self._l1_put(key, raw)
        if self._l2 is None:
            return
        try:
            self._l2.put(key, raw, self.ttl[kind])
        except resilience.CircuitBreakerError:
            self._count("l2", kind, "skip")
        except REDIS_TROUBLE as exc:
            self._count("l2", kind, "error")
            log.debug("cache L2 write failed: %s", exc)

    def _l1_put(self, key: str, raw: bytes) -> None:
        if len(raw) > self._l1.maxsize:  # larger than the whole L1: not worth holding
            return
        with self._l1_lock:
            self._l1[key] = raw

    def _count(self, layer: str, kind: str, result: str) -> None:
        REQUESTS.labels(layer, kind, result).inc()
        with self._tally_lock:
            self._tally[(layer, kind, result)] += 1

    # ---- operations -------------------------------------------------------------------------------------

    def flush(self, repo: str | None = None) -> dict[str, Any]:
        """Drop a repository's entries (and those of multi-repository queries), or everything of this database
        with repo=None (another database's entries in a shared Redis stay).

        Query embeddings belong to no repository: only a full flush drops them (L1, L2 and L3).
        """
        prefix = self.prefix
        if repo is None:
            prefixes: tuple[str, ...] = (f"{prefix}:",)
            patterns = [f"{prefix}:*"]
        else:
            from lode.store.repositories import Repositories

            with self._database().connection() as conn:
                row = Repositories(conn).get(repo)
            if row is None:
                raise unknown_repository(repo)
            prefixes = tuple(f"{prefix}:{kind}:{scope}:" for kind in ("search", "graph") for scope in
                             (f"r{row.id}", "multi"))
            patterns = [f"{prefix}:*:r{row.id}:*", f"{prefix}:*:multi:*"]
        with self._l1_lock:
            doomed = [key for key in self._l1 if key.startswith(prefixes)]
            for key in doomed:
                del self._l1[key]
        removed: dict[str, Any] = {"repo": repo, "l1": len(doomed), "l2": None, "l3": 0}
        if self._l2 is not None:
            try:
                removed["l2"] = sum(self._l2.delete_matching(p) for p in patterns)
            except REDIS_TROUBLE as exc:
                raise LodeError(f"could not flush Redis (L2): {exc}") from exc
        if repo is None:
            removed["l3"] = self._vectors.clear()
        return removed

    def stats(self) -> dict[str, Any]:
        """Hits, misses, hit rate, bytes and evictions per layer, and per kind. L1 and the L2/L3 lookup counts
        are this process's; `l2.server` is Redis INFO (every client of that Redis) and the count of Lode keys."""
        layers: dict[str, Any] = {}
        for layer in LAYERS:
            hits = sum(n for (lay, _, res), n in self._tally.items() if lay == layer and res == "hit")
            misses = sum(n for (lay, _, res), n in self._tally.items() if lay == layer and res == "miss")
            errors = sum(n for (lay, _, res), n in self._tally.items() if lay == layer and res == "error")
            skips = sum(n for (lay, _, res), n in self._tally.items() if lay == layer and res == "skip")
            layers[layer] = {"hits": hits, "misses": misses, "errors": errors, "skips": skips,
                             "hit_rate": round(hits / (hits + misses), 4) if hits + misses else None}
        with self._l1_lock:
            layers["l1"] |= {"entries": len(self._l1), "bytes": self.l1_bytes, "max_bytes": int(self._l1.maxsize),
                             "evictions": self._l1.evictions}
        layers["l2"]["enabled"] = self._l2 is not None
        if self._l2_problem:
            layers["l2"]["problem"] = self._l2_problem
        if self._l2 is not None:
            layers["l2"]["breaker"] = self._l2.breaker.state
            try:
                layers["l2"]["server"] = self._l2.breaker.call(self._l2.server_stats)
            except (resilience.CircuitBreakerError, *REDIS_TROUBLE) as exc:
                layers["l2"]["server"] = {"error": str(exc) or type(exc).__name__}
        layers["l3"] |= self._vectors.stats()
        kinds = {kind: {layer: {res: self._tally[(layer, kind, res)] for res in RESULTS}
                        for layer in LAYERS} for kind in KINDS}
        return {"enabled": self.enabled, "layers": layers, "kinds": kinds}

    def close(self) -> None:
        if self._l2 is not None:
            self._l2.close()
