"""`lode serve` as a real subprocess on a free port, answered through tests/support/rawhttp.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.rawhttp import Answer, request

from tests.support.processes import stop


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    address: str
    port: int
    process: subprocess.Popen
    log: Path  # the server's stderr (JSON log lines)

    def request(self, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None,
                body: str = "", source: str | None = None) -> Answer:
        return request(self.address, self.port, method, path, headers, body, source)


@contextmanager
def lode_serve(log: Path, address: str = "127.0.0.1", env: dict[str, str] | None = None,
               startup: float = 120, host: str | None = None) -> Iterator[Served]:
    """Start `lode serve --host ADDRESS` (or `--host HOST`, a spelling of it) and wait until /livez answers; stop
    it with SIGINT (SIGKILL if it hangs)."""
    port = free_port(address)
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "lode", "serve", "--host", host or address,
                                    "--port", str(port)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, "LODE_LOG_LEVEL": "INFO", **(env or {})})
    served = Served(address, port, process, log)
    try:
        deadline = time.monotonic() + startup
        while True:
            assert process.poll() is None, f"lode serve exited {process.returncode}: {log.read_text()[-3000:]}"
            try:
                if served.request("GET", "/livez").status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"lode serve did not start: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            stop(process, signal.SIGINT)
