"""Commands that send a workflow file's YAML to the daemon: ``submit`` shares
`post_yaml` with ``add`` (jobs joining a running workflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ccd.cli.client import path_of
from ccd.cli.common import JsonOpt, WfArg, client, fail, print_json


def post_yaml(api_path: str, file: Path) -> Any:
    """POST the YAML of `file` to `api_path`, its absolute path as the source that
    relative paths in it are read from; the daemon's answer."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
    return client().call(
        "POST",
        api_path,
        params={"source": str(file.resolve())},
        body=body,
        headers={"Content-Type": "application/yaml"},
    )


def add(
    wf: WfArg,
    file: Annotated[
        Path, typer.Argument(help="A fragment of a workflow file: jobs: (and defaults:).")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Add jobs to a running workflow; they may need its jobs, finished or not.

    A job whose parents all succeeded starts at once; one that needs a failed job
    is skipped. Refused (exit 1) once the workflow has ended: retry it instead."""
    result = post_yaml(path_of("workflows", wf, "jobs"), file)
    if as_json:
        print_json(result)
        return
    added = result["added"]
    print(f"added {len(added)} job(s) to {result['id']}: {', '.join(added)}")
