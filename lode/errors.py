"""Errors that reach users. Each carries a one-line message; the CLI maps them to exit codes."""


class LodeError(Exception):
    """A failure Lode reports to the user (CLI exit code 1).

    A remedy names what to do next, and that depends on who reads it: `cli` is a command for a shell user (kept in
    `str(error)`, as the CLI and REST report it), `tools` an MCP tool for an agent, which cannot run commands
    (`tool_message`)."""

    exit_code = 1

    def __init__(self, message: str = "", *, cli: str | None = None, tools: str | None = None) -> None:
        super().__init__(f"{message}; {cli}" if cli else message)
        self.tool_message = f"{message}; {tools}" if tools else message


class InputError(LodeError):
    """Bad usage or input: a missing path, an unknown repository, an invalid filter (exit code 2)."""

    exit_code = 2


class DatabaseUnavailable(LodeError):
    """The server went away (or cannot be reached). Every committed unit of work is whole; a re-run resumes."""


class NotFound(InputError):
    pass


def unknown_repository(name: str) -> NotFound:
    return NotFound(f"no repository named {name!r}", cli="`lode repos` lists them", tools="index_status lists them")
