"""One exception type for every error a user can fix; the CLI prints it as one line, no traceback."""

from __future__ import annotations

from pathlib import Path


class LmebError(Exception):
    """An error with a message fit for the user (file, line and what is wrong)."""


class DataError(LmebError):
    """Bad input in a data file; the message names the file and, when known, the line."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = message
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")


class LmebWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as one line)."""
