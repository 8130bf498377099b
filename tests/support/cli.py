"""The `lode` command in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_cli(*args: str, check_json: bool = True, env: dict[str, str] | None = None, timeout: float = 120
            ) -> tuple[int, object, str]:
    """Run `python -m lode ARGS` in a real process; return (exit code, parsed JSON or stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "lode", *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    payload: object = proc.stdout
    if check_json and "--json" in args and proc.stdout.strip():
        payload = json.loads(proc.stdout)
    return proc.returncode, payload, proc.stderr
