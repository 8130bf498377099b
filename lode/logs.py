"""Structured logs: one JSON object per line on stderr, for structlog loggers and the standard library's alike.

Context bound with `bind_context(request_id=...)` (structlog contextvars) appears in every line logged by the
same thread or task until `clear_context()`. Call `configure_logging()` once per process (CLI, server).
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.contextvars import bind_contextvars as bind_context
from structlog.contextvars import clear_contextvars as clear_context

__all__ = ["bind_context", "clear_context", "configure_logging", "get_logger"]

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


structlog.configure(  # route structlog through stdlib logging, so it goes wherever logging is configured
    processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


def configure_logging(level: str | int = "WARNING") -> None:
    """JSON lines on stderr at `level` (LODE_LOG_LEVEL) for structlog and for stdlib `logging`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    ))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_lode", False)]:
        root.removeHandler(old)
    handler._lode = True  # type: ignore[attr-defined]  # marks the handler a later call replaces
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
