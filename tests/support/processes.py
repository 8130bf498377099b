"""Stopping a child process the tests started."""

from __future__ import annotations

import signal
import subprocess


def stop(process: subprocess.Popen, how: int = signal.SIGTERM, timeout: float = 60) -> None:
    """Send `how` and wait for the exit; kill it if it has not exited within `timeout` seconds."""
    process.send_signal(how)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
