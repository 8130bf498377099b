"""Lode: a self-hosted code intelligence engine."""

__version__ = "0.1.0"
