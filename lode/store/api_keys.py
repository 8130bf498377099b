"""The api_keys table: a key's name, the sha256 of the key (never the key) and the repositories it may read."""

from __future__ import annotations

from datetime import datetime

import psycopg

from lode.store.rows import scalar

# name, repositories (None: every one), created_at, key hash
KeyRow = tuple[str, list[str] | None, datetime, bytes]


class ApiKeyTable:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def insert(self, name: str, key_hash: bytes, repos: list[str] | None) -> None:
        """psycopg.errors.UniqueViolation when a key of that name exists."""
        self.conn.execute("INSERT INTO api_keys (name, key_hash, repos) VALUES (%s, %s, %s)", (name, key_hash, repos))

    def all(self) -> list[KeyRow]:
        """Every key, by name."""
        rows = self.conn.execute("SELECT name, repos, created_at, key_hash FROM api_keys ORDER BY name").fetchall()
        return [(name, repos, created, bytes(stored)) for name, repos, created, stored in rows]

    def delete(self, name: str) -> bool:
        """Whether there was a key of that name."""
        return self.conn.execute("DELETE FROM api_keys WHERE name = %s", (name,)).rowcount > 0

    def any(self) -> bool:
        return bool(scalar(self.conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys)")))
