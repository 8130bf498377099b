"""The REST app in process (FastAPI's TestClient) on the session's database, and what its tests share."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from lode.api.app import create_app
from lode.config import EmbeddingSettings, QueueSettings, ServerSettings, Settings
from tests.support.api_client import local_client
from tests.support.trees import TS_APP

SHOP = {
    "shop/__init__.py": "\"\"\"A tiny shop.\"\"\"\n",
    "shop/cart.py": '''"""Shopping cart."""
from shop.pricing import apply_discount


class Cart:
    """A cart of items."""

    def __init__(self):
        self.items = []

    def add(self, item, price):
        """Add an item with its price."""
        self.items.append((item, price))

    def total(self):
        """Sum of prices after the discount."""
        return apply_discount(sum(p for _, p in self.items))
''',
    "shop/pricing.py": '''def apply_discount(amount):
    """Ten percent discount above one hundred."""
    return amount * 0.9 if amount > 100 else round_price(amount)


def round_price(amount):
    """Round to cents: no discount."""
    return round(amount, 2)
''',
    "web/app.ts": TS_APP,
    "README.md": "# Shop\n\nA shop used to test the Lode API: every discount is applied once.\n",
}


def settings_for(home: Path, embedder: str = "none", embedding: EmbeddingSettings | None = None,
                 queue: QueueSettings | None = None, **server: Any) -> Settings:
    """Each app gets a queue of its own, so that its jobs run on its own in-process worker and configuration."""
    return Settings(home=home, embedder=embedder, embedding=embedding or EmbeddingSettings(),
                    queue=queue or QueueSettings(name=f"test-{uuid.uuid4().hex[:12]}", poll_seconds=0.2),
                    server=ServerSettings(**{"rate_limit": None, **server}))


@contextmanager
def api(home: Path, host: str = "127.0.0.1", **options: Any) -> Iterator[TestClient]:
    with local_client(create_app(settings_for(home, **options), host=host)) as client:
        yield client


def wait_job(client: TestClient, job_id: str, timeout: float = 120, **headers: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/v1/index/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        job = response.json()["job"]
        if job["state"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, f"job still {job['state']}: {job}"
        time.sleep(0.05)


def index_via_api(client: TestClient, path: Path, repo: str, **headers: str) -> dict[str, Any]:
    response = client.post("/v1/index", json={"path": str(path), "repo": repo}, headers=headers)
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["job"]["id"], **headers)
    assert job["state"] == "succeeded", job
    return job


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"message", "code"} <= set(body["error"]), body
    assert body["error"]["message"]
    return body["error"]
