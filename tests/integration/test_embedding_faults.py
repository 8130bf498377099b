"""The HTTP embedding provider against a real local stub that fails on demand: retries (only transient errors,
Retry-After honoured, capped), the "embedder" circuit breaker (fails fast, half-open probe), and the whole
pipeline through `lode index` in real processes: indexing completes lexical-only during an outage and the
background backfill reaches 0 pending by itself once the service recovers."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from lode.config import get_settings
from lode.embedding.backfill import BackfillProgress
from lode.embedding.base import EmbeddingError, ProviderUnavailable
from lode.embedding.http import HttpEmbedder
from lode.resilience import breaker_states, reset_breakers, wait_for_recovery
from tests.support.cli import run_cli
from tests.support.resilience_stubs import FaultyEmbedder, breaker_settings
from tests.support.polling import wait_until
from tests.support.retries import retry_sleeps


@pytest.fixture(autouse=True)
def _breaker_settings(monkeypatch):
    with breaker_settings(monkeypatch, failure_threshold=100):  # retry tests: the breaker stays out of the way
        yield


@pytest.fixture
def stub():
    with FaultyEmbedder() as server:
        yield server


def _embedder(stub: FaultyEmbedder, **kwargs) -> HttpEmbedder:
    options = {"dimension": 64, "batch_timeout": 5.0, "single_timeout": 5.0, "retry_attempts": 3,
               "retry_max_seconds": 10.0} | kwargs
    return HttpEmbedder(stub.url, stub.model, **options)


def test_5xx_is_retried_up_to_the_attempt_cap(stub):
    stub.mode = "500"
    with pytest.raises(ProviderUnavailable, match="HTTP 500.*3 attempts"):
        _embedder(stub).embed(["a"])
    assert stub.requests == 3


def test_429_waits_for_retry_after_then_succeeds(stub, caplog):
    stub.mode, stub.retry_after = "429", "1"
    embedder = _embedder(stub)

    def recover_after_two() -> None:
        while stub.requests < 2:
            time.sleep(0.01)
        stub.mode = "ok"

    threading.Thread(target=recover_after_two, daemon=True).start()
    result = embedder.embed(["read a file"])
    assert result.vectors[0] is not None and stub.requests == 3
    assert retry_sleeps(caplog) == [1.0, 1.0], "Retry-After: 1 is the wait before each retry"


def test_a_retry_after_beyond_the_time_cap_stops_at_once(stub, caplog):
    stub.mode, stub.retry_after = "429", "3600"
    with pytest.raises(ProviderUnavailable, match="HTTP 429"):
        _embedder(stub, retry_max_seconds=5.0).embed(["a"])
    assert stub.requests == 1 and retry_sleeps(caplog) == []


@pytest.mark.parametrize("mode", ["401", "malformed"])
def test_client_errors_and_malformed_answers_are_not_retried(stub, mode):
    stub.mode = mode
    with pytest.raises(EmbeddingError):
        _embedder(stub).embed(["a"])
    assert stub.requests == 1


def test_a_stalled_service_times_out_and_total_time_is_capped(stub, caplog):
    stub.mode, stub.stall_seconds = "stall", 30
    with pytest.raises(ProviderUnavailable, match="Timeout"):  # the 30 s stall would have answered
        _embedder(stub, single_timeout=0.5, query_retry_attempts=2).embed_query("a")
    assert stub.requests == 2 and len(retry_sleeps(caplog)) == 1, "two attempts that time out, one wait between"


def test_query_embeddings_have_their_own_tighter_retry_cap(stub):
    stub.mode = "500"
    with pytest.raises(ProviderUnavailable):
        _embedder(stub, retry_attempts=5, query_retry_attempts=2).embed_query("a")
    assert stub.requests == 2


@pytest.mark.parametrize("mode", ["500", "malformed"])
def test_the_breaker_opens_and_then_fails_fast_without_reaching_the_service(stub, monkeypatch, mode):
    monkeypatch.setenv("LODE_BREAKER_FAILURE_THRESHOLD", "2")
    get_settings.cache_clear()
    reset_breakers()
    stub.mode = mode
    embedder = _embedder(stub, retry_attempts=1)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            embedder.embed_query("a")
    assert breaker_states()["embedder"]["state"] == "open" and stub.requests == 2
    for _ in range(20):
        with pytest.raises(ProviderUnavailable, match="OPEN"):
            embedder.embed(["a"])
    assert stub.requests == 2, "an open breaker sends nothing"
    stub.mode = "ok"
    assert wait_for_recovery("embedder", time.monotonic() + 10)  # the next call is the half-open probe
    assert embedder.embed_query("a") is not None and breaker_states()["embedder"]["state"] == "closed"


# ---- the whole pipeline, in real processes ------------------------------------------------------------------


def _write_repo(root: Path, token: str) -> None:
    """Six files whose text is unique to this test: the vector caches (by view, by query) cannot answer."""
    root.mkdir(parents=True)
    for i in range(6):
        (root / f"mod{i}.py").write_text(
            f"def read_lines_{i}(path):\n    \"\"\"Read {token} file {i} and return its lines.\"\"\"\n"
            f"    with open(path) as handle:\n        return handle.read().splitlines()\n\n\n"
            f"class Store{i}:\n    def save(self, key, value):\n        self.data[key] = value\n")


SLOW = pytest.mark.slow  # one outage kind runs by default, the others with `pytest -m slow`


@pytest.mark.parametrize("mode", ["500", pytest.param("429", marks=SLOW), pytest.param("stall", marks=SLOW),
                                  pytest.param("malformed", marks=SLOW)])
def test_an_outage_leaves_indexing_lexical_only_and_the_backfill_resumes_by_itself(stub, lode, tmp_path, monkeypatch,
                                                                                   mode):
    monkeypatch.delenv("LODE_EMBED_DIMENSION", raising=False)  # unset whatever the caller's environment says
    repo = f"t-{uuid.uuid4().hex[:8]}"
    token = uuid.uuid4().hex[:10]
    _write_repo(tmp_path / "src", token)
    stub.mode, stub.retry_after, stub.stall_seconds = mode, "1", 30
    env = {
        "LODE_EMBEDDER": "http", "LODE_EMBED_URL": stub.url, "LODE_EMBED_MODEL": stub.model,
        # LODE_EMBED_DIMENSION unset (above): the dimension probe meets the outage too
        "LODE_EMBED_RETRY_ATTEMPTS": "2", "LODE_EMBED_RETRY_MAX_SECONDS": "3",
        "LODE_EMBED_QUERY_RETRY_ATTEMPTS": "1", "LODE_EMBED_OUTAGE_WAIT_SECONDS": "120",
        "LODE_TIMEOUT_EMBED_BATCH": "1", "LODE_TIMEOUT_EMBED_SINGLE": "1",
        "LODE_BREAKER_FAILURE_THRESHOLD": "2", "LODE_BREAKER_RECOVERY_SECONDS": "2",
    }
    code, report, stderr = run_cli("index", str(tmp_path / "src"), "--repo", repo, "--json", env=env)
    assert code == 0, stderr
    assert report["files_indexed"] == 6 and report["embeddings"]["pending"] == report["chunks"] > 0

    code, found, stderr = run_cli("search", f"read {token} lines", "--repo", repo, "--json", env=env)
    assert code == 0, stderr
    assert found["hits"] and set(found["degraded"]) == {"text", "code"}, "search is lexical-only, and says so"

    log_path = Path(os.environ["LODE_HOME"]) / "logs" / f"embed-{repo}.log"
    wait_until(lambda: log_path.exists() and "breaker open; waiting" in log_path.read_text(), 60,
               "the background backfill meets the outage, the breaker opens and the backfill waits for it")
    assert lode.embeddings.counts(repo).pending == report["chunks"], "nothing is embedded during the outage"
    requests_during_outage = stub.requests
    stub.mode = "ok"
    wait_until(lambda: not lode.embeddings.counts(repo).pending, 60, "the backfill resumes once the service is back")
    log = log_path.read_text()
    assert lode.embeddings.counts(repo) == BackfillProgress(done=report["chunks"], pending=0, failed=0), log
    assert requests_during_outage < 40, f"{requests_during_outage} requests: the open breaker should hold them back"
    code, found, _ = run_cli("search", f"read {token} lines", "--repo", repo, "--json", env=env)
    assert code == 0 and found["degraded"] == [] and found["hits"][0]["legs"]["text"] is not None
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(line.get("component") == "embedding.backfill" for line in lines), "the outage was recorded"
