"""``ccctl``: submit, watch and control workflows of the ccd daemon.

Exit codes: 0 success; 1 the workflow failed (watch, submit --watch) or the
daemon refused; 2 usage or validation error; 3 the daemon is unreachable.
Imports are kept lean (no daemon, pydantic or httpx on the common paths): a
`ccctl ls` must answer in well under a second.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from ccd import __version__
from ccd.cli import quick
from ccd.cli.client import ApiError, Client, path_of
from ccd.cli.common import (
    JsonOpt,
    WfArg,
    client,
    fail,
    get_status,
    print_json,
    quiet_pipe,
)
from ccd.cli.format import event_text, format_clock
from ccd.cli.post import ResumeOpt, SetOpt, add, parse_sets, post_yaml
from ccd.cli.report import report
from ccd.cli.service import daemon_app, hosts_app
from ccd.cli.ui import ui
from ccd.cli.why import why
from ccd.errors import CcdError
from ccd.states import FINAL_JOB_STATES

app = typer.Typer(
    name="ccctl",
    help="Control the ccd workflow daemon: submit workflows, watch them, read their logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(daemon_app, name="daemon")
app.add_typer(hosts_app, name="hosts")
app.command("ui")(ui)
app.command("add")(add)
app.command("why")(why)
app.command("report")(report)


# -- workflows -----------------------------------------------------------------------
@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Workflow files to check.")],
    sets: SetOpt = None,
) -> None:
    """Check workflow files without running them (no daemon needed); exit 2 on any problem."""
    from ccd.config import load_config
    from ccd.engine.pool import check_capacity
    from ccd.errors import SpecError
    from ccd.executors.environment import declares_environment
    from ccd.spec.validate import load_workflow_file

    try:
        config = load_config()
    except CcdError as exc:
        fail(exc.message, 2)
    hosts = config.known_hosts()
    local_environment = declares_environment(config.host_config("localhost"))
    given = parse_sets(sets)
    bad = 0
    for file in files:
        try:
            spec = load_workflow_file(
                file, known_hosts=hosts, local_environment=local_environment, params=given
            )
            check_capacity(spec, config)  # as submit does: more than the host has
        except CcdError as exc:  # a SpecError with every problem, or the capacity's
            bad += 1
            print(
                exc.message if isinstance(exc, SpecError) else f"{file}: {exc.message}",
                file=sys.stderr,
            )
            continue
        print(f"{file}: ok — workflow '{spec.name}', {len(spec.jobs)} job(s)")
    if bad:
        raise typer.Exit(2)


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="The workflow file (YAML).")],
    watch_: Annotated[bool, typer.Option("--watch", "-w", help="Watch it until it ends.")] = False,
    as_json: JsonOpt = False,
    sets: SetOpt = None,
    resume: ResumeOpt = False,
) -> None:
    """Submit a workflow to the daemon (starting the daemon if needed)."""
    result = post_yaml("/v1/workflows", file, parse_sets(sets), resume=resume)
    if as_json:
        print_json(result)
    else:
        print(f"submitted {result['name']} as {result['id']} ({result['jobs']} jobs)")
    if watch_:
        watch(result["id"])


@app.command("ls")
def list_workflows(
    as_json: JsonOpt = False,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List workflows, newest first."""
    quick.list_workflows(as_json, limit)  # also reached without typer: see ccd.cli.fast


@app.command()
def status(
    wf: WfArg,
    job: Annotated[
        str | None,
        typer.Argument(help="Show this job alone: its reason, directories, log file, outputs."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a workflow and the state of each of its jobs, or one job in detail."""
    if job is not None:
        quick.show_job(wf, job, as_json)
        return
    quick.show_status(wf, as_json)  # also reached without typer: see ccd.cli.fast


@app.command()
def watch(wf: WfArg) -> None:
    """Follow a workflow live until it ends; exit 1 if it did not succeed."""
    from ccd.cli.watch import follow

    state = follow(client(), wf)
    raise typer.Exit(0 if state == "succeeded" else 1)


@app.command()
def logs(
    wf: WfArg,
    job: Annotated[str, typer.Argument(help="The job's name.")],
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new output.")
    ] = False,
    attempt: Annotated[
        int | None, typer.Option(help="Which attempt (default: the latest).")
    ] = None,
) -> None:
    """Print a job's output (stdout and stderr)."""
    c = client()
    sys.stdout.flush()
    fd = sys.stdout.fileno()
    widen_pipe(fd)
    try:
        for chunk in c.stream(
            path_of("workflows", wf, "jobs", job, "log"), {"follow": follow_, "attempt": attempt}
        ):
            write_all(fd, chunk)  # straight to the file descriptor: no buffer to flush
    except BrokenPipeError:
        quiet_pipe()


#: what `ccctl logs` asks of a pipe it writes to (Linux's limit for a user: 1 MiB)
PIPE_SIZE = 1024 * 1024


def widen_pipe(fd: int) -> None:
    """Let a pipe hold 1 MiB instead of 64 KiB: a log is copied into it in big
    pieces, and each time the pipe is full both processes have to be woken."""
    import fcntl
    import stat

    with contextlib.suppress(OSError, AttributeError):  # not Linux, or above the limit
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@app.command()
def events(
    wf: WfArg,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events.")
    ] = False,
    since: Annotated[int, typer.Option(help="Only events after this sequence number.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Print a workflow's event log (every state change, progress and output)."""
    lines = client().stream_lines(
        path_of("workflows", wf, "events"), {"follow": follow_, "since": since}
    )
    try:
        for line in lines:
            if not line.strip():
                continue  # keep-alive
            if as_json:
                sys.stdout.write(line.decode() + "\n")
            else:
                event = json.loads(line)
                stamp = format_clock(event["time"])
                sys.stdout.write(f"{event['seq']:>6} {stamp} {event_text(event)}\n")
            sys.stdout.flush()
    except BrokenPipeError:
        quiet_pipe()


@app.command()
def cancel(
    wf: WfArg,
    job: Annotated[
        str | None, typer.Argument(help="Cancel only this job (and its descendants).")
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for the cancelled jobs to end and report any that may "
            "still be alive (a failed scancel); 0 returns at once."
        ),
    ] = 60,
) -> None:
    """Cancel a running workflow, or one job of it; the jobs' whole process trees are killed.

    Exits 1 if a job may still be alive (e.g. scancel failed while Slurm's controller
    was down): the message names it.
    """
    c = client()
    params = {"job": job} if job else None
    result = c.call("POST", path_of("workflows", wf, "cancel"), params=params)
    print(f"cancelling {result['cancelled']} of {result['id']}")
    if wait > 0 and not follow_cancel(c, str(result["id"]), job, int(result["seq"]), wait):
        raise typer.Exit(1)


def follow_cancel(c: Client, wf: str, job: str | None, since: int, wait: float) -> bool:
    """Follow the events of a cancel; False if a job may have survived it."""
    deadline = time.monotonic() + wait
    alive: list[str] = []
    if job is not None:
        jobs = c.call("GET", path_of("workflows", wf))["jobs"]
        if any(j["name"] == job and j["state"] in FINAL_JOB_STATES for j in jobs):
            return True  # it had ended already: nothing was cancelled
    lines = c.stream_lines(path_of("workflows", wf, "events"), {"follow": True, "since": since})
    for line in lines:  # ends when the workflow is final
        if line.strip():
            event = json.loads(line)
            data = event.get("data", {})
            if event["kind"] == "job.warning" and "may still be alive" in data.get("message", ""):
                alive.append(event["job"])
                print(event_text(event), file=sys.stderr)
            done = event["kind"] == "job.state" and event["job"] == job
            if done and data.get("state") in FINAL_JOB_STATES:
                break
        if time.monotonic() > deadline:
            print(
                f"the cancelled jobs had not all ended after {wait:g}s; "
                f"`ccctl status {wf}` shows them",
                file=sys.stderr,
            )
            return False
    return not alive


@app.command()
def retry(wf: WfArg) -> None:
    """Run the failed, timed-out, cancelled and skipped jobs of a finished workflow again."""
    result = client().call("POST", path_of("workflows", wf, "retry"))
    print(
        f"retrying {len(result['retried'])} job(s) of {result['id']}: "
        + ", ".join(result["retried"])
    )


@app.command()
def rerun(
    wf: WfArg,
    job: Annotated[str, typer.Argument(help="The job to run again (an array job: all of it).")],
    downstream: Annotated[
        bool, typer.Option("--downstream", help="Also every job that needs it.")
    ] = False,
) -> None:
    """Run one job of a finished workflow again, even if it succeeded; keep the rest."""
    path = path_of("workflows", wf, "jobs", job, "rerun")
    result = client().call("POST", path, params={"downstream": downstream})
    print(
        f"rerunning {len(result['retried'])} job(s) of {result['id']}: "
        + ", ".join(result["retried"])
    )


@app.command()
def export(
    wf: WfArg,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write it here; default: stdout.")
    ] = None,
) -> None:
    """Print the submitted workflow as canonical YAML, which validates and resubmits
    to the same workflow (paths absolute, defaults written into each job)."""
    text = b"".join(client().stream(path_of("workflows", wf, "spec")))
    if output is None:
        sys.stdout.buffer.write(text)
        return
    output.write_bytes(text)
    print(f"wrote {output}")


@app.command()
def graph(
    wf: WfArg,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Write .svg (needs Graphviz) or .dot; default: DOT to stdout."
        ),
    ] = None,
    around: Annotated[str | None, typer.Option(help="Only this job and its neighbours.")] = None,
) -> None:
    """Draw the workflow's DAG with each job coloured by its state."""
    from ccd.cli.graph import render_svg, to_dot

    data = get_status(client(), wf)
    try:
        dot = to_dot(data, around=around)
    except ValueError as exc:
        fail(str(exc), 2)
    if output is None:
        sys.stdout.write(dot)
        return
    if output.suffix == ".svg":
        output.write_bytes(render_svg(dot))
    elif output.suffix in (".dot", ".gv"):
        output.write_text(dot)
    else:
        fail(f"{output}: use a .svg or .dot file name", 2)
    print(f"wrote {output}")


@app.command("gc")
def collect_garbage(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", help="Age of finished workflows to delete: e.g. 30d, 12h, 90m."
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what would be deleted.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete finished workflows older than an age: their events, jobs and run directories
    (here and on SSH hosts); the database shrinks. Running workflows are never touched.

    Exits 1 if a host's run directories could not be removed.
    """
    from ccd.cli.gc import gc_report
    from ccd.spec.durations import parse_age

    try:
        parse_age(older_than)  # before starting a daemon for nothing
    except ValueError as exc:
        fail(f"--older-than: {exc}", 2)
    c = client()
    c.timeout = 3600.0  # VACUUM of a large database takes a while
    body = json.dumps({"older_than": older_than, "dry_run": dry_run}).encode()
    result = c.call("POST", "/v1/gc", body=body, headers={"Content-Type": "application/json"})
    if as_json:
        print_json(result)
    else:
        print("\n".join(gc_report(result)))
    if result["remote_errors"]:
        raise typer.Exit(1)


def version_callback(value: bool) -> None:
    if value:
        print(f"ccctl {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Control the ccd workflow daemon."""


def main() -> None:
    try:
        app()
    except ApiError as exc:
        print(f"ccctl: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except CcdError as exc:
        print(f"ccctl: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)
