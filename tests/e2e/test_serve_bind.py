"""`lode serve` binds before it starts anything (issue #15, item 13), on real processes.

Before the fix a busy port printed "lode: serving …", then uvicorn's bind error (and at times an "Event loop is
closed" traceback), and exited 3; `--host "[::1]"` failed the same way on a name lookup of "[::1]". Now: one
`lode: error:` line and exit 1 for a port in use or an address that is not this machine's, exit 2 for what is no
address at all, and a bracketed IPv6 literal is served.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
from tests.support.serve_process import lode_serve

from lode.engine import Lode


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lode", "serve", *args], check=False, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env={**os.environ})


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lode: error: "), proc.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("family, address", [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")])
def test_a_busy_port_is_one_line_and_exit_1(lode: Lode, family: socket.AddressFamily, address: str) -> None:
    with socket.socket(family) as taken:
        taken.bind((address, 0))
        taken.listen()
        port = taken.getsockname()[1]
        spelling = f"[{address}]" if family == socket.AF_INET6 else address
        proc = _serve("--host", spelling, "--port", str(port))
    line = _one_error_line(proc)
    assert proc.returncode == 1 and str(port) in line and "in use" in line, line


def test_an_address_that_is_not_this_machines_is_one_line_and_exit_1(lode: Lode) -> None:
    proc = _serve("--host", "192.0.2.1", "--port", "0")  # TEST-NET-1: assigned to no interface
    line = _one_error_line(proc)
    assert proc.returncode == 1 and "192.0.2.1" in line and "assign" in line, line


@pytest.mark.parametrize("host", ["[::1", "127.0.0.1:8765", "exa mple", "[localhost]", "-x.example"])
def test_a_malformed_host_is_one_line_and_exit_2(lode: Lode, host: str) -> None:
    proc = _serve("--host", host, "--port", "0")
    line = _one_error_line(proc)
    assert proc.returncode == 2 and repr(host) in line, line


def test_a_bracketed_ipv6_literal_is_served(lode: Lode, tmp_path) -> None:
    with lode_serve(tmp_path / "serve.log", address="::1", host="[::1]") as served:
        assert served.request("GET", "/livez").status == 200
        assert served.request("GET", "/v1/repositories").status == 200
    first_line = served.log.read_text().splitlines()[0]
    assert first_line.startswith(f"lode: serving http://[::1]:{served.port} "), first_line
