"""PostgreSQL COPY text format, so worker processes can format rows and the writer only streams bytes."""

from __future__ import annotations

from collections.abc import Iterable

# (character, its COPY escape); str.replace per character is far faster than str.translate on large texts.
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\ufffd"))


def field(value: object) -> str:
    if isinstance(value, str):
        for char, escaped in _ESCAPES:
            if char in value:
                value = value.replace(char, escaped)
        return value
    if value is None:
        return "\\N"
    if isinstance(value, bytes):
        return "\\\\x" + value.hex()  # bytea hex input, its backslash escaped for COPY
    return str(value)


def row(values: Iterable[object]) -> str:
    return "\t".join([field(value) for value in values]) + "\n"
