"""Security of `lode serve`: hashed and scoped API keys, bind refusal, allowed index roots, caps, rate limits, CORS."""

from __future__ import annotations

import hashlib
import os
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_client import local_client
from tests.support.cli import run_cli
from lode.api import keys as keys_module
from lode.api.app import create_app
from lode.api.keys import ApiKeys
from lode.engine import Lode
from lode.errors import InputError, NotFound
from tests.support.api_server import SHOP, api, error_of, index_via_api, settings_for, wait_job
from tests.support.trees import git_tree_through_symlinked_directories, write_tree
from tests.support.queue_worker import queue_settings, worker_process


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("security")
    for name in ("alpha", "beta"):
        write_tree(base / "allowed" / name, SHOP)
    write_tree(base / "allowed_extra" / "proj", SHOP)
    write_tree(base / "outside" / "proj", SHOP)
    os.symlink(base / "outside" / "proj", base / "allowed" / "escape")
    return base


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_keys_cli_stores_only_a_hash_and_prints_the_key_once(lode: Lode, no_keys: None) -> None:
    code, created, _ = run_cli("keys", "create", "ci", "--repo", "alpha", "--repo", "beta", "--json")
    assert code == 0 and created["name"] == "ci" and created["repos"] == ["alpha", "beta"]
    key = created["key"]
    assert key.startswith("lode_") and len(key) > 40
    with lode.db.connection() as conn:
        rows = conn.execute("SELECT name, key_hash, repos, row_to_json(k)::text FROM api_keys k").fetchall()
    assert len(rows) == 1
    name, digest, repos, as_text = rows[0]
    assert (name, bytes(digest), repos) == ("ci", hashlib.sha256(key.encode()).digest(), ["alpha", "beta"])
    assert key not in as_text and key[5:] not in as_text
    code, listed, _ = run_cli("keys", "list", "--json")
    assert code == 0 and listed["keys"][0]["name"] == "ci" and key not in str(listed)
    code, _, stderr = run_cli("keys", "create", "ci", "--json")
    assert code == 2 and "exists" in stderr
    code, removed, _ = run_cli("keys", "rm", "ci", "--json")
    assert code == 0 and removed == {"removed": "ci"}
    with pytest.raises(NotFound):
        ApiKeys(lode.db).remove("ci")
    with pytest.raises(InputError, match="invalid key name"):
        ApiKeys(lode.db).create("bad name!")


def test_every_stored_hash_is_compared_in_constant_time(lode: Lode, no_keys: None,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = ApiKeys(lode.db)
    first, *_ = [store.create(f"k{i}") for i in range(3)]
    calls: list[tuple[bytes, bytes]] = []
    real = keys_module.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(keys_module.hmac, "compare_digest", spy)
    stored = store.all_hashed()
    assert ApiKeys.match(first, stored).name == "k0"
    assert len(calls) == 3  # no early exit on the match
    calls.clear()
    assert ApiKeys.match(first[:-1] + "x", stored) is None and len(calls) == 3
    assert all(isinstance(a, bytes) and len(a) == len(b) == 32 for a, b in calls)


def test_keys_gate_the_data_routes_and_scope_repositories(lode: Lode, lode_home: Path, trees: Path,
                                                          no_keys: None) -> None:
    allowed = trees / "allowed"
    with api(lode_home, allowed_roots=[allowed]) as client:
        index_via_api(client, allowed / "alpha", "sec-alpha")  # open local mode: no key needed yet
        index_via_api(client, allowed / "beta", "sec-beta")
        store = ApiKeys(lode.db)
        admin, scoped = store.create("admin"), store.create("scoped", ["sec-alpha"])

        assert error_of(client.get("/v1/repositories"), 401)["code"] == "unauthorized"
        assert client.get("/v1/repositories").headers["www-authenticate"] == "Bearer"
        assert error_of(client.get("/v1/repositories", headers=bearer(admin + "x")), 401)
        assert error_of(client.get("/v1/repositories", headers={"Authorization": admin}), 401)
        assert error_of(client.get("/metrics"), 401)
        for open_route in ("/livez", "/readyz", "/health", "/openapi.json"):
            assert client.get(open_route).status_code == 200, open_route

        names = {r["repo"] for r in client.get("/v1/repositories", headers=bearer(admin)).json()["repositories"]}
        assert {"sec-alpha", "sec-beta"} <= names
        seen = client.get("/v1/repositories", headers=bearer(scoped)).json()["repositories"]
        assert [r["repo"] for r in seen] == ["sec-alpha"]

        def search(key: str, **params: str) -> object:
            return client.get("/v1/search", params={"q": "discount", "mode": "lexical", "k": 50, **params},
                              headers=bearer(key))

        assert {h["repo"] for h in search(scoped).json()["hits"]} == {"sec-alpha"}
        assert {"sec-alpha", "sec-beta"} <= {h["repo"] for h in search(admin).json()["hits"]}
        assert error_of(search(scoped, repo="sec-beta"), 403)["code"] == "forbidden"
        assert error_of(client.get("/v1/repositories/sec-beta", headers=bearer(scoped)), 403)
        assert error_of(client.delete("/v1/repositories/sec-beta", headers=bearer(scoped)), 403)
        for route in ("/v1/errors", "/v1/alerts"):  # server-wide: an unscoped key only
            assert error_of(client.get(route, headers=bearer(scoped)), 403)["code"] == "forbidden"
            assert client.get(route, headers=bearer(admin)).status_code == 200
        assert {s["repo"] for s in client.get("/v1/symbols", params={"name": "apply_discount"},
                                              headers=bearer(scoped)).json()["symbols"]} == {"sec-alpha"}
        assert [r["repo"] for r in client.get("/v1/status", headers=bearer(scoped)).json()["repos"]] == ["sec-alpha"]
        stats = client.get("/v1/graph/stats", headers=bearer(scoped)).json()
        assert stats["nodes"]["function"] == 3  # one repository's, not two

        beta_job = client.post("/v1/index", json={"path": str(allowed / "beta"), "repo": "sec-beta"},
                               headers=bearer(scoped))
        assert error_of(beta_job, 403)
        job = client.post("/v1/index", json={"path": str(allowed / "alpha"), "repo": "sec-alpha"},
                          headers=bearer(scoped)).json()["job"]
        assert wait_job(client, job["id"], Authorization=f"Bearer {scoped}")["state"] == "succeeded"
        admin_job = client.post("/v1/index", json={"path": str(allowed / "beta"), "repo": "sec-beta"},
                                headers=bearer(admin)).json()["job"]
        wait_job(client, admin_job["id"], Authorization=f"Bearer {admin}")
        assert error_of(client.get(f"/v1/index/{admin_job['id']}", headers=bearer(scoped)), 403)
        assert {j["repo"] for j in client.get("/v1/index", headers=bearer(scoped)).json()["jobs"]} == {"sec-alpha"}

        store.remove("scoped")
        assert error_of(search(scoped), 401)


def test_bind_refusal_without_keys(lode: Lode, lode_home: Path, no_keys: None) -> None:
    code, _, stderr = run_cli("serve", "--host", "0.0.0.0", "--port", "1")
    assert code == 2 and "refusing to serve on 0.0.0.0 without API keys" in stderr
    with pytest.raises(BaseException) as refused:  # mounted sub-apps may wrap it in an exception group
        with local_client(create_app(settings_for(lode_home), host="0.0.0.0")):
            pass
    assert "RefusedBind: refusing to serve on 0.0.0.0" in "".join(traceback.format_exception(refused.value))
    key = ApiKeys(lode.db).create("remote")
    with local_client(create_app(settings_for(lode_home), host="0.0.0.0")) as client:
        assert error_of(client.get("/v1/repositories"), 401)
        assert client.get("/v1/repositories", headers=bearer(key)).status_code == 200


def test_index_paths_must_be_under_allowed_roots(lode: Lode, lode_home: Path, trees: Path, no_keys: None) -> None:
    allowed = trees / "allowed"
    with api(lode_home, allowed_roots=[allowed]) as client:
        def post(path: str) -> object:
            return client.post("/v1/index", json={"path": path, "repo": "sec-roots"})

        assert "not under an allowed root" in error_of(post(str(trees / "allowed_extra" / "proj")), 403)["message"]
        assert error_of(post(str(trees / "outside" / "proj")), 403)
        assert error_of(post(str(allowed / "escape")), 403)  # a symlink out of the root
        assert error_of(post(str(allowed / ".." / "outside" / "proj")), 403)
        assert error_of(post("/"), 403)
        assert "absolute" in error_of(post("allowed/alpha"), 400)["message"]
        assert "no such directory" in error_of(post(str(allowed / "missing")), 400)["message"]
        assert "not a directory" in error_of(post(str(allowed / "alpha" / "README.md")), 400)["message"]
        job = post(str(allowed / "alpha"))
        assert job.status_code == 202
        wait_job(client, job.json()["job"]["id"])

    # no roots configured: allowed only in the open local mode (loopback, no keys)
    with api(lode_home) as client:
        job = client.post("/v1/index", json={"path": str(trees / "outside" / "proj"), "repo": "sec-open"})
        assert job.status_code == 202
        wait_job(client, job.json()["job"]["id"])
        key = ApiKeys(lode.db).create("someone")
        refused = client.post("/v1/index", json={"path": str(trees / "outside" / "proj"), "repo": "sec-open"},
                              headers=bearer(key))
        assert "LODE_ALLOWED_ROOTS" in error_of(refused, 403)["message"]


def test_body_and_page_caps(lode: Lode, lode_home: Path, no_keys: None) -> None:
    with api(lode_home, max_body_bytes=1024) as client:
        big = client.post("/v1/index", json={"path": "/" + "a" * 2000})
        assert error_of(big, 413)["code"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while it streams
            yield b'{"path": "/'
            for _ in range(10):
                yield b"a" * 200
            yield b'"}'

        streamed = client.post("/v1/index", content=chunks(), headers={"content-type": "application/json"})
        assert error_of(streamed, 413)
        assert error_of(client.get("/v1/search", params={"q": "x", "k": 201}), 422)
        assert error_of(client.get("/v1/symbols", params={"name": "x", "limit": 201}), 422)
        assert error_of(client.get("/v1/index", params={"limit": 201}), 422)
        assert error_of(client.get("/v1/graph/export", params={"limit": 100_001}), 422)


def test_rate_limit_per_key_and_per_client(lode: Lode, lode_home: Path, no_keys: None) -> None:
    with api(lode_home, rate_limit="3/minute") as client:
        statuses = [client.get("/v1/repositories").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/v1/repositories")
        assert error_of(limited, 429)["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert client.get("/livez").status_code == 200  # probes are not limited
        first, second = ApiKeys(lode.db).create("first"), ApiKeys(lode.db).create("second")
        assert [client.get("/v1/repositories", headers=bearer(first)).status_code for _ in range(4)][-1] == 429
        assert client.get("/v1/repositories", headers=bearer(second)).status_code == 200


def test_cors_is_off_by_default_and_opt_in(lode_home: Path, lode: Lode, no_keys: None) -> None:
    preflight = {"Origin": "http://ui.example", "Access-Control-Request-Method": "GET"}
    with api(lode_home) as client:
        assert "access-control-allow-origin" not in client.get("/livez", headers={"Origin": "http://ui.example"}).headers
        assert "access-control-allow-origin" not in client.options("/v1/search", headers=preflight).headers
    with api(lode_home, cors_origins=["http://ui.example"]) as client:
        answer = client.options("/v1/search", headers=preflight)
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://ui.example"
        other = client.get("/livez", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# ---- issue 15: symlinks on the way, the job's run, a scoped key's index requests --------------------------

TINY = {"m.py": "def tiny_module_function():\n    return 1\n"}  # no symbol that another test looks up


def test_a_git_tree_listing_a_path_through_a_symlink_out_of_the_root_is_not_indexed(
        lode: Lode, lode_home: Path, tmp_path: Path, no_keys: None) -> None:
    """Item 1 through POST /v1/index under LODE_ALLOWED_ROOTS: git lists etc/passwd, etc links outside."""
    allowed = tmp_path / "allowed"
    root = git_tree_through_symlinked_directories(allowed)
    name = f"sec-gitlink-{uuid.uuid4().hex[:8]}"
    with api(lode_home, allowed_roots=[allowed]) as client:
        index_via_api(client, root, name)
        hits = client.get("/v1/search", params={"q": "OUTSIDE_SECRET", "repo": name, "mode": "lexical"}).json()
        assert hits["hits"] == []
        skipped = client.get(f"/v1/repositories/{name}").json()["repository"]["skipped"]
    assert skipped == {"symlink_outside_root": 2, "symlink_inside_root": 2}  # each link, and the path through it
    with lode.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM chunks WHERE content LIKE '%%OUTSIDE_SECRET%%'").fetchone()[0] == 0


def test_a_job_whose_directory_became_a_symlink_out_of_its_allowed_root_fails_and_indexes_nothing(
        lode: Lode, lode_home: Path, tmp_path: Path, no_keys: None) -> None:
    """Item 5: the request is checked, then the directory is swapped for a link outside before a worker runs
    the job. The worker is a `lode worker` process without LODE_ALLOWED_ROOTS: the job carries its root."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    write_tree(allowed / "proj", TINY)
    write_tree(outside / "secret", {"vault.py": "CONFINEMENT_SECRET = 'do not index'\n"})
    name = f"sec-swap-{uuid.uuid4().hex[:8]}"
    queue = queue_settings()
    with api(lode_home, allowed_roots=[allowed], index_jobs=0, queue=queue) as client:  # no in-process worker
        queued = client.post("/v1/index", json={"path": str(allowed / "proj"), "repo": name})
        assert queued.status_code == 202, queued.text
        (allowed / "proj").rename(tmp_path / "moved")
        os.symlink(outside / "secret", allowed / "proj")
        with worker_process(queue, tmp_path / "worker.log", env={"LODE_ALLOWED_ROOTS": ""}):
            job = wait_job(client, queued.json()["job"]["id"], timeout=60)
    assert job["state"] == "failed", job
    assert job["error"] == f"{allowed / 'proj'} is no longer under the allowed root {allowed}; nothing was indexed"
    with pytest.raises(NotFound):
        lode.repos.status(name)
    with lode.db.connection() as conn:
        leaked = conn.execute("SELECT count(*) FROM chunks WHERE content LIKE '%%CONFINEMENT_SECRET%%'").fetchone()
        assert leaked == (0,)


def test_a_scoped_key_learns_nothing_about_repositories_outside_its_scope(
        lode: Lode, lode_home: Path, tmp_path: Path, no_keys: None) -> None:
    """Item 6: an index request naming a repository outside the key's scope, explicitly or through the
    directory's name, answers 403 like an unknown name, without the other repository's root."""
    allowed = tmp_path / "allowed"
    other, mine = f"sec-other-{uuid.uuid4().hex[:8]}", f"sec-mine-{uuid.uuid4().hex[:8]}"
    write_tree(allowed / "hidden-place", TINY)
    write_tree(allowed / "mine", TINY)
    write_tree(allowed / "elsewhere" / other, TINY)  # a directory whose name is the other repository's
    lode.indexing.index(allowed / "hidden-place", other)
    with api(lode_home, allowed_roots=[allowed]) as client:
        scoped = bearer(ApiKeys(lode.db).create("scoped-index", [mine]))

        def post(path: Path, repo: str | None = None) -> object:
            return client.post("/v1/index", json={"path": str(path), **({"repo": repo} if repo else {})},
                               headers=scoped)

        answers = {"named": post(allowed / "mine", other), "by_directory": post(allowed / "elsewhere" / other),
                   "unknown": post(allowed / "mine", "sec-no-such-repo"),
                   "named_anywhere": post(tmp_path / "not-allowed", other)}
        errors = {case: error_of(response, 403) for case, response in answers.items()}
        assert errors["unknown"]["message"].replace("sec-no-such-repo", other) == errors["named"]["message"]
        assert all(str(allowed / "hidden-place") not in e["message"] for e in errors.values()), errors
        assert {e["code"] for e in errors.values()} == {"forbidden"}
        job = client.post("/v1/index", json={"path": str(allowed / "mine"), "repo": mine}, headers=scoped)
        assert wait_job(client, job.json()["job"]["id"], Authorization=scoped["Authorization"])["state"] == "succeeded"


def test_a_scoped_key_reads_the_source_of_its_repositories_only(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                no_keys: None) -> None:
    """GET /v1/repositories/{name}/source reads files from disk: a key scoped to one repository gets 403 for any
    other (an existing one, or an unknown name: the same answer), before the path is looked at."""
    mine, theirs = f"sec-src-mine-{uuid.uuid4().hex[:8]}", f"sec-src-theirs-{uuid.uuid4().hex[:8]}"
    for repo in (mine, theirs):
        write_tree(tmp_path / repo, TINY)
        lode.indexing.index(tmp_path / repo, repo)
    with api(lode_home) as client:
        scoped = bearer(ApiKeys(lode.db).create("scoped-source", [mine]))

        def source(repo: str, path: str = "m.py", **headers: str) -> object:
            return client.get(f"/v1/repositories/{repo}/source", params={"path": path}, headers=headers)

        assert source(mine, **scoped).json()["lines"][0] == "def tiny_module_function():"
        refused = {repo: error_of(source(repo, **scoped), 403) for repo in (theirs, "sec-src-no-such-repo")}
        assert refused[theirs]["message"] == refused["sec-src-no-such-repo"]["message"].replace(
            "sec-src-no-such-repo", theirs)
        assert error_of(source(theirs, "nothing.py", **scoped), 403)  # the scope before the path
        assert error_of(source(mine), 401)  # keys exist now: none is no access
        admin = bearer(ApiKeys(lode.db).create("admin-source"))
        assert source(theirs, **admin).json()["origin"] == "file"
    for repo in (mine, theirs):
        lode.repos.remove(repo)


def test_the_newer_read_routes_keep_a_scoped_key_to_its_repositories(lode: Lode, lode_home: Path, tmp_path: Path,
                                                                     no_keys: None) -> None:
    """GET /v1/pattern (which reads files from disk), the outline, graph refs and POST /v1/search: 403 for a
    repository outside the key's scope, and only the key's repositories when none is named."""
    for name in ("mine", "theirs"):
        write_tree(tmp_path / name, SHOP)
    with api(lode_home, allowed_roots=[tmp_path]) as client:
        mine, theirs = f"new-{uuid.uuid4().hex[:8]}", f"new-{uuid.uuid4().hex[:8]}"
        index_via_api(client, tmp_path / "mine", mine)
        index_via_api(client, tmp_path / "theirs", theirs)
        scoped = bearer(ApiKeys(lode.db).create("scoped-newer", [mine]))

        grep = client.get("/v1/pattern", params={"q": "apply_discount"}, headers=scoped)
        assert grep.status_code == 200 and grep.json()["matches"]
        assert {m["repo"] for m in grep.json()["matches"]} == {mine}
        assert error_of(client.get("/v1/pattern", params={"q": "x", "repo": theirs}, headers=scoped), 403)
        assert client.get(f"/v1/repositories/{mine}/outline", headers=scoped).json()["symbols"]
        assert error_of(client.get(f"/v1/repositories/{theirs}/outline", headers=scoped), 403)
        refs = client.get("/v1/graph/refs", params={"symbol": "apply_discount", "repo": mine}, headers=scoped)
        assert refs.status_code == 200 and refs.json()["refs"]
        assert error_of(client.get("/v1/graph/refs", params={"symbol": "apply_discount", "repo": theirs},
                                   headers=scoped), 403)
        posted = client.post("/v1/search", json={"q": "discount", "mode": "lexical", "k": 50}, headers=scoped)
        assert posted.status_code == 200 and {h["repo"] for h in posted.json()["hits"]} == {mine}
        assert error_of(client.post("/v1/search", json={"q": "discount", "repo": theirs}, headers=scoped), 403)


def test_pattern_search_does_not_follow_a_directory_swapped_for_a_symlink(lode: Lode, lode_home: Path,
                                                                          tmp_path: Path, no_keys: None) -> None:
    """GET /v1/pattern reads the indexed files from disk: after a folder is replaced by a link to outside, its
    files count as changed (`stale`) and are not searched, so no text outside the index comes back."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_tree(root, SHOP)
    write_tree(outside, {"cart.py": "SECRET_OUTSIDE = 1\n", "pricing.py": "SECRET_OUTSIDE = 2\n"})
    with api(lode_home, allowed_roots=[tmp_path]) as client:
        repo = f"swap-{uuid.uuid4().hex[:8]}"
        index_via_api(client, root, repo)
        (root / "shop").rename(tmp_path / "moved")
        os.symlink(outside, root / "shop")
        found = client.get("/v1/pattern", params={"q": "SECRET_OUTSIDE", "repo": repo})
        assert found.status_code == 200
        assert found.json()["matches"] == []
        assert set(found.json()["stale"]) >= {"shop/cart.py", "shop/pricing.py"}  # changed: not searched
