"""Where a snippet matches the query, as the lexical leg matched it: the words and word parts whose tokens (stems,
camelCase and snake_case parts, lode/search/tokens.py) are query terms. Stopwords and fragments inside a longer
word are not marks: `this` in a query marks nothing, `total` does not mark the `total` of `subtotal`, and
`response` marks the `Response` of `parseHTTPResponse`.

Clients draw the marks without knowing the tokenizer: a hit's `highlights` is [[line, start, end], ...] over its
snippet, with `line` the 0-based index among the snippet's "\\n"-separated lines and [start, end) offsets in
Unicode code points within that line.
"""

from __future__ import annotations

from collections.abc import Collection

from lode.search.tokens import token_spans


def highlights(snippet: str, terms: Collection[str]) -> list[list[int]]:
    """The spans of `snippet` whose tokens are among `terms`, in order; a word matched whole takes in the marks
    of its parts."""
    if not terms:
        return []
    spans: list[list[int]] = []
    for number, line in enumerate(snippet.split("\n")):
        end_of_last = -1
        for start, end, token in token_spans(line):
            if token in terms and start >= end_of_last:  # the whole word comes before its parts
                spans.append([number, start, end])
                end_of_last = end
    return spans
