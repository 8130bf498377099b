"""Chunking: split a source file into searchable units along its definitions."""

from lode.chunking.chunker import chunk_file

__all__ = ["chunk_file"]
