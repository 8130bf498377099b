"""The HTTP provider: any OpenAI-compatible service, POST {url}/v1/embeddings.

Transient failures (connection errors, timeouts, 429, 5xx) are retried with exponential backoff and full jitter,
or after the service's Retry-After, within a cap on attempts and on total time. A 400, 413 or 422 blames the
input: the batch is bisected until the one bad text is found and reported, and the rest still get vectors. Any
other 4xx (a wrong key, URL or model) fails the whole call at once.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Sequence
from typing import Any

import httpx
import numpy as np
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from lode.config import BreakerSettings
from lode.embedding.base import BREAKER, EmbeddingError, EmbedResult, ProviderUnavailable, unit_vector
from lode.resilience import CircuitBreakerError, guard

log = logging.getLogger(__name__)

_REJECTS_INPUT = {400, 413, 422}  # statuses that blame the texts sent, not the service
_PROBE_TEXT = "dimension probe"


class _Transient(Exception):
    """A failure worth retrying, with the service's Retry-After in seconds when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Rejected(Exception):
    """The service refused the texts of this request."""


class _Malformed(ProviderUnavailable):
    """The service answered 200 with a body that is not JSON: a fault of the service, not retried."""


def _counts_against_breaker(exc_type: type, exc: BaseException) -> bool:
    return issubclass(exc_type, (_Transient, _Malformed))


class HttpEmbedder:
    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 32,
        dimension: int | None = None,
        batch_timeout: float = 60.0,
        single_timeout: float = 10.0,
        retry_attempts: int = 5,
        retry_max_seconds: float = 60.0,
        query_retry_attempts: int = 2,
        query_retry_max_seconds: float = 5.0,
        breakers: BreakerSettings | None = None,  # its "embedder" breaker's limits; None: LODE_BREAKER_* now
    ) -> None:
        base = url.rstrip("/")
        self.endpoint = f"{base}/embeddings" if base.endswith("/v1") else f"{base}/v1/embeddings"
        self.model = model
        self.model_id = f"http:{model}"
        self.batch_size = batch_size
        self.batch_timeout = batch_timeout
        self.single_timeout = single_timeout
        self._dimension = dimension
        self.breakers = breakers or BreakerSettings()
        self._stop = stop_after_attempt(retry_attempts) | stop_before_delay(retry_max_seconds)
        self._query_stop = stop_after_attempt(query_retry_attempts) | stop_before_delay(query_retry_max_seconds)
        self._backoff = wait_random_exponential(multiplier=0.5, max=30)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers)

    @property
    def dimension(self) -> int:
        """The configured dimension, or the one of the service's first answer (probing it if need be)."""
        if self._dimension is None:
            self.embed_query(_PROBE_TEXT)
        assert self._dimension is not None
        return self._dimension

    def embed(self, texts: Sequence[str]) -> EmbedResult:
        vectors: list[np.ndarray | None] = [None] * len(texts)
        errors = {i: "not a string" for i, text in enumerate(texts) if not isinstance(text, str)}
        valid = [i for i in range(len(texts)) if i not in errors]
        for start in range(0, len(valid), self.batch_size):
            self._embed_batch(valid[start:start + self.batch_size], texts, vectors, errors)
        return EmbedResult(vectors, errors)

    def embed_query(self, text: str) -> np.ndarray:
        try:
            vector = self._request([text], self.single_timeout, self._query_stop)[0]
        except _Rejected as exc:
            raise EmbeddingError(f"the embedding service rejected the text: {exc}") from exc
        if vector is None:
            raise EmbeddingError("the embedding service returned no usable vector")
        return vector

    def close(self) -> None:
        self._client.close()

    def _embed_batch(
        self, indices: list[int], texts: Sequence[str], vectors: list[np.ndarray | None], errors: dict[int, str]
    ) -> None:
        """Embed texts[indices] into vectors; on a rejection, bisect until the bad texts are isolated."""
        try:
            answer = self._request([texts[i] for i in indices], self.batch_timeout)
        except _Rejected as exc:
            if len(indices) == 1:
                errors[indices[0]] = str(exc)
                return
            middle = len(indices) // 2
            self._embed_batch(indices[:middle], texts, vectors, errors)
            self._embed_batch(indices[middle:], texts, vectors, errors)
            return
        for i, vector in zip(indices, answer):
            if vector is None:
                errors[i] = "the embedding service returned no usable vector"
            vectors[i] = vector

    def _request(self, texts: list[str], timeout: float, stop: Any = None) -> list[np.ndarray | None]:
        """One request with retries; unit vectors in input order (None where the answer was unusable).

        Every attempt goes through the "embedder" circuit breaker: transient failures and malformed answers
        count against it, and while it is open a request fails at once without reaching the service."""
        retrying = Retrying(
            stop=stop or self._stop, wait=self._wait, retry=retry_if_exception_type(_Transient),
            before_sleep=_log_retry, reraise=True,
        )
        started = time.monotonic()
        try:
            payload = retrying(self._guarded_post, texts, timeout)
        except CircuitBreakerError as exc:
            raise ProviderUnavailable(f"the embedding service at {self.endpoint} is unavailable: {exc}") from exc
        except _Transient as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            raise ProviderUnavailable(
                f"the embedding service at {self.endpoint} is unavailable: {exc} "
                f"({attempts} attempts in {time.monotonic() - started:.1f} s)"
            ) from exc
        return self._vectors(payload, len(texts))

    def _guarded_post(self, texts: list[str], timeout: float) -> Any:
        with guard(BREAKER, _counts_against_breaker, config=self.breakers):
            return self._post(texts, timeout)

    def _post(self, texts: list[str], timeout: float) -> Any:
        try:
            response = self._client.post(self.endpoint, json={"model": self.model, "input": texts}, timeout=timeout)
        except httpx.TransportError as exc:  # connection errors and timeouts
            raise _Transient(f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"HTTP {status}", _retry_after(response))
        if status in _REJECTS_INPUT:
            raise _Rejected(f"HTTP {status}: {response.text[:200]}")
        if status != 200:
            raise EmbeddingError(f"the embedding service at {self.endpoint} answered HTTP {status}: "
                                 f"{response.text[:200]}")
        try:
            return response.json()
        except ValueError as exc:
            raise _Malformed(f"the embedding service at {self.endpoint} answered with invalid JSON") from exc

    def _vectors(self, payload: Any, count: int) -> list[np.ndarray | None]:
        """The vectors of an answer in input order, checked against (or fixing) the dimension."""
        try:
            by_index = {int(item.get("index", position)): item["embedding"]
                        for position, item in enumerate(payload["data"])}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EmbeddingError(f"the embedding service at {self.endpoint} answered without a data list") from exc
        vectors: list[np.ndarray | None] = []
        for index in range(count):
            values = by_index.get(index)
            vector = unit_vector(np.asarray(values, dtype=np.float32)) if values is not None else None
            if vector is not None:
                if self._dimension is None:
                    self._dimension = len(vector)
                if vector.shape != (self._dimension,):
                    raise EmbeddingError(f"the embedding service returned {vector.shape[0]}-d vectors, "
                                         f"expected {self._dimension} (LODE_EMBED_DIMENSION)")
            vectors.append(vector)
        return vectors

    def _wait(self, state: RetryCallState) -> float:
        """The service's Retry-After when it gave one, else full-jitter exponential backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds: a number of seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    sleep = state.next_action.sleep if state.next_action else 0.0
    log.warning("embedding request failed (%s); attempt %d, retrying in %.1f s", exc, state.attempt_number, sleep)
