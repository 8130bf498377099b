"""The ranking stage's parts alone (issue 17): the query classifier and what it extracts, the path roles, and
each prior on hand-made candidates."""

from __future__ import annotations

import pytest

from lode.search import ranking
from lode.search.paths import is_test_path, path_roles
from lode.search.query import Frame, QueryKind, classify, parse
from lode.search.ranking import Candidate, rank

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
    ("pydantic/_internal/_fields.py", {"internal"}), ("serde/src/private/ser.rs", {"internal"}),
    ("internal/app/server.go", {"internal"}), ("src/internals.rs", set()),
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


def test_a_long_query_takes_the_names_its_code_calls_but_not_builtins() -> None:
    issue = "ccode(sinc(x)) doesn't work\n```\nIn [30]: ccode(sinc(x))\nprint(len(M.col_join(B)))\n```\n"
    identifiers = parse(issue).identifiers
    assert {"ccode", "sinc", "col_join"} <= set(identifiers)
    assert not {"print", "len", "x"} & set(identifiers)
    assert "ccode" not in parse("why does ccode(x) fail").identifiers  # a short query: the call rule is for issues


def test_version_prior_demotes_an_older_version_folder_unless_the_query_names_it() -> None:
    old = chunk(1, "pkg/src/v3/schemas.ts", 1.0, name="ZodType")
    new = chunk(2, "pkg/src/v4/core/schemas.ts", 0.8, name="ZodType")
    alone = chunk(3, "other/v1/api.ts", 0.9)  # no sibling version among the candidates: left alone
    assert ranking.newest_versions([old, new, alone]) == {(0, "pkg/src"): 4}
    assert order("ZodType base class", [old, new, alone]) == [2, 1, 3]
    assert rank(parse("ZodType base class"), [old, new])[1].factors["version"] == ranking.SUPERSEDED_FACTOR
    assert order("ZodType in v3", [old, new, alone])[0] == 1  # the query names v3
    assert order("ZodType base class", [old, new, alone], frozenset({"version"})) == [1, 2, 3]
    assert ranking.newest_versions([chunk(4, "src/v2x/a.ts", 1.0), chunk(5, "src/v3/a.ts", 1.0)]) == {}


def test_path_prior_knows_the_abbreviations_file_names_use() -> None:
    words = ranking.path_words(parse("standard library Serialize implementations"))
    assert {"impl", "std"} <= words  # each word brings its abbreviations ...
    assert ranking.path_factor(words, "serde_core/src/ser/impls.rs") == 1 + ranking.PATH_STEM_WEIGHT + \
        ranking.PATH_FOLDER_WEIGHT  # `ser` (serialize) the folder, `impls` the stem
    assert ranking.path_factor(ranking.path_words(parse("model configuration")), "pydantic/config.py") == \
        1 + ranking.PATH_STEM_WEIGHT
    assert "configur" in ranking.path_words(parse("the config loader"))  # ... and an abbreviation its word
    assert ranking.path_factor(ranking.path_words(parse("model settings")), "pydantic/config.py") == 1.0


def test_a_long_query_reads_path_words_and_asked_roles_from_its_title_only() -> None:
    issue = parse("Error pretty printing MatAdd\n```py\n>>> pprint(x)\n```\nI tested it with the latest master.\n")
    assert issue.kind is QueryKind.LONG
    assert {"pretti", "print", "matadd"} <= set(issue.words) and "latest" not in issue.words
    assert issue.asks_for == frozenset()  # "tested" in the body: tests stay demoted
    assert parse("Flaky test of the client\nsee below\nmore\n").asks_for == frozenset({"test"})
    assert parse("x" * 300 + "\nsecond line\nthird line").words == []  # a first line that long is no title
    assert ranking.path_factor(set(issue.words), "sympy/printing/pretty/pretty.py") > 1.0
