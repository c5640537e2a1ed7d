"""The `ccctl` entry point: `ls` and `status`, typed many times a day, skip typer.

typer and click take ~75 ms to import, and typer imports pydantic while parsing
(another ~100 ms here): most of a `ccctl ls` budget of 0.3 s.  The plain forms
``ccctl ls [--json] [--limit N]`` and ``ccctl status WF [--json]`` are parsed here
with the standard library; anything else (help, other commands, other spellings)
goes to the typer app in `ccd.cli.main`, which calls the same functions.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

from ccd.cli.client import ApiError, Client, path_of
from ccd.errors import CcdError, DaemonUnreachable


def _client() -> Client:
    c = Client()
    c.ensure_daemon()
    return c


def _get(path: str, params: dict[str, Any] | None = None) -> Any:
    """GET from the daemon, starting it first only if it does not answer (one round
    trip when it runs, not a health check and then the request)."""
    try:
        return Client().call("GET", path, params=params)
    except DaemonUnreachable:
        return _client().call("GET", path, params=params)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def list_workflows(as_json: bool, limit: int) -> None:
    """`ccctl ls`: the newest workflows with their job counts."""
    rows = _get("/v1/workflows", {"limit": limit})
    if as_json:
        _print_json(rows)
        return
    from rich.console import Console

    from ccd.cli.render import workflows_table

    Console().print(workflows_table(rows))


def show_status(ref: str, as_json: bool) -> None:
    """`ccctl status WF`: the workflow and a line per job."""
    if as_json:
        _print_json(_get(path_of("workflows", ref)))
        return
    from ccd.cli.render import TABLE_FIELDS, status_text

    # only what the table shows, as rows: a big workflow's handles and outputs are
    # most of its full answer, and field names repeated per job most of the rest
    data = _get(path_of("workflows", ref), {"fields": ",".join(TABLE_FIELDS), "rows": True})
    tty = sys.stdout.isatty()
    colour = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    width = shutil.get_terminal_size().columns if tty else None
    sys.stdout.write(status_text(data, width=width, colour=colour))


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
        return lambda: list_workflows(as_json, limit)
    if command == "status" and len(rest) == 1 and not rest[0].startswith("-"):
        ref = rest[0]
        return lambda: show_status(ref, as_json)
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
