"""Module names, the language table, line windows and the parse deadline."""

from __future__ import annotations


import pytest

from lode.chunking.treesitter import ParseTimeout, parse
from lode.chunking.windows import SourceLines, window_ranges
from lode.languages import language_for_path, module_name

# -- module names

PYTHON_TREE = frozenset(
    {
        "src/requests/__init__.py",
        "src/requests/models.py",
        "src/requests/adapters/__init__.py",
        "src/requests/adapters/http.py",
        "src/requests/sansio/app.py",  # a folder without __init__.py inside a package (PEP 420)
        "scripts/tool.py",
        "typed/__init__.pyi",
        "typed/api.pyi",
        "google/cloud/storage/__init__.py",  # a namespace package (no google/__init__.py, no cloud/__init__.py)
        "google/cloud/storage/blob.py",
        "libs/acme/pyproject.toml",  # a project inside the repository: its own import root
        "libs/acme/acme/__init__.py",
        "libs/acme/acme/core.py",
        "libs/beta/setup.py",
        "libs/beta/src/beta/util.py",
        "app/src/__init__.py",  # a package named src: no source root
        "app/src/main.py",
        "setup.py",
    }
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("src/requests/models.py", "requests.models"),
        ("src/requests/__init__.py", "requests"),
        ("src/requests/adapters/http.py", "requests.adapters.http"),
        ("src/requests/adapters/__init__.py", "requests.adapters"),
        ("src/requests/sansio/app.py", "requests.sansio.app"),
        ("scripts/tool.py", "scripts.tool"),  # a namespace package from the repository root
        ("typed/api.pyi", "typed.api"),
        ("google/cloud/storage/blob.py", "google.cloud.storage.blob"),
        ("google/cloud/storage/__init__.py", "google.cloud.storage"),
        ("libs/acme/acme/core.py", "acme.core"),
        ("libs/acme/acme/__init__.py", "acme"),
        ("libs/beta/src/beta/util.py", "beta.util"),
        ("app/src/main.py", "app.src.main"),
        ("setup.py", "setup"),
        ("libs/beta/setup.py", "setup"),
    ],
)
def test_python_module_names_follow_packages(path: str, expected: str) -> None:
    assert module_name(path, PYTHON_TREE, "python") == expected


@pytest.mark.parametrize(
    ("path", "language", "expected"),
    [
        ("src/app/util.ts", "typescript", "src.app.util"),
        ("main.go", "go", "main"),
        ("lib/shop/cart.rb", "ruby", "lib.shop.cart"),
        ("README", "text", "README"),
    ],
)
def test_other_module_names_are_dotted_paths(path: str, language: str, expected: str) -> None:
    assert module_name(path, frozenset({path}), language) == expected


# -- language table


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.py", "python"),
        ("stubs/x.pyi", "python"),
        ("web/app.JSX", "javascript"),
        ("web/app.mjs", "javascript"),
        ("web/app.cts", "typescript"),
        ("web/App.tsx", "tsx"),
        ("cmd/main.go", "go"),
        ("src/lib.rs", "rust"),
        ("Main.java", "java"),
        ("include/x.h", "c"),
        ("src/x.hpp", "cpp"),
        ("src/x.cc", "cpp"),
        ("app/models/user.rb", "ruby"),
        ("index.php", "php"),
        ("Program.cs", "csharp"),
        ("docs/guide.md", "markdown"),
        ("config.yml", "yaml"),
        ("pyproject.toml", "toml"),
        ("notes.txt", "text"),
        ("docs/index.rst", "text"),
        ("build/Dockerfile", "dockerfile"),
        ("data.unknownext", None),
        ("LICENSE", None),
        (".gitignore", None),
    ],
)
def test_language_for_path(path: str, expected: str | None) -> None:
    assert language_for_path(path) == expected


# -- windows


def test_windows_overlap_and_cover_everything() -> None:
    lines = SourceLines(b"".join(b"line %d\n" % i for i in range(25)))
    ranges = window_ranges(lines, 0, len(lines.data), window_lines=10, overlap=4, max_bytes=10_000)
    assert [(lines.line_of(s), lines.line_of(e - 1)) for s, e in ranges] == [(0, 9), (6, 15), (12, 21), (18, 24)]
    assert ranges[-1][1] == len(lines.data)


def test_windows_respect_max_bytes_and_character_boundaries() -> None:
    data = ("ab\n" + "€" * 100 + "\nend\n").encode()
    lines = SourceLines(data)
    ranges = window_ranges(lines, 0, len(data), window_lines=50, overlap=0, max_bytes=31)
    assert all(e - s <= 31 for s, e in ranges)
    assert [s for s, _ in ranges[1:]] == [e for _, e in ranges[:-1]]  # no overlap when cutting inside a line
    assert "".join(data[s:e].decode() for s, e in ranges) == data.decode()  # every cut is a character boundary


def test_windows_that_are_bounded_by_bytes_still_advance() -> None:
    data = b"".join(b"%d" % i + b"x" * 90 + b"\n" for i in range(40))
    lines = SourceLines(data)
    ranges = window_ranges(lines, 0, len(data), window_lines=60, overlap=10, max_bytes=300)
    starts = [s for s, _ in ranges]
    assert starts == sorted(set(starts)) and ranges[-1][1] == len(data)
    assert len(ranges) < 40


# -- parsing


def test_parse_returns_a_tree() -> None:
    tree = parse("python", b"def f():\n    return 1\n", 5.0)
    assert tree.root_node.type == "module"
    assert tree.root_node.child(0).type == "function_definition"


def test_parse_stops_at_the_deadline_and_the_parser_recovers() -> None:
    source = b"x = " + b"[" * 150_000 + b"]" * 150_000
    with pytest.raises(ParseTimeout):
        parse("python", source, 0.02)
    # the cancelled parse must not leak into the next one
    tree = parse("python", b"def g(): pass\n", 5.0)
    assert not tree.root_node.has_error
    assert tree.root_node.child(0).type == "function_definition"
