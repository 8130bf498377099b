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


def test_a_files_rows_load_as_its_chunks_and_each_terms_packed_postings(lode: Lode) -> None:
    """Chunks.format's COPY text, loaded by a real server, holds each chunk and, per term, the ids, tfs and lengths
    of exactly the chunks holding it, in chunk order."""
    import numpy as np

    from lode.chunking.chunker import chunk_file_with_tree
    from lode.search.lexical import chunk_postings
    from lode.store.repositories import CHUNK_ID_DTYPE, COUNT_DTYPE, Chunks, chunk_id

    source = ('"""Tab\there, a backslash \\\\ and a new\nline."""\n\nclass Parser:\n    def parse(self, text):\n'
              '        return text.split()\n\n\ndef parse_all(texts):\n    return [Parser().parse(t) for t in texts]\n')
    chunked, _ = chunk_file_with_tree("pkg/parsing.py", source, "python", "pkg.parsing", lode.settings)
    items = [chunk_postings(chunk, "pkg/parsing.py") for chunk in chunked.chunks]
    assert len(items) >= 3
    file_id, repo_id = 7, 3
    batch = Chunks.format(repo_id, file_id, "pkg/parsing.py", "python", items)
    assert (batch.count, batch.total_length) == (len(items), sum(item.length for item in items))
    with lode.db.connection() as conn, conn.transaction():
        conn.execute("CREATE TEMP TABLE chunk_rows (LIKE chunks) ON COMMIT DROP")
        conn.execute("CREATE TEMP TABLE posting_rows (LIKE postings) ON COMMIT DROP")
        with conn.cursor() as cur:
            with cur.copy(f"COPY chunk_rows ({Chunks.CHUNK_COLUMNS}) FROM STDIN") as copy:
                copy.write(batch.chunk_rows)
            with cur.copy(f"COPY posting_rows ({Chunks.POSTING_COLUMNS}) FROM STDIN") as copy:
                copy.write(batch.posting_rows)
        stored_chunks = conn.execute(
            "SELECT id, file_id, repo_id, name, content, start_line, length FROM chunk_rows ORDER BY id").fetchall()
        stored_postings = conn.execute(
            "SELECT term, repo_id, file_id, chunk_ids, tfs, lengths FROM posting_rows").fetchall()
    assert stored_chunks == [
        (chunk_id(file_id, ordinal), file_id, repo_id, item.chunk.name, item.chunk.content, item.chunk.start_line,
         item.length) for ordinal, item in enumerate(items)]
    expected = {term for item in items for term in item.terms}
    assert sorted(row[0] for row in stored_postings) == sorted(expected)  # one row per term
    for term, stored_repo, stored_file, ids, tfs, lengths in stored_postings:
        holding = [(ordinal, item) for ordinal, item in enumerate(items) if term in item.terms]
        assert (stored_repo, stored_file) == (repo_id, file_id)
        assert np.frombuffer(ids, CHUNK_ID_DTYPE).tolist() == [chunk_id(file_id, o) for o, _ in holding]
        assert np.frombuffer(tfs, COUNT_DTYPE).tolist() == [item.terms[term] for _, item in holding]
        assert np.frombuffer(lengths, COUNT_DTYPE).tolist() == [item.length for _, item in holding]
