"""Reading rows that a statement always returns; below db.py, so that modules db.py uses (the error log) can read
them too without an import cycle."""

from __future__ import annotations

from typing import Any

import psycopg


def one_row(cursor: psycopg.Cursor[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The row of a statement that always returns exactly one (an aggregate, a function call, EXISTS, an upsert's
    RETURNING): no row there is a bug, reported as one rather than as a TypeError on None."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("a statement that always returns a row returned none")
    return row


def scalar(cursor: psycopg.Cursor[tuple[Any, ...]]) -> Any:
    """The single value of a statement that always returns one row (see one_row)."""
    return one_row(cursor)[0]
