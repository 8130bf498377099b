"""Line geometry of a UTF-8 text, and fixed-size line windows over it.

Ranges are byte offsets into the encoded text, end exclusive. Lines end at b"\\n" only.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right

from lode.model import Chunk

_NON_SPACE = re.compile(rb"\S")
_NEWLINE = re.compile(rb"\n")


class SourceLines:
    """The encoded text and where its lines start."""

    __slots__ = ("data", "starts")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.starts = [0, *(newline.end() for newline in _NEWLINE.finditer(data))]

    def line_of(self, offset: int) -> int:
        """0-based line holding the byte at `offset`."""
        return bisect_right(self.starts, offset) - 1

    def line_start(self, offset: int) -> int:
        return self.starts[self.line_of(offset)]

    def is_blank(self, start: int, end: int) -> bool:
        return _NON_SPACE.search(self.data, start, end) is None

    def chunk(
        self,
        kind: str,
        start: int,
        end: int,
        content: bytes | None = None,
        *,
        name: str | None = None,
        name_path: str | None = None,
        signature: str | None = None,
        docstring: str | None = None,
        guard: str | None = None,
    ) -> Chunk:
        """A chunk over data[start:end]; `content` replaces the raw text (a class with elided methods)."""
        text = (self.data[start:end] if content is None else content).decode("utf-8", "replace")
        return Chunk(
            kind=kind,
            name=name,
            name_path=name_path,
            start_line=self.line_of(start) + 1,
            end_line=self.line_of(max(start, end - 1)) + 1,
            start_byte=start,
            end_byte=end,
            content=text,
            signature=signature,
            docstring=docstring,
            content_hash=hashlib.blake2b(text.encode(), digest_size=16).hexdigest(),
            guard=guard,
        )


def _char_boundary(data: bytes, offset: int) -> int:
    """The nearest offset at or before `offset` that does not split a UTF-8 character."""
    while offset > 0 and data[offset] & 0xC0 == 0x80:
        offset -= 1
    return offset


def window_ranges(
    lines: SourceLines, start: int, end: int, *, window_lines: int, overlap: int, max_bytes: int
) -> list[tuple[int, int]]:
    """Consecutive windows of at most `window_lines` lines and `max_bytes` bytes covering [start, end).

    Successive windows share `overlap` lines. A line longer than `max_bytes` is cut into pieces.
    """
    window_lines = max(1, window_lines)
    overlap = max(0, overlap)
    max_bytes = max(4, max_bytes)  # room for any UTF-8 character
    starts = lines.starts
    ranges: list[tuple[int, int]] = []
    position = start
    while position < end:
        first_line = lines.line_of(position)
        stop = starts[first_line + window_lines] if first_line + window_lines < len(starts) else end
        stop = min(stop, end)
        if stop - position > max_bytes:
            whole_lines_stop = starts[lines.line_of(position + max_bytes)]
            if whole_lines_stop > position:
                stop = whole_lines_stop
            else:  # one line longer than max_bytes
                stop = max(position + 1, _char_boundary(lines.data, position + max_bytes))
        ranges.append((position, stop))
        if stop >= end:
            break
        window_start, position = position, stop
        stop_line = lines.line_of(stop)
        if starts[stop_line] == stop and starts[first_line] == window_start:
            # step back, but by at most half the window so that short (byte-bound) windows still advance
            position = starts[stop_line - min(overlap, (stop_line - first_line) // 2)]
    return ranges


def window_chunks(
    lines: SourceLines,
    start: int,
    end: int,
    *,
    window_lines: int,
    overlap: int,
    max_bytes: int,
    kind: str = "window",
    name_path: str | None = None,
) -> list[Chunk]:
    """Window chunks over [start, end), leaving out windows that hold only whitespace."""
    return [
        lines.chunk(kind, window_start, window_end, name_path=name_path)
        for window_start, window_end in window_ranges(
            lines, start, end, window_lines=window_lines, overlap=overlap, max_bytes=max_bytes
        )
        if not lines.is_blank(window_start, window_end)
    ]
