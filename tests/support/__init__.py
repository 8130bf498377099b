"""Helpers shared by test modules; test modules import these rather than each other."""
