"""`ccctl graph`: a workflow's jobs as a Graphviz DOT digraph, and SVG through `dot`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from ccd.cli.format import format_percent, state_colour, summary_line
from ccd.errors import CcdError

#: seconds `dot` may take; a graph of tens of thousands of jobs takes a few
DOT_TIMEOUT = 120.0


def _escape(text: str) -> str:
    """The inside of a DOT quoted string that displays as `text` (newlines kept)."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return escaped.replace("\r", "").replace("\n", "\\n")


def quote(text: str) -> str:
    """`text` as a DOT quoted string: a safe identifier and a label showing `text`."""
    return f'"{_escape(text)}"'


def _label(*lines: str) -> str:
    return '"' + "\\n".join(_escape(line) for line in lines) + '"'


def _attrs(**attrs: str) -> str:
    """`[key=value, ...]`; values must already be quoted."""
    return "[" + ", ".join(f"{key}={value}" for key, value in attrs.items()) + "]"


def neighbourhood(jobs: Iterable[Mapping[str, Any]], around: str) -> set[str]:
    """`around`, its parents and its children; ValueError if there is no such job."""
    jobs = list(jobs)
    by_name = {job["name"]: job for job in jobs}
    if around not in by_name:
        raise ValueError(f"no job named {around!r} in this workflow")
    keep = {around, *by_name[around].get("needs", [])}
    keep.update(job["name"] for job in jobs if around in job.get("needs", []))
    return keep & by_name.keys()


def _node(job: Mapping[str, Any], focus: bool) -> str:
    state = str(job.get("state", "unknown"))
    status_line = f"{state} {format_percent(job.get('progress'))}".rstrip()
    keys = ("host", "executor", "attempt", "exit_code", "reason", "message")
    tooltip = [f"{key}: {job[key]}" for key in keys if job.get(key) not in (None, "")]
    attrs = _attrs(
        label=_label(str(job["name"]), status_line),
        fillcolor=quote(state_colour(state)),
        tooltip=_label(*tooltip) if tooltip else quote(str(job["name"])),
        **({"penwidth": "3"} if focus else {}),
    )
    return f"  {quote(job['name'])} {attrs};"


def to_dot(status: Mapping[str, Any], around: str | None = None) -> str:
    """The jobs of `status` as a DOT digraph (edges parent -> child), coloured by state.

    With `around`, only that job, its parents and its children are drawn.
    """
    jobs = list(status.get("jobs", []))
    names = {job["name"] for job in jobs}
    keep = names if around is None else neighbourhood(jobs, around)
    lines = [
        f"digraph {quote(str(status.get('name', 'workflow')))} {{",
        f"  graph {_attrs(label=quote(summary_line(status)), labelloc='t', fontname='Helvetica')};",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#606060"];',
    ]
    lines += [_node(job, job["name"] == around) for job in jobs if job["name"] in keep]
    lines += [
        f"  {quote(parent)} -> {quote(job['name'])};"
        for job in jobs
        if job["name"] in keep
        for parent in job.get("needs", [])
        if parent in keep
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_svg(dot_text: str, timeout: float = DOT_TIMEOUT) -> bytes:
    """`dot_text` laid out by Graphviz as SVG."""
    exe = shutil.which("dot")
    if exe is None:
        raise CcdError(
            "Graphviz `dot` is not installed: install it (e.g. `apt-get install graphviz`) "
            "or write the graph as DOT with `-o file.dot`"
        )
    try:
        done = subprocess.run(
            [exe, "-Tsvg"], input=dot_text.encode(), capture_output=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise CcdError(
            f"`dot` took more than {timeout:g}s; write the graph as DOT with `-o file.dot`, "
            "or draw part of it with `--around JOB`"
        ) from exc
    except OSError as exc:
        raise CcdError(f"could not run {exe}: {exc}") from exc
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip()
        raise CcdError(f"`dot` failed (exit {done.returncode}): {detail}")
    return done.stdout
