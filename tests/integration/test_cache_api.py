"""The cache over REST: GET /v1/cache/stats, POST /v1/cache/flush and the cache counters in /metrics, on the real
app (FastAPI's TestClient) with the session's PostgreSQL and a real redis-server."""

from __future__ import annotations

from pathlib import Path

from lode.api.app import create_app
from lode.cache import PREFIX
from lode.config import ServerSettings, Settings
from tests.support.api_client import local_client
from lode.engine import Lode
from tests.support.redis_server import running_redis
from tests.support.trees import CACHE_CORPUS, write_tree


def test_stats_flush_and_metrics(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    with running_redis() as server:
        settings = Settings(home=lode_home, embedder="none", redis_url=server.url,
                            server=ServerSettings(rate_limit=None))
        with local_client(create_app(settings)) as client:
            params = {"q": "slurp", "repo": repo_name, "mode": "lexical"}
            first = client.get("/v1/search", params=params)
            assert first.status_code == 200 and first.json()["hits"]
            assert client.get("/v1/search", params=params).json() == first.json()

            stats = client.get("/v1/cache/stats").json()
            assert stats["kinds"]["search"]["l1"] == {"hit": 1, "miss": 1, "error": 0, "skip": 0}
            assert stats["layers"]["l2"]["enabled"] and stats["layers"]["l2"]["server"]["db_keys"] == 1
            metrics = client.get("/metrics").text
            assert 'lode_cache_requests_total{kind="search",layer="l1",result="hit"}' in metrics
            assert "lode_cache_bytes{layer=\"l1\"}" in metrics

            missing = client.post("/v1/cache/flush", params={"repo": "no-such-repo"})
            assert missing.status_code == 404 and "no repository named" in missing.json()["error"]["message"]
            flushed = client.post("/v1/cache/flush", params={"repo": repo_name})
            assert flushed.status_code == 200 and flushed.json() == {"repo": repo_name, "l1": 1, "l2": 1, "l3": 0}
            assert list(server.client().scan_iter(match=f"{PREFIX}:*")) == []
            assert client.get("/v1/search", params=params).json() == first.json()  # recomputed, same answer
            assert client.get("/v1/cache/stats").json()["kinds"]["search"]["l2"]["miss"] == 2
