"""Fuzz the query side (issue #7, item 6): the tokenizer, the path-glob translation and the engine's search entry
take any string and give results or an InputError, never another exception. Examples are bounded (~10 s)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lode.engine import Lode
from lode.errors import InputError
from lode.search.filters import glob_to_regex
from lode.search.tokens import split_word, term_counts, tokenize

# Text that can reach the engine: argv decodes undecodable bytes to lone surrogates, JSON allows "\ud800" and NUL.
hostile_text = st.text(st.characters(exclude_categories=()), max_size=60)
# The same without the two things PostgreSQL cannot take (NUL, lone surrogates).
storable_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=60)
glob_text = st.text("ab/*?[]!-^\\.{}()|+$:=az09_ ", max_size=30)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=80))  # surrogates: the engine's to refuse
def test_tokenizer_never_raises_and_agrees_with_term_counts(text: str) -> None:
    tokens = tokenize(text)
    assert tokens == tokenize(text)
    assert all(token and token == token.lower() for token in tokens)
    counts = term_counts(text)
    assert counts.keys() == set(tokens) and sum(counts.values()) == len(tokens)
    for word in text.split():
        split_word(word)


def _postgres_accepts(conn: psycopg.Connection, pattern: str) -> bool:
    try:
        with conn.transaction():
            conn.execute("SELECT 'src/lode/cli.py' ~ %s", (pattern,))
        return True
    except psycopg.errors.InvalidRegularExpression:
        return False


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(glob=glob_text)
def test_glob_without_classes_is_a_regex_both_python_and_postgres_accept(lode: Lode, glob: str) -> None:
    glob = glob.replace("[", "")  # bracket classes: see the xfail test below
    try:
        pattern = glob_to_regex(glob)
    except InputError:
        return
    re.compile(pattern)
    with lode.db.connection() as conn:
        assert _postgres_accepts(conn, pattern), (glob, pattern)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(glob=glob_text)
@example(glob="[z-a]")
@example(glob="[[:alpha:]]")
@example(glob="[a-\\]")
def test_any_glob_is_an_input_error_or_a_regex_postgres_accepts(lode: Lode, glob: str) -> None:
    try:
        pattern = glob_to_regex(glob)
    except InputError:
        return
    with lode.db.connection() as conn:
        assert _postgres_accepts(conn, pattern), (glob, pattern)


@pytest.fixture(scope="module")
def small_repo(lode: Lode, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("fuzz-repo")
    (root / "pkg").mkdir()
    (root / "pkg" / "parse.py").write_text("def parse_config(path):\n    return open(path).read()\n\n\n"
                                           "class Loader:\n    def load(self, name):\n        return name\n")
    (root / "web.js").write_text("export function renderTemplate(t) {\n  return t.trim();\n}\n")
    lode.indexing.index(root, "fuzz-queries")
    return "fuzz-queries"


def _search(lode: Lode, repo: str, query: str, path: str | None, kinds: tuple[str, ...],
            languages: tuple[str, ...], k: int) -> None:
    try:
        result = lode.search.query(query, repo=repo, mode="lexical", k=k, path=path, kinds=kinds, languages=languages)
    except InputError:
        return
    assert result["query"] == query and len(result["hits"]) <= k
    for hit in result["hits"]:
        assert hit["repo"] == repo and (not kinds or hit["kind"] in kinds)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.one_of(storable_text, st.just("parse config load render template")),
       path=st.one_of(st.none(), glob_text.map(lambda g: g.replace("[", ""))),
       kinds=st.lists(st.one_of(st.sampled_from(["function", "class", "method"]), storable_text), max_size=2),
       languages=st.lists(st.one_of(st.sampled_from(["python", "javascript"]), storable_text), max_size=2),
       k=st.integers(-3, 250))
def test_search_with_storable_strings_gives_results_or_input_error(lode: Lode, small_repo: str, query: str,
                                                                    path: str | None, kinds: list[str],
                                                                    languages: list[str], k: int) -> None:
    _search(lode, small_repo, query, path, tuple(kinds), tuple(languages), k)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=hostile_text, path=st.one_of(st.none(), hostile_text), kinds=st.lists(hostile_text, max_size=2))
@example(query="\udcffparse", path=None, kinds=[])  # `lode search $'\xffparse'`: argv's surrogate escape
@example(query="parse", path="a\x00", kinds=[])
@example(query="parse", path=None, kinds=["\x00"])
def test_search_with_any_strings_gives_results_or_input_error(lode: Lode, small_repo: str, query: str,
                                                               path: str | None, kinds: list[str]) -> None:
    _search(lode, small_repo, query, path, tuple(kinds), (), 10)


def test_search_fuzz_repo_is_searchable(lode: Lode, small_repo: str) -> None:
    """The fuzzed searches ran against an index that answers: a fuzz over an empty index would prove little."""
    hits = lode.search.query("parse config", repo=small_repo, mode="lexical")["hits"]
    assert hits and hits[0]["name"] == "parse_config"
    assert Path(hits[0]["path"]).name == "parse.py"


@pytest.mark.parametrize("bad", ["a\x00b", "\udcffname"])
def test_symbol_and_graph_arguments_refuse_nul_and_lone_surrogates(lode: Lode, small_repo: str, bad: str) -> None:
    for call in (lambda: lode.search.symbols(bad, repo=small_repo),
                 lambda: lode.graph.neighbours("callers", bad, repo=small_repo),
                 lambda: lode.graph.path(bad, "parse", repo=small_repo)):
        with pytest.raises(InputError):
            call()
