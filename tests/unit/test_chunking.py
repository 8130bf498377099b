"""Chunking with real tree-sitter grammars: name paths, elision, splitting, module code and fallbacks."""

from __future__ import annotations

import hashlib
import textwrap
from itertools import pairwise
from typing import Any

import pytest

from lode.chunking import chunk_file
from lode.config import Settings, Timeouts
from lode.languages import language_for_path
from lode.model import Chunk, ChunkedFile


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "chunk_max_lines": 150,
        "chunk_max_bytes": 12_000,
        "window_lines": 60,
        "window_overlap": 10,
        "timeouts": Timeouts(parse=5.0),
    }
    values.update(overrides)
    return Settings(**values)


SETTINGS = make_settings()


def chunk(source: str, language: str | None, module: str = "mod", settings: Settings = SETTINGS) -> ChunkedFile:
    return chunk_file(f"file.{language}", textwrap.dedent(source), language, module, settings)


def definitions(result: ChunkedFile) -> set[tuple[str, str | None]]:
    return {(c.kind, c.name_path) for c in result.chunks if c.kind not in ("module", "window")}


def by_path(result: ChunkedFile, name_path: str) -> Chunk:
    (found,) = [c for c in result.chunks if c.name_path == name_path and c.kind not in ("module", "window")]
    return found


def line_of(source: str, needle: str) -> int:
    """1-based number of the first line of the dedented source containing `needle`."""
    lines = textwrap.dedent(source).split("\n")
    return next(number for number, line in enumerate(lines, 1) if needle in line)


# -- name paths: nested classes and the last method of a class

PYTHON_NESTED = '''\
"""Models."""
import os


class Outer:
    """Outer doc."""

    class Inner:
        def method(self):
            return 1

        def last(self):
            return "inner last"

    def first(self, x):
        return x

    def last(self):
        return "outer last"


@decorator
def helper(a, b):
    return a + b
'''


def test_python_nested_classes_and_last_methods() -> None:
    result = chunk(PYTHON_NESTED, "python", module="requests.models")
    assert result.fallback is None
    assert definitions(result) == {
        ("class", "requests.models.Outer"),
        ("class", "requests.models.Outer.Inner"),
        ("method", "requests.models.Outer.Inner.method"),
        ("method", "requests.models.Outer.Inner.last"),
        ("method", "requests.models.Outer.first"),
        ("method", "requests.models.Outer.last"),
        ("function", "requests.models.helper"),
    }
    inner_last = by_path(result, "requests.models.Outer.Inner.last")
    assert inner_last.start_line == line_of(PYTHON_NESTED, "def last(self)")
    assert inner_last.content.rstrip().endswith('return "inner last"')
    outer_last = by_path(result, "requests.models.Outer.last")
    assert outer_last.end_line == line_of(PYTHON_NESTED, "outer last")
    assert outer_last.name == "last"
    assert outer_last.signature == "def last(self)"


TS_NESTED = """\
export namespace Shapes {
  export class Outer {
    static Inner = class {
      deep(): number { return 1; }
      last(): number { return 2; }
    };
    first(): void {}
    last(): number {
      return 3;
    }
  }
}
"""


def test_typescript_nested_classes_and_last_methods() -> None:
    result = chunk(TS_NESTED, "typescript", module="src.shapes")
    assert result.fallback is None
    assert definitions(result) == {
        ("class", "src.shapes.Shapes.Outer"),
        ("class", "src.shapes.Shapes.Outer.Inner"),
        ("method", "src.shapes.Shapes.Outer.Inner.deep"),
        ("method", "src.shapes.Shapes.Outer.Inner.last"),
        ("method", "src.shapes.Shapes.Outer.first"),
        ("method", "src.shapes.Shapes.Outer.last"),
    }
    last = by_path(result, "src.shapes.Shapes.Outer.last")
    assert (last.start_line, last.end_line) == (8, 10)
    assert last.content.strip().endswith("return 3;\n    }")


JAVA_NESTED = """\
package com.example;

import java.util.List;

public class Outer {
    class Inner {
        void method() {
            System.out.println("m");
        }

        int last() { return 1; }
    }

    void first() {}

    /** The last one. */
    String last() {
        return "x";
    }
}
"""


def test_java_uses_package_for_nested_classes_and_last_methods() -> None:
    result = chunk(JAVA_NESTED, "java", module="src.main.java.com.example.Outer")
    assert definitions(result) == {
        ("class", "com.example.Outer"),
        ("class", "com.example.Outer.Inner"),
        ("method", "com.example.Outer.Inner.method"),
        ("method", "com.example.Outer.Inner.last"),
        ("method", "com.example.Outer.first"),
        ("method", "com.example.Outer.last"),
    }
    last = by_path(result, "com.example.Outer.last")
    assert last.docstring == "The last one."
    assert last.start_line == line_of(JAVA_NESTED, "/** The last one. */")  # the doc comment belongs to it
    assert last.end_line == line_of(JAVA_NESTED, 'return "x"') + 1


# -- class chunks elide method bodies


def test_class_chunk_elides_method_bodies() -> None:
    result = chunk(PYTHON_NESTED, "python", module="m")
    outer = by_path(result, "m.Outer")
    assert "def first(self, x):\n        ..." in outer.content
    assert "return x" not in outer.content
    assert "class Inner:\n        ..." in outer.content  # a nested class gets its own chunk
    assert "def method" not in outer.content
    assert outer.docstring == "Outer doc."
    assert outer.signature == "class Outer"
    assert "return x" in by_path(result, "m.Outer.first").content
    # the class still spans its methods
    assert (outer.start_line, outer.end_line) == (5, line_of(PYTHON_NESTED, "outer last"))


def test_brace_language_class_elides_bodies_with_braces() -> None:
    result = chunk(JAVA_NESTED, "java")
    outer = by_path(result, "com.example.Outer")
    assert "String last() { ... }" in outer.content
    assert "System.out" not in outer.content


def test_decorators_belong_to_the_definition() -> None:
    result = chunk(PYTHON_NESTED, "python", module="m")
    helper = by_path(result, "m.helper")
    assert helper.content.startswith("@decorator\ndef helper(a, b):")
    assert helper.start_line == line_of(PYTHON_NESTED, "@decorator")
    assert helper.signature == "def helper(a, b)"


# -- oversized units


def long_function(statements: int) -> str:
    body = "\n".join(f"    value_{i} = compute({i})" for i in range(statements))
    return f"def long_one(a):\n    '''Long.'''\n{body}\n    return a\n"


def assert_parts_cover(parts: list[Chunk], text: str, start: int, end: int) -> None:
    data = text.encode()
    assert parts[0].start_byte == start and parts[-1].end_byte == end
    for before, after in pairwise(parts):
        assert before.end_byte == after.start_byte  # no gap, no overlap
    assert b"".join(data[p.start_byte : p.end_byte] for p in parts) == data[start:end]


def test_oversized_function_is_split_into_covering_parts() -> None:
    settings = make_settings(chunk_max_lines=40, chunk_max_bytes=100_000)
    source = long_function(200)
    result = chunk_file("m.py", source, "python", "m", settings)
    parts = [c for c in result.chunks if c.kind == "function"]
    assert len(parts) >= 5
    assert {(p.name, p.name_path, p.signature, p.docstring) for p in parts} == {
        ("long_one", "m.long_one", "def long_one(a)", "Long.")
    }
    assert_parts_cover(parts, source, 0, len(source.encode()) - 1)  # the node ends before the final newline
    assert all(p.end_line - p.start_line + 1 <= 40 for p in parts)
    assert parts[0].content.startswith("def long_one(a):")
    for part in parts[1:]:  # cut between statements, at line starts
        assert part.content.startswith("    value_") or part.content.startswith("    return")


def test_oversized_single_statement_is_split_by_line_windows() -> None:
    settings = make_settings(chunk_max_lines=30, window_lines=20, chunk_max_bytes=100_000)
    items = "\n".join(f"        {i}," for i in range(100))
    source = f"def table():\n    rows = [\n{items}\n    ]\n    return rows\n"
    result = chunk_file("m.py", source, "python", "m", settings)
    parts = [c for c in result.chunks if c.kind == "function"]
    assert_parts_cover(parts, source, 0, len(source.encode()) - 1)
    assert all(p.end_line - p.start_line + 1 <= 30 for p in parts)


def test_oversized_class_is_split_along_members_and_keeps_elisions() -> None:
    settings = make_settings(chunk_max_lines=30)
    methods = "\n".join(f"    def m{i}(self):\n        return {i}\n" for i in range(40))
    source = f"class Big:\n{methods}"
    result = chunk_file("m.py", source, "python", "m", settings)
    parts = [c for c in result.chunks if c.kind == "class"]
    methods_chunks = [c for c in result.chunks if c.kind == "method"]
    assert len(parts) > 1 and len(methods_chunks) == 40
    assert_parts_cover(parts, source, 0, len(source.encode()) - 1)
    assert all("return" not in p.content and p.name_path == "m.Big" for p in parts)
    assert "".join(p.content for p in parts).count("...") == 40
    assert methods_chunks[-1].name_path == "m.Big.m39"


def test_a_single_long_line_is_cut_by_max_bytes() -> None:
    settings = make_settings(chunk_max_bytes=500)
    source = "x = '" + "é" * 3000 + "'\n"
    result = chunk_file("m.py", source, "python", "m", settings)
    assert result.fallback is None
    assert all(len(c.content.encode()) <= 500 for c in result.chunks)
    assert "".join(c.content for c in result.chunks) == source.rstrip("\n")


# -- module-level code


def test_module_code_between_definitions() -> None:
    source = """\
    import os


    CONSTANT = 1


    def f():
        return CONSTANT



    if __name__ == "__main__":
        f()
    """
    result = chunk(source, "python", module="pkg.tool")
    modules = [c for c in result.chunks if c.kind == "module"]
    assert [(m.start_line, m.end_line) for m in modules] == [(1, 4), (12, 13)]
    assert modules[0].content == "import os\n\n\nCONSTANT = 1"
    assert all(m.name is None and m.name_path == "pkg.tool" for m in modules)


def test_large_module_runs_are_windowed() -> None:
    settings = make_settings(chunk_max_lines=50, window_lines=20, window_overlap=5)
    source = "\n".join(f"x{i} = {i}" for i in range(120)) + "\n"
    result = chunk_file("m.py", source, "python", "m", settings)
    assert {c.kind for c in result.chunks} == {"module"}
    assert len(result.chunks) > 1
    assert all(c.end_line - c.start_line + 1 <= 20 for c in result.chunks)
    assert result.chunks[0].start_line == 1 and result.chunks[-1].end_line == 120


def test_lone_closing_lines_of_namespaces_are_not_module_code() -> None:
    source = """\
    namespace app {
    int f() { return 1; }
    }
    """
    result = chunk(source, "cpp")
    assert [c.content for c in result.chunks if c.kind == "module"] == ["namespace app {"]


# -- signatures and docstrings


def test_docstrings_and_signatures_across_languages() -> None:
    python = chunk('def f(a: int = 1) -> str:\n    """\n    Says hi.\n\n      Indented.\n    """\n', "python")
    assert by_path(python, "mod.f").docstring == "Says hi.\n\n  Indented."
    assert by_path(python, "mod.f").signature == "def f(a: int = 1) -> str"

    js = chunk("/**\n * Adds two numbers.\n * @param a first\n */\nexport const add = (a, b) => a + b;\n", "javascript")
    add = by_path(js, "mod.add")
    assert add.docstring == "Adds two numbers.\n@param a first"
    assert add.signature == "const add = (a, b) =>"
    assert add.start_line == 1  # the comment belongs to the chunk

    rust = chunk("/// Makes one.\n/// Fast.\n#[inline]\npub fn make() -> u8 { 1 }\n", "rust")
    assert by_path(rust, "mod.make").docstring == "Makes one.\nFast."
    assert by_path(rust, "mod.make").signature == "pub fn make() -> u8"

    go = chunk("package p\n\n// Run runs.\nfunc Run(x int) error {\n\treturn nil\n}\n", "go")
    assert by_path(go, "p.Run").docstring == "Run runs."


def test_separated_comment_is_not_a_docstring() -> None:
    result = chunk("// section\n\nfunction f() {}\n", "javascript")
    assert by_path(result, "mod.f").docstring is None
    assert by_path(result, "mod.f").start_line == 3


def test_chunk_fields_are_consistent() -> None:
    source = textwrap.dedent(PYTHON_NESTED)
    data = source.encode()
    for c in chunk(PYTHON_NESTED, "python").chunks:
        assert c.content_hash == hashlib.blake2b(c.content.encode(), digest_size=16).hexdigest()
        assert c.start_line == data[: c.start_byte].count(b"\n") + 1
        assert c.end_line == data[: c.end_byte].rstrip(b"\n").count(b"\n") + 1
        if c.kind in ("function", "method", "module"):
            assert c.content == data[c.start_byte : c.end_byte].decode()


# -- fallbacks


def test_unknown_extension_gets_overlapping_windows() -> None:
    assert language_for_path("notes/data.xyz") is None
    settings = make_settings(window_lines=10, window_overlap=3)
    source = "".join(f"line {i}\n" for i in range(1, 31))
    result = chunk_file("notes/data.xyz", source, None, "notes.data", settings)
    assert (result.language, result.fallback) == ("text", "unsupported_language")
    assert {(c.kind, c.name, c.name_path) for c in result.chunks} == {("window", None, None)}
    assert [(c.start_line, c.end_line) for c in result.chunks] == [(1, 10), (8, 17), (15, 24), (22, 30)]


def test_text_only_language_is_windowed() -> None:
    result = chunk("# Title\n\nSome prose.\n", "markdown")
    assert (result.language, result.fallback) == ("markdown", "unsupported_language")
    assert [c.content for c in result.chunks] == ["# Title\n\nSome prose.\n"]


def test_syntax_error_falls_back_to_windows() -> None:
    result = chunk("def broken(:\n    return 1\n", "python")
    assert result.fallback == "parse_error"
    assert [c.kind for c in result.chunks] == ["window"]


def test_parse_timeout_on_deep_nesting_falls_back_to_windows() -> None:
    settings = make_settings(timeouts=Timeouts(parse=0.005))
    source = "x = " + "(" * 200_000 + ")" * 200_000
    result = chunk_file("deep.py", source, "python", "deep", settings)
    assert result.fallback == "parse_timeout"
    assert result.chunks and all(c.kind == "window" and len(c.content.encode()) <= 12_000 for c in result.chunks)
    assert "".join(c.content for c in result.chunks) == source  # one line: windows are byte cuts


@pytest.mark.parametrize("text", ["", "   \n\t\n", "\n"])
@pytest.mark.parametrize("language", ["python", None, "markdown"])
def test_blank_text_has_no_chunks(text: str, language: str | None) -> None:
    assert chunk_file("f", text, language, "f", SETTINGS).chunks == []


def test_chunking_is_deterministic() -> None:
    assert chunk(PYTHON_NESTED, "python") == chunk(PYTHON_NESTED, "python")
