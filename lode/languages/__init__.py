"""The language registry: one Language record per language (lode.languages.<name>), looked up by name or
alias, by extension, or by a file's path."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from lode.languages.base import Grammar, Language, path_module_name
from lode.languages.c import C
from lode.languages.cpp import CPP
from lode.languages.csharp import CSHARP
from lode.languages.go import GO
from lode.languages.java import JAVA
from lode.languages.javascript import JAVASCRIPT
from lode.languages.php import PHP
from lode.languages.python import PYTHON
from lode.languages.ruby import RUBY
from lode.languages.rust import RUST
from lode.languages.text import TEXT_LANGUAGES
from lode.languages.typescript import TSX, TYPESCRIPT

# in this order everywhere languages are listed (the MCP schema's enum)
LANGUAGES: Mapping[str, Language] = MappingProxyType({
    language.name: language
    for language in (PYTHON, JAVASCRIPT, TYPESCRIPT, TSX, GO, RUST, JAVA, C, CPP, RUBY, PHP, CSHARP, *TEXT_LANGUAGES)
})
_BY_NAME: Mapping[str, Language] = {
    **{alias: language for language in LANGUAGES.values() for alias in language.aliases},
    **LANGUAGES,
}
_BY_EXTENSION: Mapping[str, Language] = {
    extension: language for language in LANGUAGES.values() for extension in language.extensions
}
_BY_FILENAME: Mapping[str, Language] = {
    filename: language for language in LANGUAGES.values() for filename in language.filenames
}


def all() -> tuple[Language, ...]:  # shadows the builtin inside this module only: callers write languages.all()
    return tuple(LANGUAGES.values())


def get(name: str) -> Language | None:
    """The language with this id or alias, case and surrounding blanks aside (`Python`, `py`); None if unknown."""
    return _BY_NAME.get(name.strip().lower())


def by_extension(extension: str) -> Language | None:
    """The language of an extension with its dot (".py", ".PY"); None if unknown."""
    return _BY_EXTENSION.get(extension.lower())


def for_path(path: str) -> Language | None:
    """The language of a '/'-separated path, by its file name (Makefile) or else its extension; None if neither
    is known. A name that is only an extension (".py") has none."""
    filename = path.rpartition("/")[2]
    if filename in _BY_FILENAME:
        return _BY_FILENAME[filename]
    stem, dot, extension = filename.rpartition(".")
    if not dot or not stem:
        return None
    return by_extension("." + extension)


def grammar_for(name: str) -> Grammar | None:
    """The tree-sitter grammar of the language with this id; None for a language chunked by line windows."""
    record = LANGUAGES.get(name)
    return record.grammar if record else None


def language_for_path(path: str) -> str | None:
    """The language id of a '/'-separated path (for_path), or None."""
    language = for_path(path)
    return language.name if language else None


def module_name(path: str, all_paths: frozenset[str], language: str) -> str:
    """The dotted module name of a '/'-separated path relative to the repository root, by its language's rule
    (Python: the import system's; others, and unknown ones: the path without its extension)."""
    record = LANGUAGES.get(language)
    return record.module_name(path, all_paths) if record else path_module_name(path, all_paths)
