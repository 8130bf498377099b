"""The language registry: lookups by extension, file name, alias and path, and that no module outside
lode/languages decides by a language's name (it reads the record's fields instead)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lode
from lode import languages
from lode.errors import InputError
from lode.search.filters import canonical_languages
from lode.search.paths import is_test_path

LODE = Path(lode.__file__).parent


def test_every_extension_file_name_and_alias_belongs_to_one_language() -> None:
    records = languages.all()
    for field in ("extensions", "filenames", "aliases"):
        keys = [key for record in records for key in getattr(record, field)]
        assert len(keys) == len(set(keys)), field
    names = {record.name for record in records}
    assert not names & {alias for record in records for alias in record.aliases}
    assert all(ext.startswith(".") and ext == ext.lower() for record in records for ext in record.extensions)


@pytest.mark.parametrize("record", languages.all(), ids=lambda record: record.name)
def test_lookups_find_the_record(record: languages.Language) -> None:
    assert languages.get(record.name) is record
    assert all(languages.get(alias) is record for alias in record.aliases)
    for extension in record.extensions:
        assert languages.by_extension(extension) is record
        assert languages.for_path(f"src/x{extension.upper()}") is record
    assert all(languages.for_path(f"a/{filename}") is record for filename in record.filenames)


def test_names_and_aliases_ignore_case_and_blanks() -> None:
    assert languages.get(" Python ") is languages.get("py") is languages.LANGUAGES["python"]
    assert languages.get("C++") is languages.LANGUAGES["cpp"]
    assert canonical_languages(("PY", "python", "golang")) == ("python", "go")


def test_a_file_name_wins_over_its_extension() -> None:
    assert languages.language_for_path("build/CMakeLists.txt") == "make"
    assert languages.language_for_path("notes.txt") == "text"


@pytest.mark.parametrize("path", ["Dockerfile.orig", "README", ".py", "src/.gitignore", "x.unknown", "a.py/b"])
def test_unknown_paths_have_no_language(path: str) -> None:
    assert languages.for_path(path) is None
    assert languages.language_for_path(path) is None


def test_unknown_names_are_none_here_and_an_error_for_a_filter() -> None:
    assert languages.get("cobol") is None and languages.by_extension(".cob") is None
    with pytest.raises(InputError, match="unknown language 'cobol'; valid values: c, cpp, csharp"):
        canonical_languages(("cobol",))


def test_module_names_follow_the_language() -> None:
    paths = frozenset({"pyproject.toml", "src/pkg/__init__.py", "src/pkg/mod.py"})
    assert languages.module_name("src/pkg/mod.py", paths, "python") == "pkg.mod"
    assert languages.module_name("src/pkg/__init__.py", paths, "python") == "pkg"
    assert languages.module_name("src/pkg/mod.py", paths, "text") == "src.pkg.mod"
    assert languages.module_name("web/app.ts", paths, "no-such-language") == "web.app"


def test_test_paths_come_from_each_languages_convention() -> None:
    convention = {"python": "pkg/test_x.py", "go": "pkg/x_test.go", "typescript": "src/x.test.ts",
                  "java": "src/CartTest.java", "csharp": "src/TestCart.cs", "ruby": "lib/cart_spec.rb"}
    for name, path in convention.items():
        assert languages.LANGUAGES[name].test_paths, name
        assert is_test_path(path), path
    assert not is_test_path("src/Cart.java") and not is_test_path("lode/contest.py")


# ---- nothing outside lode/languages branches on a language's name --------------------------------------------

def _mentions_language(node: ast.expr) -> bool:
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return name in ("language", "lang") or name.endswith("_language")


def _is_literal(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, ast.Tuple | ast.List | ast.Set) and bool(node.elts) and all(map(_is_literal, node.elts))


def language_name_comparisons(source: str) -> list[int]:
    """Lines comparing a language with a literal name: `language == "go"`, `file.language in ("ts", "tsx")`."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(map(_mentions_language, operands)) and any(map(_is_literal, operands)):
                lines.append(node.lineno)
    return lines


def test_the_scan_finds_comparisons_with_a_language_name() -> None:
    sample = 'if file.language == "go":\n    pass\nok = language in ("typescript", "tsx")\nfine = kind == "go"\n'
    assert language_name_comparisons(sample) == [1, 3]


def test_no_module_outside_the_registry_compares_a_language_with_a_name() -> None:
    found = {
        f"{path.relative_to(LODE.parent)}:{line}"
        for path in LODE.rglob("*.py")
        if LODE / "languages" not in path.parents
        for line in language_name_comparisons(path.read_text(encoding="utf-8"))
    }
    assert not found, "branch on the Language record's fields instead"
