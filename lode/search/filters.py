"""Search filters: language, kind and path glob (`!GLOB` excludes), turned into one SQL clause.

A filter that cannot match is an error naming the valid values, not a silent empty result."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lode import languages
from lode.errors import InputError
from lode.languages import LANGUAGES
from lode.model import CHUNK_KINDS


def canonical_languages(values: tuple[str, ...]) -> tuple[str, ...]:
    """Language ids for --lang values, case and aliases aside (`Python`, `py`: python); an unknown one is an error."""
    canonical = []
    for value in values:
        language = languages.get(value)
        if language is None:
            raise InputError(f"--lang: unknown language {value!r}; valid values: {', '.join(sorted(LANGUAGES))}")
        canonical.append(language.name)
    return tuple(dict.fromkeys(canonical))


def checked_kinds(values: tuple[str, ...]) -> tuple[str, ...]:
    kinds = tuple(dict.fromkeys(value.strip().lower() for value in values))
    for kind in kinds:
        if kind not in CHUNK_KINDS:
            raise InputError(f"--kind: unknown kind {kind!r}; valid values: {', '.join(CHUNK_KINDS)}")
    return kinds


def glob_to_regex(glob: str) -> str:
    """Translate a path glob to an anchored POSIX regex.

    `*` and `?` stay within one path component, `**` crosses components, `[abc]` is a class. A glob without
    a slash matches the file name at any depth, as in .gitignore: `*.py` matches `a/b/c.py`. A glob that
    matches a directory matches everything under it: `src/lode` and `src/lode/` both match `src/lode/cli.py`.
    """
    if not glob or len(glob) > 500:
        raise InputError("--path needs a glob of 1 to 500 characters")
    anywhere = "/" not in glob.strip("/")
    glob = glob.strip("/")
    out, i = [], 0
    while i < len(glob):
        ch = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and (end := glob.find("]", i + 2)) != -1 and glob[i + 1 : end] != "!":
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            out.append(_bracket(body[1:] if negate else body, negate))
            i = end + 1
            continue
        else:
            out.append(re.escape(ch))
        i += 1
    return f"^{'(?:.*/)?' if anywhere else ''}{''.join(out)}(?:/.*)?$"


def _bracket(members: str, negate: bool) -> str:
    """A [...] class with every member escaped, so PostgreSQL reads it as the glob meant; a-z stays a range."""
    parts, j = [], 0
    while j < len(members):
        if j + 2 < len(members) and members[j + 1] == "-":
            low, high = members[j], members[j + 2]
            if low > high:
                raise InputError(f"--path: the range {low}-{high} in [...] is reversed")
            parts.append(f"{_member(low)}-{_member(high)}")
            j += 3
        else:
            parts.append(_member(members[j]))
            j += 1
    return f"[{'^' if negate else ''}{''.join(parts)}]"


def _member(ch: str) -> str:
    return ch if ch.isalnum() else "\\" + ch  # a backslashed letter is a class (\d) or an escape (\a)


@dataclass(frozen=True, slots=True)
class Filters:
    languages: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    path_glob: str | None = None

    def sql(self, alias: str) -> tuple[str, dict]:
        """A WHERE clause over a chunks alias, with named parameters."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.languages:
            clauses.append(f"{alias}.language = ANY(%(f_languages)s)")
            params["f_languages"] = list(self.languages)
        if self.kinds:
            clauses.append(f"{alias}.kind = ANY(%(f_kinds)s)")
            params["f_kinds"] = list(self.kinds)
        if self.path_glob:
            excluded = self.path_glob.startswith("!")
            clauses.append(f"{alias}.path {'!~' if excluded else '~'} %(f_path)s")
            params["f_path"] = glob_to_regex(self.path_glob.removeprefix("!"))
        return (" AND ".join(clauses) or "TRUE"), params
