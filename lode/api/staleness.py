"""Staleness: how many indexed files changed on disk since they were indexed (size or mtime differ, or gone).

Bounded: at most MAX_FILES files and MAX_SECONDS per request, so a status call on a huge repository stays
cheap; `complete` says whether every indexed file was compared. New files are found only by re-indexing.
"""

from __future__ import annotations

import os
import time
from typing import Any

from lode.engine import Lode

MAX_FILES = 20_000
MAX_SECONDS = 2.0
EXAMPLES = 10


def staleness(lode: Lode, repo: str, root: str) -> dict[str, Any]:
    rows = lode.repos.indexed_files(repo, MAX_FILES + 1)
    deadline = time.monotonic() + MAX_SECONDS
    checked = changed = missing = 0
    examples: list[str] = []
    for indexed in rows[:MAX_FILES]:
        if time.monotonic() > deadline:
            break
        checked += 1
        try:
            stat = os.lstat(os.path.join(root, indexed.path))
        except OSError:
            missing += 1
        else:
            if (stat.st_size, stat.st_mtime_ns) == (indexed.size, indexed.mtime_ns):
                continue
            changed += 1
        if len(examples) < EXAMPLES:
            examples.append(indexed.path)
    return {"checked": checked, "changed": changed, "missing": missing,
            "complete": checked == len(rows), "examples": examples}
