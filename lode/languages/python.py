"""Python: modules named by the import system, its own graph facts reader and resolution rules."""

from __future__ import annotations

import posixpath

from lode.languages.base import Definition, Grammar, Language, Resolution, Wrapper, wheel

_PACKAGE_MARKERS = ("__init__.py", "__init__.pyi")
# a directory holding one of these is a project's root: its code is imported from there (or from its src/)
_PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")
SOURCE_ROOT = "src"


def _holds(directory: str, markers: tuple[str, ...], all_paths: frozenset[str]) -> bool:
    prefix = f"{directory}/" if directory else ""
    return any(prefix + marker in all_paths for marker in markers)


def python_root(directory: str, all_paths: frozenset[str]) -> str:
    """The import root of a Python file in `directory`: the nearest ancestor (or itself) that is a `src/` folder
    (not itself a package) or a project's root, else the repository root ("")."""
    while directory:
        if _holds(directory, _PROJECT_MARKERS, all_paths) or (
            posixpath.basename(directory) == SOURCE_ROOT and not _holds(directory, _PACKAGE_MARKERS, all_paths)
        ):
            return directory
        directory = posixpath.dirname(directory)
    return ""


def python_module_name(path: str, all_paths: frozenset[str]) -> str:
    """The import system's name, with PEP 420: folders with or without `__init__.py` are packages, up to the
    file's import root (python_root), so `src/flask/sansio/app.py` is "flask.sansio.app" whether or not sansio/
    has an `__init__.py`."""
    directory, filename = posixpath.split(path)
    stem = filename.rpartition(".")[0] or filename
    root = python_root(directory, all_paths)
    package = directory[len(root) :].strip("/")
    parts = package.split("/") if package else []
    if stem != "__init__" or not parts:
        parts.append(stem)
    return ".".join(parts)


PYTHON = Language(
    name="python",
    extensions=(".py", ".pyi"),
    aliases=("py", "python3"),
    grammar=Grammar(
        load=wheel("tree_sitter_python"),
        definitions={"function_definition": Definition("function"), "class_definition": Definition("class")},
        wrappers={"decorated_definition": Wrapper("definition")},
        python_docstrings=True,
        python_guards=True,
    ),
    module_name=python_module_name,
    facts_reader="python",
    resolution=Resolution(by_scope=True, python_imports=True),
    test_paths=(r"(^|/)test_[^/]*$", r"(^|/)conftest\.py$", r"_tests?\.[^/.]+$"),
)
