"""What a workflow page loads besides itself: the graph (as SVG) and a log's tail.

The graph is `ccctl graph`'s own DOT laid out by Graphviz's ``dot`` (in a worker
thread: hundreds of jobs take it a second), so the page and the command draw the
same picture; the page then recolours its nodes from the event stream.  A log's
tail is its last bytes up to an offset: the page shows the last MiB, "load more"
asks for the MiB before, and the API's log stream follows on from the end.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from typing import Annotated, Any, Final

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from ccd.api.deps import ServicesDep, find_job, find_workflow
from ccd.cli.format import summary_line
from ccd.cli.graph import neighbourhood, quote, render_svg, to_dot
from ccd.errors import CcdError, NotFound
from ccd.executors.wrapper import LOG, attempt_dir
from ccd.web.collapse import collapse

router = APIRouter(include_in_schema=False)

#: jobs above which the page draws only a job's neighbourhood (dot would take long)
GRAPH_LIMIT: Final = 1500
#: the bytes of log a page shows at first, and "load more" adds
TAIL: Final = 1024 * 1024


#: the groups a page asks to see member by member (``?expand=A&expand=B``)
Expand = Annotated[list[str] | None, Query()]


async def _graph(
    services: ServicesDep, ref: str, around: str | None, expand: list[str] | None
) -> tuple[str, bytes, dict[str, list[str]]]:
    """The workflow's name, its graph and the groups folded in it (node → members):
    all but those in `expand` and `around`'s own; only `around` and its neighbours
    if given."""
    store = services.store
    row = await find_workflow(store, ref)
    jobs = every = await store.get_jobs(row["id"])
    if around is not None:
        if around not in {job["name"] for job in jobs}:
            raise NotFound(f"no job named {around!r} in this workflow")
        jobs = [job for job in jobs if job["name"] in neighbourhood(jobs, around)]
    drawn, folded = collapse(jobs, expand or (), keep=() if around is None else (around,))
    status: dict[str, Any] = {**row, "jobs": drawn}
    if len(drawn) > GRAPH_LIMIT:
        raise CcdError(
            f"{len(drawn)} nodes are too many to draw at once (the limit is "
            f"{GRAPH_LIMIT}): pick a job in the table to draw its neighbourhood"
        )
    dot = to_dot(status, around=around)
    # the title is `ccctl graph`'s summary line, which counts the rows drawn: count
    # every job instead, a folded group's members too
    shown = quote(summary_line(status))
    title = quote(summary_line({**row, "counts": Counter(str(job["state"]) for job in every)}))
    svg = await asyncio.to_thread(render_svg, dot.replace(shown, title, 1))
    return str(row["name"]), svg, folded


@router.get("/ui/w/{ref}/graph", response_class=HTMLResponse)
async def graph_fragment(
    ref: str, services: ServicesDep, expand: Expand = None, around: str | None = None
) -> HTMLResponse:
    """The graph as SVG to put into the page (no XML prolog), with the folded groups'
    members for the page to colour them by; or why there is no graph."""
    try:
        _, svg, folded = await _graph(services, ref, around, expand)
    except CcdError as exc:
        return HTMLResponse(f'<p class="note">{_escape(exc.message)}</p>')
    text = svg.decode()
    members = _escape(json.dumps(folded)).replace('"', "&quot;")
    return HTMLResponse(
        f'<div class="graph-wrap" data-groups="{members}">{text[text.find("<svg") :]}</div>'
    )


@router.get("/ui/w/{ref}/graph.svg")
async def graph_file(
    ref: str, services: ServicesDep, expand: Expand = None, around: str | None = None
) -> Response:
    name, svg, _ = await _graph(services, ref, around, expand)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={"content-disposition": f'attachment; filename="{safe}.svg"'},
    )


@router.get("/ui/w/{ref}/jobs/{job}/tail")
async def log_tail(
    ref: str,
    job: str,
    services: ServicesDep,
    before: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=16 * TAIL)] = TAIL,
    attempt: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """Up to `limit` bytes of an attempt's log (default: the latest) that end at
    `before` (default: its end now); the headers say where they start and end, and
    which attempt."""
    store = services.store
    workflow_id = (await find_workflow(store, ref))["id"]
    row = await find_job(store, workflow_id, job)
    if row["attempt"] < 1:
        raise NotFound(f"job '{job}' has not started, so it has no log")
    number = attempt or row["attempt"]
    if number > row["attempt"]:
        raise NotFound(f"job '{job}' has no attempt {number} (it has {row['attempt']})")
    path = attempt_dir(services.config.runs_dir, workflow_id, job, number) / LOG
    start, end, data = await asyncio.to_thread(_read_tail, str(path), before, limit)
    return Response(
        data,
        media_type="text/plain; charset=utf-8",
        headers={
            "x-log-start": str(start),
            "x-log-end": str(end),
            "x-log-attempt": str(number),
        },
    )


def _read_tail(path: str, before: int | None, limit: int) -> tuple[int, int, bytes]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0, 0, b""  # the wrapper has not written it yet
    try:
        size = os.fstat(fd).st_size
        end = size if before is None else min(before, size)
        start = max(0, end - limit)
        data = os.pread(fd, end - start, start)
    finally:
        os.close(fd)
    if start > 0:
        # begin at a line: the page marks marker lines, and a cut one would not match
        cut = data.find(b"\n")
        if 0 <= cut < len(data) - 1:
            start, data = start + cut + 1, data[cut + 1 :]
    return start, start + len(data), data


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
