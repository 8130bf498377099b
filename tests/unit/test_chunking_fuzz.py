"""Property tests: chunk_file never raises, keeps its ranges in bounds and is deterministic."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from lode.chunking import chunk_file
from lode.config import Settings, Timeouts
from lode.model import ChunkedFile

SMALL = Settings(
    chunk_max_lines=12, chunk_max_bytes=400, window_lines=6, window_overlap=2, timeouts=Timeouts(parse=2.0)
)
LANGUAGES = [
    None,
    "markdown",
    "python",
    "javascript",
    "typescript",
    "tsx",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
    "ruby",
    "php",
    "csharp",
]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def no_chunker_errors() -> Iterator[None]:
    """Fails when chunk_file had to use its last-resort fallback, which records the exception (lode.errorlog
    logs it at ERROR on "lode.errors"; a parse timeout is only a warning there)."""
    handlers = {"lode.chunking": _Records(), "lode.errors": _Records()}
    handlers["lode.errors"].setLevel(logging.ERROR)
    for name, handler in handlers.items():
        logging.getLogger(name).addHandler(handler)
    try:
        yield
        assert [r for h in handlers.values() for r in h.records] == []
    finally:
        for name, handler in handlers.items():
            logging.getLogger(name).removeHandler(handler)


def check_invariants(text: str, result: ChunkedFile) -> None:
    data = re.sub("[\ud800-\udfff]", "\ufffd", text).encode()  # lone surrogates are replaced, same length
    assert len(data) == len(text.encode("utf-8", "surrogatepass"))
    for c in result.chunks:
        assert 0 <= c.start_byte < c.end_byte <= len(data)
        assert 1 <= c.start_line <= c.end_line
        assert c.start_line == data[: c.start_byte].count(b"\n") + 1
        assert c.content_hash == hashlib.blake2b(c.content.encode(), digest_size=16).hexdigest()
        assert c.content.encode().strip()  # not blank (ASCII whitespace)
        if c.kind in ("window", "module", "function", "method"):  # nothing elided in these
            assert c.content == data[c.start_byte : c.end_byte].decode()


any_text = st.one_of(
    st.text(max_size=400),
    st.text(st.characters(exclude_categories=()), max_size=200),  # with lone surrogates
    st.text(" \n\t{}();:=,.'\"#/*<>?@\\abcdefghijklmnopqrstuvwxyz", max_size=400),  # code-like
)


@settings(max_examples=150, deadline=None)
@given(text=any_text, language=st.sampled_from(LANGUAGES))
def test_arbitrary_text_never_raises(text: str, language: str | None) -> None:
    with no_chunker_errors():
        result = chunk_file("f", text, language, "m", SMALL)
        check_invariants(text, result)
        assert result == chunk_file("f", text, language, "m", SMALL)


_NAME = st.sampled_from(["alpha", "beta", "gamma", "delta"])
_STATEMENT = st.sampled_from(["x = 1", "return x", "pass", "y = [1,\n        2]", "# note", "print('é')"])


@st.composite
def python_function(draw: st.DrawFn, indent: str = "") -> str:
    name = draw(_NAME) + str(draw(st.integers(0, 999)))
    decorator = draw(st.sampled_from(["", f"{indent}@decorate\n"]))
    docstring = draw(st.sampled_from(["", f'{indent}    """Doc."""\n']))
    statements = draw(st.lists(_STATEMENT, min_size=1, max_size=20))
    body = "".join(f"{indent}    {s}\n" for s in statements)
    return f"{decorator}{indent}def {name}(self, x):\n{docstring}{body}"


@st.composite
def python_class(draw: st.DrawFn) -> str:
    name = draw(_NAME).title() + str(draw(st.integers(0, 999)))
    methods = draw(st.lists(python_function(indent="    "), min_size=1, max_size=6))
    fields = draw(st.sampled_from(["", "    attribute = 1\n"]))
    return f"class {name}:\n{fields}" + "\n".join(methods)


python_module = st.lists(
    st.one_of(python_function(), python_class(), st.sampled_from(["import os", "X = 1\nY = 2", "", "# comment"])),
    max_size=8,
).map(lambda blocks: "\n\n".join(blocks) + "\n")


@settings(max_examples=80, deadline=None)
@given(source=python_module)
def test_generated_python_is_chunked_into_covering_parts(source: str) -> None:
    with no_chunker_errors():
        result = chunk_file("m.py", source, "python", "m", SMALL)
    assert result.fallback is None
    check_invariants(source, result)
    assert result == chunk_file("m.py", source, "python", "m", SMALL)
    units: dict[tuple[str, str | None], list[tuple[int, int]]] = defaultdict(list)
    for c in result.chunks:
        if c.kind in ("function", "method", "class"):
            assert c.name_path is not None and c.name_path.startswith("m.")
            units[(c.kind, c.name_path)].append((c.start_byte, c.end_byte))
        if c.kind in ("function", "method"):
            assert c.end_line - c.start_line + 1 <= SMALL.chunk_max_lines
    for ranges in units.values():
        ranges.sort()
        # parts of one unit (or same-named redefinitions) never overlap
        assert all(end <= start for (_, end), (start, _) in pairwise(ranges))


# --- from raw bytes on disk, through the read guards (issue #7, item 6) ---------------------------------------

_EXTENSIONS = {"py": "python", "js": "javascript", "ts": "typescript", "go": "go", "rs": "rust", "c": "c",
               "rb": "ruby", "md": "markdown", "txt": None}
_SNIPPETS = [b"def f(x):\n    return x\n", b"class A:\n  pass\n", b"func main() {}\n", b"{", b"}", b"(", b"\"",
             b"\r\n", b"\r", b"\t", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\xc3\xa9", b"\xe2\x82", b"/*", b"*/"]
raw_source = st.lists(st.one_of(st.sampled_from(_SNIPPETS), st.binary(max_size=40)), max_size=30).map(b"".join)


@settings(max_examples=120, deadline=None)
@given(raw=raw_source, extension=st.sampled_from(sorted(_EXTENSIONS)))
def test_any_bytes_on_disk_are_skipped_or_chunked_in_bounds(tmp_path_factory, raw: bytes, extension: str) -> None:
    from lode.discover import SourceText, read_source
    from lode.model import Candidate, Skipped

    root = tmp_path_factory.mktemp("raw")
    (root / f"f.{extension}").write_bytes(raw)
    source = read_source(root, Candidate(f"f.{extension}", len(raw), 0), SMALL)
    assert isinstance(source, (SourceText, Skipped))
    if isinstance(source, Skipped):
        return
    with no_chunker_errors():
        result = chunk_file(f"f.{extension}", source.text, _EXTENSIONS[extension], "m", SMALL)
    check_invariants(source.text, result)
    assert result == chunk_file(f"f.{extension}", source.text, _EXTENSIONS[extension], "m", SMALL)


@settings(max_examples=30, deadline=None)
@given(depth=st.integers(1, 3000), opener=st.sampled_from(["(", "[", "{", "f(", "if x:\n" + " "]),
       language=st.sampled_from(["python", "javascript", "go", "rust", "c", "ruby"]))
def test_deep_nesting_never_raises(depth: int, opener: str, language: str) -> None:
    closer = {"(": ")", "[": "]", "{": "}", "f(": ")"}.get(opener, "")
    text = "x = " + (opener + "\n") * depth + "1" + (closer + "\n") * depth
    with no_chunker_errors():
        result = chunk_file("deep", text, language, "m", SMALL)
    check_invariants(text, result)
