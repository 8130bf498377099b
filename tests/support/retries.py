"""The retry sleeps of the HTTP embedding provider, read from its log rather than timed."""

from __future__ import annotations

import re

import pytest

_RETRY = re.compile(r"retrying in ([0-9.]+) s")


def retry_sleeps(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The sleep before each retry, in order, as lode.embedding.http logged it (one decimal)."""
    return [float(match[1]) for record in caplog.records if record.name == "lode.embedding.http"
            if (match := _RETRY.search(record.getMessage()))]
