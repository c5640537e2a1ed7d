"""`ccctl ls` and `ccctl status`: the two commands asked most, kept free of typer.

`ccd.cli.fast` calls them straight from the command line, and `ccd.cli.main`
for the same commands written in a form `fast` leaves to typer; both import
them from here, so neither imports the other's module for them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

from ccd.cli.client import Client, path_of
from ccd.errors import DaemonUnreachable


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

    from ccd.cli.tables import workflows_table

    Console().print(workflows_table(rows))


def show_status(ref: str, as_json: bool) -> None:
    """`ccctl status WF`: the workflow and a line per job."""
    if as_json:
        _print_json(_get(path_of("workflows", ref)))
        return
    from ccd.cli.tables import TABLE_FIELDS, status_text

    # only what the table shows, as rows: a big workflow's handles and outputs are
    # most of its full answer, and field names repeated per job most of the rest
    data = _get(path_of("workflows", ref), {"fields": ",".join(TABLE_FIELDS), "rows": True})
    tty = sys.stdout.isatty()
    colour = tty and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
    width = shutil.get_terminal_size().columns if tty else None
    sys.stdout.write(status_text(data, width=width, colour=colour))


def show_job(ref: str, job: str, as_json: bool) -> None:
    """`ccctl status WF JOB`: one job, with where its files are."""
    data = _get(path_of("workflows", ref, "jobs", job))
    if as_json:
        _print_json(data)
        return
    from ccd.cli.tables import job_text

    sys.stdout.write(job_text(data))
