"""Settings: LODE_* environment variables, then LODE_HOME/config.toml, then defaults.

The timeout table lives here and nowhere else. Each entry is overridden by LODE_TIMEOUT_<OPERATION>.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("lode", appauthor=False))


def _home_from_env() -> Path:
    raw = os.environ.get("LODE_HOME")
    return Path(raw).expanduser() if raw else _default_home()


class Timeouts(BaseSettings):
    """Seconds per operation. Every entry is enforced where the operation runs."""

    model_config = SettingsConfigDict(env_prefix="LODE_TIMEOUT_", extra="ignore")

    parse: float = 5.0  # tree-sitter parse of one file (progress callback)
    db_query: float = 30.0  # statement_timeout for ordinary statements
    db_transaction: float = 120.0  # transaction_timeout for one unit of work
    lexical_search: float = 5.0  # statement_timeout for the BM25 query
    vector_search: float = 5.0  # statement_timeout for one HNSW leg
    symbol_lookup: float = 5.0  # statement_timeout for `lode symbols`
    graph_traversal: float = 10.0  # statement_timeout for callers, callees, paths, stats and export
    embed_single: float = 10.0  # one embedding request for a query (or the dimension probe)
    embed_batch: float = 60.0  # one embedding request for a batch of chunks


class EmbeddingSettings(BaseSettings):
    """The embedding provider chosen by LODE_EMBEDDER. Each entry is overridden by LODE_EMBED_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="LODE_EMBED_", extra="ignore")

    model: str = "all-MiniLM-L6-v2"  # the HTTP service's model name; `local` has only this one
    url: str | None = None  # http: base URL of an OpenAI-compatible service ({url}/v1/embeddings)
    api_key: SecretStr | None = None  # http: sent as a Bearer token
    batch_size: int = Field(default=32, ge=1)  # http: texts per request
    dimension: int | None = Field(default=None, ge=1)  # http: detected by a first probe call when unset
    quantize: bool = True  # local: int8 weights, 2.6x faster than fp32, -0.002 MRR (bench/embed_throughput.py)
    retry_attempts: int = Field(default=5, ge=1)  # http: attempts per request on transient errors
    retry_max_seconds: float = 60.0  # http: total time one request may spend retrying


class BreakerSettings(BaseSettings):
    """Circuit breakers on outside dependencies (Redis, the embedding provider, database reads)."""

    model_config = SettingsConfigDict(env_prefix="LODE_BREAKER_", extra="ignore")

    failure_threshold: int = Field(default=5, ge=1)  # consecutive failures that open a breaker
    recovery_seconds: float = Field(default=30.0, gt=0)  # an open breaker lets one probe through after this


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LODE_", extra="ignore")

    home: Path = Field(default_factory=_default_home)
    database_url: str | None = None
    redis_url: str | None = None
    embedder: Literal["local", "http", "none"] = "local"

    # discovery and read guards
    max_file_bytes: int = 1024 * 1024
    max_line_length: int = 1000  # a longer line marks a file as minified or generated
    # chunking
    chunk_max_lines: int = 150  # larger definitions are split along their children
    chunk_max_bytes: int = 12_000
    window_lines: int = 60
    window_overlap: int = 10
    # indexing
    index_workers: int = Field(default_factory=lambda: os.cpu_count() or 1)
    # database
    pool_max_size: int = 8

    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    breakers: BreakerSettings = Field(default_factory=BreakerSettings)

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
