"""Code-aware tokens, the same for documents and queries.

An identifier yields itself, lower-cased, and its parts: `parseHTTPResponse_v2` gives
`parsehttpresponse_v2`, `parse`, `http`, `response`, `v2`. Paths split on punctuation like any text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+(?:_+[^\W_]+)*", re.UNICODE)  # words joined by underscores: whole identifiers
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+|[^\W\d_a-zA-Z]+", re.UNICODE)

# English function words: they carry no meaning in queries or comments. Code keywords stay searchable.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
    now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)


_stem = Stemmer.Stemmer("english").stemWord


def word_tokens(word: str) -> list[tuple[int, int, str]]:
    """Tokens for one word with the span of the word they stand for: the whole, lower-cased, then its snake_case
    and camelCase parts, each stemmed. Highlighting uses the spans (lode/search/highlight.py)."""
    whole = word.lower()
    tokens = [(0, len(word), _stem(whole))] if len(whole) > 1 and whole not in STOP_WORDS else []
    if word.isascii() and (word.isdigit() or word.isalpha() and (word.islower() or word.isupper() or word.istitle())):
        return tokens  # one part, the whole (a shortcut: most words of a text are plain words)
    parts: list[tuple[int, int, str]] = []
    start = 0
    for piece in word.split("_"):
        for part in _CAMEL.findall(piece):  # the parts cover the piece (findall: cheaper than match objects)
            end = start + len(part)
            parts.append((start, end, part.lower()))
            start = end
        start += 1  # the underscore
    if len(parts) > 1:
        tokens.extend((start, end, _stem(p)) for start, end, p in parts
                      if len(p) > 1 and p not in STOP_WORDS and p != whole)
    return tokens


@lru_cache(maxsize=200_000)
def split_word(word: str) -> tuple[str, ...]:
    """Tokens for one word (word_tokens without the spans)."""
    return tuple(token for _, _, token in word_tokens(word))


def token_spans(text: str) -> Iterator[tuple[int, int, str]]:
    """The tokens of `text` in order (those of tokenize), each with the span of the text it stands for."""
    for match in _WORD.finditer(text):
        start = match.start()
        for first, last, token in word_tokens(match.group()):
            yield start + first, start + last, token


def tokenize(text: str) -> list[str]:
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(split_word(word))
    return out


def term_counts(text: str) -> dict[str, int]:
    """Token frequencies of a text: words are counted first (in C), then each distinct word is split once."""
    counts: dict[str, int] = {}
    get = counts.get
    for word, n in Counter(_WORD.findall(text)).items():
        for token in split_word(word):
            counts[token] = get(token, 0) + n
    return counts
