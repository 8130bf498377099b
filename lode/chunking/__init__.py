"""Chunking: split a source file into searchable units along its definitions."""

from lode.chunking.chunker import chunk_file
from lode.chunking.languages import language_for_path
from lode.chunking.names import module_name

__all__ = ["chunk_file", "language_for_path", "module_name"]
