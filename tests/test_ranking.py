"""The ranking stage after fusion (issue 17): the query classifier, each prior alone, and the whole stage end to
end on a small real tree through the engine, the CLI, REST and MCP."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from lode.config import Settings
from lode.engine import MAX_QUERY_BYTES, Lode
from lode.errors import InputError
from lode.mcp import create_server
from lode.search import ranking
from lode.search.paths import is_test_path, path_roles
from lode.search.query import Frame, QueryKind, classify, parse
from lode.search.ranking import Candidate, rank
from tests.conftest import local_client, run_cli

# ---- query understanding ------------------------------------------------------------------------------------

TRACEBACK = """Simplify fails on a product of powers

```
>>> simplify(x**2 * y)
Traceback (most recent call last):
  File "/home/me/sympy/sympy/simplify/simplify.py", line 612, in simplify
    expr = bottom_up(expr, lambda w: getattr(w, 'normal', lambda: w)())
  File "/home/me/sympy/sympy/core/mul.py", line 1203, in _eval_power
    raise TypeError("bad")
TypeError: bad
```
The `Mul._eval_power` method should not raise here.
"""


@pytest.mark.parametrize("text, kind", [
    ("url_for", QueryKind.SYMBOL),
    ("Flask.url_for", QueryKind.SYMBOL),
    ("Rack::Builder", QueryKind.SYMBOL),
    ("getUser", QueryKind.SYMBOL),
    ("`run_command()`", QueryKind.SYMBOL),
    ("parse", QueryKind.SYMBOL),
    ("where is the CLI command flask run implemented", QueryKind.NATURAL),
    ("handle 404 error handler", QueryKind.NATURAL),
    ("How do I validate an email address?", QueryKind.NATURAL),
    ("before_request hook execution order", QueryKind.MIXED),
    ("why does Flask.url_for ignore the scheme", QueryKind.MIXED),
    ("what calls getUser when the session expires", QueryKind.MIXED),
    ("the `retry` option of the client", QueryKind.MIXED),
    (TRACEBACK, QueryKind.LONG),
    ("x " * 200, QueryKind.LONG),
    ("one\ntwo\nthree", QueryKind.LONG),
])
def test_the_classifier_reads_each_kind(text: str, kind: QueryKind) -> None:
    assert classify(text) is kind


def test_identifiers_are_qualified_with_dots_and_ranked_by_mentions() -> None:
    assert parse("Rack::Builder").identifiers == ["Rack.Builder"]
    assert parse("Flask#url_for").identifiers == ["Flask.url_for"]
    assert parse("getUser()").names == ["getuser"]
    mixed = parse("why does before_request run after `teardown` and before_request again")
    assert mixed.identifiers[:2] == ["before_request", "teardown"]
    assert parse("where is the flask run command").identifiers == []


def test_a_traceback_gives_frames_paths_and_the_names_in_it() -> None:
    query = parse(TRACEBACK)
    assert query.kind is QueryKind.LONG
    assert query.frames[:2] == [Frame("/home/me/sympy/sympy/simplify/simplify.py", 612, "simplify"),
                                Frame("/home/me/sympy/sympy/core/mul.py", 1203, "_eval_power")]
    assert "Mul._eval_power" in query.identifiers and "_eval_power" in query.identifiers
    java = parse("Exception in thread main\n  at com.acme.shop.Cart.total(Cart.java:42)\n  at x.Y.z(Y.java:1)\n")
    assert Frame("com/acme/shop/Cart.java", 42, "total") in java.frames


def test_roles_the_query_asks_for_are_recorded() -> None:
    assert parse("test client cookie").asks_for == frozenset({"test"})
    assert parse("example of a middleware").asks_for == frozenset({"example"})
    assert parse("client cookie").asks_for == frozenset()


def test_a_long_query_keeps_its_names_and_rarest_words_within_the_cap() -> None:
    query = parse(TRACEBACK + " ".join(f"word{i}" for i in range(300)))
    frequencies = {f"word{i}": 1000 - i for i in range(300)} | {"eval_pow": 3, "simplifi": 50, "mul": 40}
    terms = query.lexical_terms(frequencies, cap=16)
    assert len(terms) == 16
    assert {"eval_pow", "simplifi", "mul"} <= terms.keys()  # the names come first (stemmed, as indexed)
    assert "word299" in terms and "word0" not in terms  # then the rarest words
    assert "nosuchterm" not in parse(TRACEBACK + " nosuchterm" * 500).lexical_terms(frequencies, cap=16)
    short = parse("parse the header")
    assert short.lexical_terms({}) == {"pars": 1, "header": 1}  # a short query keeps every term


def test_the_embedding_text_of_a_long_query_is_its_prose_and_names() -> None:
    focus = parse(TRACEBACK + "filler line\n" * 3000).focus()
    assert focus.startswith("Simplify fails on a product of powers")
    assert "most recent call" not in focus and "line 612" not in focus and len(focus) < 1500
    assert "_eval_power" in focus
    assert parse("url_for").focus() == "url_for"


# ---- paths -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path, roles", [
    ("tests/test_x.py", {"test"}), ("pkg/test_x.py", {"test"}), ("pkg/conftest.py", {"test"}),
    ("a/b_test.go", {"test"}), ("src/x.test.ts", {"test"}), ("src/x.spec.tsx", {"test"}),
    ("src/FooTest.java", {"test"}), ("src/FooTests.cs", {"test"}), ("spec/models/user_spec.rb", {"test"}),
    ("web/__tests__/a.js", {"test"}), ("sympy/testing/runtests.py", {"test"}),
    ("examples/hello/app.py", {"example"}), ("docs/conf.py", {"docs"}), ("flask/_compat.py", set()),
    ("lib/compat.py", {"compat"}), ("vendor/github.com/x/y.go", {"vendored"}), ("third_party/z.c", {"vendored"}),
    ("api/service_pb2.py", {"generated"}), ("gen/types.pb.go", {"generated"}), ("types/index.d.ts", {"declaration"}),
    ("src/testing_utils_helper.txt.md", set()), ("lode/contest.py", set()), ("shop/pricing.py", set()),
    ("src/Latest.java", set()), ("pkg/attestation.go", set()),
])
def test_path_roles_per_language(path: str, roles: set[str]) -> None:
    assert path_roles(path) == roles
    assert is_test_path(path) == ("test" in roles)


# ---- each prior alone -------------------------------------------------------------------------------------

def chunk(cid: int, path: str, score: float, kind: str = "function", name: str | None = None,
          name_path: str | None = None, lines: tuple[int, int] = (1, 10), injected: str | None = None) -> Candidate:
    return Candidate(cid, path, kind, name, name_path or name, lines[0], lines[1], score,
                     {"lexical": cid, "text": None, "code": None}, injected=injected)


def order(query: str, candidates: list[Candidate], disabled: frozenset[str] = frozenset()) -> list[int]:
    return [r.candidate.chunk_id for r in rank(parse(query), candidates, disabled)]


def test_definition_prior_puts_the_definition_before_its_uses() -> None:
    uses = chunk(1, "app/views.py", 1.0, name="index", name_path="views.index")
    definition = chunk(2, "app/helpers.py", 0.5, name="url_for", name_path="helpers.url_for")
    method = chunk(3, "app/app.py", 0.45, kind="method", name="url_for", name_path="app.Flask.url_for")
    assert order("url_for", [uses, definition, method]) == [2, 3, 1]
    assert order("Flask.url_for", [uses, definition, method])[0] == 3  # the qualified suffix wins
    assert order("url_for", [uses, definition, method], frozenset({"definition"})) == [1, 2, 3]
    factors = rank(parse("url_for"), [uses, definition])[0].factors
    assert factors == {"definition": ranking.DEFINITION_FACTORS[QueryKind.SYMBOL][1]}
    assert ranking.definition_factor(parse("how urls are built"), definition) == 1.0  # no name asked for


def test_a_definition_no_leg_found_is_brought_in_below_the_best_score() -> None:
    found = chunk(1, "app/views.py", 2.0, name="index")
    brought = chunk(2, "app/helpers.py", 0.0, name="url_for", injected="definition")
    ranked = rank(parse("url_for"), [found, brought])
    assert [r.candidate.chunk_id for r in ranked] == [2, 1]
    assert ranked[0].score == pytest.approx(2.0 * ranking.INJECTED_SHARE * ranking.DEFINITION_FACTORS[
        QueryKind.SYMBOL][1])


def test_path_prior_matches_stems_and_folders_with_morphology() -> None:
    words = set(parse("resolve the dependencies").words)
    assert ranking.path_factor(words, "fastapi/dependency.py") == 1 + ranking.PATH_STEM_WEIGHT
    assert ranking.path_factor(words, "fastapi/dependencies/utils.py") == 1 + ranking.PATH_FOLDER_WEIGHT
    assert ranking.path_factor(words, "fastapi/routing.py") == 1.0
    assert ranking.path_factor(words, "src/dependencies/mod.rs") == 1 + ranking.PATH_STEM_WEIGHT  # named by its folder
    other = chunk(1, "app/routing.py", 1.0)
    named = chunk(2, "app/dependency.py", 0.9)
    assert order("resolve the dependencies", [other, named]) == [2, 1]
    assert order("resolve the dependencies", [other, named], frozenset({"path"})) == [1, 2]


def test_role_prior_demotes_tests_unless_the_query_asks_for_them() -> None:
    test = chunk(1, "tests/test_sessions.py", 1.0, name="test_cookie")
    source = chunk(2, "flask/sessions.py", 0.7, name="save_session")
    assert order("session cookie", [test, source]) == [2, 1]
    assert order("test client cookie", [test, source]) == [1, 2]
    assert order("session cookie", [test, source], frozenset({"role"})) == [1, 2]
    assert ranking.role_factor("vendor/x/y.go", frozenset()) == ranking.ROLE_FACTORS["vendored"]
    assert ranking.role_factor("src/a.ts", frozenset()) == 1.0


def test_frame_prior_lifts_files_and_lines_named_in_a_traceback() -> None:
    query = parse(TRACEBACK)
    frame_line = chunk(1, "sympy/core/mul.py", 0.3, lines=(1190, 1210))
    same_file = chunk(2, "sympy/core/mul.py", 0.3, lines=(1, 50))
    elsewhere = chunk(3, "sympy/core/add.py", 0.3)
    assert ranking.frame_factor(query, frame_line) == ranking.FRAME_FACTOR * ranking.FRAME_LINE_FACTOR
    assert ranking.frame_factor(query, same_file) == ranking.FRAME_FACTOR
    assert ranking.frame_factor(query, elsewhere) == 1.0
    assert ranking.frame_factor(parse("a bug in core/add.py when adding"), elsewhere) == ranking.NAMED_PATH_FACTOR
    assert ranking.frame_factor(parse("a bug in add.py when adding"), elsewhere) == 1.0  # a bare name is too weak
    assert ranking.path_suffixes("/home/me/sympy/sympy/core/mul.py")[-2:] == ["sympy/core/mul.py", "core/mul.py"]


def test_coherence_lifts_a_file_with_several_good_chunks() -> None:
    lone = chunk(1, "a/lone.py", 1.0)
    group = [chunk(2, "a/many.py", 0.95), chunk(3, "a/many.py", 0.6), chunk(4, "a/many.py", 0.5)]
    assert order("mixing things", [lone, *group], frozenset({"saturation"}))[0] == 2
    assert order("mixing things", [lone, *group], frozenset({"saturation", "coherence"}))[0] == 1


def test_saturation_keeps_one_file_from_filling_the_page() -> None:
    same = [chunk(i, "a/big.py", 1.0 - i / 100) for i in range(1, 6)]
    other = chunk(9, "a/other.py", 0.8)
    ranked = order("some things", [*same, other], frozenset({"coherence"}))
    assert ranked[:2] == [1, 9]
    assert order("some things", [*same, other], frozenset({"coherence", "saturation"})).index(9) == 5
    files = ranking.files(rank(parse("some things"), [*same, other]), evidence=2)
    assert [f.path for f in files] == ["a/big.py", "a/other.py"]
    assert [r.candidate.chunk_id for r in files[0].evidence] == [1, 2]
    many = [chunk(i, "a/huge.py", 1.0) for i in range(40)]  # damped far below any shown precision
    assert [f.score for f in ranking.files(rank(parse("enormous"), many))] == [
        pytest.approx(1 + ranking.COHERENCE_WEIGHT)]


# ---- end to end on a small real tree ------------------------------------------------------------------------

TREE = {
    "webapp/helpers.py": '''
        def url_for(endpoint, **values):
            """Build the URL of an endpoint with the given values."""
            rule = values.pop("_rule", endpoint)
            scheme = values.pop("_scheme", None)
            anchor = values.pop("_anchor", None)
            method = values.pop("_method", None)
            if method is not None and method not in ("GET", "POST"):
                raise ValueError(method)
            path = "/" + rule
            if anchor:
                path += "#" + anchor
            if scheme:
                path = scheme + "://localhost" + path
            return path
        ''',
    "webapp/cli.py": '''
        import click


        def run_command(host, port):
            """Run a local development server."""
            click.echo(f"serving on {host}:{port}")
        ''',
    "webapp/app.py": '''
        from webapp.helpers import url_for


        class Flask:
            def redirect_home(self):
                return url_for("index")
        ''',
    "tests/test_helpers.py": '''
        from webapp.helpers import url_for


        class TestUrlFor:
            def test_url_for(self):
                assert url_for("index") == "/index"
                assert url_for("a") == "/a"
                assert url_for("b", _rule="c") == "/c"
                assert url_for("url_for") == "/url_for"
                assert url_for("url_for", _anchor="url_for") == "/url_for#url_for"
                assert url_for("url_for", _scheme="http") == "http://localhost/url_for"

            def test_url_for_rules(self):
                assert url_for("x", _rule="url_for") == "/url_for"
        ''',
    "tests/test_cli.py": '''
        from webapp.cli import run_command


        def test_run_command(capsys):
            run_command("localhost", 5000)
            run_command("127.0.0.1", 8000)
            assert "serving" in capsys.readouterr().out
        ''',
}


@pytest.fixture(scope="module")
def webapp(lode: Lode, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("ranking") / "webapp-root"
    for path, text in TREE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text).lstrip())
    name = f"rank-{uuid.uuid4().hex[:8]}"
    lode.index(root, name)
    return name


def first_paths(result: dict[str, Any]) -> list[str]:
    return [hit["path"] for hit in result["hits"]]


def test_a_bare_name_finds_its_definition_first_and_before_its_tests(lode: Lode, lode_home: Path,
                                                                      webapp: str) -> None:
    unranked = Lode(Settings(home=lode_home, embedder="none", ranking="off"))
    try:
        before = unranked.search("url_for", repo=webapp, mode="lexical")
    finally:
        unranked.close()
    assert first_paths(before)[0] == "tests/test_helpers.py"  # what the stage fixes: the test outranks the definition

    result = lode.search("url_for", repo=webapp, mode="lexical")
    assert result["query_kind"] == "symbol"
    top = result["hits"][0]
    assert (top["path"], top["name"]) == ("webapp/helpers.py", "url_for")
    assert top["legs"]["priors"]["definition"] > 1 and top["legs"]["lexical"] is not None
    tests = [i for i, path in enumerate(first_paths(result)) if path.startswith("tests/")]
    assert tests and min(tests) > 0
    assert lode.search("run_command", repo=webapp)["hits"][0]["path"] == "webapp/cli.py"  # hybrid, legs degraded


def test_filters_still_filter_and_a_test_query_gets_its_tests(lode: Lode, webapp: str) -> None:
    only_tests = lode.search("url_for", repo=webapp, path="tests/**")
    assert only_tests["hits"] and set(first_paths(only_tests)) == {"tests/test_helpers.py"}
    classes = lode.search("url_for", repo=webapp, kinds=("class",))
    assert {hit["kind"] for hit in classes["hits"]} == {"class"}
    def test_factor(query: str) -> float | None:
        hits = lode.search(query, repo=webapp, mode="lexical")["hits"]
        return next(h["legs"]["priors"].get("role", 1.0) for h in hits if h["path"] == "tests/test_cli.py")

    assert test_factor("run_command") == ranking.ROLE_FACTORS["test"]
    assert test_factor("test run_command") == 1.0  # asked for: not demoted


def test_the_file_mode_ranks_files_with_their_best_hits(lode: Lode, webapp: str) -> None:
    result = lode.search("url_for", repo=webapp, group="files", k=3)
    assert [f["path"] for f in result["files"]][0] == "webapp/helpers.py" and len(result["files"]) == 3
    first = result["files"][0]
    assert first.keys() == {"repo", "path", "language", "score", "hits"}
    assert first["repo"] == webapp and first["language"] == "python"
    assert first["hits"][0]["name"] == "url_for" and all(h["path"] == first["path"] for h in first["hits"])
    assert [f["score"] for f in result["files"]] == sorted((f["score"] for f in result["files"]), reverse=True)
    assert "files" not in lode.search("url_for", repo=webapp)
    with pytest.raises(InputError, match="group must be one of"):
        lode.search("url_for", repo=webapp, group="folders")


def test_queries_up_to_64_kib_are_taken_and_longer_ones_refused(lode: Lode, webapp: str) -> None:
    issue = TRACEBACK.replace("sympy/core/mul.py", "webapp/helpers.py") + "url_for returns a wrong rule\n"
    body = issue + "x" * (MAX_QUERY_BYTES - len(issue.encode()))
    assert len(body.encode()) == MAX_QUERY_BYTES
    result = lode.search(body, repo=webapp, group="files")
    assert result["query_kind"] == "long" and result["files"][0]["path"] == "webapp/helpers.py"
    with pytest.raises(InputError, match=r"the query is 65537 bytes; the limit is 65536 \(64 KiB\)"):
        lode.search(body + "y", repo=webapp)


def test_ranking_off_and_unknown_priors(lode_home: Path, webapp: str) -> None:
    with pytest.raises(InputError, match="unknown priors nonsense"):
        Lode(Settings(home=lode_home, embedder="none", ranking_disable="path,nonsense"))
    engine = Lode(Settings(home=lode_home, embedder="none", ranking_disable="definition"))
    try:
        hits = engine.search("url_for", repo=webapp, mode="lexical")["hits"]
    finally:
        engine.close()
    assert all("definition" not in hit["legs"]["priors"] for hit in hits)


# ---- the interfaces ---------------------------------------------------------------------------------------

def test_cli_files_and_explain(lode: Lode, webapp: str) -> None:
    code, result, _ = run_cli("search", "url_for", "--repo", webapp, "--files", "-k", "2", "--json")
    assert code == 0 and [f["path"] for f in result["files"]][0] == "webapp/helpers.py"
    assert len(result["files"]) == 2 and result["hits"][0]["legs"]["priors"]["definition"] > 1
    code, text, _ = run_cli("search", "url_for", "--repo", webapp, "--explain", "-k", "1")
    assert code == 0 and "query kind: symbol" in text
    assert "legs: lexical #" in text and "priors: definition x3" in text and "fused " in text


def test_rest_group_files_and_post_for_long_queries(lode: Lode, lode_home: Path, webapp: str) -> None:
    from lode.api.app import create_app

    with local_client(create_app(Settings(home=lode_home, embedder="none"))) as client:
        response = client.get("/v1/search", params={"q": "url_for", "repo": webapp, "group": "files", "k": 1})
        assert response.status_code == 200, response.text
        page = response.json()
        assert [f["path"] for f in page["files"]] == ["webapp/helpers.py"] and page["next_offset"] == 1
        assert page["files"][0]["hits"][0]["legs"]["priors"]["definition"] > 1

        issue = TRACEBACK.replace("sympy/core/mul.py", "webapp/helpers.py") + "url_for " * 7000
        assert len(issue.encode()) <= MAX_QUERY_BYTES
        response = client.post("/v1/search", json={"q": issue, "repo": webapp, "group": "files"})
        assert response.status_code == 200, response.text
        assert response.json()["query_kind"] == "long"
        assert response.json()["files"][0]["path"] == "webapp/helpers.py"

        response = client.post("/v1/search", json={"q": "y" * (MAX_QUERY_BYTES + 1), "repo": webapp})
        assert response.status_code == 400
        assert "the limit is 65536 (64 KiB)" in json.dumps(response.json())
        response = client.post("/v1/search", json={"q": "url_for", "nonsense": 1})
        assert response.status_code == 422


def test_mcp_search_code_files(lode: Lode, webapp: str) -> None:
    server = create_server(lambda: lode)

    async def run() -> str:
        async with Client(server) as client:
            result = await client.call_tool("search_code", {"query": "url_for", "repo": webapp, "files": True,
                                                            "k": 2})
            return "\n".join(block.text for block in result.content)

    text = anyio.run(run)
    assert text.startswith("2 files for 'url_for'")
    assert "1. webapp/helpers.py" in text and "webapp/helpers.py:1-" in text and "function " in text
