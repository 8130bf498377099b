"""The query cache against a real PostgreSQL, a real redis-server (started here on a free port) and, for the
semantic legs, the HTTP stub embedding service in its own process."""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path

import numpy as np
import psycopg
import pytest
from prometheus_client import generate_latest
from psycopg.conninfo import make_conninfo

from tests.support.cli import run_cli
from lode.cache import PREFIX
from lode.config import CacheSettings, Settings, Timeouts
from lode.engine import Lode
from lode.errors import NotFound
from lode.indexer import _REPO_LOCK_CLASS
from lode.resilience import breaker_states, reset_breakers, wait_for_recovery
from lode.store.db import Database, migrate
from lode.store.query_vectors import QueryVectorTable
from lode.store.repositories import Repositories
from tests.support.redis_server import RedisServer, running_redis
from tests.support.resilience_stubs import breaker_settings
from tests.support.trees import CACHE_CORPUS, write_tree
from tests.support.embedding_stub import start_stub
from tests.support.polling import wait_until

QUERIES = ["frobnicate_zq", "read file lines", "post payload url", "parse row", "reverse a string"]


def engine(home: Path, redis_url: str | None = None, **cache: object) -> Lode:
    return Lode(Settings(home=home, redis_url=redis_url, cache=CacheSettings(**cache)))


def counts(lode: Lode, kind: str = "search") -> dict[str, dict[str, int]]:
    return lode.cache.stats()["kinds"][kind]


def redis_keys(server: RedisServer, kind: str = "*") -> list[bytes]:
    return list(server.client().scan_iter(match=f"{PREFIX}:*:{kind}:*"))


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture(autouse=True)
def fresh_breakers() -> Iterator[None]:
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def fast_recovery(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Breakers that open after 3 failures and probe again after one second."""
    with breaker_settings(monkeypatch, failure_threshold=3):
        yield


@pytest.fixture
def stub_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    proc, url = start_stub()
    for name, value in {"LODE_EMBEDDER": "http", "LODE_EMBED_URL": url, "LODE_EMBED_MODEL": "stub-cache",
                        "LODE_EMBED_RETRY_ATTEMPTS": "2", "LODE_EMBED_RETRY_MAX_SECONDS": "2"}.items():
        monkeypatch.setenv(name, value)
    yield url
    proc.kill()
    proc.wait()


def test_l2_hit_is_promoted_to_l1_and_writes_go_through(lode: Lode, lode_home: Path, tmp_path: Path,
                                                        repo_name: str, redis_server: RedisServer,
                                                        redis_url: str) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    first = engine(lode_home, redis_url)
    cold = first.search.query("frobnicate_zq", repo=repo_name, mode="lexical")
    assert cold["hits"] and counts(first)["l1"]["miss"] == 1 and counts(first)["l2"]["miss"] == 1
    [key] = redis_keys(redis_server, "search")  # written through to L2
    assert 0 < redis_server.client().ttl(key) <= Settings().cache.ttl_search
    assert first.search.query("frobnicate_zq", repo=repo_name, mode="lexical") == cold
    assert counts(first)["l1"]["hit"] == 1 and counts(first)["l2"]["miss"] == 1  # L1 answered, L2 not asked

    second = engine(lode_home, redis_url)  # what another process sees: an empty L1, the shared L2
    assert second.search.query("frobnicate_zq", repo=repo_name, mode="lexical") == cold
    assert counts(second)["l1"] == {"hit": 0, "miss": 1, "error": 0, "skip": 0}
    assert counts(second)["l2"] == {"hit": 1, "miss": 0, "error": 0, "skip": 0}
    assert second.search.query("frobnicate_zq", repo=repo_name, mode="lexical") == cold
    assert counts(second)["l1"]["hit"] == 1 and counts(second)["l2"]["hit"] == 1  # promoted into L1
    assert len(second.search.query("slurp", repo=repo_name, mode="lexical")["hits"]) > 1
    assert len(second.search.query("slurp", repo=repo_name, mode="lexical", k=1)["hits"]) == 1  # k is in the key
    metrics = generate_latest().decode()
    assert 'lode_cache_requests_total{kind="search",layer="l2",result="hit"}' in metrics
    first.close()
    second.close()


def test_l2_entries_expire_after_their_ttl(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str,
                                           redis_server: RedisServer, redis_url: str) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    short = engine(lode_home, redis_url, ttl_search=1)
    short.search.query("parse row", repo=repo_name, mode="lexical")
    assert len(redis_keys(redis_server, "search")) == 1
    wait_until(lambda: redis_keys(redis_server, "search") == [], 10, "the entry outlived its 1 s TTL")
    later = engine(lode_home, redis_url)
    later.search.query("parse row", repo=repo_name, mode="lexical")
    assert counts(later)["l2"]["miss"] == 1
    short.close()
    later.close()


def test_reindex_file_delete_and_repository_delete_make_old_entries_unreachable(
    lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str, redis_url: str
) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    cached, plain = engine(lode_home, redis_url), engine(lode_home, enabled=False)

    def same(call: str, *args: object, **kwargs: object) -> object:
        answer = attrgetter(call)(cached)(*args, **kwargs)
        assert answer == attrgetter(call)(plain)(*args, **kwargs)
        return answer

    search = ("frobnicate_zq",)
    options = {"repo": repo_name, "mode": "lexical"}
    before = same("search.query", *search, **options)
    callers_before = same("graph.neighbours", "callers", "pkg.readers.parse_row", repo=repo_name)
    assert same("search.query", *search, **options) == before and counts(cached)["l1"]["hit"] == 1

    # another process re-indexes: a new file calls both names
    write_tree(tmp_path, {"pkg/more.py": "from pkg.readers import parse_row\n\n\ndef frobnicate_zq_twice(v):\n"
                                         "    return parse_row(frobnicate_zq(v))\n"})
    lode.indexing.index(tmp_path, repo_name)
    after = same("search.query", *search, **options)
    assert after != before and any(h["path"] == "pkg/more.py" for h in after["hits"])
    callers_after = same("graph.neighbours", "callers", "pkg.readers.parse_row", repo=repo_name)
    assert len(callers_after["results"]) == len(callers_before["results"]) + 1

    (tmp_path / "pkg/more.py").unlink()  # a file delete
    lode.indexing.index(tmp_path, repo_name)
    assert same("search.query", *search, **options) == before
    assert same("graph.neighbours", "callers", "pkg.readers.parse_row", repo=repo_name) == callers_before

    lode.repos.remove(repo_name)  # a repository delete, then a new one under the same name
    with pytest.raises(NotFound):
        cached.search.query(*search, **options)
    shutil.rmtree(tmp_path / "pkg")
    write_tree(tmp_path, {"other.py": "def frobnicate_zq():\n    return 1\n"})
    lode.indexing.index(tmp_path, repo_name)
    recreated = same("search.query", *search, **options)
    assert [h["path"] for h in recreated["hits"]] == ["other.py"]
    cached.close()
    plain.close()


def test_graph_answers_are_not_cached_while_resolution_is_queued(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                 repo_name: str, redis_server: RedisServer,
                                                                 redis_url: str) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    cached = Lode(Settings(home=lode_home, redis_url=redis_url, timeouts=Timeouts(graph_traversal=0.3)))
    plain = engine(lode_home, enabled=False)
    with lode.db.connection() as conn, conn.transaction():  # work queued, as between a run's files and its resolve
        repo_id = conn.execute("SELECT id FROM repositories WHERE name = %s", (repo_name,)).fetchone()[0]
        file_id = conn.execute("SELECT min(id) FROM files WHERE repo_id = %s", (repo_id,)).fetchone()[0]
        conn.execute("INSERT INTO graph_dirty_files (repo_id, file_id) VALUES (%s, %s)", (repo_id, file_id))
    with lode.db.advisory_lock(_REPO_LOCK_CLASS, repo_id) as held:  # an index run holds the repository
        assert held
        queued = cached.graph.neighbours("callees", "pkg.net.send_request", repo=repo_name)
        cached.search.query("slurp", repo=repo_name, mode="lexical", expand=True)
    assert queued["graph_pending"] is True
    assert redis_keys(redis_server) == [] and cached.cache.stats()["layers"]["l1"]["entries"] == 0

    settled = cached.graph.neighbours("callees", "pkg.net.send_request", repo=repo_name)  # resolves, then caches
    assert settled["graph_pending"] is False and settled["results"] == queued["results"]
    assert settled == plain.graph.neighbours("callees", "pkg.net.send_request", repo=repo_name)
    assert cached.graph.path("pkg.net.send_request", "pkg.readers.parse_row", repo=repo_name)["found"]
    assert cached.graph.stats(repo_name) == plain.graph.stats(repo_name)
    assert len(redis_keys(redis_server, "graph")) == 3
    assert cached.graph.neighbours("callees", "pkg.net.send_request", repo=repo_name) == settled
    assert counts(cached, "graph")["l1"]["hit"] == 1
    cached.close()
    plain.close()


def test_hybrid_from_cache_equals_uncached_and_degraded_answers_are_not_kept(
    lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str, redis_url: str, stub_env: str
) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    cached, plain = engine(lode_home, redis_url), engine(lode_home, enabled=False)
    cached.indexing.index(tmp_path, repo_name)
    cached.embeddings.embed(repo_name)
    write_tree(tmp_path, {"pkg/lines.py": "def read_lines(document):\n    return document.splitlines()\n"})
    cached.indexing.index(tmp_path, repo_name)
    generation = _generation(cached, repo_name)
    degraded = cached.search.query("read file lines", repo=repo_name)
    assert degraded["degraded"] == ["text", "code"]  # the new chunk waits for its vector
    cached.embeddings.embed(repo_name)
    assert _generation(cached, repo_name) == generation  # completing the embeddings keeps the generation...
    complete = cached.search.query("read file lines", repo=repo_name)
    assert complete["degraded"] == [] and complete != degraded  # ...yet the degraded answer was not served

    other = engine(lode_home, redis_url)
    for mode in ("lexical", "hybrid", "semantic"):
        for query in QUERIES:
            for expand in (False, True):
                expected = plain.search.query(query, repo=repo_name, mode=mode, expand=expand)
                for lode_ in (cached, cached, other):  # computed, from L1, from L2
                    assert lode_.search.query(query, repo=repo_name, mode=mode, expand=expand) == expected
    assert counts(cached)["l1"]["hit"] >= 30 and counts(other)["l2"]["hit"] >= 29

    # query embeddings: L3 (PostgreSQL) answers a fresh process without Redis, so the model is not asked again
    fresh = engine(lode_home)
    assert fresh.search.query("read file lines", repo=repo_name) == complete
    assert counts(fresh, "vector")["l3"]["hit"] == 1 and counts(fresh, "vector")["l3"]["miss"] == 0
    for lode_ in (cached, plain, other, fresh):
        lode_.close()


def _generation(lode: Lode, repo: str) -> int:
    return next(r["generation"] for r in lode.repos.all() if r["repo"] == repo)


def test_l1_is_bounded_by_bytes(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    small = engine(lode_home, l1_bytes=1000)
    plain = engine(lode_home, enabled=False)
    for query in QUERIES * 2:
        assert small.search.query(query, repo=repo_name, mode="lexical") == plain.search.query(query, repo=repo_name,
                                                                                    mode="lexical")
    l1 = small.cache.stats()["layers"]["l1"]
    assert 0 < l1["bytes"] <= 1000 and l1["evictions"] > 0 and l1["misses"] > len(QUERIES)
    small.close()
    plain.close()


def test_redis_killed_frozen_and_restarted_never_fails_a_search(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                repo_name: str, fast_recovery: None) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    plain = engine(lode_home, enabled=False)
    expected = {q: plain.search.query(q, repo=repo_name, mode="lexical") for q in QUERIES}
    server = RedisServer().start()
    try:
        engine(lode_home, server.url).search.query(QUERIES[0], repo=repo_name, mode="lexical")

        def check(label: str) -> Lode:
            """Every query through a fresh L1, so each lookup reaches L2: all answered, and right."""
            fresh = engine(lode_home, server.url)
            for query in QUERIES * 2:
                assert fresh.search.query(query, repo=repo_name, mode="lexical") == expected[query], label
            return fresh

        server.kill()
        killed = check("killed")
        assert breaker_states()["redis"]["state"] == "open"
        assert counts(killed)["l2"]["error"] >= 3 and counts(killed)["l2"]["skip"] > 0  # then the breaker skips L2
        assert counts(killed)["l1"]["hit"] == len(QUERIES)  # L1 keeps working without L2

        server.start()  # the same port, empty
        assert wait_for_recovery("redis", time.monotonic() + 10)  # the next call probes
        restarted = check("restarted")
        assert breaker_states()["redis"]["state"] == "closed" and counts(restarted)["l2"]["error"] == 0
        assert len(redis_keys(server, "search")) == len(QUERIES)

        server.freeze()
        frozen = check("frozen")  # connects, then reads time out (LODE_TIMEOUT_CACHE_GET)
        assert breaker_states()["redis"]["state"] == "open"
        assert counts(frozen)["l2"]["error"] >= 3 and counts(frozen)["l2"]["skip"] > 0
        server.thaw()
        assert wait_for_recovery("redis", time.monotonic() + 10)
        recovered = check("thawed")
        assert counts(recovered)["l2"]["hit"] == len(QUERIES) and breaker_states()["redis"]["state"] == "closed"
    finally:
        server.close()
        plain.close()


def test_cli_stats_and_flush(lode: Lode, lode_home: Path, tmp_path: Path, repo_name: str,
                             redis_server: RedisServer, redis_url: str) -> None:
    write_tree(tmp_path / "a", CACHE_CORPUS)
    write_tree(tmp_path / "b", CACHE_CORPUS)
    lode.indexing.index(tmp_path / "a", repo_name)
    lode.indexing.index(tmp_path / "b", repo_name + "-b")
    cached = engine(lode_home, redis_url)
    for repo in (repo_name, repo_name + "-b", None):
        cached.search.query("slurp", repo=repo, mode="lexical")
    assert len(redis_keys(redis_server, "search")) == 3

    env = {"LODE_REDIS_URL": redis_url}
    code, stats, _ = run_cli("cache", "stats", "--json", env=env)
    assert code == 0 and stats["layers"]["l2"]["enabled"] and stats["layers"]["l2"]["breaker"] == "closed"
    assert stats["layers"]["l2"]["server"]["db_keys"] == 3 and stats["layers"]["l1"]["max_bytes"] > 0
    assert stats["layers"]["l3"]["entries"] >= 0 and set(stats["kinds"]) == {"search", "graph", "vector"}

    code, flushed, _ = run_cli("cache", "flush", "--repo", repo_name, "--json", env=env)
    assert code == 0 and flushed["l2"] == 2  # its own entry and the all-repositories one
    remaining = redis_keys(redis_server, "search")
    assert len(remaining) == 1 and cached.search.query("slurp", repo=repo_name + "-b", mode="lexical")
    assert counts(cached)["l1"]["hit"] == 1  # this process's L1 still holds b

    code, _, stderr = run_cli("cache", "flush", "--repo", "no-such-repo", "--json", env=env)
    assert code == 2 and "no repository named" in stderr
    code, flushed, _ = run_cli("cache", "flush", "--json", env=env)
    assert code == 0 and flushed["l2"] == 1 and redis_keys(redis_server) == []
    assert cached.cache.flush() == {"repo": None, "l1": 3, "l2": 0, "l3": 0}
    cached.close()


def test_bad_redis_url_and_inexact_values_are_not_cached(lode: Lode, lode_home: Path, tmp_path: Path,
                                                         repo_name: str) -> None:
    write_tree(tmp_path, CACHE_CORPUS)
    lode.indexing.index(tmp_path, repo_name)
    odd = engine(lode_home, "nonsense://nowhere")  # a malformed LODE_REDIS_URL: no L2, no failed command
    assert odd.search.query("slurp", repo=repo_name, mode="lexical")["hits"]
    l2 = odd.cache.stats()["layers"]["l2"]
    assert l2["enabled"] is False and "LODE_REDIS_URL" in l2["problem"]

    with lode.db.connection() as conn:
        repos = Repositories(conn).all()
    calls = []

    def compute() -> dict[str, object]:
        calls.append(1)
        return {"pair": (1, 2)}  # msgpack would hand back a list: cached, it would not be the same answer

    assert odd.cache.through("graph", repos, ("tuple",), compute) == {"pair": (1, 2)}
    assert odd.cache.through("graph", repos, ("tuple",), compute) == {"pair": (1, 2)}
    assert len(calls) == 2 and odd.cache.stats()["layers"]["l1"]["entries"] == 1  # only the search
    odd.close()


def test_l3_query_vectors_are_kept_to_their_bound(lode: Lode, lode_home: Path) -> None:
    bounded = engine(lode_home, l3_vectors=30)
    bounded.cache.flush()
    per_write = QueryVectorTable.PRUNE_EVERY
    for i in range(per_write):
        vector = bounded.cache.query_vector("bench-model", f"query {i}", lambda i=i: np.full(4, i, dtype=np.float32))
        assert vector.tolist() == [float(i)] * 4
    assert bounded.cache.stats()["layers"]["l3"]["entries"] == 30  # pruned at the last write
    with lode.db.connection() as conn:
        stored = {bytes(row[0]) for row in conn.execute("SELECT query_hash FROM query_vectors")}
    survivors = [i for i in range(per_write)
                 if hashlib.blake2b(f"query {i}".encode(), digest_size=16).digest() in stored]
    assert len(survivors) == 30
    fresh = engine(lode_home)  # an empty L1 and no L2: a survivor comes from L3, not from its compute
    kept = fresh.cache.query_vector("bench-model", f"query {survivors[0]}", lambda: np.zeros(4, dtype=np.float32))
    assert kept.tolist() == [float(survivors[0])] * 4 and counts(fresh, "vector")["l3"]["hit"] == 1
    bounded.close()
    fresh.close()


@pytest.fixture
def fresh_databases(lode: Lode) -> Iterator[list[str]]:
    """Two new databases on the session's PostgreSQL server, as two LODE_HOMEs' servers would hold: their first
    repository gets id 1 in each. Dropped afterwards."""
    names = [f"lode_iso_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with psycopg.connect(lode.db.url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    yield [make_conninfo(lode.db.url, dbname=name) for name in names]
    with psycopg.connect(lode.db.url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_two_databases_sharing_one_redis_never_read_each_others_entries(
    lode_home: Path, tmp_path: Path, redis_server: RedisServer, redis_url: str, fresh_databases: list[str],
) -> None:
    """Issue 15, item 4: a repository of the same name, id and generation in each database; the second must
    get its own code, not the first one's cached hits."""
    engines = [Lode(Settings(home=lode_home, database_url=url, redis_url=redis_url, embedder="none"))
               for url in fresh_databases]
    try:
        for number, lode_db in enumerate(engines):
            root = tmp_path / f"home{number}" / "same"
            write_tree(root, {"pkg/shared.py": f"def shared_name():\n    return 'ONLY_IN_DATABASE_{number}'\n"})
            lode_db.indexing.index(root, "same")
        rows = []
        for lode_db in engines:
            with lode_db.db.connection() as conn:
                rows.append(conn.execute("SELECT id, generation FROM repositories WHERE name = 'same'").fetchone())
        assert rows[0] == rows[1]  # all the cache keys told apart before they carried the database's identity
        answers = [lode_db.search.query("shared_name", repo="same", mode="lexical") for lode_db in engines]
        assert [counts(lode_db)["l2"]["miss"] for lode_db in engines] == [1, 1]
        for number, answer in enumerate(answers):
            assert [f"ONLY_IN_DATABASE_{number}" in hit["snippet"] for hit in answer["hits"]] == [True]
        identities = {key.decode().split(":")[2] for key in redis_keys(redis_server, "search")}
        assert identities == {lode_db.db.instance_id for lode_db in engines} and len(identities) == 2
        engines[0].cache.flush()  # a full flush is this database's only
        assert {key.decode().split(":")[2] for key in redis_keys(redis_server)} == {engines[1].db.instance_id}
    finally:
        for lode_db in engines:
            lode_db.close()


def test_a_database_upgraded_from_before_identities_gets_one(lode: Lode, fresh_databases: list[str]) -> None:
    url = fresh_databases[0]
    old = Database(url, lode.settings).open()
    try:
        with old.connection() as conn:  # as a database created before migration 0012 was
            conn.execute("DROP TABLE instance")
            conn.execute("DELETE FROM schema_migrations WHERE version = 12")
        migrate(old)
        upgraded = Database(url, lode.settings).open()
        assert upgraded.instance_id not in ("", lode.db.instance_id)
        assert str(uuid.UUID(upgraded.instance_id)) == upgraded.instance_id
        upgraded.close()
    finally:
        old.close()
