"""What every `lode` command shares: the consoles (rich on first use), --json, the settings of the process, and
running one engine action with Lode errors mapped to exit codes 1 and 2 and one-line messages.

Below lode/cli.py and the modules of its commands (lode/cli_server.py), so they import it, not each other. Like
them it imports nothing heavy at module level: `lode --help` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from lode.errors import LodeError

if TYPE_CHECKING:
    from rich.console import Console

    from lode.config import Settings
    from lode.engine import Lode

T = TypeVar("T")


class _LazyConsole:
    """A rich Console created on first use: importing rich costs more than a `lode --help` may take."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    # rich's live displays (progress bars) use the console as a context manager, and Python looks special
    # methods up on the type, past __getattr__
    def __enter__(self) -> Console:
        return self._get().__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._get().__exit__(*exc)

    def _get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, soft_wrap=True)
            self._console.on_broken_pipe = reader_took_enough  # type: ignore[method-assign]
        return self._console


def reader_took_enough() -> NoReturn:
    """A closed pipe (`lode search x | head -1`): the reader took what it wanted, which is success; stop quietly
    (stdout goes to /dev/null, so the interpreter's last flush has nowhere to fail)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.__stdout__.fileno() if sys.__stdout__ else 1)
    raise SystemExit(0)


out: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def load_settings() -> Settings:
    """The settings of this process, with logging configured; an invalid one is a one-line error and exit 2.
    Every command calls this before its work, so that only commands that need settings import them."""
    from pydantic import ValidationError

    from lode.config import describe_invalid, get_settings
    from lode.logs import configure_logging

    try:
        settings = get_settings()
    except ValidationError as exc:
        if "--json" in sys.argv:
            print_json({"error": {"message": describe_invalid(exc), "exit_code": 2}})
        err.print(f"lode: error: {describe_invalid(exc)}", markup=False, highlight=False)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level)
    return settings


def run_action(as_json: bool, action: Callable[[Lode], T], render: Callable[[T], object]) -> None:
    """Run one engine action, then print its result as JSON or render it."""
    result = engine_result(as_json, action, load_settings())
    if as_json:
        print_json(result)
    else:
        render(result)


def engine_result(as_json: bool, action: Callable[[Lode], T], settings: Settings) -> T:
    """Run one engine action; map Lode errors to exit codes 1 and 2 with a one-line message."""
    from lode.engine import Lode

    try:
        with Lode(settings) as lode:
            return action(lode)
    except LodeError as exc:
        fail(exc, as_json)
    except KeyboardInterrupt:
        err.print("lode: interrupted; the index is consistent and the next run resumes", markup=False)
        raise typer.Exit(130) from None


def fail(exc: LodeError, as_json: bool) -> NoReturn:
    """Report a Lode error as one line (and the error document with --json); exit with its code."""
    if as_json:
        print_json({"error": {"message": str(exc), "exit_code": exc.exit_code}})
    err.print(f"lode: error: {exc}", markup=False, highlight=False)
    raise typer.Exit(exc.exit_code) from None


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, default=str, ensure_ascii=False) + "\n")
