"""`lode index` on a terminal: the progress bars (rich, on stderr) draw through the CLI's lazy console, which rich
uses as a context manager; the report follows on stdout. Stderr is a real pseudo-terminal here."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from lode.engine import Lode

PYSHOP = Path(__file__).parent.parent / "fixtures" / "graph" / "pyshop"


def _drain(fd: int, into: list[bytes]) -> None:
    """Read the terminal until the child closes it, so that its bars never fill the pty's buffer."""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child's side is closed
            return
        if not chunk:
            return
        into.append(chunk)


def test_index_draws_its_bars_on_a_terminal_and_reports(lode: Lode, repo_name: str, tmp_path: Path) -> None:
    tree = shutil.copytree(PYSHOP, tmp_path / "shop")
    master, slave = pty.openpty()
    seen: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, seen), daemon=True)
    reader.start()
    try:
        proc = subprocess.run([sys.executable, "-m", "lode", "index", str(tree), "--repo", repo_name, "--wait"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=120,
                              env={**os.environ, "TERM": "xterm", "COLUMNS": "120"})
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    terminal = b"".join(seen).decode(errors="replace")
    assert proc.returncode == 0, terminal
    assert f"{repo_name}: " in proc.stdout.decode() and "indexed" in proc.stdout.decode()
    assert "indexing" in terminal and "Traceback" not in terminal
    lode.repos.remove(repo_name)
