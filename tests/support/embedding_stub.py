"""The stub embedding service (tests/support/embedding_stub_service.py) in a real process of its own, standing in
for a remote OpenAI-compatible API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

STUB = Path(__file__).with_name("embedding_stub_service.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stub(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(STUB), str(port), *args])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the stub embedding service did not start")


def http_env(url: str, model: str = "stub-a") -> dict[str, str]:
    return {"LODE_EMBEDDER": "http", "LODE_EMBED_URL": url, "LODE_EMBED_MODEL": model,
            "LODE_EMBED_RETRY_ATTEMPTS": "2", "LODE_EMBED_RETRY_MAX_SECONDS": "2"}
