"""The one user-facing error type.

A `CcdError` is an expected failure whose message is the whole story: the CLI
prints it and exits with its `exit_code`, the API returns it as a 4xx. Anything
else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import NamedTuple


class CcdError(Exception):
    """An expected error; `str(err)` tells the user what happened and what to do."""

    #: exit code the CLI uses for this error
    exit_code: int = 1
    #: HTTP status the API uses for this error
    http_status: int = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(CcdError):
    """A workflow, job or file the user named does not exist."""

    http_status = 404


class Conflict(CcdError):
    """The request is valid but not in the current state (e.g. retry a running workflow)."""

    http_status = 409


class DaemonUnreachable(CcdError):
    """The client could not talk to the daemon."""

    exit_code = 3


class Problem(NamedTuple):
    """One problem found in a workflow file, with where it is.

    (A NamedTuple, not a dataclass: `ccctl` imports this module on every run, and
    dataclasses costs ~10 ms of imports.)"""

    file: str
    line: int  #: 1-based; 0 when the problem has no position
    column: int  #: 1-based; 0 when the problem has no position
    code: str  #: short stable identifier, e.g. ``unknown-key``
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where = f"{where}:{self.line}:{self.column}"
        return f"{where}: {self.message} [{self.code}]"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


class SpecError(CcdError):
    """A workflow file has problems; all of them are listed."""

    exit_code = 2
    http_status = 422

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in workflow"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))
