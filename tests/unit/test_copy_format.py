"""lode/store/copy_format.py: rows in PostgreSQL's COPY text format, checked against a real server's COPY."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lode.engine import Lode
from lode.store import copy_format


def test_fields_are_escaped_as_copy_text_expects() -> None:
    assert copy_format.field("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"
    assert copy_format.field(None) == "\\N"
    assert copy_format.field("\\N") == "\\\\N"  # the text, not NULL
    assert copy_format.field(b"\x00\xff") == "\\\\x00ff"
    assert copy_format.field(42) == "42"
    assert copy_format.row(["x", None, 1]) == "x\t\\N\t1\n"


def test_nul_which_text_cannot_hold_becomes_the_replacement_character() -> None:
    assert copy_format.field("a\x00b") == "a\ufffdb"


def _copy_round_trip(lode: Lode, rows: list[tuple[str | None, bytes | None, int]]) -> list[tuple[object, ...]]:
    with lode.db.connection() as conn, conn.transaction():
        conn.execute("CREATE TEMP TABLE copy_format_check (n serial, t text, b bytea, i bigint) ON COMMIT DROP")
        with conn.cursor().copy("COPY copy_format_check (t, b, i) FROM STDIN") as copy:
            copy.write("".join(copy_format.row(r) for r in rows).encode())
        return conn.execute("SELECT t, b, i FROM copy_format_check ORDER BY n").fetchall()


TRICKY = st.text(alphabet=st.sampled_from(["\\", "\t", "\n", "\r", "\x00", "N", ".", "é", "\u2028", " "])
                 | st.characters(codec="utf-8"))


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.none() | TRICKY, st.none() | st.binary(max_size=20),
                               st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=8))
def test_postgresql_reads_back_exactly_the_rows_written(lode: Lode,
                                                        rows: list[tuple[str | None, bytes | None, int]]) -> None:
    stored = _copy_round_trip(lode, rows)
    expected = [(None if t is None else t.replace("\x00", "\ufffd"), b, i) for t, b, i in rows]
    assert [(t, None if b is None else bytes(b), i) for t, b, i in stored] == expected


def test_a_printable_corpus_round_trips(lode: Lode) -> None:
    rows = [(string.printable, bytes(range(256)), 1), ("", b"", 0), (None, None, -1)]
    stored = _copy_round_trip(lode, rows)
    assert [(t, None if b is None else bytes(b), i) for t, b, i in stored] == rows
