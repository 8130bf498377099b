"""Highlights: the spans of a snippet that the tokenizer matched to query terms (lode/search/highlight.py)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from lode.search.highlight import highlights
from lode.search.tokens import split_word, token_spans, tokenize


def marked(snippet: str, query: str) -> list[str]:
    lines = snippet.split("\n")
    return [lines[line][start:end] for line, start, end in highlights(snippet, set(tokenize(query)))]


def test_stopwords_and_fragments_of_longer_words_are_not_marked() -> None:
    """The old UI marked `th**is**`-style fragments: every query word as a substring, stopwords included."""
    snippet = "this is the total of a subtotal\nwhat it does: totals"
    assert highlights(snippet, set(tokenize("this total"))) == [[0, 12, 17], [1, 14, 20]]
    assert marked(snippet, "this total") == ["total", "totals"]  # a stem matches; `this` and `subtotal` do not
    assert marked(snippet, "this is what it does") == []


def test_word_parts_are_marked_as_the_tokenizer_splits_identifiers() -> None:
    snippet = "def parseHTTPResponse(response_text):\n    return parse_http_response(response_text)"
    assert marked(snippet, "parse responses") == ["parse", "Response", "response", "parse", "response",
                                                   "response"]
    # the identifier matched whole is one mark, not one per part; its parts match parts of other words
    assert highlights(snippet, set(tokenize("parse_http_response"))) == [
        [0, 4, 9], [0, 9, 13], [0, 13, 21], [0, 22, 30], [1, 11, 30], [1, 31, 39]]


def test_offsets_are_code_points_within_newline_separated_lines() -> None:
    snippet = "# 🙂 total\r\n\ttotal = 1\n\nlast_total"
    assert highlights(snippet, {"total"}) == [[0, 4, 9], [1, 1, 6], [3, 5, 10]]
    assert highlights(snippet, set()) == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aAbBzZ_ é1\n.(ßİ"), max_size=60),
       st.text(alphabet=st.sampled_from("aAbBzZ_ é1ßİ"), min_size=1, max_size=12))
def test_marks_are_exactly_where_the_tokenizer_finds_query_terms(snippet: str, query: str) -> None:
    terms = set(tokenize(query))
    spans = highlights(snippet, terms)
    lines = snippet.split("\n")
    for number, line in enumerate(lines):
        on_line = [(start, end) for n, start, end in spans if n == number]
        assert on_line == sorted(on_line) and all(a[1] <= b[0] for a, b in pairwise(on_line))  # disjoint
        assert bool(on_line) == bool(terms & set(tokenize(line)))
        for start, end in on_line:
            assert terms & {token for s, e, token in token_spans(line) if (s, e) == (start, end)}


def test_token_spans_give_the_tokens_of_tokenize() -> None:
    text = "parseHTTPResponse_v2 = __init__(İstanbulCity, x__y) # the Ölfeld café"
    assert [token for _, _, token in token_spans(text)] == tokenize(text)
    assert [text[s:e] for s, e, _ in token_spans("parseHTTPResponse_v2")] == [
        "parseHTTPResponse_v2", "parse", "HTTP", "Response"]
    assert split_word("parseHTTPResponse_v2") == ("parsehttpresponse_v2", "pars", "http", "respons")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_each_token_span_holds_the_text_it_was_made_from(text: str) -> None:
    """word_tokens takes a part's span from the lengths of the parts before it: they must cover each word."""
    for start, end, token in token_spans(text):
        assert tokenize(text[start:end])[:1] == [token], (text, start, end, token)
