"""``ccctl why WF JOB``: why a job ran, or which earlier run it reused."""

from __future__ import annotations

from typing import Annotated

import typer

from ccd.cli.client import path_of
from ccd.cli.common import JsonOpt, WfArg, client, print_json


def why(
    wf: WfArg,
    job: Annotated[str, typer.Argument(help="The job to explain.")],
    as_json: JsonOpt = False,
) -> None:
    """Say why a job ran, or which earlier run it reused (--resume), and what changed.

    Compares the job's cache key with the newest earlier successful run of the same
    job in a workflow of the same name: its script, command, parameters, input
    files, environment and parents."""
    answer = client().call("GET", path_of("workflows", wf, "jobs", job, "why"))
    if as_json:
        print_json(answer)
        return
    print(f"{answer['job']} ({answer['state']}): {answer['decision']}")
    print(f"  {answer['summary']}")
    for change in answer.get("changes") or []:
        print(f"  - {change}")
    if answer.get("key"):
        print(f"  cache key {answer['key']}")
