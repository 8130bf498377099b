"""Code-aware tokens, the same for documents and queries.

An identifier yields itself, lower-cased, and its parts: `parseHTTPResponse_v2` gives
`parsehttpresponse_v2`, `parse`, `http`, `response`, `v2`. Paths split on punctuation like any text.
"""

from __future__ import annotations

import re
from collections import Counter
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


@lru_cache(maxsize=200_000)
def split_word(word: str) -> tuple[str, ...]:
    """Tokens for one word: the whole, lower-cased, then its snake_case and camelCase parts, each stemmed."""
    whole = word.lower()
    parts: list[str] = []
    for piece in word.split("_"):
        if piece:
            parts.extend(p.lower() for p in _CAMEL.findall(piece))
    tokens = [_stem(whole)] if len(whole) > 1 and whole not in STOP_WORDS else []
    if len(parts) > 1:
        tokens.extend(_stem(p) for p in parts if len(p) > 1 and p not in STOP_WORDS and p != whole)
    return tuple(tokens)


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
