"""What every `ccctl` command shares: argument types, the daemon client, output helpers."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any, NoReturn

import typer

from ccd.cli.client import Client, path_of

WfArg = Annotated[str, typer.Argument(help="Workflow id, or name (the newest with that name).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def quiet_pipe() -> None:
    """The reader went away (`ccctl events WF | head`): stop quietly, exit 0."""
    # Python flushes stdout at exit; point it at /dev/null so that flush cannot fail
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(0)


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"ccctl: {message}", file=sys.stderr)
    raise typer.Exit(code)


def client(autostart: bool = True) -> Client:
    c = Client()
    if autostart:
        c.ensure_daemon()
    return c


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def get_status(c: Client, ref: str) -> dict[str, Any]:
    result: dict[str, Any] = c.call("GET", path_of("workflows", ref))
    return result
