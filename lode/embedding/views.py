"""The two texts embedded per chunk: a natural-language view (TEXT) and the source itself (CODE)."""

from __future__ import annotations

import hashlib
import re

from lode.store.vectors import PendingChunk

_COMMENT = re.compile(r"^\s*(?:#|//|/\*+|\*|--|;;)\s?(.*?)\s*(?:\*/)?$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MAX_COMMENT_LINES = 20


def humanize(identifier: str) -> str:
    """`parse_header_links` and `parseHeaderLinks` both read as `parse header links`."""
    return _CAMEL.sub(" ", identifier).replace("_", " ").strip().lower()


def text_view(chunk: PendingChunk) -> str:
    """What the chunk is, in words: its qualified name (also split into words), signature, docstring, comments."""
    parts = []
    if chunk.name_path:
        parts.append(f"{chunk.kind} {chunk.name_path}")
    if chunk.name:
        parts.append(humanize(chunk.name))
    if chunk.signature:
        parts.append(chunk.signature)
    if chunk.docstring:
        parts.append(chunk.docstring)
    comments = []
    for line in chunk.content.splitlines():
        match = _COMMENT.match(line)
        if match and match.group(1) and (not chunk.docstring or match.group(1) not in chunk.docstring):
            comments.append(match.group(1))
            if len(comments) >= MAX_COMMENT_LINES:
                break
    parts.extend(comments)
    if not parts:  # a window or module chunk with no words of its own: fall back to its code
        return chunk.content
    return "\n".join(parts)


def code_view(chunk: PendingChunk) -> str:
    return chunk.content


def view_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
