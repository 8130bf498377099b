"""The HTTP embedder against a real stub OpenAI-compatible server on 127.0.0.1 (http.server in a thread)."""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from lode.config import EmbeddingSettings, Settings, Timeouts
from lode.embedding import EmbeddingError, get_embedder
from tests.support.retries import retry_sleeps

DIM = 12
POISON = "this input is rejected"


def stub_vector(text: str) -> np.ndarray:
    """What the stub answers for a text: deterministic, deliberately not unit length."""
    return np.random.default_rng(zlib.crc32(text.encode())).normal(size=DIM).astype(np.float32) * 3


@dataclass
class Stub:
    url: str = ""
    bodies: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    scripted: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # forced (status, headers), in order
    delay: float = 0.0  # seconds before answering

    def answer(self, body: dict) -> tuple[int, dict[str, str], bytes]:
        if self.scripted:
            status, headers = self.scripted.pop(0)
            return status, headers, b'{"error": "scripted"}'
        if any(text == POISON for text in body["input"]):
            return 400, {}, b'{"error": "bad input"}'
        data = [{"object": "embedding", "index": i, "embedding": stub_vector(t).tolist()}
                for i, t in enumerate(body["input"])]
        return 200, {}, json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.bodies.append(body)
            state.headers.append(dict(self.headers))
            state.times.append(time.monotonic())
            time.sleep(state.delay)
            status, headers, payload = (404, {}, b"{}") if self.path != "/v1/embeddings" else state.answer(body)
            try:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def http_embedder(tmp_path: Path, url: str, **options: object):
    """The embedder get_embedder builds for LODE_EMBEDDER=http, with fast retries unless told otherwise."""
    timeouts = Timeouts(embed_single=options.pop("single_timeout", 5.0), embed_batch=5.0)
    embedding = EmbeddingSettings(url=url, model="stub-model", **{"retry_attempts": 3, **options})
    embedder = get_embedder(Settings(home=tmp_path, embedder="http", embedding=embedding, timeouts=timeouts))
    assert embedder is not None
    return embedder


def test_dimension_is_detected_by_one_probe_and_vectors_are_unit_length(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, api_key="sekrit")
    assert embedder.model_id == "http:stub-model"
    assert embedder.dimension == DIM
    assert embedder.dimension == DIM
    assert len(stub.bodies) == 1  # probed once, then remembered
    assert stub.bodies[0]["model"] == "stub-model"
    assert stub.headers[0]["Authorization"] == "Bearer sekrit"

    vector = embedder.embed_query("find the config parser")
    assert vector.dtype == np.float32 and vector.shape == (DIM,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-6)
    expected = stub_vector("find the config parser")
    assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)


def test_texts_are_sent_in_batches_and_returned_in_order(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, batch_size=4, dimension=DIM)
    texts = [f"def function_{i}(): pass" for i in range(10)]
    result = embedder.embed(texts)
    assert [len(body["input"]) for body in stub.bodies] == [4, 4, 2]  # no probe: the dimension was configured
    assert result.errors == {}
    for text, vector in zip(texts, result.vectors):
        expected = stub_vector(text)
        assert vector is not None and np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-6)


def test_a_rejected_input_fails_alone_and_the_others_get_vectors(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, batch_size=8, dimension=DIM)
    texts = [f"text {i}" for i in range(8)]
    texts[5] = POISON
    result = embedder.embed(texts)
    assert set(result.errors) == {5} and "400" in result.errors[5]
    assert result.vectors[5] is None
    assert all(v is not None for i, v in enumerate(result.vectors) if i != 5)
    assert len(stub.bodies) < 2 * 8  # bisected, not retried text by text from the start


def test_429_is_retried_after_retry_after(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, dimension=DIM)
    stub.scripted = [(429, {"Retry-After": "1"})]
    result = embedder.embed(["a", "b"])
    assert result.errors == {} and all(v is not None for v in result.vectors)
    assert len(stub.bodies) == 2
    assert stub.times[1] - stub.times[0] >= 0.95  # waited as the service asked, not a short jittered backoff


def test_400_is_not_retried(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, dimension=DIM)
    result = embedder.embed([POISON])
    assert list(result.errors) == [0] and result.vectors == [None]
    assert len(stub.bodies) == 1
    with pytest.raises(EmbeddingError, match="rejected"):
        embedder.embed_query(POISON)
    assert len(stub.bodies) == 2


def test_other_4xx_fail_the_whole_call_without_retry(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, dimension=DIM)
    stub.scripted = [(401, {})]
    with pytest.raises(EmbeddingError, match="401"):
        embedder.embed(["a", "b", "c"])
    assert len(stub.bodies) == 1  # a wrong key is not bisected into one failure per text


def test_persistent_500s_exhaust_the_retries_quickly(stub: Stub, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    embedder = http_embedder(tmp_path, stub.url, dimension=DIM, retry_attempts=3)
    stub.scripted = [(500, {})] * 10
    with pytest.raises(EmbeddingError, match="unavailable.*HTTP 500"):
        embedder.embed(["a"])
    assert len(stub.bodies) == 3
    sleeps = retry_sleeps(caplog)  # full-jitter backoff from 0.5 s, doubling: at most 1 s, then 2 s
    assert len(sleeps) == 2 and sleeps[0] <= 1 and sleeps[1] <= 2, sleeps


def test_a_retry_after_beyond_the_time_budget_gives_up_at_once(stub: Stub, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    embedder = http_embedder(tmp_path, stub.url, dimension=DIM, retry_max_seconds=2.0)
    stub.scripted = [(503, {"Retry-After": "30"})]
    with pytest.raises(EmbeddingError, match="HTTP 503"):
        embedder.embed(["a"])
    assert len(stub.bodies) == 1 and retry_sleeps(caplog) == []


def test_timeouts_are_retried_then_reported(stub: Stub, tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, stub.url, dimension=DIM, retry_attempts=2, single_timeout=0.3)
    stub.delay = 1.0
    with pytest.raises(EmbeddingError, match="ReadTimeout"):
        embedder.embed_query("slow")
    assert len(stub.bodies) == 2


def test_no_service_listening_is_an_embedding_error(tmp_path: Path) -> None:
    embedder = http_embedder(tmp_path, "http://127.0.0.1:9", retry_attempts=2)  # the discard port: refused
    with pytest.raises(EmbeddingError, match="ConnectError"):
        _ = embedder.dimension
