"""Tree-sitter parsing with a deadline that really stops the parser."""

from __future__ import annotations

import functools
import threading
import time

import tree_sitter

from lode.languages import grammar_for

_READ_SIZE = 64 * 1024  # bytes handed to the parser per read callback


class ParseTimeout(Exception):
    """The parse did not finish before its deadline."""


@functools.cache
def _language(language: str) -> tree_sitter.Language:
    grammar = grammar_for(language)
    if grammar is None:
        raise ValueError(f"no tree-sitter grammar for {language!r}")
    return tree_sitter.Language(grammar.load())


_local = threading.local()  # a Parser must not be shared between threads


def _parser(language: str) -> tree_sitter.Parser:
    parsers: dict[str, tree_sitter.Parser] = _local.__dict__.setdefault("parsers", {})
    parser = parsers.get(language)
    if parser is None:
        parser = parsers[language] = tree_sitter.Parser(_language(language))
    return parser


def parse(language: str, source: bytes, timeout_seconds: float) -> tree_sitter.Tree:
    """Parse UTF-8 `source`; raise ParseTimeout once `timeout_seconds` have passed.

    tree-sitter only consults the progress callback when it reads input through a callback, so the
    source is handed over in slices rather than as one bytes object.
    """
    parser = _parser(language)
    deadline = time.monotonic() + timeout_seconds

    def read(byte_offset: int, _point: tuple[int, int]) -> bytes:
        return source[byte_offset : byte_offset + _READ_SIZE]

    def past_deadline(_byte_offset: int, _has_error: bool) -> bool:
        return time.monotonic() >= deadline

    try:
        return parser.parse(read, progress_callback=past_deadline)
    except ValueError as exc:  # "Parsing failed": the progress callback cancelled the parse
        parser.reset()  # otherwise the next parse resumes this one
        raise ParseTimeout(f"{language} parse exceeded {timeout_seconds}s") from exc
