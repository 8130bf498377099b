"""Settings: LODE_* environment variables, then LODE_HOME/config.toml, then defaults.

The timeout table lives here and nowhere else. Each entry is overridden by LODE_TIMEOUT_<OPERATION>.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("lode", appauthor=False))


def _home_from_env() -> Path:
    raw = os.environ.get("LODE_HOME")
    return Path(raw).expanduser() if raw else _default_home()


Seconds = Annotated[float, Field(gt=0)]


class Timeouts(BaseSettings):
    """Seconds per operation. Every entry is enforced where the operation runs."""

    model_config = SettingsConfigDict(env_prefix="LODE_TIMEOUT_", extra="ignore")

    parse: Seconds = 5.0  # tree-sitter parse of one file (progress callback)
    db_query: Seconds = 30.0  # statement_timeout for ordinary statements
    db_transaction: Seconds = 120.0  # transaction_timeout for one unit of work
    lexical_search: Seconds = 5.0  # statement_timeout for the BM25 query
    vector_search: Seconds = 5.0  # statement_timeout for one HNSW leg
    symbol_lookup: Seconds = 5.0  # statement_timeout for `lode symbols`
    graph_traversal: Seconds = 10.0  # statement_timeout for callers, callees, paths, stats and export
    embed_single: Seconds = 10.0  # one embedding request for a query (or the dimension probe)
    embed_batch: Seconds = 60.0  # one embedding request for a batch of chunks
    hybrid_search: Seconds = 10.0  # whole hybrid query: a leg still running then is cancelled and marked degraded
    graph_build: Seconds = 600.0  # statement/transaction timeout of an index run's graph resolution
    index_file: Seconds = 120.0  # one file's worker (read, chunk, graph facts): killed after this, file skipped
    cache_get: Seconds = 0.1  # Redis (L2) connect and read timeout of a cache lookup
    cache_put: Seconds = 0.1  # Redis (L2) timeout of a cache write
    pattern_search: Seconds = 10.0  # a whole exact/regex search over the indexed files (MCP search_pattern)
    health_probe: Seconds = 2.0  # any one check of /health and `lode health` (database, Redis, provider)
    error_log: Seconds = 2.0  # storing one handled error in error_logs (waiting for a connection, then writing)


class EmbeddingSettings(BaseSettings):
    """The embedding provider chosen by LODE_EMBEDDER. Each entry is overridden by LODE_EMBED_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LODE_EMBED_", extra="ignore")

    model: str = "all-MiniLM-L6-v2"  # the HTTP service's model name; `local` has only this one
    url: str | None = None  # http: base URL of an OpenAI-compatible service ({url}/v1/embeddings)
    api_key: SecretStr | None = None  # http: sent as a Bearer token
    batch_size: int = Field(default=32, ge=1)  # http: texts per request
    dimension: int | None = Field(default=None, ge=1)  # http: detected by a first probe call when unset
    threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)  # local: set to a container's CPU limit
    quantize: bool = True  # local: int8 weights, 2.6x faster than fp32, -0.002 MRR (bench/embed_throughput.py)
    retry_attempts: int = Field(default=5, ge=1)  # http: attempts per request on transient errors
    retry_max_seconds: float = 60.0  # http: total time one request may spend retrying
    query_retry_attempts: int = Field(default=2, ge=1)  # http: attempts for a query's embedding (interactive)
    query_retry_max_seconds: float = 5.0  # http: total time a query's embedding may spend retrying
    outage_wait_seconds: float = Field(default=600.0, ge=0)  # backfill: how long it waits out an open breaker


class BreakerSettings(BaseSettings):
    """Circuit breakers on outside dependencies (Redis, the embedding provider, database reads)."""

    model_config = SettingsConfigDict(env_prefix="LODE_BREAKER_", extra="ignore")

    failure_threshold: int = Field(default=5, ge=1)  # consecutive failures that open a breaker
    recovery_seconds: float = Field(default=30.0, gt=0)  # an open breaker lets probes through after this
    half_open_probes: int = Field(default=1, ge=1)  # concurrent calls let through while half-open
    # per-breaker overrides, e.g. LODE_BREAKER_OVERRIDES='{"embedder": {"recovery_seconds": 5}}'
    overrides: dict[str, dict[str, float]] = Field(default_factory=dict)


class AlertSettings(BaseSettings):
    """Error-rate alerts over the last hour (lode/errorlog.py AlertMonitor). Each entry is LODE_ALERT_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LODE_ALERT_", extra="ignore")

    critical_per_hour: int = Field(default=0, ge=0)  # alert when more CRITICAL errors than this (any)
    error_per_hour: int = Field(default=10, ge=0)
    warning_per_hour: int = Field(default=50, ge=0)
    interval_seconds: float = Field(default=60.0, gt=0)  # how often the monitor evaluates the rules
    webhook: str | None = None  # POSTed a JSON document per new alert


class CacheSettings(BaseSettings):
    """The query cache (lode/cache.py): L1 in process, L2 on Redis when LODE_REDIS_URL is set. LODE_CACHE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LODE_CACHE_", extra="ignore")

    enabled: bool = True
    l1_bytes: int = Field(default=64 * 1024 * 1024, ge=0)  # L1 bound, in bytes of stored values
    ttl_search: int = Field(default=24 * 3600, ge=1)  # L2 seconds per kind; keys carry the index generation
    ttl_graph: int = Field(default=24 * 3600, ge=1)
    ttl_vector: int = Field(default=7 * 24 * 3600, ge=1)  # query embeddings: keyed by model and query text
    l3_vectors: int = Field(default=100_000, ge=1)  # query embeddings kept in PostgreSQL (the oldest go first)
    put_attempts: int = Field(default=2, ge=1)  # L2 writes retried on connection errors only


class QueueSettings(BaseSettings):
    """The durable job queue (lode/queue.py, procrastinate on PostgreSQL), the same for `lode serve`'s in-process
    worker and `lode worker`. Each entry is LODE_QUEUE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LODE_QUEUE_", extra="ignore")

    name: str = Field(default="lode", pattern=r"^[A-Za-z0-9_.-]{1,64}$")  # the queue that workers consume
    stall_seconds: float = Field(default=30.0, ge=1)  # a worker silent this long is dead: its jobs are retried
    poll_seconds: float = Field(default=2.0, gt=0)  # job polling fallback (new jobs are also notified at once)
    embed_batch_chunks: int = Field(default=512, ge=1)  # chunks per embed_batch job of a backfill
    retention_hours: int = Field(default=7 * 24, ge=1)  # finished jobs are deleted after this
    gc_cron: str = "17 * * * *"  # when collect_garbage runs (cron; a 6th column is seconds)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)  # on SIGTERM, running jobs get this long to finish
    max_attempts: int = Field(default=5, ge=1)  # runs of one job (worker deaths and shutdowns included)


class ServerSettings(BaseSettings):
    """`lode serve` (lode/api/): index roots, the names it answers to, proxies, CORS, caps and rate limits.
    LODE_<NAME>; lode/api/hosts.py applies the host, origin and proxy settings."""

    model_config = SettingsConfigDict(env_prefix="LODE_", extra="ignore", populate_by_name=True)

    # POST /v1/index only accepts paths under these (os.pathsep-separated); unset: loopback without keys only
    allowed_roots: Annotated[list[Path], NoDecode] = []
    # Host names (and name:port, name:*) every route answers to besides the loopback names and the address it is
    # bound to (DNS rebinding); comma-separated or a JSON list. LODE_MCP_ALLOWED_HOSTS is the older name.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=[], validation_alias=AliasChoices("LODE_ALLOWED_HOSTS", "LODE_MCP_ALLOWED_HOSTS"))
    # Origins (scheme://name[:port|:*]) allowed to POST/DELETE besides those of the allowed hosts and
    # LODE_CORS_ORIGINS. LODE_MCP_ALLOWED_ORIGINS is the older name.
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default=[], validation_alias=AliasChoices("LODE_ALLOWED_ORIGINS", "LODE_MCP_ALLOWED_ORIGINS"))
    # addresses or networks of reverse proxies whose X-Forwarded-For names the caller; unset: it is ignored
    trusted_proxies: Annotated[list[str], NoDecode] = []
    cors_origins: Annotated[list[str], NoDecode] = []  # comma-separated; CORS is off when empty
    rate_limit: str | None = "600/minute"  # per API key, or per client address without keys; None: off
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # jobs this server runs at once on its in-process worker; 0 when dedicated `lode worker` processes run them
    index_jobs: int = Field(default=2, ge=0)
    # a server records its bind address every this many seconds (lode/store/servers.py); 3 missed: it is gone
    server_heartbeat_seconds: float = Field(default=10.0, gt=0)
    # the web UI's "open in editor" links: a URL template with {path}, {line} and {column} (lode/web/editor.py)
    editor_url: str = "vscode://file{path}:{line}:{column}"

    @field_validator("allowed_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        return [p for p in value.split(os.pathsep) if p.strip()] if isinstance(value, str) else value

    @field_validator("allowed_hosts", "allowed_origins")
    @classmethod
    def _check_patterns(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from lode.api.hosts import host_pattern, origin_pattern  # parsed by the code that applies them

        parse = host_pattern if info.field_name == "allowed_hosts" else origin_pattern
        for pattern in value:
            parse(pattern)
        return value

    @field_validator("editor_url")
    @classmethod
    def _check_editor_url(cls, value: str) -> str:
        from lode.web.editor import check_template

        return check_template(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: list[str]) -> list[str]:
        for proxy in value:
            ipaddress.ip_network(proxy, strict=False)  # an address or a network; ValueError names it
        return value

    @field_validator("allowed_hosts", "allowed_origins", "trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        """A comma-separated string, or a JSON list (the form LODE_MCP_ALLOWED_* took)."""
        if isinstance(value, str) and value.lstrip().startswith("["):
            return json.loads(value)
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LODE_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    redis_url: str | None = None
    embedder: Literal["local", "static", "http", "none"] = "local"

    # discovery and read guards
    max_file_bytes: int = Field(default=1024 * 1024, ge=1)
    max_line_length: int = Field(default=1000, ge=1)  # a longer line marks a file as minified or generated
    # chunking
    chunk_max_lines: int = Field(default=150, ge=1)  # larger definitions are split along their children
    chunk_max_bytes: int = Field(default=12_000, ge=256)
    window_lines: int = Field(default=60, ge=1)
    window_overlap: int = Field(default=10, ge=0)
    # indexing
    index_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    graph: bool = True  # build the code graph; off: search only, graph queries refuse (LODE_GRAPH)
    graph_inline_files: int = Field(default=200, ge=0)  # `lode index` resolves a larger change in the background
    # what an index run's Python processes may add, in MiB (LODE_MEMORY_BUDGET_MB): it caps the index workers
    # (indexer.worker_count); graph resolution batches its files, bounds its memo and forks resolvers within it
    # (store/graph.py ResolvePlan)
    memory_budget_mb: int = Field(default=1024, ge=64)
    # database
    pool_max_size: int = Field(default=8, ge=1)
    # the embedded server outlives its last user by this long, so the next command finds it running (0: stop at once)
    embedded_idle_seconds: float = Field(default=300.0, ge=0)
    # HNSW candidate list of a vector leg (pgvector's 1..1000); auto grows with the index (services/search.py)
    ef_search: Literal["auto"] | Annotated[int, Field(ge=1, le=1000)] = "auto"
    # the ranking stage after fusion (lode/search/ranking.py): off for ablations, or some priors off by name
    ranking: Literal["on", "off"] = "on"  # LODE_RANKING
    ranking_disable: str = ""  # LODE_RANKING_DISABLE: comma-separated priors, e.g. "path,coherence"
    # error tracking
    sentry_dsn: SecretStr | None = None  # LODE_SENTRY_DSN: handled errors also go to Sentry
    log_level: str = "WARNING"  # LODE_LOG_LEVEL: structured JSON logs on stderr

    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    breakers: BreakerSettings = Field(default_factory=BreakerSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_home_from_env() / "config.toml")
        return (init_settings, env_settings, toml)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def describe_invalid(exc: ValidationError) -> str:
    """A settings error as one line, naming each setting as it is set (LODE_*; the same keys in config.toml)."""
    model = getattr(sys.modules[__name__], exc.title, Settings)
    prefix = model.model_config.get("env_prefix", "LODE_")
    problems: dict[str, list[str]] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = (field if field.upper().startswith("LODE_") else f"{prefix}{field}").upper().rstrip("_")
        problems.setdefault(f"{name}={error.get('input')!r}", []).append(error["msg"])
    return "invalid setting: " + "; ".join(f"{name}: {' or '.join(msgs)}" for name, msgs in problems.items())
