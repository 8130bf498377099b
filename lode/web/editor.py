"""Links that open a file at a line in the user's editor: LODE_EDITOR_URL (lode/config.py), a URL template with
the placeholders {path} (absolute, so it starts with '/'; percent-encoded except '/'), {line} and {column}.

Examples: `vscode://file{path}:{line}:{column}` (the default; VS Code fails on `vscode://file//home/...`),
`cursor://file{path}:{line}:{column}`, `idea://open?file={path}&line={line}`,
`subl://open?url=file://{path}&line={line}`.
"""

from __future__ import annotations

from string import Formatter
from urllib.parse import quote, urlsplit

PLACEHOLDERS = frozenset({"path", "line", "column"})
# schemes whose links run code or content in the page instead of handing the file to an editor
_REFUSED_SCHEMES = frozenset({"javascript", "data", "vbscript", "blob"})


def check_template(template: str) -> str:
    """The template, if it is a URL whose only placeholders are {path}, {line} and {column}; ValueError naming
    what is wrong otherwise."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(template)
                  if name is not None]
    except ValueError as exc:
        raise ValueError(f"LODE_EDITOR_URL {template!r} is not a template: {exc}") from None
    for name, spec, conversion in fields:
        if name not in PLACEHOLDERS:
            raise ValueError(f"LODE_EDITOR_URL {template!r}: unknown placeholder {{{name}}}; use "
                             f"{', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}")
        if spec or conversion:
            raise ValueError(f"LODE_EDITOR_URL {template!r}: {{{name}}} takes no format spec or conversion")
    if "path" not in {name for name, _, _ in fields}:
        raise ValueError(f"LODE_EDITOR_URL {template!r} has no {{path}}")
    scheme = urlsplit(template).scheme.lower()
    if not scheme or scheme in _REFUSED_SCHEMES:
        raise ValueError(f"LODE_EDITOR_URL {template!r} needs an editor's URL scheme (vscode://, idea://, ...)")
    return template


def editor_link(template: str, path: str, line: int, column: int = 1) -> str:
    return template.format(path=quote(path, safe="/"), line=line, column=column)
