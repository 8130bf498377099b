"""search_pattern's matching (lode/search/pattern.py): lines, columns, cuts, bad patterns and the bounds."""

from __future__ import annotations

import pytest

from lode.errors import InputError
from lode.search.pattern import MAX_LINE_CHARS, PatternSearch, compile_pattern, matching_lines


def lines_of(pattern: str, text: str, *, regex: bool = False, ignore_case: bool = False) -> list[tuple[int, int, str]]:
    compiled = compile_pattern(pattern, regex=regex, ignore_case=ignore_case)
    return [(m.line, m.column, m.text) for m in matching_lines(compiled, text)]


def test_each_matching_line_once_at_its_first_match_with_code_point_columns() -> None:
    text = "héllo wörld\r\nwörld wörld\n\nno\nwörld"
    assert lines_of("wörld", text) == [(1, 7, "héllo wörld"), (2, 1, "wörld wörld"), (5, 1, "wörld")]


def test_exact_text_is_not_a_regex_unless_asked() -> None:
    text = "a.b\naxb\n"
    assert lines_of("a.b", text) == [(1, 1, "a.b")]
    assert lines_of("a.b", text, regex=True) == [(1, 1, "a.b"), (2, 1, "axb")]
    assert lines_of("A.B", text, ignore_case=True) == [(1, 1, "a.b")]


def test_a_match_across_lines_is_reported_at_its_first_line() -> None:
    assert lines_of(r"one\ntwo", "zero\none\ntwo\n", regex=True) == [(2, 1, "one")]


def test_a_long_line_is_cut_around_the_match() -> None:
    line = "x" * 5000 + "needle" + "y" * 5000
    [(number, column, cut)] = lines_of("needle", line)
    assert (number, column) == (1, 5001) and len(cut) == MAX_LINE_CHARS and "needle" in cut


@pytest.mark.parametrize(("pattern", "reason"), [
    ("(unclosed", "missing ): (unclosed"),
    (r"(a)\1", r"invalid escape sequence: \1"),
    ("(?=ahead)", "invalid perl operator: (?="),
    ("a{1001}", "invalid repetition size: {1001}"),
])
def test_a_bad_regex_is_one_line_saying_why(pattern: str, reason: str) -> None:
    with pytest.raises(InputError) as caught:
        compile_pattern(pattern, regex=True, ignore_case=False)
    message = str(caught.value)
    assert message.startswith(f"invalid regular expression {pattern!r}: {reason}") and "\n" not in message


def test_empty_long_and_nul_patterns_are_refused() -> None:
    for pattern in ("", "x" * 1001, "a\x00b"):
        with pytest.raises(InputError):
            compile_pattern(pattern, regex=False, ignore_case=False)


def test_a_pattern_that_backtracks_exponentially_elsewhere_runs_in_linear_time() -> None:
    # (a+)+$ against a long run of a's and a final b: catastrophic for a backtracking engine, linear on RE2
    assert lines_of("(a+)+$", "a" * 100_000 + "b", regex=True) == []


def test_the_search_stops_at_the_limit_and_at_the_deadline_and_lists_stale_files() -> None:
    files = [("r", "a.py", "hit\nhit\n"), ("r", "b.py", None), ("r", "c.py", "hit\n")]
    compiled = compile_pattern("hit", regex=False, ignore_case=False)
    whole = PatternSearch(compiled, limit=10, seconds=60).run(iter(files), 3)
    assert [(m["path"], m["line"]) for m in whole["matches"]] == [("a.py", 1), ("a.py", 2), ("c.py", 1)]
    assert whole["stale"] == ["b.py"] and whole["files_searched"] == 2 and not whole["truncated"]
    limited = PatternSearch(compiled, limit=2, seconds=60).run(iter(files), 3)
    # truncated only once a further match shows there are more (c.py), not when a.py fills the limit exactly
    assert len(limited["matches"]) == 2 and limited["truncated"] and limited["files_searched"] == 2
    expired = PatternSearch(compiled, limit=10, seconds=-1).run(iter(files), 3)
    assert expired["timed_out"] and expired["files_searched"] == 0 and expired["matches"] == []
