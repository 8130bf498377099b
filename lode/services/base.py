"""What every service shares: the Lode it belongs to (settings, database, cache, embedder), the repositories a
query reads, and the checks of text that reaches PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from lode.errors import InputError, unknown_repository
from lode.store.repositories import RepoRow, Repositories

if TYPE_CHECKING:
    from lode.config import Settings
    from lode.engine import Lode
    from lode.store.db import Database

# what a query reads: every repository (None), one by name, or the names an API key is scoped to (a tuple)
RepoScope = str | tuple[str, ...] | None


class Service:
    """A use case over the Lode that owns the settings, the database, the cache and the embedder (lode/engine.py);
    the services reach each other through it (`self.lode.graph`)."""

    def __init__(self, lode: Lode) -> None:
        self.lode = lode

    @property
    def settings(self) -> Settings:
        return self.lode.settings

    @property
    def db(self) -> Database:
        return self.lode.db


def repos_in_scope(conn: psycopg.Connection, scope: RepoScope) -> list[RepoRow]:
    """Every repository (None), one by name, or those of a tuple of names that exist (an API key's scope)."""
    repos = Repositories(conn)
    if scope is None:
        return repos.all()
    if isinstance(scope, tuple):
        return [row for row in repos.all() if row.name in scope]
    row = repos.get(scope)
    if row is None:
        raise unknown_repository(scope)
    return [row]


def check_text(label: str, value: str) -> None:
    """PostgreSQL takes neither NUL nor the lone surrogates that undecodable argv bytes or JSON escapes become."""
    if "\x00" in value:
        raise InputError(f"{label} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{label} is not valid UTF-8") from None
