"""Work that outlives the command that started it: detached `lode` processes (embedding backfill, graph
resolution), so `lode index` and the MCP `index_repository` tool return as soon as search works."""

from __future__ import annotations

import os
import subprocess
import sys

from lode.config import Settings


def spawn_backfill(settings: Settings, repo: str) -> None:
    """Fill a repository's pending embeddings in a detached `lode embed`."""
    _spawn(settings, ["embed", "--repo", repo, "--json"], f"embed-{repo}.log")


def spawn_graph_resolution(settings: Settings, repo: str) -> None:
    """Finish a repository's deferred graph resolution in a detached `lode graph resolve`."""
    _spawn(settings, ["graph", "resolve", "--repo", repo, "--json"], f"graph-{repo}.log")


def _spawn(settings: Settings, command: list[str], log_name: str) -> None:
    """Run `lode COMMAND` in its own session, logging to LODE_HOME/logs/LOG_NAME."""
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / log_name, "ab") as log_file:
        subprocess.Popen(
            [sys.executable, "-m", "lode", *command],
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, start_new_session=True,
            env={**os.environ, "LODE_HOME": str(settings.home)},
        )
