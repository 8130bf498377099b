"""The embedding contract shared by every provider: the Embedder protocol, its result and its error."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lode.errors import LodeError


class EmbeddingError(LodeError):
    """The whole call failed: the provider is unavailable, misconfigured, or still failing after retries."""


class ProviderUnavailable(EmbeddingError):
    """The provider is down for now (failing after retries, answering garbage, or its circuit breaker is open):
    worth waiting for, unlike a misconfiguration."""


BREAKER = "embedder"  # the circuit breaker every provider's calls go through (lode.resilience)


@dataclass(slots=True)
class EmbedResult:
    """One vector per input, in input order; None where the item failed permanently (its reason is in errors)."""

    vectors: list[np.ndarray | None]
    errors: dict[int, str] = field(default_factory=dict)


class Embedder(Protocol):
    model_id: str  # stable id recorded with every vector, e.g. "all-MiniLM-L6-v2@onnx-int8" or "http:<model>"

    @property
    def dimension(self) -> int:
        """Length of every vector. Read-only, so a provider may detect it on first use."""
        ...

    def embed(self, texts: Sequence[str]) -> EmbedResult:
        """Embed many texts, batching inside. A bad item is reported in errors; raises EmbeddingError only when
        the provider itself fails."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one text; raises EmbeddingError when it cannot."""
        ...


def unit_vector(values: np.ndarray) -> np.ndarray | None:
    """The float32 L2-normalised copy of a vector, or None when it is zero or not finite."""
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return vector / np.float32(norm)
