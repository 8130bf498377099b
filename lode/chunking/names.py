"""Module names: the prefix of every name path in a file."""

from __future__ import annotations

import posixpath

_PACKAGE_MARKERS = ("__init__.py", "__init__.pyi")


def _is_python_package(directory: str, all_paths: frozenset[str]) -> bool:
    return any(f"{directory}/{marker}" in all_paths for marker in _PACKAGE_MARKERS)


def module_name(path: str, all_paths: frozenset[str], language: str) -> str:
    """The dotted module name of a '/'-separated path relative to the repository root.

    Python follows the import system: `src/requests/models.py` next to `src/requests/__init__.py`
    is "requests.models". Other languages use the path without its extension: "src.app.util".
    """
    directory, filename = posixpath.split(path)
    stem = filename.rpartition(".")[0] or filename
    if language != "python":
        return posixpath.join(directory, stem).replace("/", ".")
    if stem == "__init__":
        if not directory:
            return stem
        parts = [posixpath.basename(directory)]
        directory = posixpath.dirname(directory)
    else:
        parts = [stem]
    while directory and _is_python_package(directory, all_paths):
        parts.append(posixpath.basename(directory))
        directory = posixpath.dirname(directory)
    return ".".join(reversed(parts))
