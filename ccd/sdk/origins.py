"""Where each part of a built workflow was written, so problems point there.

A workflow file's problems carry file:line:column from the YAML.  A workflow built
in Python has no YAML: its problems point at the line that added the job
(`CallSite`, recorded by ``wf.job``), or, for a job read by ``Workflow.from_yaml``,
at the file it came from (`FileOrigin`).  `BuilderChecker` is the checker of
workflow files with only its reporting changed, so the checks and their messages
are the same ones ``ccctl validate`` prints.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ccd.errors import Problem
from ccd.spec.checker import Checker
from ccd.spec.positions import NO_POS, PathKey, Pos, PositionLookup


class Origin(Protocol):
    """Anything that says where a path of the workflow's mapping was written."""

    def where(self, path: PathKey, at_key: bool) -> tuple[str, int, int]: ...


@dataclass(frozen=True, slots=True)
class CallSite:
    """A line of Python: everything one call wrote is located at that call."""

    file: str
    line: int
    column: int

    def where(self, path: PathKey, at_key: bool) -> tuple[str, int, int]:
        return self.file, self.line, self.column

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class FileOrigin:
    """A workflow file read by ``Workflow.from_yaml``: its own positions."""

    file: str
    positions: PositionLookup

    def where(self, path: PathKey, at_key: bool) -> tuple[str, int, int]:
        line, column = self.positions.key(path) if at_key else self.positions.value(path)
        return self.file, line, column

    def __str__(self) -> str:
        return self.file


def caller(depth: int = 2) -> CallSite:
    """The line (and column) of the call `depth` frames up: 2 is the caller of the
    function that calls this."""
    frame = sys._getframe(depth)
    code = frame.f_code
    line, column = frame.f_lineno, 1
    # the instruction's own span: the start of the call expression, also when the
    # call is written over several lines (f_lineno may be one of its later lines)
    span = next(itertools.islice(code.co_positions(), frame.f_lasti // 2, None), None)
    if span is not None and span[0] is not None and span[2] is not None:
        line, column = span[0], span[2] + 1
    return CallSite(code.co_filename, line, column)


def directory_of(file: str) -> Path:
    """The directory a Python file's relative paths are read from: its own, or the
    current directory for code that has no file (``python -c``, a REPL)."""
    if file.startswith("<"):
        return Path.cwd()
    return Path(file).absolute().parent


class _Nowhere:
    """Positions for a checker whose reports are located by origins instead."""

    def key(self, path: PathKey) -> Pos:
        return NO_POS

    def value(self, path: PathKey) -> Pos:
        return NO_POS


class BuilderChecker(Checker):
    """The workflow-file checker, locating each problem at its job's origin."""

    def __init__(
        self,
        source: str,
        base_dir: Path,
        known_hosts: Collection[str],
        top: Origin,
        jobs: Mapping[str, Origin],
        local_environment: bool = False,
        params: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(source, base_dir, known_hosts, _Nowhere(), local_environment, params)
        self.top = top
        self.jobs = jobs

    def report(self, path: PathKey, code: str, message: str, *, at_key: bool = False) -> None:
        origin = self.top
        if len(path) >= 2 and path[0] == "jobs":
            origin = self.jobs.get(str(path[1]), self.top)
        file, line, column = origin.where(path, at_key)
        self.problems.append(Problem(file, line, column, code, message))
