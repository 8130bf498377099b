"""API keys: random 256-bit tokens, stored only as their sha256, optionally scoped to some repositories.

A request presents `Authorization: Bearer <key>`; its hash is compared with every stored hash in constant time
(hmac.compare_digest), so neither the lookup nor the comparison leaks how much of a key matched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import psycopg

from lode.errors import InputError, NotFound
from lode.store.api_keys import ApiKeyTable
from lode.store.db import Database

KEY_PREFIX = "lode_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    repos: tuple[str, ...] | None  # None: every repository
    created_at: datetime

    def allows(self, repo: str) -> bool:
        return self.repos is None or repo in self.repos


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, repos: list[str] | None = None) -> str:
        """Store a new key under `name`; return the key itself (shown once, never stored)."""
        if not _NAME.match(name):
            raise InputError(f"invalid key name {name!r}: use letters, digits, '.', '_' and '-' (max 64)")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.db.connection() as conn:
                ApiKeyTable(conn).insert(name, hash_key(key), sorted(set(repos)) if repos else None)
        except psycopg.errors.UniqueViolation:
            raise InputError(f"a key named {name!r} exists; remove it first with `lode keys rm {name}`") from None
        return key

    def all(self) -> list[ApiKey]:
        return [record for record, _ in self.all_hashed()]

    def remove(self, name: str) -> None:
        with self.db.connection() as conn:
            if not ApiKeyTable(conn).delete(name):
                raise NotFound(f"no API key named {name!r}")

    def any(self) -> bool:
        with self.db.connection() as conn:
            return ApiKeyTable(conn).any()

    def all_hashed(self) -> list[tuple[ApiKey, bytes]]:
        with self.db.connection() as conn:
            rows = ApiKeyTable(conn).all()
        return [(ApiKey(name, tuple(repos) if repos is not None else None, created), stored)
                for name, repos, created, stored in rows]

    @staticmethod
    def match(key: str, stored: list[tuple[ApiKey, bytes]]) -> ApiKey | None:
        """The record whose hash is the key's, or None. Every stored hash is compared, in constant time."""
        presented = hash_key(key)
        found = None
        for record, digest in stored:
            if hmac.compare_digest(presented, digest):
                found = record
        return found
