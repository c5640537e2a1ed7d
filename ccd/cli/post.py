"""Commands that send a workflow file's YAML to the daemon: ``submit`` shares
`post_yaml` with ``add`` (jobs joining a running workflow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ccd.cli.client import path_of
from ccd.cli.common import JsonOpt, WfArg, client, fail, print_json

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="A value for one of the workflow's params: NAME=VALUE (repeat for more).",
    ),
]
ResumeOpt = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Reuse the earlier run (in a workflow of the same name) of every job whose "
        "inputs, script, command, parameters and parents are unchanged, instead of "
        "running it again. 'ccctl why WF JOB' says why a job ran or was reused.",
    ),
]


def parse_sets(sets: list[str] | None) -> dict[str, str]:
    """``--set NAME=VALUE`` options as a mapping (exit 2 on a malformed one)."""
    given: dict[str, str] = {}
    for item in sets or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            fail(f"--set {item!r}: write --set NAME=VALUE", 2)
        given[name.strip()] = value
    return given


def post_yaml(
    api_path: str, file: Path, params: dict[str, str] | None = None, *, resume: bool = False
) -> Any:
    """POST the YAML of `file` to `api_path`, its absolute path as the source that
    relative paths in it are read from (and `params` for its parameters, `resume` to
    reuse unchanged jobs' earlier runs); the daemon's answer."""
    try:
        body = file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}", 2)
    query = {"source": str(file.resolve())}
    if params:
        query["params"] = json.dumps(params)
    if resume:
        query["resume"] = "true"
    return client().call(
        "POST", api_path, params=query, body=body, headers={"Content-Type": "application/yaml"}
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
