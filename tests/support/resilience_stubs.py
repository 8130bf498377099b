"""Real local HTTP servers for the resilience tests: an embedding service whose faults can be switched at run
time, and a receiver that keeps every request (an alert webhook, a Sentry ingest endpoint)."""

from __future__ import annotations

import gzip
import json
import os
import threading
import time
import zlib
from pathlib import Path
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lode.config import get_settings
from lode.errorlog import record_error
from lode.resilience import reset_breakers

from tests.support.embedding_stub_service import vector



@contextmanager
def breaker_settings(monkeypatch: pytest.MonkeyPatch, failure_threshold: int,
                     recovery_seconds: float = 1) -> Iterator[None]:
    """Circuit breakers with these settings for one test; every breaker fresh before and after."""
    monkeypatch.setenv("LODE_BREAKER_FAILURE_THRESHOLD", str(failure_threshold))
    monkeypatch.setenv("LODE_BREAKER_RECOVERY_SECONDS", str(recovery_seconds))
    get_settings.cache_clear()
    reset_breakers()
    try:
        yield
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        reset_breakers()


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):  # noqa: ANN204
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class FaultyEmbedder(_Server):
    """OpenAI-compatible /v1/embeddings. mode: ok | 500 | 429 (with Retry-After) | stall | malformed | 401."""

    def __init__(self, dim: int = 64, model: str = "stub-faults") -> None:
        self.mode = "ok"
        self.retry_after = "1"
        self.stall_seconds = 30.0
        self.dim = dim
        self.model = model
        self.requests = 0
        self.request_times: list[float] = []
        self.lock = threading.Lock()
        super().__init__(_EmbedHandler)


class _EmbedHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        stub: FaultyEmbedder = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with stub.lock:
            stub.requests += 1
            stub.request_times.append(time.monotonic())
            mode = stub.mode
        if mode == "500":
            return self._send(500, b'{"error": "boom"}')
        if mode == "429":
            return self._send(429, b'{"error": "slow down"}', {"Retry-After": stub.retry_after})
        if mode == "401":
            return self._send(401, b'{"error": "bad key"}')
        if mode == "stall":
            time.sleep(stub.stall_seconds)
        if mode == "malformed":
            return self._send(200, b'{"data": [ not json')
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"index": i, "embedding": vector(text, stub.dim), "object": "embedding"}
                for i, text in enumerate(inputs)]
        return self._send(200, json.dumps({"data": data, "model": stub.model, "object": "list"}).encode())

    def _send(self, status: int, raw: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a stalled request
            pass

    def log_message(self, *args: object) -> None:
        pass


class Receiver(_Server):
    """Accepts any POST with 200 (or `status`) and keeps (path, headers, decoded body)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.event = threading.Event()
        super().__init__(_ReceiveHandler)

    def wait(self, count: int = 1, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.received) >= count


class _ReceiveHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        stub: Receiver = self.server.owner  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding == "br":
            import brotli  # type: ignore[import-not-found]

            raw = brotli.decompress(raw)
        stub.received.append((self.path, dict(self.headers), raw))
        self.send_response(stub.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def sleep_then_echo(job: tuple[str, float]) -> tuple[str, int]:
    """A worker job for lode.workers tests: sleeps, crashes its process, or records an error, by name."""
    name, seconds = job
    if name == "crash":
        os._exit(3)  # a native parser's segfault, as far as the pool can tell
    if name == "records":
        record_error("worker-test", message="recorded inside a worker", severity="warning", category="test",
                     context={"job": name})
    time.sleep(seconds)
    return name, os.getpid()


def mark_started(job: tuple[str, int]) -> int:
    """A worker job for lode.workers tests: leaves a file named after its number in a folder, then returns it."""
    folder, number = job
    (Path(folder) / str(number)).touch()
    return number
