"""Embedding providers: `local` (ONNX Runtime on the CPU), `http` (an OpenAI-compatible service) or `none`."""

from __future__ import annotations

from lode.config import Settings
from lode.embedding.base import Embedder, EmbeddingError, EmbedResult

__all__ = ["EmbedResult", "Embedder", "EmbeddingError", "get_embedder"]


def get_embedder(settings: Settings) -> Embedder | None:
    """The configured provider, or None when LODE_EMBEDDER is `none`. Builds cheaply: models load on first use."""
    config = settings.embedding
    if settings.embedder == "none":
        return None
    if settings.embedder == "http":
        from lode.embedding.http import HttpEmbedder

        if not config.url:
            raise EmbeddingError("LODE_EMBEDDER=http needs LODE_EMBED_URL, the base URL of the embedding service")
        return HttpEmbedder(
            config.url, config.model,
            api_key=config.api_key.get_secret_value() if config.api_key else None,
            batch_size=config.batch_size, dimension=config.dimension,
            batch_timeout=settings.timeouts.embed_batch, single_timeout=settings.timeouts.embed_single,
            retry_attempts=config.retry_attempts, retry_max_seconds=config.retry_max_seconds,
            query_retry_attempts=config.query_retry_attempts, query_retry_max_seconds=config.query_retry_max_seconds,
            breakers=settings.breakers,
        )
    from lode.embedding.export import MODEL_NAME
    from lode.embedding.local import DIMENSION, LocalEmbedder

    if config.model != MODEL_NAME:
        raise EmbeddingError(f"the local embedder has only {MODEL_NAME}; use LODE_EMBEDDER=http for {config.model}")
    if config.dimension not in (None, DIMENSION):
        raise EmbeddingError(f"{MODEL_NAME} has {DIMENSION} dimensions, not LODE_EMBED_DIMENSION={config.dimension}")
    return LocalEmbedder(settings.home / "models", quantize=config.quantize, threads=config.threads,
                         breakers=settings.breakers)
