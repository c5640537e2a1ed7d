"""`ccctl report WF [--html FILE | --json]`: what every attempt of a workflow cost.

The daemon builds the report (``GET /v1/workflows/{ref}/report``); this draws it as
a table in the terminal (one styled Text, as `ccctl ls` does: fast for thousands of
rows), as JSON, or as a self-contained HTML page with a timeline (`report_html`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ccd.cli.client import path_of
from ccd.cli.common import JsonOpt, WfArg, client, fail, print_json
from ccd.report.text import (
    ATTEMPT_HEADERS,
    GROUP_HEADERS,
    GROUP_RIGHT,
    RIGHT,
    SIZING_HINT,
    attempt_cells,
    group_cells,
    summary,
    total_cells,
)


def report(
    wf: WfArg,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write a self-contained HTML page with a timeline here."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What every attempt cost: wall and CPU time, peak RSS, exit, host; with totals,
    and per job group the largest figures and Slurm requests that would hold them."""
    if html is not None and as_json:
        fail("--html and --json: choose one", 2)
    data: dict[str, Any] = client().call("GET", path_of("workflows", wf, "report"))
    if as_json:
        print_json(data)
    elif html is not None:
        from ccd.cli.report_html import report_html

        html.write_text(report_html(data))
        print(f"wrote {html}")
    else:
        print_tables(data)


def print_tables(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.text import Text

    from ccd.cli.tables import _grid, state_text

    # on a terminal each line is cut at its edge; into a pipe or a file, lines are whole
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=100_000)
    console.print(summary(data), soft_wrap=True)
    rows = []
    for entry in data["attempts"]:
        cells = [Text(c) for c in attempt_cells(entry)]
        cells[2] = state_text(str(entry["state"]))
        rows.append(cells)
    rows.append([Text(c, style="bold") for c in total_cells(data["totals"])])
    console.print(_grid(ATTEMPT_HEADERS, rows, RIGHT), no_wrap=True, overflow="ellipsis")
    if data["groups"]:
        console.print()
        groups = [[Text(c) for c in group_cells(g)] for g in data["groups"]]
        console.print(_grid(GROUP_HEADERS, groups, GROUP_RIGHT), no_wrap=True, overflow="ellipsis")
        console.print(Text(SIZING_HINT, style="dim"), soft_wrap=True)
