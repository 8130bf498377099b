"""An in-process client of the REST API."""

from __future__ import annotations

from typing import Any


def local_client(app: Any, base_url: str = "http://127.0.0.1") -> Any:
    """A TestClient that calls as a loopback caller, by a loopback name: its defaults ("testclient" calling
    "testserver") are neither, and the server answers only allowed Host names and, without keys, loopback."""
    from fastapi.testclient import TestClient

    return TestClient(app, base_url=base_url, client=("127.0.0.1", 50000))
