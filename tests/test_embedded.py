"""The embedded server: started on demand under LODE_HOME, shared by concurrent processes, stopped after the last."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil

from test_indexing import base_tree, write_tree


def _servers_for(home: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(str(home) in part for part in cmdline):
            found.append(proc)
    return found


def test_concurrent_processes_share_one_server_that_stops_after_the_last(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {**os.environ, "LODE_HOME": str(home)}
    env.pop("LODE_DATABASE_URL", None)
    repos = []
    for i in range(3):
        root = tmp_path / f"repo{i}"
        write_tree(root, base_tree())
        repos.append(root)
    procs = [
        subprocess.Popen([sys.executable, "-m", "lode", "index", str(root), "--repo", f"r{i}", "--json"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i, root in enumerate(repos)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    listed = subprocess.run([sys.executable, "-m", "lode", "repos", "--json"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert '"r0"' in listed.stdout and '"r1"' in listed.stdout and '"r2"' in listed.stdout
    assert (home / "pgdata" / "PG_VERSION").exists()
    deadline = time.monotonic() + 15  # the postmaster's children exit a moment after it does
    while _servers_for(home) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _servers_for(home) == [], "the server outlived its last user"
