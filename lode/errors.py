"""Errors that reach users. Each carries a one-line message; the CLI maps them to exit codes."""


class LodeError(Exception):
    """A failure Lode reports to the user (CLI exit code 1)."""

    exit_code = 1


class InputError(LodeError):
    """Bad usage or input: a missing path, an unknown repository, an invalid filter (exit code 2)."""

    exit_code = 2


class DatabaseUnavailable(LodeError):
    """The server went away (or cannot be reached). Every committed unit of work is whole; a re-run resumes."""


class NotFound(InputError):
    pass
