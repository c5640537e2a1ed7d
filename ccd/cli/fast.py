"""The `ccctl` entry point: `ls` and `status`, typed many times a day, skip typer.

typer and click take ~75 ms to import, and typer imports pydantic while parsing
(another ~100 ms here): most of a `ccctl ls` budget of 0.3 s.  The plain forms
``ccctl ls [--json] [--limit N]`` and ``ccctl status WF [--json]`` are parsed here
with the standard library; anything else (help, other commands, other spellings)
goes to the typer app in `ccd.cli.main`, which calls the same functions
(`ccd.cli.quick`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from ccd.cli import quick
from ccd.cli.client import ApiError
from ccd.errors import CcdError


def parse(argv: list[str]) -> Callable[[], None] | None:
    """The command for the plain forms of `ls` and `status`; None for anything else."""
    if not argv:
        return None
    command, rest = argv[0], argv[1:]
    as_json = "--json" in rest
    rest = [a for a in rest if a != "--json"]
    if command == "ls":
        limit = 50
        if len(rest) == 2 and rest[0] == "--limit" and rest[1].isdigit():
            limit = int(rest[1])
        elif rest:
            return None
        return lambda: quick.list_workflows(as_json, limit)
    if command == "status" and len(rest) == 1 and not rest[0].startswith("-"):
        ref = rest[0]
        return lambda: quick.show_status(ref, as_json)
    return None


def main() -> None:
    command = parse(sys.argv[1:])
    if command is None:
        from ccd.cli.main import main as full

        full()
        return
    try:
        command()
        sys.stdout.flush()
    except (ApiError, CcdError) as exc:
        print(f"ccctl: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
    # Done and flushed: skip the interpreter's teardown, which frees every object of
    # a big status one by one (~20 ms for 10,000 jobs) for a process about to end.
    os._exit(0)
